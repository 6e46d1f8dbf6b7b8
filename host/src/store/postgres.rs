//! The PostgreSQL backend, for several host instances serving one database.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;

use super::{SqlStore, redact};

/// The backend the shared SQL is compiled for here.
type Db = sqlx::Postgres;

// The other backend compiles the same files: that is the point.
#[allow(clippy::duplicate_mod)]
#[path = "shared.rs"]
mod shared;

/// Connects and migrates; fails with the reason when the server cannot be reached.
pub async fn open(url: &str) -> anyhow::Result<SqlStore<sqlx::Postgres>> {
    let pool = PgPoolOptions::new()
        .max_connections(32)
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
