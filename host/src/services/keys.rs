//! API key issuing and revocation, and the first admin key of a fresh install.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;

use crate::domain::{Role, api_key};
use crate::store::{ApiKey, NewApiKey, Store, StoreError};

/// A key just made, with the secret that is shown this one time.
pub struct IssuedKey {
    pub key: ApiKey,
    pub token: String,
}

/// Makes a key. The name says who holds it ("reception desk"); it is not a secret.
pub async fn issue(store: &dyn Store, name: &str, role: Role) -> Result<IssuedKey, StoreError> {
    let token = api_key::generate();
    let key = store
        .create_api_key(NewApiKey {
            name: name.trim().to_owned(),
            role,
            token_hash: token.hash,
            hint: token.hint,
            created_at: Utc::now(),
        })
        .await?;
    Ok(IssuedKey {
        key,
        token: token.secret,
    })
}

/// Checks a key's name: something a person can read in the audit log.
pub fn check_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 {
        return Err("a key name has 1 to 100 characters, e.g. \"reception desk\"".into());
    }
    Ok(())
}

/// On a fresh install (no active admin key), makes one and writes it to a file readable only
/// by the operator, whose path is returned. The secret itself never reaches the logs.
pub async fn bootstrap_admin(
    store: &dyn Store,
    data_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    if store.count_active_admin_keys().await? > 0 {
        return Ok(None);
    }
    let issued = issue(store, "initial admin", Role::Admin).await?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let path = data_dir.join("initial-admin-key");
    write_private(&path, &format!("{}\n", issued.token))
        .with_context(|| format!("cannot write the first admin key to {}", path.display()))?;
    Ok(Some(path))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}
