//! SQLite's logs file: the audit log and the plugins' failures commit beside the database
//! file, never to it, travel with it in backups, and a missing or foreign one stops the start.

use std::path::{Path, PathBuf};

use masthead::domain::{Role, SubscriberNumber};
use masthead::services::backup;
use masthead::store::{
    self, Actor, AuditEntry, AuditFilter, PluginFailureRecord, sqlite_logs_file,
};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::empty_sqlite_database;

fn path_of(url: &str) -> PathBuf {
    PathBuf::from(url.strip_prefix("sqlite://").expect("a sqlite:// url"))
}

fn read_of(i: i64) -> AuditEntry {
    AuditEntry {
        at: chrono::Utc::now(),
        actor: Actor {
            key_id: Some(1),
            name: "desk".into(),
            role: Role::Staff,
        },
        action: "subscriber.read",
        subscriber: Some(SubscriberNumber::from_sequence(100_000 + i)),
        request_id: None,
        detail: json!({}),
    }
}

fn failure() -> PluginFailureRecord {
    PluginFailureRecord {
        version: "1.0.0".into(),
        cause: "deadline".into(),
        message: "ran past its 2 s deadline".into(),
        records: 1,
        at: chrono::Utc::now(),
    }
}

/// `PRAGMA data_version` of a file as one other connection sees it: it changes when any other
/// connection commits to that file, and only then.
struct Watcher(sqlx::SqliteConnection);

impl Watcher {
    async fn open(file: &Path) -> Self {
        let url = format!("sqlite://{}", file.display());
        Self(sqlx::SqliteConnection::connect(&url).await.expect("open"))
    }

    async fn version(&mut self) -> i64 {
        sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut self.0)
            .await
            .expect("data_version")
    }
}

#[tokio::test]
async fn audit_lines_and_plugin_failures_commit_to_the_logs_file_and_not_to_the_readers_one() {
    // Arrange: a migrated database, and a connection watching each of its two files.
    let database = empty_sqlite_database();
    let store = store::open(&database.url).await.expect("open");
    let file = path_of(&database.url);
    let mut readers_file = Watcher::open(&file).await;
    let mut logs_file = Watcher::open(&sqlite_logs_file(&file)).await;
    let (readers_before, logs_before) = (readers_file.version().await, logs_file.version().await);

    // Act: what a card read and a failing plugin call write.
    let batch: Vec<AuditEntry> = (0..300).map(read_of).collect();
    store.append_audit(&batch).await.expect("audit");
    for _ in 0..3 {
        store
            .record_plugin_failure("stalling", &failure(), 5)
            .await
            .expect("failure");
    }

    // Assert: only the logs file saw commits; the store reads everything back.
    assert_eq!(
        readers_file.version().await,
        readers_before,
        "a commit reached the readers' file, emptying its readers' page caches"
    );
    assert_ne!(logs_file.version().await, logs_before);
    let listed = store
        .list_audit(&AuditFilter {
            limit: 1_000,
            ..AuditFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 300);
    let failures = store
        .plugin_failures("stalling", 10)
        .await
        .expect("failures");
    assert_eq!(failures.len(), 3);
    store.close().await;
}

#[tokio::test]
async fn a_backup_carries_the_logs_file_and_restores_it() {
    // Arrange: a database with audit lines and a plugin's failures, backed up.
    let source = empty_sqlite_database();
    let store = store::open(&source.url).await.expect("open");
    let batch: Vec<AuditEntry> = (0..25).map(read_of).collect();
    store.append_audit(&batch).await.expect("audit");
    store
        .record_plugin_failure("stalling", &failure(), 5)
        .await
        .expect("failure");
    let (_, copy) = backup::write(&*store, Vec::new(), chrono::Utc::now())
        .await
        .expect("backup");
    store.close().await;

    // Act: restore into a new database.
    let target = empty_sqlite_database();
    let restored = store::open(&target.url).await.expect("open");
    backup::restore(&*restored, copy.as_slice())
        .await
        .expect("restore");

    // Assert: the lines and failures are back, numbered on from where they were.
    let listed = restored
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 25);
    assert_eq!(
        restored
            .plugin_failures("stalling", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    restored.append_audit(&[read_of(99)]).await.expect("audit");
    let newest = restored
        .list_audit(&AuditFilter {
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(newest[0].id, 26);
    restored.close().await;
}

/// Copies a SQLite file with its write-ahead log: a closed pool's last connection may not
/// have checkpointed it yet.
fn copy_sqlite_file(from: &Path, to: &Path) {
    for suffix in ["", "-wal"] {
        let source = PathBuf::from(format!("{}{suffix}", from.display()));
        if source.exists() {
            std::fs::copy(&source, format!("{}{suffix}", to.display())).expect("copy");
        }
    }
}

fn remove_sqlite_file(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        if path.exists() {
            std::fs::remove_file(&path).expect("remove");
        }
    }
}

#[tokio::test]
async fn a_database_whose_logs_file_is_missing_or_foreign_does_not_start() {
    // Arrange: a migrated database with an audit line, closed.
    let database = empty_sqlite_database();
    let file = path_of(&database.url);
    let store = store::open(&database.url).await.expect("open");
    store.append_audit(&[read_of(1)]).await.expect("audit");
    store.close().await;
    let logs = sqlite_logs_file(&file);
    let kept = file.with_file_name("kept-logs.db");
    copy_sqlite_file(&logs, &kept);

    // Act: the logs file goes missing.
    remove_sqlite_file(&logs);
    let missing = store::open(&database.url).await;

    // Assert
    let message = format!("{:#}", missing.err().expect("a refusal"));
    assert!(message.contains("is missing or empty"), "{message}");

    // Act: the database goes, its logs stay, and a new database starts beside them.
    remove_sqlite_file(&file);
    remove_sqlite_file(&logs);
    copy_sqlite_file(&kept, &logs);
    let foreign = store::open(&database.url).await;

    // Assert
    let message = format!("{:#}", foreign.err().expect("a refusal"));
    assert!(message.contains("belongs to another database"), "{message}");
}
