//! The audience API over the stored demo publisher, next to baselines measured in the same
//! run:
//!
//! - one release of an audience with four dimensions and all six of their pairs (published
//!   over HTTP, which measures and releases), next to `SELECT count(*)` over the segment's
//!   members;
//! - an advertiser reading the release over HTTP, next to `GET /healthz`.
//!
//! Seven readers in ten are given the `third_party_audiences` consent after the load.
//! `cargo bench -p masthead --bench audiences`. `BENCH_SUBSCRIBERS` (default 1,000,000) sizes
//! the demo publisher; `BENCH_DATABASE_URL` runs it on PostgreSQL (an empty database).

use std::time::{Duration, Instant};

use masthead::config::Config;
use masthead::domain::Role;
use masthead::services::clock::SystemClock;
use masthead::services::keys;
use masthead::startup::Application;
use masthead::store::AdvertiserDraft;
use serde_json::{Value, json};

/// Sequential requests timed per route.
const REQUESTS: usize = 2_000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env_or("BENCH_SUBSCRIBERS", 1_000_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(url.clone()),
        ..Config::default()
    };
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = false;
    let store = masthead::store::open(&url).await?;
    let started = Instant::now();
    masthead::cli::load_demo(&store, &config, subscribers, 1).await?;
    println!(
        "{} backend: loaded {subscribers} demo readers in {:.1} s",
        store.backend(),
        started.elapsed().as_secs_f64()
    );
    grant_audiences(&url).await?;
    let started = Instant::now();
    store.bring_facts_up_to_date().await?;
    println!(
        "kept chunks made from the tables after the load: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let admin = keys::issue(&*store, &SystemClock, "bench", Role::Admin)
        .await?
        .token;
    let account = AdvertiserDraft {
        name: "Bench Agency".into(),
        contact_person: None,
        notes: None,
    };
    let account = store
        .insert_advertiser(&account, chrono::Utc::now())
        .await?;
    let advertiser = keys::issue_for(
        &*store,
        &SystemClock,
        "agency",
        Role::Advertiser,
        Some(account.id),
    )
    .await?
    .token;
    let app = Application::build(&config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
    };

    // A segment of most readers, refreshed.
    let segment = json!({ "name": "adults", "filter": { "age": { "min": 18 } } });
    let response = call(reqwest::Method::POST, "/api/v1/segments", &admin)
        .json(&segment)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "segment: {}",
        response.text().await?
    );
    let job: Value = call(
        reqwest::Method::POST,
        "/api/v1/segments/adults/refresh",
        &admin,
    )
    .send()
    .await?
    .json()
    .await?;
    let size = loop {
        let view: Value = call(reqwest::Method::GET, "/api/v1/segments/adults", &admin)
            .send()
            .await?
            .json()
            .await?;
        if view["refreshes"][0]["id"] == job["id"] && view["refreshes"][0]["state"] != "running" {
            break view["size"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let baseline = count_members(&url).await?;
    let dimensions = ["region", "age_band", "format", "tenure_band"];
    let mut pairs = Vec::new();
    for (i, a) in dimensions.iter().enumerate() {
        for b in &dimensions[i + 1..] {
            pairs.push(json!([a, b]));
        }
    }
    let body = json!({
        "name": "Adult readers", "segment": "adults", "advertisers": [account.id],
        "settings": { "dimensions": dimensions, "pairs": pairs, "release_epsilon": 1.0,
                      "budget": 10.0, "max_sparse_percent": 100 },
    });
    let started = Instant::now();
    let response = call(reqwest::Method::POST, "/api/v1/audiences", &admin)
        .json(&body)
        .send()
        .await?;
    let release = started.elapsed();
    let status = response.status();
    let audience: Value = response.json().await?;
    anyhow::ensure!(status.is_success(), "publish: {audience}");
    let id = &audience["id"];
    let figures: Value = call(
        reqwest::Method::GET,
        &format!("/api/v1/audiences/{id}/releases"),
        &admin,
    )
    .send()
    .await?
    .json()
    .await?;
    let cells: usize = figures[0]["released"]["dimensions"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| d["cells"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
        + figures[0]["released"]["pairs"]
            .as_array()
            .map(|p| {
                p.iter()
                    .map(|p| p["cells"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
    println!(
        "one release (publication) of 4 dimensions and 6 pairs over a segment of {size} \
         readers ({} consenting, {} cells): {:.2} s; baseline SELECT count(*) over the \
         segment's members {:.3} s ({:.0}x)",
        figures[0]["exact"]["total"]["count"],
        cells + 1,
        release.as_secs_f64(),
        baseline.as_secs_f64(),
        release.as_secs_f64() / baseline.as_secs_f64().max(1e-6),
    );

    let path = format!("/api/v1/shared-audiences/{id}/release");
    let mut timed = Vec::new();
    for (route, token) in [("/healthz", ""), (path.as_str(), advertiser.as_str())] {
        let mut took = Vec::with_capacity(REQUESTS);
        for round in 0..REQUESTS + 100 {
            let started = Instant::now();
            let response = call(reqwest::Method::GET, route, token).send().await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{route}: {}",
                response.status()
            );
            response.bytes().await?;
            if round >= 100 {
                took.push(started.elapsed());
            }
        }
        took.sort();
        timed.push((
            route.to_owned(),
            took[took.len() / 2],
            took[took.len() * 99 / 100],
        ));
    }
    for (route, p50, p99) in &timed {
        println!("GET {route}, {REQUESTS} sequential requests: p50 {p50:?} p99 {p99:?}");
    }
    Ok(())
}

/// Grants `third_party_audiences` to seven readers in ten, straight in the table (the demo
/// load records no consents), before the kept chunks are made from it.
async fn grant_audiences(url: &str) -> anyhow::Result<()> {
    let consents = r#"{"third_party_audiences":{"granted":true,"channel":"web","changed_at":"2026-01-01T00:00:00Z"}}"#;
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        sqlx::query("UPDATE subscribers SET consents = $1 WHERE id % 10 < 7")
            .bind(consents)
            .execute(&pool)
            .await?;
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await?;
        sqlx::query("UPDATE subscribers SET consents = $1::jsonb WHERE id % 10 < 7")
            .bind(consents)
            .execute(&pool)
            .await?;
        pool.close().await;
    }
    Ok(())
}

/// The baseline: a bare count of the segment's members, straight in the database (the best
/// of three, on a connection made beforehand).
async fn count_members(url: &str) -> anyhow::Result<Duration> {
    let sql = "SELECT count(*) FROM segment_members m JOIN segments s ON s.id = m.segment_id \
               WHERE s.name = 'adults'";
    let mut best = Duration::MAX;
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        for _ in 0..3 {
            let started = Instant::now();
            let (count,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await?;
            best = best.min(started.elapsed());
            std::hint::black_box(count);
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await?;
        for _ in 0..3 {
            let started = Instant::now();
            let (count,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await?;
            best = best.min(started.elapsed());
            std::hint::black_box(count);
        }
        pool.close().await;
    }
    Ok(best)
}
