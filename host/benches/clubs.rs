//! Tier recomputation over the stored demo publisher, next to a baseline measured in the same
//! run: one pass reading the same inputs (readers, terms, complaints, memberships) without
//! deciding or writing anything.
//!
//! - the first recomputation, where every qualifying reader joins (every standing written);
//! - a second one, where nothing changed (every standing decided, nothing written).
//!
//! `cargo bench -p masthead --bench clubs`. `BENCH_SUBSCRIBERS` (default 1,000,000) sizes the
//! demo publisher; `BENCH_DATABASE_URL` runs it on PostgreSQL (an empty database) instead of a
//! fresh SQLite file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use masthead::config::Config;
use masthead::domain::Role;
use masthead::domain::club::ClubDraft;
use masthead::services::audit::AuditLog;
use masthead::services::clock::SystemClock;
use masthead::startup::Services;
use masthead::store::{Actor, Store};
use serde_json::json;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn club() -> anyhow::Result<ClubDraft> {
    Ok(serde_json::from_value(json!({
        "code": "reader-club", "name": "Reader Club", "description": null,
        "tiers": [
            { "code": "silver", "name": "Silver",
              "rule": { "any": [ { "tenure": { "min_years": 2 } },
                                 { "spend": { "min": 20000, "months": 24 } } ] },
              "perks": { "renewal_discount_percent": 2 } },
            { "code": "gold", "name": "Gold",
              "rule": { "all": [ { "tenure": { "min_years": 10 } }, { "titles": { "min": 2 } } ] },
              "perks": { "renewal_discount_percent": 5, "event_access": true } },
            { "code": "platinum", "name": "Platinum",
              "rule": { "all": [ { "tenure": { "min_years": 20 } },
                                 { "spend": { "min": 60000, "months": 24 } },
                                 { "no_open_complaint": { "older_than_days": 30 } } ] },
              "perks": { "renewal_discount_percent": 8, "event_access": true } },
        ],
    }))?)
}

/// Time spent in each read of the baseline pass.
#[derive(Default)]
struct Reads {
    /// The pipeline's pages: readers with their terms, gathered by the database.
    pages: Duration,
    /// Glimpsing those pages, as a recomputation whose rules ask no plugin reads them (on one
    /// core here).
    glimpsing: Duration,
    /// Decoding those pages, as one whose rules ask a plugin does (on one core here).
    decoding: Duration,
    complaints: Duration,
    memberships: Duration,
    overrides: Duration,
}

/// Reads every input a recomputation reads, batch by batch, and decides nothing.
async fn read_inputs(store: &Arc<dyn Store>, club_id: i64) -> anyhow::Result<(usize, Reads)> {
    let now = chrono::Utc::now();
    let (mut after, mut seen, mut spent) = (0, 0, Reads::default());
    let mut readership = store.readership().await?;
    loop {
        let t = Instant::now();
        let page = readership.page(after, 2_000, false).await?;
        spent.pages += t.elapsed();
        let Some(covered) = page.last else {
            return Ok((seen, spent));
        };
        let t = Instant::now();
        let mut terms = 0;
        page.glimpse(&mut |reader| terms += reader.terms.len())?;
        std::hint::black_box(terms);
        spent.glimpsing += t.elapsed();
        let t = Instant::now();
        let readers = page.decode()?;
        spent.decoding += t.elapsed();
        after = covered;
        let (Some(first), Some(last)) = (readers.first(), readers.last()) else {
            continue;
        };
        let (first, last) = (first.row.sequence, last.row.sequence);
        let t = Instant::now();
        let tallies = store.complaint_tallies(first, last, now).await?;
        spent.complaints += t.elapsed();
        let t = Instant::now();
        let members = store.memberships(club_id, first, last).await?;
        spent.memberships += t.elapsed();
        let t = Instant::now();
        let overrides = store.overrides_in_force(club_id, first, last).await?;
        spent.overrides += t.elapsed();
        std::hint::black_box((&tallies, &members, &overrides));
        seen += readers.len();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let subscribers = env_or("BENCH_SUBSCRIBERS", 1_000_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let config = Config {
        database_url: Some(url.clone()),
        ..Config::default()
    };
    let store = masthead::store::open(&url).await?;
    let started = Instant::now();
    masthead::cli::load_demo(&store, &config, subscribers, 1).await?;
    println!(
        "{} backend: loaded {subscribers} demo readers in {:.1} s",
        store.backend(),
        started.elapsed().as_secs_f64()
    );
    // The first pass after a bulk load makes every kept chunk; timed on its own, so that the
    // runs below are the steady state.
    let started = Instant::now();
    let kept = store.bring_facts_up_to_date().await?;
    println!(
        "kept chunks made from the tables after the load: {:.1} s ({} chunks, {} log rows)",
        started.elapsed().as_secs_f64(),
        kept.chunks,
        kept.changes
    );
    let (audit, _audit_task) = AuditLog::start(Arc::clone(&store));
    let services = Services::build(&config, Arc::clone(&store), audit, Arc::new(SystemClock))?;
    let record = store.insert_club(&club()?, chrono::Utc::now()).await?;
    let actor = Actor {
        key_id: None,
        name: "bench".into(),
        role: Role::Admin,
    };

    // A first pass warms the caches, so that the baseline is not the only cold run.
    read_inputs(&store, record.id).await?;
    let started = Instant::now();
    let (read, spent) = read_inputs(&store, record.id).await?;
    let baseline = started.elapsed();
    println!(
        "baseline: reading the inputs of {read} readers: {:.2} s (kept chunks of readers with \
         terms {:.2} s, glimpsing them {:.2} s, decoding them {:.2} s, complaints {:.2} s, \
         memberships {:.2} s, overrides {:.2} s)",
        baseline.as_secs_f64(),
        spent.pages.as_secs_f64(),
        spent.glimpsing.as_secs_f64(),
        spent.decoding.as_secs_f64(),
        spent.complaints.as_secs_f64(),
        spent.memberships.as_secs_f64(),
        spent.overrides.as_secs_f64(),
    );
    for run in ["first (every standing written)", "second (nothing changed)"] {
        let started = Instant::now();
        let job = services.clubs.recompute(&actor, "reader-club").await?;
        let took = started.elapsed();
        anyhow::ensure!(
            job.error.is_none(),
            "the recomputation failed: {:?}",
            job.error
        );
        let c = job.counts;
        println!(
            "recompute, {run}: {} readers in {:.2} s ({:.0} readers/s, {:.2}x the baseline): \
             {} joined, {} promoted, {} demoted, {} left",
            c.processed,
            took.as_secs_f64(),
            c.processed as f64 / took.as_secs_f64(),
            took.as_secs_f64() / baseline.as_secs_f64(),
            c.joined,
            c.promoted,
            c.demoted,
            c.left,
        );
    }
    let tiers = store.members_by_tier(record.id).await?;
    println!("members per tier: {tiers:?}");
    Ok(())
}
