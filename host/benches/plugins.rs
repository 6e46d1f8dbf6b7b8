//! Plugin benchmarks, each next to a baseline measured in the same run:
//! - instantiation of a cached `InstancePre` in a fresh pooled store;
//! - the churn-risk segmenter over N in-memory readers as a component, next to the same Rust
//!   code run natively on the same records (one thread each), and the component on all cores;
//! - a segment refresh end to end through the service (database reads, projection, plugin,
//!   membership write) over the stored demo readers, and a declarative segment's (three
//!   conditions, no plugin), next to a bare count of them and to the reader pipeline's pages
//!   read and decoded without deciding anything;
//! - one offers request over HTTP (loyalty-offers) next to a card read over HTTP.
//!
//! `cargo bench -p masthead --bench plugins`. `BENCH_READERS` (default 1,000,000) sizes the
//! in-memory run (0 skips it); `BENCH_SUBSCRIBERS` (default 100,000) the stored demo publisher;
//! `BENCH_DATABASE_URL` stores it on PostgreSQL (an empty database) instead of a SQLite file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{StreamExt, stream};
use masthead::config::Config;
use masthead::domain::Role;
use masthead::domain::plugin::{Field, FieldSet, PluginKind};
use masthead::runtime::bindings::wit;
use masthead::runtime::{Invocation, PluginRuntime};
use masthead::services::clock::SystemClock;
use masthead::services::keys;
use masthead::services::pipeline::{Needs, PageFacts, Pipeline};
use masthead::services::segments::selection::Selection;
use masthead::startup::Application;
use masthead::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BATCH: usize = 1_000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the example plugins for wasm32-wasip2 and returns a component's bytes.
fn build_plugins() -> anyhow::Result<()> {
    let target = root().join("target/wasm-plugins");
    for package in ["churn-risk", "loyalty-offers"] {
        let status = std::process::Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "build",
                "-q",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                package,
            ])
            .arg("--target-dir")
            .arg(&target)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "building {package} for wasm32-wasip2 failed"
        );
    }
    Ok(())
}

fn component(name: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(root().join(format!(
        "target/wasm-plugins/wasm32-wasip2/release/{name}.wasm"
    )))?)
}

fn quantiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn date(y: i32, m: u8, d: u8) -> wit::Date {
    wit::Date {
        year: y,
        month: m,
        day: d,
    }
}

/// N readers with one to four yearly terms, seeded.
fn readers(n: usize) -> Vec<wit::Subscriber> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..n)
        .map(|i| {
            let first_year = rng.random_range(2015..2026);
            let terms = (first_year..2027.min(first_year + rng.random_range(1..5)))
                .map(|year| wit::Term {
                    publication: rng.random_range(0..3),
                    format: wit::Format::Print,
                    months: 12,
                    start: date(year, 3, 1),
                    end: date(year + 1, 2, 28),
                    list_price: 30_000,
                    price_paid: 28_000,
                    channel: wit::SalesChannel::Phone,
                    auto_renew: rng.random_bool(0.4),
                    cancelled_from: None,
                })
                .collect::<Vec<_>>();
            let current = terms.last().is_some_and(|t| t.end.year >= 2026);
            wit::Subscriber {
                number: 1_000_000 + i as u64,
                status: if current {
                    wit::Status::Active
                } else {
                    wit::Status::Lapsed
                },
                region: None,
                postal_code: None,
                birth_year: None,
                tenure_days: rng.random_range(0..4000),
                first_subscribed: None,
                lifetime_revenue: 0,
                share_of_wallet: 0.0,
                terms,
                club_tiers: Vec::new(),
                complaints: wit::ComplaintCounts {
                    open: rng.random_range(0..2),
                    total: 1,
                    last_year: 1,
                    breached: 0,
                },
                consents: Vec::new(),
                attributes: Vec::new(),
                contact: None,
            }
        })
        .collect()
}

/// The same reader as the SDK gives it to native code.
fn native(s: &wit::Subscriber) -> masthead_sdk::Subscriber {
    let d = |d: wit::Date| masthead_sdk::Date::new(d.year, d.month, d.day);
    masthead_sdk::Subscriber {
        number: s.number,
        status: match s.status {
            wit::Status::Active => masthead_sdk::Status::Active,
            _ => masthead_sdk::Status::Lapsed,
        },
        tenure_days: s.tenure_days,
        terms: s
            .terms
            .iter()
            .map(|t| masthead_sdk::Term {
                publication: t.publication,
                format: masthead_sdk::Format::Print,
                months: t.months,
                start: d(t.start),
                end: d(t.end),
                list_price: t.list_price,
                price_paid: t.price_paid,
                channel: masthead_sdk::SalesChannel::Phone,
                auto_renew: t.auto_renew,
                cancelled_from: None,
            })
            .collect(),
        complaints: masthead_sdk::ComplaintCounts {
            open: s.complaints.open,
            total: s.complaints.total,
            last_year: s.complaints.last_year,
            breached: s.complaints.breached,
        },
        ..masthead_sdk::Subscriber::default()
    }
}

fn context() -> wit::Context {
    wit::Context {
        today: date(2026, 11, 23),
        currency: "GBP".into(),
        publications: ["DT", "SUN", "MAG"]
            .iter()
            .map(|c| wit::Publication {
                code: (*c).into(),
                title: (*c).into(),
                on_sale: true,
            })
            .collect(),
    }
}

async fn in_memory(runtime: &Arc<PluginRuntime>, n: usize) -> anyhow::Result<()> {
    let wasm = component("churn_risk")?;
    let inspected = runtime
        .inspect(&wasm, PluginKind::Segmenter)
        .map_err(anyhow::Error::msg)?;
    let prepared = runtime.prepare(
        "churn-risk",
        "bench",
        PluginKind::Segmenter,
        &inspected.compiled,
        &wasm,
    )?;
    let call = Invocation {
        plugin: prepared,
        limits: Config::default().plugins.runtime().caps,
        config: Vec::new(),
    };

    let mut samples = Vec::with_capacity(10_000);
    for i in 0..11_000 {
        let started = Instant::now();
        runtime.instantiate(&call)?;
        if i >= 1_000 {
            samples.push(started.elapsed());
        }
    }
    let (p50, p99) = quantiles(samples);
    println!("instantiation (cached InstancePre, pooling, fresh store): p50 {p50:?}, p99 {p99:?}");

    let records = readers(n);
    let sdk_records: Vec<_> = records.iter().map(native).collect();
    let sdk_context = masthead_sdk::testing::context(masthead_sdk::Date::new(2026, 11, 23));
    let config = masthead_sdk::Config::default();
    let started = Instant::now();
    let mut native_keys = 0usize;
    for chunk in sdk_records.chunks(BATCH) {
        let results =
            masthead_sdk::testing::segment::<churn_risk::ChurnRisk>(&config, &sdk_context, chunk);
        native_keys += results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|k| !k.is_empty()))
            .count();
    }
    let native_time = started.elapsed();

    let batches: Vec<Vec<_>> = records.chunks(BATCH).map(<[_]>::to_vec).collect();
    let started = Instant::now();
    let mut plugin_keys = 0usize;
    for batch in batches {
        let report = runtime
            .segment(call.clone(), context(), batch)
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        plugin_keys += report
            .results
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|k| !k.is_empty()))
            .count();
    }
    let plugin_time = started.elapsed();
    anyhow::ensure!(
        native_keys == plugin_keys,
        "native and plugin disagree: {native_keys} vs {plugin_keys}"
    );

    let batches: Vec<Vec<_>> = records.chunks(BATCH).map(<[_]>::to_vec).collect();
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let started = Instant::now();
    let results: Vec<_> = stream::iter(batches)
        .map(|batch| runtime.segment(call.clone(), context(), batch))
        .buffer_unordered(cores)
        .collect()
        .await;
    let parallel_time = started.elapsed();
    anyhow::ensure!(results.iter().all(Result::is_ok), "a parallel batch failed");
    println!(
        "segmenter over {n} in-memory readers (batches of {BATCH}): native closure {:.3} s, \
         component {:.3} s (one thread) = {:.2}x native; component on {cores} cores {:.3} s",
        native_time.as_secs_f64(),
        plugin_time.as_secs_f64(),
        plugin_time.as_secs_f64() / native_time.as_secs_f64(),
        parallel_time.as_secs_f64()
    );
    Ok(())
}

async fn through_the_service(subscribers: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: Some(url.clone()),
        ..Config::default()
    };
    // The day's scheduled auto-renewal (and recomputation) would run beside the refresh.
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = false;
    let store = masthead::store::open(&url).await?;
    let started = Instant::now();
    masthead::cli::load_demo(&store, &config, subscribers, 1).await?;
    println!(
        "loaded {subscribers} demo readers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The first pass after a bulk load makes every kept chunk; it is timed on its own so that
    // the refresh below is the steady state (a catch-up with nothing logged).
    let started = Instant::now();
    let kept = store.bring_facts_up_to_date().await?;
    println!(
        "kept chunks made from the tables after the load: {:.1} s ({} chunks, {} log rows)",
        started.elapsed().as_secs_f64(),
        kept.chunks,
        kept.changes
    );
    let admin = keys::issue(&*store, &SystemClock, "bench", Role::Admin)
        .await?
        .token;
    let app = Application::build(&config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();

    for (dir, file) in [
        ("churn-risk", "churn_risk"),
        ("loyalty-offers", "loyalty_offers"),
    ] {
        let wasm = component(file)?;
        let sha: String = Sha256::digest(&wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let manifest =
            std::fs::read_to_string(root().join(format!("plugins/{dir}/masthead-plugin.toml")))?;
        let form = Form::new()
            .text("manifest", format!("sha256 = \"{sha}\"\n{manifest}"))
            .part("component", Part::bytes(wasm));
        let up = client
            .post(format!("{base}/api/v1/plugins"))
            .bearer_auth(&admin)
            .multipart(form)
            .send()
            .await?;
        anyhow::ensure!(
            up.status().is_success(),
            "upload {dir}: {}",
            up.text().await?
        );
        let enabled = client
            .post(format!("{base}/api/v1/plugins/{dir}/enable"))
            .bearer_auth(&admin)
            .json(&json!({}))
            .send()
            .await?;
        anyhow::ensure!(
            enabled.status().is_success(),
            "enable {dir}: {}",
            enabled.text().await?
        );
    }
    define(
        &client,
        &base,
        &admin,
        json!({ "name": "churn-high", "plugin": "churn-risk", "key": "churn-high" }),
    )
    .await?;
    forget_peak_memory();
    let (refresh, done) = refreshed(&client, &base, &admin, "churn-high").await?;
    println!(
        "segment refresh end to end over {subscribers} stored readers: {:.2} s ({}; {} members); \
         peak resident memory of the service (and this driver) during it {:.0} MiB",
        refresh.as_secs_f64(),
        done["refreshes"][0]["state"],
        done["size"],
        peak_memory_mib()
    );
    // Three conditions: two on terms, one on the reader's row.
    let filter = json!({ "all": [
        { "tenure": { "min_years": 3 } },
        { "holds": { "publication": "DAILY", "format": "print" } },
        { "age": { "min": 40 } },
    ] });
    define(
        &client,
        &base,
        &admin,
        json!({ "name": "loyal-print", "filter": filter }),
    )
    .await?;
    forget_peak_memory();
    let (declarative, done) = refreshed(&client, &base, &admin, "loyal-print").await?;
    println!(
        "declarative segment refresh (three conditions) end to end over {subscribers} stored \
         readers: {:.2} s ({}; {} members); peak resident memory {:.0} MiB",
        declarative.as_secs_f64(),
        done["refreshes"][0]["state"],
        done["size"],
        peak_memory_mib()
    );
    baselines(&store, refresh, declarative, &filter).await?;

    let page: Value = client
        .get(format!("{base}/api/v1/subscribers?limit=200"))
        .bearer_auth(&admin)
        .send()
        .await?
        .json()
        .await?;
    let numbers: Vec<String> = page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["number"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(!numbers.is_empty(), "no readers listed");
    let mut card = Vec::new();
    let mut offers = Vec::new();
    let mut offered = 0;
    for round in 0..10 {
        for number in &numbers {
            let started = Instant::now();
            let response = client
                .get(format!("{base}/api/v1/subscribers/{number}"))
                .bearer_auth(&admin)
                .send()
                .await?;
            response.bytes().await?;
            if round > 0 {
                card.push(started.elapsed());
            }
            let started = Instant::now();
            let response: Value = client
                .get(format!("{base}/api/v1/subscribers/{number}/offers"))
                .bearer_auth(&admin)
                .send()
                .await?
                .json()
                .await?;
            if round > 0 {
                offers.push(started.elapsed());
                offered +=
                    usize::from(response["offers"].as_array().is_some_and(|o| !o.is_empty()));
            }
        }
    }
    let (card50, card99) = quantiles(card);
    let (offer50, offer99) = quantiles(offers);
    println!(
        "over HTTP, sequential, {} readers x 9 rounds: card p50 {card50:?} p99 {card99:?}; \
         offers (loyalty-offers) p50 {offer50:?} p99 {offer99:?} ({offered} answers held offers)",
        numbers.len()
    );
    Ok(())
}

/// Defines a segment over HTTP.
async fn define(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    segment: Value,
) -> anyhow::Result<()> {
    let response = client
        .post(format!("{base}/api/v1/segments"))
        .bearer_auth(admin)
        .json(&segment)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "defining {}: {}",
        segment["name"],
        response.text().await?
    );
    Ok(())
}

/// Refreshes the segment `name` over HTTP and waits for the job to end: how long it took and
/// the segment after it.
async fn refreshed(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/segments/{name}/refresh"))
        .bearer_auth(admin)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "refreshing {name}: {}",
        response.text().await?
    );
    let job: Value = response.json().await?;
    loop {
        let view: Value = client
            .get(format!("{base}/api/v1/segments/{name}"))
            .bearer_auth(admin)
            .send()
            .await?
            .json()
            .await?;
        if view["refreshes"][0]["id"] == job["id"] && view["refreshes"][0]["state"] != "running" {
            return Ok((started.elapsed(), view));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the refresh costs beside reading alone, in the same run: a bare count of the readers,
/// and the reader pipeline's pages (with what churn-risk reads) decoded, deciding nothing.
async fn baselines(
    store: &Arc<dyn Store>,
    refresh: Duration,
    declarative: Duration,
    filter: &Value,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let readers = store.count_readers().await?;
    let count = started.elapsed();
    let fields = [
        Field::Status,
        Field::Tenure,
        Field::Terms,
        Field::Complaints,
    ];
    let started = Instant::now();
    let mut pages =
        Pipeline::new(Arc::clone(store)).pages(Needs::of(FieldSet::of(&fields)), 1_000, Utc::now());
    let (mut read, mut terms) = (0usize, 0usize);
    while let Some(page) = pages.next().await {
        let page = page?;
        read += page.len();
        terms += page.iter().map(|r| r.terms.len()).sum::<usize>();
    }
    let pipeline = started.elapsed();
    // The pipeline's two costs apart: reading the kept chunks, then decoding them (one thread).
    let started = Instant::now();
    let mut snapshot = store.readership().await?;
    let (mut after, mut gathered) = (0, Vec::new());
    loop {
        let page = snapshot.page(after, 16 * 1024, false).await?;
        let Some(last) = page.last else { break };
        after = last;
        gathered.push(page);
    }
    let reading = started.elapsed();
    let started = Instant::now();
    let mut decoded = 0;
    for page in &gathered {
        decoded += page.decode()?.len();
    }
    let decoding = started.elapsed();
    // What a declarative refresh does instead of decoding: glimpse each reader borrowed from
    // the bytes, then match the filter on the glimpse (one thread each).
    let started = Instant::now();
    let mut glimpsed = 0;
    for page in &gathered {
        page.glimpse(&mut |g| glimpsed += g.terms.len())?;
    }
    let glimpsing = started.elapsed();
    let filter = serde_json::from_value(filter.clone())?;
    let selection = Selection::prepare(&**store, filter, None, Utc::now().date_naive(), 30).await?;
    let facts = PageFacts::default();
    let started = Instant::now();
    let mut matched = 0;
    for page in &gathered {
        page.glimpse(&mut |g| matched += usize::from(selection.matches(g, &facts)))?;
    }
    let matching = started.elapsed();
    println!(
        "the pipeline apart: reading the kept chunks {:.3} s, decoding {decoded} readers on one \
         thread {:.3} s; glimpsing them (borrowed, {glimpsed} terms) {:.3} s, and matching the \
         declarative filter on the glimpses {:.3} s ({matched} matched)",
        reading.as_secs_f64(),
        decoding.as_secs_f64(),
        glimpsing.as_secs_f64(),
        matching.as_secs_f64()
    );
    println!(
        "baselines: SELECT count(*) of {readers} readers {:.3} s; the pipeline's pages of {read} \
         readers with {terms} terms and complaints {:.2} s; the plugin refresh is {:.2}x the \
         pipeline, the declarative one {:.2}x",
        count.as_secs_f64(),
        pipeline.as_secs_f64(),
        refresh.as_secs_f64() / pipeline.as_secs_f64(),
        declarative.as_secs_f64() / pipeline.as_secs_f64()
    );
    Ok(())
}

/// Starts this process's peak resident memory (`VmHWM`) again from what it holds now.
fn forget_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory since it started, or since `forget_peak_memory`.
fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    build_plugins()?;
    let runtime = Arc::new(PluginRuntime::new(Config::default().plugins.runtime())?);
    let in_memory_readers = env_or("BENCH_READERS", 1_000_000);
    if in_memory_readers > 0 {
        in_memory(&runtime, in_memory_readers).await?;
    }
    through_the_service(env_or("BENCH_SUBSCRIBERS", 100_000)).await?;
    Ok(())
}
