//! The embedded SQLite backend: a file in the data folder, WAL, a busy timeout, one writer,
//! and the append-only logs in a second file beside it, attached to every connection.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Executor, pool::PoolConnectionMetadata};

use super::backend::pool_options;
use super::{PoolSize, SqlStore};

/// The backend the shared SQL is compiled for here.
type Db = sqlx::Sqlite;

// The other backend compiles the same files: that is the point.
#[allow(clippy::duplicate_mod)]
#[path = "shared.rs"]
mod shared;

/// Opens the database file (creating its folder and the file), then migrates it.
pub async fn open(url: &str, size: PoolSize) -> anyhow::Result<SqlStore<sqlx::Sqlite>> {
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
    let logs = logs_file(options.get_filename());
    let write = pool_options::<sqlx::Sqlite>()
        .max_connections(1)
        .after_connect(attach_logs(logs.clone(), WRITER_LOGS_CACHE_KIB))
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot open the SQLite database at {url}"))?;
    let checked = async {
        check_logs_belong(&write, &logs).await?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&write)
            .await
            .context("cannot migrate the SQLite database")?;
        check_logs(&write, &logs).await
    };
    if let Err(refused) = checked.await {
        // Closed before answering, so that no connection of a refused start lingers on the
        // files (the caller may move them at once).
        write.close().await;
        return Err(refused);
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let readers = size.or((cores * 2).max(4));
    // Every commit to the database file empties the page cache of each reader at its next
    // read, so a large one only costs time to clear; the OS caches the file. The audit log
    // and the plugins' failures, written on nearly every request, commit to the logs file.
    let read = pool_options::<sqlx::Sqlite>()
        .max_connections(readers)
        .after_connect(attach_logs(logs, READER_LOGS_CACHE_KIB))
        .connect_with(options.pragma("cache_size", "-8192"))
        .await
        .with_context(|| format!("cannot open the SQLite database at {url} for reading"))?;
    Ok(SqlStore::new(read, write))
}

/// The page cache each connection keeps of the logs file: the writer appends to its indexes,
/// readers only list a page of the log now and then.
const WRITER_LOGS_CACHE_KIB: i64 = 16 * 1024;
const READER_LOGS_CACHE_KIB: i64 = 2 * 1024;

/// The file of the logs beside the database file: `masthead.db` keeps them in
/// `masthead-logs.db`. Backups hold both (`masthead backup`); copy both to move a database.
pub fn logs_file(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map_or_else(|| "masthead".into(), |s| s.to_string_lossy());
    let name = match database.extension() {
        Some(ext) => format!("{stem}-logs.{}", ext.to_string_lossy()),
        None => format!("{stem}-logs"),
    };
    database.with_file_name(name)
}

/// Attaches the logs file as `logs` to each new connection, in WAL mode like the database.
/// Unqualified names find its tables (`audit_log`, `plugin_errors`, `plugin_streaks`), so the
/// shared SQL does not know they live apart. A transaction writing both files (a change and
/// its audit line) is atomic in each; SQLite cannot make it atomic across two WAL files, so
/// a power cut at the instant of such a commit may keep the change without its line.
fn attach_logs(
    logs: PathBuf,
    cache_kib: i64,
) -> impl Fn(&mut SqliteConnection, PoolConnectionMetadata) -> BoxFuture<'_, Result<(), sqlx::Error>>
+ Send
+ Sync
+ 'static {
    move |conn, _| {
        let logs = logs.to_string_lossy().into_owned();
        Box::pin(async move {
            sqlx::query("ATTACH DATABASE ?1 AS logs")
                .bind(logs)
                .execute(&mut *conn)
                .await?;
            conn.execute(
                format!(
                    "PRAGMA logs.journal_mode = WAL; PRAGMA logs.synchronous = NORMAL; \
                     PRAGMA logs.cache_size = -{cache_kib};"
                )
                .as_str(),
            )
            .await?;
            Ok(())
        })
    }
}

/// A new database beside the logs file of another (the database deleted to start afresh, the
/// logs left behind) would take over that database's audit log: refuse to start.
async fn check_logs_belong(write: &sqlx::SqlitePool, logs: &Path) -> anyhow::Result<()> {
    let (database, logged): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM main.sqlite_schema), \
         (SELECT COUNT(*) FROM logs.sqlite_schema)",
    )
    .fetch_one(write)
    .await?;
    anyhow::ensure!(
        database > 0 || logged == 0,
        "the logs file {} belongs to another database (this one is new); move it away, or put \
         its database back beside it",
        logs.display()
    );
    Ok(())
}

/// A database migrated past the move of the logs whose logs file has gone (deleted, or not
/// copied with the database) would answer every audited request with an error: say so at
/// start instead.
async fn check_logs(write: &sqlx::SqlitePool, logs: &Path) -> anyhow::Result<()> {
    let (moved,): (bool,) = sqlx::query_as(
        "SELECT NOT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE name = 'audit_log')",
    )
    .fetch_one(write)
    .await?;
    let (present,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM logs.sqlite_schema WHERE name = 'audit_log')")
            .fetch_one(write)
            .await?;
    anyhow::ensure!(
        !moved || present,
        "the logs file {} (the audit log and the plugins' failures) is missing or empty; \
         restore it with the database from the same backup (`masthead restore`)",
        logs.display()
    );
    Ok(())
}
