//! The embedded SQLite backend: a file in the data folder, WAL, a busy timeout, one writer.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::SqlStore;

/// The backend the shared SQL is compiled for here.
type Db = sqlx::Sqlite;

// The other backend compiles the same files: that is the point.
#[allow(clippy::duplicate_mod)]
#[path = "shared.rs"]
mod shared;

/// Opens the database file (creating its folder and the file), then migrates it.
pub async fn open(url: &str) -> anyhow::Result<SqlStore<sqlx::Sqlite>> {
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| {
            format!("`{url}` is not a SQLite URL; write it as sqlite://PATH/TO/FILE.db")
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .pragma("temp_store", "memory")
        .pragma("cache_size", "-65536");
    if let Some(folder) = options.get_filename().parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder).with_context(|| {
            format!(
                "cannot create the data folder {}; check its permissions",
                folder.display()
            )
        })?;
    }
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot open the SQLite database at {url}"))?;
    sqlx::migrate!("../migrations/sqlite")
        .run(&write)
        .await
        .context("cannot migrate the SQLite database")?;
    let readers = std::thread::available_parallelism().map_or(4, |n| n.get() as u32 * 2);
    // Every commit (the audit writer's batches among them) empties the page cache of each
    // reader at its next read, so a large one only costs time to clear; the OS caches the file.
    let read = SqlitePoolOptions::new()
        .max_connections(readers.max(4))
        .connect_with(options.pragma("cache_size", "-8192"))
        .await
        .with_context(|| format!("cannot open the SQLite database at {url} for reading"))?;
    Ok(SqlStore::new(read, write))
}
