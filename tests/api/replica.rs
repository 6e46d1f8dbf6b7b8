//! Read replicas: a real primary and hot standby pair (started by the tests themselves, on
//! every pass) serving searches and cards through the service; with SQLite the setting is
//! refused at start.

use std::time::{Duration, Instant};

use clap::Parser;
use masthead::cli::Cli;
use masthead::config::Config;
use masthead::startup::Application;
use masthead::store::{self, StandbySettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, empty_sqlite_database, person, spawn_app_on};
use crate::plugins::recompute_club;
use crate::renewals::{print_year, publication, reader, subscribe};
use crate::standby::StandbyPair;

/// The service with database_url = the primary and database_read_url = the standby.
async fn replicated(pair: &StandbyPair) -> TestApp {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        database_url: Some(pair.primary_url.clone()),
        database_read_url: Some(pair.standby_url.clone()),
        ..Config::default()
    };
    // As in `spawn_app`: a scheduled recomputation would decide the tiers before the test's.
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = false;
    let settings = config.standby().expect("valid").expect("a standby");
    let store = store::open_with_standby(
        &pair.primary_url,
        store::PoolSize::default(),
        Some(&settings),
    )
    .await
    .expect("open the primary and its standby");
    spawn_app_on(config, store).await
}

/// Index and sequential scans of `table` counted by the server at `url`.
async fn scans(url: &str, table: &str) -> i64 {
    let pool = PgPool::connect(url).await.expect("connect for statistics");
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(SUM(COALESCE(idx_scan, 0) + seq_scan), 0)::bigint \
         FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind(table)
    .fetch_one(&pool)
    .await
    .expect("statistics");
    pool.close().await;
    n
}

/// The scans of `table` at `url` once the server has taken in every backend's pending counts
/// (each backend reports them within about a second of going idle).
async fn settled_scans(url: &str, table: &str) -> i64 {
    let mut last = scans(url, table).await;
    loop {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let now = scans(url, table).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Waits until the standby has counted at least `standby_scans` of `table`, then checks that
/// the primary's count stayed at `primary_scans`.
async fn assert_scanned_on_the_standby_only(
    pair: &StandbyPair,
    table: &str,
    standby_scans: i64,
    primary_scans: i64,
) {
    wait_for_scans(&pair.standby_url, table, standby_scans).await;
    assert_eq!(
        settled_scans(&pair.primary_url, table).await,
        primary_scans,
        "the primary scanned {table}"
    );
}

/// Waits until the server at `url` has counted at least `at_least` scans of `table`.
async fn wait_for_scans(url: &str, table: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while scans(url, table).await < at_least {
        assert!(
            Instant::now() < deadline,
            "the server at {url} counted fewer than {at_least} scans of {table}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn readyz(app: &TestApp) -> (StatusCode, String) {
    let response = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    (response.status(), response.text().await.expect("text"))
}

async fn metrics(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics");
    response.text().await.expect("text")
}

#[tokio::test]
async fn a_write_then_a_read_of_the_same_card_through_the_service_sees_the_write() {
    let pair = StandbyPair::start().await;
    let app = replicated(&pair).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("standby: replaying"), "{body}");

    let card = app.create(person("Ada", "Lovelace")).await;
    let number = card["number"].as_str().expect("number").to_owned();
    let mut version = card["version"].as_i64().expect("version");
    for round in 0..25 {
        let changed = app
            .patch(
                &format!("/api/v1/subscribers/{number}"),
                &app.staff,
                version,
                &json!({ "custom_attributes": { "round": round } }),
            )
            .await;
        assert_eq!(changed.status(), StatusCode::OK, "round {round}");
        version = changed.json::<Value>().await.expect("card")["version"]
            .as_i64()
            .expect("version");
        let read = app.card(&number).await;
        assert_eq!(
            read["custom_attributes"]["round"], round,
            "round {round}: {read}"
        );
        assert_eq!(read["version"], version, "round {round}");
        let found = app.search(&number).await;
        assert_eq!(found.len(), 1, "round {round}");
    }
    // A reader created just now is found by name at once, by the one who created it.
    let grace = app.create(person("Grace", "Hopper")).await;
    let found = app.search("hopper").await;
    assert_eq!(found[0]["number"], grace["number"]);
}

#[tokio::test]
async fn searches_are_served_by_the_standby_as_its_statistics_show() {
    let pair = StandbyPair::start().await;
    let app = replicated(&pair).await;
    for (given, family) in [
        ("Ada", "Lovelace"),
        ("Alan", "Turing"),
        ("Edsger", "Dijkstra"),
    ] {
        app.create(person(given, family)).await;
    }
    pair.wait_for_replay().await;
    let primary_before = settled_scans(&pair.primary_url, "search_terms").await;
    let standby_before = settled_scans(&pair.standby_url, "search_terms").await;

    // A health check that is slow on a loaded machine sends reads to the primary for a
    // moment: count what the service says the standby served, and check the statistics of
    // both servers against that.
    let served_before = standby_reads(&app).await;
    let searches = 12;
    for _ in 0..searches {
        let found = app.search("turing").await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["display_name"], "Alan Turing", "{found:?}");
    }
    let served = standby_reads(&app).await - served_before;

    assert!(
        served >= searches / 2,
        "only {served} of {searches} searches were served by the standby"
    );
    wait_for_scans(&pair.standby_url, "search_terms", standby_before + served).await;
    // A search for `turing` scans `search_terms` twice where it runs (its name and its email
    // part): the primary's count allows the searches the standby did not serve, and one stray
    // statement of the primary's own (seen once on a loaded machine).
    let primary_scans = settled_scans(&pair.primary_url, "search_terms").await - primary_before;
    let allowed = 2 * (searches - served) + 2;
    assert!(
        primary_scans <= allowed,
        "the primary scanned search_terms {primary_scans} times, more than the {allowed} that \
         {} searches it served may explain",
        searches - served
    );
}

/// The reads the service says its standby served.
async fn standby_reads(app: &TestApp) -> i64 {
    let text = metrics(app).await;
    text.lines()
        .filter(|l| {
            l.starts_with("masthead_replica_reads_total") && l.contains("served_by=\"standby\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as i64)
        .sum()
}

#[tokio::test]
async fn a_club_recomputation_reads_the_readership_from_the_standby() {
    let pair = StandbyPair::start().await;
    let app = replicated(&pair).await;
    publication(&app, "DAILY", &[("2014-01-01", 20_000)]).await;
    app.set_today("2025-12-20");
    for name in ["Faithful", "Loyal", "Steady"] {
        let number = reader(&app, name).await;
        for year in 2022..=2025 {
            subscribe(&app, &number, print_year("DAILY", &format!("{year}-01-01"))).await;
        }
    }
    let club = json!({
        "code": "reader-club", "name": "Reader Club", "description": "Loyal readers",
        "tiers": [{ "code": "silver", "name": "Silver",
                    "rule": { "tenure": { "min_years": 2 } },
                    "perks": { "renewal_discount_percent": 2, "event_access": true } }],
    });
    let defined = app.post("/api/v1/clubs", &app.admin, &club).await;
    assert_eq!(defined.status(), StatusCode::CREATED);
    pair.wait_for_replay().await;
    let primary_before = settled_scans(&pair.primary_url, "terms").await;
    let standby_before = settled_scans(&pair.standby_url, "terms").await;

    let job = recompute_club(&app, "reader-club").await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["joined"], 3, "{job}");

    assert_scanned_on_the_standby_only(&pair, "terms", standby_before + 1, primary_before).await;
}

#[tokio::test]
async fn with_the_standby_stopped_reads_still_answer_from_the_primary() {
    let pair = StandbyPair::start().await;
    let refused = store::open_with_standby(
        &pair.primary_url,
        store::PoolSize::default(),
        Some(&StandbySettings {
            url: pair.primary_url.clone(),
            max_lag: Duration::from_secs(5),
        }),
    )
    .await
    .err()
    .expect("a primary is no standby");
    assert!(
        format!("{refused:#}").contains("not in recovery"),
        "{refused:#}"
    );

    let app = replicated(&pair).await;
    let card = app.create(person("Ada", "Lovelace")).await;
    let number = card["number"].as_str().expect("number").to_owned();
    pair.wait_for_replay().await;
    assert_eq!(app.search("lovelace").await.len(), 1);

    pair.stop_standby().await;
    for _ in 0..5 {
        assert_eq!(app.card(&number).await["family_name"], "Lovelace");
        let found = app.search("lovelace").await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["number"], number.as_str());
    }
    let changed = app
        .patch(
            &format!("/api/v1/subscribers/{number}"),
            &app.staff,
            card["version"].as_i64().expect("version"),
            &json!({ "custom_attributes": { "note": "standby down" } }),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        app.card(&number).await["custom_attributes"]["note"],
        "standby down"
    );

    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "the primary still serves");
    assert!(body.contains("standby: unreachable"), "{body}");
    // The recorder is the process's, shared with the other tests: only this one's standby
    // goes away, so only it sends reads to the primary for that reason.
    let text = metrics(&app).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("masthead_replica_reads_total")
                && l.contains("reason=\"unavailable\"")),
        "{text}"
    );
}

#[tokio::test]
async fn a_read_url_with_sqlite_is_refused_at_start() {
    let database = empty_sqlite_database();
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        database_url: Some(database.url.clone()),
        database_read_url: Some("postgres://postgres@127.0.0.1:5432/standby".into()),
        ..Config::default()
    };
    let refused = Application::build(&config)
        .await
        .err()
        .expect("refused with SQLite");
    let message = format!("{refused:#}");
    assert!(
        message.contains("read replicas are a PostgreSQL feature")
            && message.contains("database_read_url"),
        "{message}"
    );

    // The same through the command line, from a configuration file.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("masthead.toml");
    std::fs::write(
        &file,
        format!(
            "database_url = \"{}\"\ndatabase_read_url = \"postgres://u@standby/m\"\n",
            database.url
        ),
    )
    .expect("write the configuration");
    let cli = Cli::parse_from([
        "masthead",
        "--config",
        file.to_str().expect("path"),
        "serve",
    ]);
    let refused = cli.config().expect_err("refused with SQLite");
    assert!(
        format!("{refused:#}").contains("read replicas are a PostgreSQL feature"),
        "{refused:#}"
    );
}
