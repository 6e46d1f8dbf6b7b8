//! `masthead backup` and `masthead restore` through the real CLI: a consistent copy made
//! while the service writes, restored into an empty database of either backend, checked,
//! and refused where a restore would mix or lose data.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use clap::Parser;
use masthead::cli::{self, Cli};
use masthead::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{
    TestApp, empty_database, empty_sqlite_database, person, postgres_server, spawn_app,
};
use crate::renewals::{history, print_year, publication, reader, renew, subscribe};

async fn masthead(url: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["masthead", "--database-url", url];
    all.extend_from_slice(args);
    let parsed = Cli::parse_from(all);
    let config = parsed.config()?;
    cli::run(parsed, config).await
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Serves the database at `url` with `app`'s clock; `app`'s keys work there once restored.
async fn serve(app: &TestApp, url: &str) -> String {
    let mut config = app.config.clone();
    config.database_url = Some(url.to_owned());
    let store = masthead::store::open(url)
        .await
        .expect("open the restored database");
    let restored = Application::build_with_clock(&config, store, Arc::new(app.clock.clone()))
        .await
        .expect("build on the restored database");
    let address = format!("http://127.0.0.1:{}", restored.port());
    tokio::spawn(restored.run_until_stopped(std::future::pending()));
    address
}

async fn get(app: &TestApp, address: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(format!("{address}{path}"))
        .bearer_auth(&app.staff)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn sequence(number: &str) -> i64 {
    number[..number.len() - 1].parse().expect("digits")
}

/// Readers with renewal histories (a renewal points at the term it renews), and a merge whose
/// old number points at a reader made after it. Returns every number, the merged one first.
async fn circulation(app: &TestApp) -> Vec<String> {
    publication(app, "DAILY", &[("2024-01-01", 20_000)]).await;
    app.set_today("2024-06-01");
    let duplicate = reader(app, "Smyth").await;
    let mut numbers = vec![duplicate.clone()];
    for family in ["Hale", "Thornton", "Lennox", "Bell", "Smith"] {
        let number = reader(app, family).await;
        subscribe(app, &number, print_year("DAILY", "2024-01-01")).await;
        numbers.push(number);
    }
    app.set_today("2024-12-01");
    for number in &numbers[1..3] {
        let key = uuid::Uuid::new_v4().to_string();
        assert_eq!(
            renew(app, number, &key, None).await.status(),
            StatusCode::CREATED
        );
    }
    let kept = numbers.last().expect("a reader").clone();
    let merged = app
        .post(
            &format!("/api/v1/subscribers/{kept}/merge"),
            &app.staff,
            &json!({ "source": duplicate }),
        )
        .await;
    assert_eq!(merged.status(), StatusCode::OK);
    numbers
}

/// Each reader's card and renewal history at `address` are those of the source.
async fn assert_same_readers(app: &TestApp, address: &str, numbers: &[String]) {
    for number in numbers {
        let card = get(app, &app.address, &format!("/api/v1/subscribers/{number}")).await;
        let copy = get(app, address, &format!("/api/v1/subscribers/{number}")).await;
        assert_eq!(copy, card, "the card of {number}");
        let terms = format!("/api/v1/subscribers/{number}/terms");
        let (status, copy) = get(app, address, &terms).await;
        if card.0 == StatusCode::OK {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(copy, history(app, number).await, "the terms of {number}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_made_while_readers_are_written_restores_one_instant_of_them() {
    // Arrange: a publisher, and a task creating readers one after another over the API.
    let app = Arc::new(spawn_app().await);
    let numbers = circulation(&app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (app, stop, written) = (Arc::clone(&app), Arc::clone(&stop), Arc::clone(&written));
        async move {
            let mut made = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let card = app
                    .create(person("Walk", &format!("In {}", made.len())))
                    .await;
                made.push(card["number"].as_str().expect("number").to_owned());
                written.store(made.len(), Ordering::Relaxed);
            }
            made
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("masthead.backup");
    let source = app.config.database_url.clone().expect("url");

    // Act: back up while the writer writes, then restore into a new database.
    masthead(&source, &["backup", text(&file)])
        .await
        .expect("backup");
    // At least one reader more is written after the backup's end.
    let at_end = written.load(Ordering::Relaxed);
    while written.load(Ordering::Relaxed) <= at_end + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let made = writer.await.expect("writer");
    let target = empty_database().await;
    masthead(&target.url, &["restore", text(&file)])
        .await
        .expect("restore");

    // Assert: the readers written before the backup's instant are all there, as they were,
    // and none written after it; numbering goes on after the last number restored.
    let address = serve(&app, &target.url).await;
    assert_same_readers(&app, &address, &numbers).await;
    let mut present = Vec::new();
    for number in &made {
        let (status, _) = get(&app, &address, &format!("/api/v1/subscribers/{number}")).await;
        present.push(status == StatusCode::OK);
    }
    let restored = present.iter().take_while(|p| **p).count();
    assert!(
        present[restored..].iter().all(|p| !*p),
        "the backup holds a later reader without an earlier one: {present:?}"
    );
    assert!(restored > 0, "the writer wrote before the backup began");
    assert!(restored < made.len(), "the writer went on after the backup");
    assert_same_readers(&app, &address, &made[..restored]).await;
    let response = app
        .client
        .post(format!("{address}/api/v1/subscribers"))
        .bearer_auth(&app.staff)
        .json(&person("Next", "Reader"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let next: Value = response.json().await.expect("json");
    let next = sequence(next["number"].as_str().expect("number"));
    let highest = numbers.iter().chain(&made[..restored]).map(|n| sequence(n));
    assert!(highest.clone().all(|n| n < next), "{next} reuses a number");
}

#[tokio::test]
async fn a_backup_restores_across_backends_with_the_same_numbers() {
    // Arrange: a publisher on the backend the tests run on.
    let app = spawn_app().await;
    let numbers = circulation(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (first, second) = (dir.path().join("one.backup"), dir.path().join("two.backup"));
    let source = app.config.database_url.clone().expect("url");

    // Act: into SQLite, then from there into a new database of the first backend (with
    // PostgreSQL configured, that is PostgreSQL -> SQLite -> PostgreSQL).
    masthead(&source, &["backup", text(&first)])
        .await
        .expect("backup");
    let embedded = empty_sqlite_database();
    masthead(&embedded.url, &["restore", text(&first)])
        .await
        .expect("restore into SQLite");
    masthead(&embedded.url, &["backup", text(&second)])
        .await
        .expect("backup of SQLite");
    let target = empty_database().await;
    masthead(&target.url, &["restore", text(&second)])
        .await
        .expect("restore from SQLite");

    // Assert: both copies serve the same readers and terms, and number the next reader as
    // the source would have.
    for url in [&embedded.url, &target.url] {
        let address = serve(&app, url).await;
        assert_same_readers(&app, &address, &numbers).await;
        let (status, found) = get(&app, &address, "/api/v1/search?q=Thornton").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(found["items"][0]["number"], numbers[2].as_str(), "{found}");
    }
    let last = sequence(numbers.last().expect("a reader"));
    let address = serve(&app, &target.url).await;
    let response = app
        .client
        .post(format!("{address}/api/v1/subscribers"))
        .bearer_auth(&app.staff)
        .json(&person("Next", "Reader"))
        .send()
        .await
        .expect("request");
    let next: Value = response.json().await.expect("json");
    assert_eq!(sequence(next["number"].as_str().expect("number")), last + 1);
    assert_eq!(
        postgres_server().is_some(),
        target.url.starts_with("postgres"),
        "the round trip ends on the backend it started from"
    );
}

#[tokio::test]
async fn a_restore_refuses_a_database_with_data_and_a_damaged_or_foreign_file() {
    // Arrange: a backup of a publisher.
    let app = spawn_app().await;
    circulation(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("masthead.backup");
    let source = app.config.database_url.clone().expect("url");
    masthead(&source, &["backup", text(&file)])
        .await
        .expect("backup");
    let good = std::fs::read_to_string(&file).expect("read");
    let target = empty_database().await;

    // Act and assert: each refusal says why, and leaves the empty database empty.
    let again = masthead(&source, &["backup", text(&file)]).await;
    let why = format!("{:#}", again.expect_err("the file exists"));
    assert!(why.contains("already exists"), "{why}");

    let into_itself = masthead(&source, &["restore", text(&file)]).await;
    let why = format!("{:#}", into_itself.expect_err("not empty"));
    assert!(why.contains("the database already holds data"), "{why}");
    assert!(why.contains("subscribers: 6 rows"), "{why}");
    assert!(
        why.contains("restored only into an empty database"),
        "{why}"
    );

    let damaged = dir.path().join("damaged.backup");
    std::fs::write(&damaged, good.replacen("Thornton", "Thornten", 1)).expect("write");
    let why = format!(
        "{:#}",
        masthead(&target.url, &["restore", text(&damaged)])
            .await
            .expect_err("damaged")
    );
    assert!(why.contains("its checksum does not match"), "{why}");

    let short = dir.path().join("short.backup");
    let cut = &good[..good.trim_end().rfind('\n').expect("lines") + 1];
    std::fs::write(&short, cut).expect("write");
    let why = format!(
        "{:#}",
        masthead(&target.url, &["restore", text(&short)])
            .await
            .expect_err("cut short")
    );
    assert!(why.contains("cut short"), "{why}");

    let foreign = dir.path().join("subscribers.csv");
    std::fs::write(&foreign, "legacy_id,kind\nC-1,person\n").expect("write");
    let why = format!(
        "{:#}",
        masthead(&target.url, &["restore", text(&foreign)])
            .await
            .expect_err("not a backup")
    );
    assert!(why.contains("not a Masthead backup"), "{why}");

    // The refusals wrote nothing: the same database still takes the good backup.
    masthead(&target.url, &["restore", text(&file)])
        .await
        .expect("restore");
}

/// `backup` with one more row after its last: every value null, which a table's `NOT NULL`
/// columns refuse; the counts and the checksum are made again, so the file itself is whole.
fn with_a_bad_last_row(backup: &str) -> String {
    let mut lines: Vec<String> = backup.lines().map(str::to_owned).collect();
    let end: Value = serde_json::from_str(&lines.pop().expect("the closing line")).expect("json");
    let last = lines
        .iter()
        .rposition(|l| l.starts_with('['))
        .expect("a row");
    let width = serde_json::from_str::<Vec<Value>>(&lines[last])
        .expect("a row")
        .len();
    lines.insert(last + 1, Value::Array(vec![Value::Null; width]).to_string());
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    let rows = end["end"]["rows"].as_u64().expect("rows") + 1;
    let end = json!({ "end": {
        "tables": end["end"]["tables"],
        "rows": rows,
        "sha256": format!("{:x}", hasher.finalize()),
    }});
    lines.push(end.to_string());
    lines.join("\n") + "\n"
}

#[tokio::test]
async fn a_restore_that_fails_at_its_last_row_leaves_the_database_empty() {
    // Arrange: a backup of a publisher, and a copy whose very last row is refused.
    let app = spawn_app().await;
    let numbers = circulation(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (good, bad) = (
        dir.path().join("good.backup"),
        dir.path().join("bad.backup"),
    );
    let source = app.config.database_url.clone().expect("url");
    masthead(&source, &["backup", text(&good)])
        .await
        .expect("backup");
    let contents = std::fs::read_to_string(&good).expect("read");
    std::fs::write(&bad, with_a_bad_last_row(&contents)).expect("write");
    let target = empty_database().await;

    // Act: every row before the bad one is loaded, then the bad one is refused.
    let failed = masthead(&target.url, &["restore", text(&bad)]).await;

    // Assert: nothing stayed; the database takes the good backup (which a restore does only
    // into a database without a row in any table) and serves it whole.
    let why = format!("{:#}", failed.expect_err("the bad row is refused"));
    assert!(why.contains("nothing was written"), "{why}");
    masthead(&target.url, &["restore", text(&good)])
        .await
        .expect("the good backup restores into the same database");
    let address = serve(&app, &target.url).await;
    assert_same_readers(&app, &address, &numbers).await;
}
