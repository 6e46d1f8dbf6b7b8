//! The PostgreSQL backend, for several host instances serving one database.

use std::time::Duration;

use super::backend::pool_options;
use super::{PoolSize, SqlStore, redact};
use anyhow::Context;

/// The backend the shared SQL is compiled for here.
type Db = sqlx::Postgres;

// The other backend compiles the same files: that is the point.
#[allow(clippy::duplicate_mod)]
#[path = "shared.rs"]
mod shared;

/// The pool when none is configured.
pub(super) fn auto_size(size: PoolSize) -> u32 {
    size.or(32)
}

/// Connects and migrates; fails with the reason when the server cannot be reached.
pub async fn open(url: &str, size: PoolSize) -> anyhow::Result<SqlStore<sqlx::Postgres>> {
    let pool = pool_options::<sqlx::Postgres>()
        .max_connections(auto_size(size))
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {}; check that the server runs and the URL's \
                 user, host and database are right",
                redact(url)
            )
        })?;
    sqlx::migrate!("../migrations/postgres")
        .run(&pool)
        .await
        .context("cannot migrate the PostgreSQL database")?;
    Ok(SqlStore::new(pool.clone(), pool))
}
