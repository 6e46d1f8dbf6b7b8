//! `masthead keys`: create, list and revoke API keys straight in the database.

use clap::Subcommand;

use crate::config::Config;
use crate::domain::Role;
use crate::services::clock::{Clock, SystemClock};
use crate::services::keys;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (shown once).
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// Who holds it, e.g. "reception desk".
        #[arg(long)]
        name: String,
        /// The advertiser account an advertiser key acts for (its id).
        #[arg(long)]
        advertiser: Option<i64>,
    },
    /// List keys (never their tokens).
    List,
    /// Revoke a key by id; it stops working at once.
    Revoke { id: i64 },
}

pub async fn run(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let store = store::open(&config.database_url()).await?;
    let result = match command {
        KeysCommand::Create {
            role,
            name,
            advertiser,
        } => {
            keys::check_name(&name).map_err(anyhow::Error::msg)?;
            if let Some(account) = advertiser {
                anyhow::ensure!(
                    role == Role::Advertiser,
                    "only an advertiser key acts for an advertiser account"
                );
                anyhow::ensure!(
                    store.get_advertiser(account).await?.is_some(),
                    "there is no advertiser account {account}"
                );
            }
            let issued = keys::issue_for(&*store, &SystemClock, &name, role, advertiser).await?;
            eprintln!(
                "created {} key {} \"{}\"; the token below is shown only now:",
                issued.key.role, issued.key.id, issued.key.name
            );
            println!("{}", issued.token);
            Ok(())
        }
        KeysCommand::List => {
            println!(
                "{:>5}  {:<10}  {:<12}  {:<25}  name",
                "id", "role", "starts with", "revoked"
            );
            for key in store.list_api_keys().await? {
                let revoked = key.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default();
                println!(
                    "{:>5}  {:<10}  {:<12}  {:<25}  {}",
                    key.id, key.role, key.hint, revoked, key.name
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => match store.revoke_api_key(id, SystemClock.now()).await {
            Ok(key) => {
                println!("revoked key {} \"{}\"", key.id, key.name);
                Ok(())
            }
            Err(store::StoreError::NotFound) => Err(anyhow::anyhow!(
                "there is no API key {id}; see `masthead keys list`"
            )),
            Err(e) => Err(e.into()),
        },
    };
    store.close().await;
    result
}
