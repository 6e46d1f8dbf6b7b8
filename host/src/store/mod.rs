//! Storage behind one `Store` trait, with a SQLite and a PostgreSQL implementation.
//!
//! The backend is chosen once, from the database URL's scheme. Both backends share the SQL in
//! `shared.rs`'s modules (written with `$n` placeholders, which both understand), compiled once
//! for each; what differs between them lives in `backend.rs`, `sqlite.rs`, `postgres.rs` and the
//! two migration folders.

mod audiences;
mod audit;
mod backend;
pub mod backup;
mod bulk;
mod catalogue;
mod clubs;
mod events;
mod imports;
mod interactions;
mod jobs;
mod keys;
mod plugins;
mod postgres;
pub mod replica;
mod segments;
mod sqlite;
mod staff;
mod subscribers;
mod terms;
mod views;

use std::sync::Arc;

use async_trait::async_trait;

pub use audiences::*;
pub use audit::*;
pub use backend::SqlStore;
pub use backup::BackupStore;
pub use bulk::*;
pub use catalogue::*;
pub use clubs::*;
pub use events::*;
pub use imports::*;
pub use interactions::*;
pub use jobs::*;
pub use keys::*;
pub use plugins::*;
pub use replica::{StandbySettings, open_with_standby};
pub use segments::*;
pub use sqlite::logs_file as sqlite_logs_file;
pub use staff::*;
pub use subscribers::*;
pub use terms::*;
pub use views::*;

/// What went wrong in storage, in terms the service layer can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("record not found")]
    NotFound,
    /// A uniqueness rule or an expected version did not hold.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Database(sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// The write names a claim of a job that another host holds now (this one was presumed
    /// dead): nothing was written.
    #[error("job {0} is held by another host now; this host's claim no longer holds")]
    Fenced(i64),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(db.message().to_owned())
            }
            _ => Self::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the service keeps, behind one object handlers share.
#[async_trait]
pub trait Store:
    KeyStore
    + StaffStore
    + SubscriberStore
    + CatalogueStore
    + TermStore
    + BulkStore
    + AuditStore
    + PluginStore
    + ViewStore
    + SegmentStore
    + InteractionStore
    + ClubStore
    + EventStore
    + BackupStore
    + JobStore
    + ImportStore
    + AudienceStore
{
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// Fails unless the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// The hot standby some reads go to, when one is configured.
    fn standby(&self) -> Option<Arc<replica::Standby>> {
        None
    }
    async fn close(&self);
}

/// The connections a store may hold at once: for SQLite its readers (beside its one writer),
/// for PostgreSQL the whole pool. `0` lets the backend choose for the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolSize(pub u32);

impl PoolSize {
    /// The size in force: the configured one, else `auto`.
    pub(crate) fn or(self, auto: u32) -> u32 {
        if self.0 == 0 { auto } else { self.0 }
    }
}

/// Opens (creating and migrating) the database the URL names, with the backend's own pool
/// size.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_sized(url, PoolSize::default()).await
}

/// Opens (creating and migrating) the database the URL names, with `size` connections.
pub async fn open_sized(url: &str, size: PoolSize) -> anyhow::Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::open(url, size).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::open(url, size).await?)),
        _ => anyhow::bail!(
            "database URL `{}` has no known scheme: use sqlite://PATH (the default is \
             sqlite://data/masthead.db) or postgres://USER@HOST/DATABASE",
            redact(url)
        ),
    }
}

/// The URL with any password replaced, safe to show in messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let credentials = &url[start + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            super::redact("postgres://u:secret@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(super::redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(super::redact("sqlite://data/m.db"), "sqlite://data/m.db");
    }
}
