//! API key issuing and revocation, the cache of keys recently checked, and the first admin
//! key of a fresh install.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::clock::Clock;
use crate::domain::{Role, api_key};
use crate::store::{ApiKey, NewApiKey, Store, StoreError, StoreResult};
use anyhow::Context;

/// Keys found valid in the last `ttl`, by token hash, so that a request does not read the key
/// table each time. Revoking through this instance empties it at once; a revocation made
/// elsewhere (the CLI, another instance) takes effect within `ttl`. A zero `ttl` disables it.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (ApiKey, Instant)>>,
}

/// Distinct keys a cache holds before it starts afresh (a publisher has dozens).
const CACHED_KEYS: usize = 1_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The active key with this token hash: from the cache while fresh, else the store.
    /// Unknown and revoked tokens are never cached.
    pub async fn find(&self, store: &dyn Store, token_hash: &str) -> StoreResult<Option<ApiKey>> {
        if let Some((key, at)) = self.lock().get(token_hash)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(key.clone()));
        }
        let found = store.find_api_key(token_hash).await?;
        let mut entries = self.lock();
        match &found {
            Some(key) if !self.ttl.is_zero() => {
                if entries.len() >= CACHED_KEYS {
                    entries.clear();
                }
                entries.insert(token_hash.to_owned(), (key.clone(), Instant::now()));
            }
            _ => {
                entries.remove(token_hash);
            }
        }
        Ok(found)
    }

    /// Forgets every key (after a revocation).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ApiKey, Instant)>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A key just made, with the secret that is shown this one time.
pub struct IssuedKey {
    pub key: ApiKey,
    pub token: String,
}

/// Makes a key. The name says who holds it ("reception desk"); it is not a secret.
pub async fn issue(
    store: &dyn Store,
    clock: &dyn Clock,
    name: &str,
    role: Role,
) -> Result<IssuedKey, StoreError> {
    issue_for(store, clock, name, role, None).await
}

/// Makes a key that acts for an advertiser account (an `advertiser` key) or for nobody.
pub async fn issue_for(
    store: &dyn Store,
    clock: &dyn Clock,
    name: &str,
    role: Role,
    advertiser_id: Option<i64>,
) -> Result<IssuedKey, StoreError> {
    let token = api_key::generate();
    let key = store
        .create_api_key(NewApiKey {
            name: name.trim().to_owned(),
            role,
            token_hash: token.hash,
            hint: token.hint,
            advertiser_id,
            created_at: clock.now(),
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
    clock: &dyn Clock,
    data_dir: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    if store.count_active_admin_keys().await? > 0 {
        return Ok(None);
    }
    let issued = issue(store, clock, "initial admin", Role::Admin).await?;
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
