//! What the reader pipeline's change log costs the writes: renewals ("like last year") and
//! card updates over HTTP against a stored demo publisher, in rounds with the triggers that
//! log each change and rounds with them dropped, alternating, in one process on one database.
//!
//! `cargo bench -p masthead --bench writes`. `BENCH_SUBSCRIBERS` (default 100,000) sizes the
//! publisher, `BENCH_WRITES` (default 400, fewer when the publisher has too few readers due
//! for renewal) the requests of each kind a round;
//! `BENCH_DATABASE_URL` names an empty database (PostgreSQL) instead of a SQLite file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use masthead::config::Config;
use masthead::domain::Role;
use masthead::services::clock::{Clock, SystemClock};
use masthead::services::keys;
use masthead::startup::Application;
use masthead::store::Store;
use serde_json::{Value, json};

/// Rounds of each kind, alternating logged and unlogged so that drift hits both alike.
const ROUNDS: usize = 2;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The database the service writes, seen directly: to drop and remake the triggers.
enum Direct {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Direct {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqlitePool::connect(url).await?)
        } else {
            Self::Postgres(sqlx::PgPool::connect(url).await?)
        })
    }

    /// The statements that make the change log's triggers again.
    async fn triggers(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(match self {
            Self::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' \
                     AND name LIKE 'reader_changes_%'",
                )
                .fetch_all(pool)
                .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT tgname::text, pg_get_triggerdef(oid) FROM pg_trigger \
                     WHERE tgname LIKE 'reader_changes_%'",
                )
                .fetch_all(pool)
                .await?
            }
        })
    }

    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop)?,
            Self::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    async fn drop_triggers(&self, triggers: &[(String, String)]) -> anyhow::Result<()> {
        for (name, sql) in triggers {
            let table = if sql.contains(" ON subscribers") || sql.contains(" ON public.subscribers")
            {
                "subscribers"
            } else {
                "terms"
            };
            match self {
                Self::Sqlite(_) => self.execute(&format!("DROP TRIGGER {name}")).await?,
                Self::Postgres(_) => {
                    self.execute(&format!("DROP TRIGGER {name} ON {table}"))
                        .await?
                }
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Latencies {
    renewals: Vec<Duration>,
    updates: Vec<Duration>,
}

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(at).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One round: `numbers.len()` renewals like last year, then as many card updates.
async fn round(
    client: &reqwest::Client,
    base: &str,
    staff: &str,
    numbers: &[String],
    into: &mut Latencies,
) -> anyhow::Result<()> {
    for number in numbers {
        let started = Instant::now();
        let renewed = client
            .post(format!("{base}/api/v1/subscribers/{number}/renewals"))
            .bearer_auth(staff)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .send()
            .await?;
        let status = renewed.status();
        anyhow::ensure!(
            status.is_success(),
            "renewal of {number}: {status} {}",
            renewed.text().await?
        );
        renewed.bytes().await?;
        into.renewals.push(started.elapsed());
    }
    for (k, number) in numbers.iter().enumerate() {
        let card: Value = client
            .get(format!("{base}/api/v1/subscribers/{number}"))
            .bearer_auth(staff)
            .send()
            .await?
            .json()
            .await?;
        let version = card["version"].as_i64().unwrap_or_default();
        let level = ["reactive", "accountable", "proactive"][k % 3];
        let started = Instant::now();
        let updated = client
            .patch(format!("{base}/api/v1/subscribers/{number}"))
            .bearer_auth(staff)
            .header("If-Match", format!("\"{version}\""))
            .json(&json!({ "relationship_level": level }))
            .send()
            .await?;
        let status = updated.status();
        anyhow::ensure!(
            status.is_success(),
            "update of {number}: {status} {}",
            updated.text().await?
        );
        updated.bytes().await?;
        into.updates.push(started.elapsed());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env_or("BENCH_SUBSCRIBERS", 100_000);
    let writes = env_or("BENCH_WRITES", 400);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let mut config = Config {
        database_url: Some(url.clone()),
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    // Nothing scheduled runs under the measurement, and no pass brings the chunks up to date
    // between rounds (the log only grows; what a write costs is the same either way).
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = false;
    let store: Arc<dyn Store> = masthead::store::open(&url).await?;
    let started = Instant::now();
    masthead::cli::load_demo(&store, &config, subscribers, 1).await?;
    store.bring_facts_up_to_date().await?;
    println!(
        "{} backend: loaded {subscribers} demo readers in {:.1} s",
        store.backend(),
        started.elapsed().as_secs_f64()
    );
    let staff = keys::issue(&*store, &SystemClock, "bench", Role::Staff)
        .await?
        .token;
    let today = SystemClock.today();
    let due = store
        .due_terms(today, today + chrono::Days::new(365), 0, 100_000)
        .await?;
    let mut numbers: Vec<String> = due.iter().map(|d| d.subscriber.to_string()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    // Each reader is renewed once: a warm-up round and two rounds a kind.
    let writes = writes.min(numbers.len() / (ROUNDS * 2 + 1));
    anyhow::ensure!(
        writes >= 10,
        "only {} readers with a term to renew; give more BENCH_SUBSCRIBERS",
        numbers.len()
    );
    let app = Application::build(&config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let direct = Direct::connect(&url).await?;
    let triggers = direct.triggers().await?;
    anyhow::ensure!(triggers.len() == 6, "found {} triggers", triggers.len());

    // A warm-up round, not counted.
    let mut spare = Latencies::default();
    let mut readers = numbers.chunks(writes);
    round(
        &client,
        &base,
        &staff,
        readers.next().unwrap_or_default(),
        &mut spare,
    )
    .await?;
    let (mut logged, mut unlogged) = (Latencies::default(), Latencies::default());
    for _ in 0..ROUNDS {
        let batch = readers.next().unwrap_or_default();
        round(&client, &base, &staff, batch, &mut logged).await?;
        direct.drop_triggers(&triggers).await?;
        let batch = readers.next().unwrap_or_default();
        round(&client, &base, &staff, batch, &mut unlogged).await?;
        for (_, sql) in &triggers {
            direct.execute(sql).await?;
        }
    }

    println!(
        "\n| what | p50 logged | p50 unlogged | p50 ratio | p99 logged | p99 unlogged | p99 ratio |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (what, a, b) in [
        (
            "renewal like last year",
            &mut logged.renewals,
            &mut unlogged.renewals,
        ),
        (
            "card update (PATCH)",
            &mut logged.updates,
            &mut unlogged.updates,
        ),
    ] {
        let (a50, b50) = (quantile(a, 0.5), quantile(b, 0.5));
        let (a99, b99) = (quantile(a, 0.99), quantile(b, 0.99));
        println!(
            "| {what} ({} each) | {:.2} ms | {:.2} ms | {:.2}x | {:.2} ms | {:.2} ms | {:.2}x |",
            a.len(),
            ms(a50),
            ms(b50),
            ms(a50) / ms(b50),
            ms(a99),
            ms(b99),
            ms(a99) / ms(b99),
        );
    }
    Ok(())
}
