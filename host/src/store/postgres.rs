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

/// The pool when none is configured: 4 connections per core of this host, 8 to 64. More
/// connections than the cores can serve only queue inside the server: at 1,000,000 readers on
/// 2 cores, 32 connections gave the card 10,146 req/s with p99 7.3 ms, 8 gave 11,774 req/s
/// with p99 6.1 ms (BENCHMARKS.md).
pub(super) fn auto_size(size: PoolSize) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    size.or((cores * 4).clamp(8, 64))
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
    let searches = pool_options::<sqlx::Postgres>()
        .max_connections((auto_size(size) / 2).max(2))
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _| Box::pin(async move { plan_once(conn).await }))
        .connect_lazy(url)?;
    let mut store = SqlStore::new(pool.clone(), pool);
    store.searches = Some(searches);
    Ok(store)
}

/// Makes the connection plan each prepared statement once. PostgreSQL re-plans a statement
/// for each execution while that looks cheaper than its one generic plan; for the search's
/// prefix ranges under `LIMIT` it always does, although both plans are the same index scan.
/// Planning was half the server's work per search: at 1,000,000 readers the search answered
/// 2,208 req/s with p99 21.9 ms re-planning, 4,195 req/s with p99 12.6 ms planned once
/// (BENCHMARKS.md). Only the search's connections are set so, since other statements (the
/// population reads among them) may depend on plans made for their values.
async fn plan_once(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(conn)
        .await
        .map(|_| ())
}
