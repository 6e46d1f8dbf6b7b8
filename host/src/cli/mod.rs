//! The `masthead` command line: serve, migrate, and API key management.

mod keys;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};
use crate::services;
use crate::startup::{Application, shutdown_signal};
use crate::store;

#[derive(Debug, Parser)]
#[command(
    name = "masthead",
    version,
    about = "Subscriber database and CRM plugin host for publishers"
)]
pub struct Cli {
    /// Configuration file (default: ./masthead.toml when present).
    #[arg(long, global = true, env = "MASTHEAD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Folder for the embedded database and first-start files.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (creates and migrates the database on first start).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create or bring the database schema up to date, then exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

impl Cli {
    pub fn config(&self) -> anyhow::Result<Config> {
        let listen = match &self.command {
            Command::Serve { listen } => *listen,
            _ => None,
        };
        Config::load(
            self.config.as_deref(),
            &Overrides {
                listen,
                database_url: self.database_url.clone(),
                data_dir: self.data_dir.clone(),
                log_format: self.log_format,
            },
        )
    }
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => {
            let store = store::open(&config.database_url()).await?;
            println!("{} database is up to date", store.backend());
            store.close().await;
            Ok(())
        }
        Command::Keys(command) => keys::run(command, &config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    if let Some(path) = services::keys::bootstrap_admin(&*app.store(), &config.data_dir).await? {
        tracing::warn!(
            file = %path.display(),
            "no admin key existed, so one was created and written to this file (readable only by \
             you); use it to create personal keys, then delete the file"
        );
    }
    app.run_until_stopped(shutdown_signal()).await
}
