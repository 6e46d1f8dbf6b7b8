//! The service over HTTP under concurrent load: `masthead serve` as its own process over a
//! stored demo publisher, driven by many keep-alive connections at once.
//!
//! - the baseline: `GET /healthz` (routing, HTTP and the driver, no database), same load;
//! - the subscriber card by number (authenticated and audited, as staff read it);
//! - search-as-you-type: a family name's prefixes, one letter more per request;
//! - the card and the baseline again while 50 offers requests are kept in flight against a
//!   plugin that spins to its deadline on every call (`tests/plugins/stall`), next to the
//!   same reads with nothing burning, from the same run;
//! - the service's resident memory: after loading, and its peak over the whole run, then
//!   after a declarative segment refresh over every reader (a population-wide pass).
//!
//! `cargo bench -p masthead --bench http`. `BENCH_SUBSCRIBERS` (default 1,000,000) sizes the
//! publisher, `BENCH_SECONDS` (default 10) each scenario, `BENCH_CONNECTIONS` (default 32)
//! the load; `BENCH_DATABASE_URL` names the database (PostgreSQL, or a SQLite file to keep):
//! one that already holds N readers is used as it is.
//!
//! The driver runs on the same machine as the service, so both share its cores: the baseline
//! row shows what that leaves, and the ratios against it are the figures to compare.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use masthead::domain::{Role, SubscriberNumber};
use masthead::services::clock::SystemClock;
use masthead::services::keys;
use masthead::store::Store;
use reqwest::multipart::{Form, Part};
use sha2::{Digest, Sha256};

/// Offers requests kept in flight while the reads are measured.
const BURNING: usize = 50;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the driver sends: a path per request, chosen from the samples.
#[derive(Clone, Copy)]
enum Scenario {
    Baseline,
    Card,
    Search,
}

struct Samples {
    numbers: Vec<String>,
    /// Prefixes as staff type them: "t", "th", "tho", ... of sampled family names.
    typed: Vec<String>,
}

impl Samples {
    fn path(&self, scenario: Scenario, i: usize) -> String {
        match scenario {
            Scenario::Baseline => "/healthz".to_owned(),
            Scenario::Card => {
                let number = &self.numbers[i % self.numbers.len()];
                format!("/api/v1/subscribers/{number}")
            }
            Scenario::Search => {
                let q = &self.typed[i % self.typed.len()];
                format!("/api/v1/search?q={}", urlencoding(q))
            }
        }
    }
}

/// Percent-encodes a query value (the names include Cyrillic and Chinese).
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Load {
    ok: usize,
    failed: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

/// Many keep-alive connections to the service, each sending its next request as soon as
/// the last is answered.
struct Driver {
    client: reqwest::Client,
    base: String,
    token: String,
    samples: Arc<Samples>,
    connections: usize,
}

impl Driver {
    /// Runs the request loops for `seconds` and gathers every latency.
    async fn run(&self, scenario: Scenario, seconds: u64) -> Load {
        let connections = self.connections;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let (client, base, token) =
                    (self.client.clone(), self.base.clone(), self.token.clone());
                let samples = Arc::clone(&self.samples);
                tokio::spawn(async move {
                    let (mut latencies, mut failed) = (Vec::new(), 0);
                    let mut i = c * 7919;
                    while Instant::now() < deadline {
                        let url = format!("{base}{}", samples.path(scenario, i));
                        i += connections;
                        let t = Instant::now();
                        let response = client.get(&url).bearer_auth(&token).send().await;
                        let ok = match response {
                            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                            _ => false,
                        };
                        if ok {
                            latencies.push(t.elapsed());
                        } else {
                            failed += 1;
                        }
                    }
                    (latencies, failed)
                })
            })
            .collect();
        let (mut all, mut failed) = (Vec::new(), 0);
        for task in tasks {
            let (latencies, f) = task.await.expect("driver task");
            all.extend(latencies);
            failed += f;
        }
        let elapsed = started.elapsed();
        all.sort_unstable();
        let at = |q: f64| {
            all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Load {
            ok: all.len(),
            failed,
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// Resident memory of a process, in MiB: `VmRSS` now and `VmHWM`, its peak so far.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn masthead(url: &str, data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_masthead"));
    command
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(data);
    command
}

/// Sampled card numbers and typed prefixes, spread over the whole publisher.
async fn sample(store: &Arc<dyn Store>, count: usize) -> anyhow::Result<Samples> {
    let (mut numbers, mut typed) = (Vec::new(), Vec::new());
    let step = (count / 2_000).max(1) as i64;
    // Sequences start at 100,000 (the first seven-digit number).
    for k in 0..2_000.min(count as i64) {
        let first = 100_000 + k * step;
        let range = store.readers_between(first, first + step - 1, true).await?;
        for reader in range.decode()?.into_iter().take(1) {
            numbers.push(SubscriberNumber::from_sequence(reader.row.sequence).to_string());
            let family = reader
                .row
                .profile
                .and_then(|p| p.draft().family_name.clone())
                .unwrap_or_default();
            let letters: Vec<char> = family.to_lowercase().chars().collect();
            for n in 1..=letters.len().min(6) {
                typed.push(letters[..n].iter().collect());
            }
        }
    }
    anyhow::ensure!(!numbers.is_empty(), "no readers to sample");
    Ok(Samples { numbers, typed })
}

/// Builds the stalling offer provider for wasm32-wasip2 and returns its bytes.
fn stall_component() -> anyhow::Result<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/wasm-plugins");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "-q", "--release", "--target", "wasm32-wasip2"])
        .args(["-p", "hostile-stall", "--target-dir"])
        .arg(&target)
        .status()?;
    anyhow::ensure!(status.success(), "building hostile-stall failed");
    Ok(std::fs::read(
        target.join("wasm32-wasip2/release/hostile_stall.wasm"),
    )?)
}

/// Uploads and enables the stalling offer provider.
async fn install_stall(client: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<()> {
    let wasm = stall_component()?;
    let sha: String = Sha256::digest(&wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let manifest = format!(
        "id = \"stall\"\nversion = \"1.0.0\"\nkind = \"offer-provider\"\n\
         api_version = \"1.0.0\"\nfields = []\nsha256 = \"{sha}\"\n"
    );
    let form = Form::new()
        .text("manifest", manifest)
        .part("component", Part::bytes(wasm).file_name("stall.wasm"));
    let up = client
        .post(format!("{base}/api/v1/plugins"))
        .bearer_auth(admin)
        .multipart(form)
        .send()
        .await?;
    // A kept database (`BENCH_DATABASE_URL`) already holds it from an earlier run.
    let kept = up.status() == reqwest::StatusCode::CONFLICT;
    anyhow::ensure!(
        up.status().is_success() || kept,
        "upload: {}",
        up.text().await?
    );
    let on = client
        .post(format!("{base}/api/v1/plugins/stall/enable"))
        .bearer_auth(admin)
        .json(&serde_json::json!({}))
        .send()
        .await?;
    anyhow::ensure!(on.status().is_success(), "enable: {}", on.text().await?);
    Ok(())
}

/// Offers requests for one reader, each sent as soon as the last is answered, until stopped.
struct Burn {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<usize>>,
}

impl Burn {
    fn start(driver: &Driver, number: &str, requests: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("{}/api/v1/subscribers/{number}/offers", driver.base);
        let tasks = (0..requests)
            .map(|_| {
                let (client, token, url) =
                    (driver.client.clone(), driver.token.clone(), url.clone());
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut answered = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let sent = client.get(&url).bearer_auth(&token).send().await;
                        if sent.is_ok_and(|r| r.status().is_success()) {
                            answered += 1;
                        }
                    }
                    answered
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the requests and returns how many were answered.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let mut answered = 0;
        for task in self.tasks {
            answered += task.await.unwrap_or(0);
        }
        answered
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let count = env_or("BENCH_SUBSCRIBERS", 1_000_000);
    let seconds = env_or("BENCH_SECONDS", 10) as u64;
    let connections = env_or("BENCH_CONNECTIONS", 32);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));

    let started = Instant::now();
    let store = masthead::store::open(&url).await?;
    if store.count_readers().await? < count as i64 {
        let loaded = masthead(&url, dir.path())
            .args([
                "demo-data",
                "--subscribers",
                &count.to_string(),
                "--seed",
                "1",
            ])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(loaded.success(), "demo-data failed: {loaded}");
    }
    let load = started.elapsed();

    let token = keys::issue(&*store, &SystemClock, "load driver", Role::Staff)
        .await?
        .token;
    let admin = keys::issue(&*store, &SystemClock, "load driver admin", Role::Admin)
        .await?
        .token;
    let samples = Arc::new(sample(&store, count).await?);
    store.close().await;
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        masthead(&url, dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // The stalling plugin must keep burning: its breaker never trips here.
            .env("MASTHEAD_PLUGINS__FAILURE_THRESHOLD", "1000000000")
            // The day's scheduled recomputation and auto-renewal would run under the load.
            .env("MASTHEAD_JOBS__RECOMPUTE_ENABLED", "false")
            .env("MASTHEAD_JOBS__RENEWALS_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let driver = Driver {
        client: client.clone(),
        base: base.clone(),
        token,
        samples: Arc::clone(&samples),
        connections,
    };
    let ready = Instant::now();
    while !client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        anyhow::ensure!(ready.elapsed() < Duration::from_secs(60), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rss_idle, _) = memory(server.0.id());

    println!(
        "{count} readers (demo publisher, loaded in {:.1} s); {connections} connections, {seconds} s \
         per scenario after a {}-second warm-up; {} card numbers and {} typed prefixes sampled\n",
        load.as_secs_f64(),
        seconds.min(3),
        samples.numbers.len(),
        samples.typed.len()
    );
    println!("| what | requests/s | p50 | p99 | failed | throughput vs baseline |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut baseline = None;
    let mut quiet = Vec::new();
    for (label, scenario) in [
        ("baseline: `GET /healthz`", Scenario::Baseline),
        (
            "card by number (`GET /api/v1/subscribers/{number}`)",
            Scenario::Card,
        ),
        (
            "search-as-you-type (`GET /api/v1/search?q=`)",
            Scenario::Search,
        ),
    ] {
        driver.run(scenario, seconds.min(3)).await;
        let run = driver.run(scenario, seconds).await;
        let rate = run.ok as f64 / run.elapsed.as_secs_f64();
        let against = *baseline.get_or_insert(rate);
        println!(
            "| {label} | {rate:.0} | {:.2} ms | {:.2} ms | {} | {:.2}x |",
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3,
            run.failed,
            rate / against
        );
        quiet.push(run.p99);
    }

    install_stall(&client, &base, &admin).await?;
    let burn = Burn::start(&driver, &samples.numbers[0], BURNING);
    // Let the burning calls fill the plugin's share of the slots first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "\nwhile {BURNING} offers requests are kept in flight against `stall`, whose every call \
         spins to its 2 s deadline:\n"
    );
    println!("| what | requests/s | p50 | p99 | failed | p99 vs the same with nothing burning |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (label, scenario, calm) in [
        ("baseline: `GET /healthz`", Scenario::Baseline, quiet[0]),
        ("card by number", Scenario::Card, quiet[1]),
    ] {
        driver.run(scenario, seconds.min(3)).await;
        let run = driver.run(scenario, seconds).await;
        let rate = run.ok as f64 / run.elapsed.as_secs_f64();
        println!(
            "| {label} | {rate:.0} | {:.2} ms | {:.2} ms | {} | {:.2}x |",
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3,
            run.failed,
            run.p99.as_secs_f64() / calm.as_secs_f64()
        );
    }
    let answered = burn.stop().await;
    println!(
        "\n{answered} offers requests answered while burning (each with the plugin's failure)"
    );
    let (rss, peak) = memory(server.0.id());
    println!(
        "\nservice memory: {rss_idle:.0} MiB resident when ready, {rss:.0} MiB after the load, \
         peak {peak:.0} MiB (VmHWM)"
    );
    let (took, size) = refresh_everyone(&client, &base, &admin).await?;
    let (rss, peak) = memory(server.0.id());
    println!(
        "\na declarative segment refresh over every reader in the service: {:.2} s, {size} \
         members; service memory after it {rss:.0} MiB resident, peak {peak:.0} MiB (VmHWM)",
        took.as_secs_f64()
    );
    Ok(())
}

/// Defines a declarative segment of three conditions (kept from an earlier run of a kept
/// database) and refreshes it over every reader: how long it took, and its size.
async fn refresh_everyone(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
) -> anyhow::Result<(Duration, i64)> {
    let filter = serde_json::json!({ "all": [
        { "tenure": { "min_years": 3 } },
        { "holds": { "publication": "DAILY", "format": "print" } },
        { "age": { "min": 40 } },
    ] });
    let defined = client
        .post(format!("{base}/api/v1/segments"))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "name": "loyal-print", "filter": filter }))
        .send()
        .await?;
    let kept = defined.status() == reqwest::StatusCode::CONFLICT;
    anyhow::ensure!(
        defined.status().is_success() || kept,
        "defining the segment: {}",
        defined.text().await?
    );
    let started = Instant::now();
    let queued = client
        .post(format!("{base}/api/v1/segments/loyal-print/refresh"))
        .bearer_auth(admin)
        .send()
        .await?;
    anyhow::ensure!(
        queued.status().is_success(),
        "refreshing: {}",
        queued.text().await?
    );
    let job: serde_json::Value = queued.json().await?;
    loop {
        let view: serde_json::Value = client
            .get(format!("{base}/api/v1/segments/loyal-print"))
            .bearer_auth(admin)
            .send()
            .await?
            .json()
            .await?;
        let latest = &view["refreshes"][0];
        if latest["id"] == job["id"] && latest["state"] != "running" {
            anyhow::ensure!(latest["state"] == "done", "the refresh ended so: {latest}");
            return Ok((started.elapsed(), view["size"].as_i64().unwrap_or(0)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
