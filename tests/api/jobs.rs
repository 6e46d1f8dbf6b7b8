//! The job system: refreshes as jobs over the API, cancellation, leases taken over from a
//! stopped host, fencing of a host presumed dead, shutdown, schedules that run once per day
//! across hosts, and (PostgreSQL only) three real `masthead serve` processes, one killed in
//! the middle of a refresh of 100,000 readers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use masthead::config::Config;
use masthead::services::audit::AuditLog;
use masthead::services::clock::FixedClock;
use masthead::services::jobs::{Done, JobError, JobKind, JobSettings, JobView, Jobs, Runner, Work};
use masthead::startup::Services;
use masthead::store::{
    self, Beat, Claim, Ending, Fence, JobFilter, JobRecord, JobState, NewJob, Store, StoreError,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::{empty_database, problem, spawn_app, spawn_app_with};
use crate::plugins::{component, example_manifest, install, segment};
use crate::renewals::reader;

/// Follows a job over the API until it has finished.
async fn follow(app: &crate::helpers::TestApp, id: i64) -> Value {
    for _ in 0..30 {
        let response = app
            .get(&format!("/api/v1/jobs/{id}?wait=5"), &app.staff)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let job: Value = response.json().await.expect("json");
        if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn a_refresh_is_a_job_that_is_followed_listed_by_kind_and_state_and_not_cancelled_once_done()
{
    let app = spawn_app().await;
    app.set_today("2026-11-23");
    for name in ["Ashe", "Brook", "Crane"] {
        reader(&app, name).await;
    }
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(&app, "churn-low", "churn-risk", "churn-low").await;
    segment(&app, "lapsed", "churn-risk", "lapsed").await;

    let response = app
        .post("/api/v1/segments/churn-low/refresh", &app.staff, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let started: Value = response.json().await.expect("json");
    let id = started["id"].as_i64().expect("id");
    assert_eq!(started["job"], format!("/api/v1/jobs/{id}"));
    let job = follow(&app, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "segment_refresh");
    assert_eq!(job["attempts"], 1);
    assert_eq!(
        (job["processed"].clone(), job["total"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(job["result"]["failed_records"], 0);
    let runs = job["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert!(runs[0]["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(job["lease_host"], Value::Null, "the lease is given back");
    // The segment shows the same refresh, as it did before jobs.
    let view: Value = app
        .get("/api/v1/segments/churn-low", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["refreshes"][0]["id"], id);
    assert_eq!(view["refreshes"][0]["state"], "done");
    assert_eq!(view["refreshes"][0]["size"], job["result"]["size"]);

    let second = app
        .post("/api/v1/segments/lapsed/refresh", &app.staff, &json!({}))
        .await;
    let second: Value = second.json().await.expect("json");
    follow(&app, second["id"].as_i64().expect("id")).await;

    // Lists, newest first, by kind and state, paged.
    let page: Value = app
        .get(
            "/api/v1/jobs?kind=segment_refresh&state=succeeded&limit=1",
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(page["items"][0]["id"], second["id"]);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let next: Value = app
        .get(
            &format!("/api/v1/jobs?limit=1&kind=segment_refresh&state=succeeded&cursor={cursor}"),
            &app.admin,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(next["items"][0]["id"], id);
    let none: Value = app
        .get("/api/v1/jobs?state=queued", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(none["items"], json!([]));

    // Bad input, missing jobs, roles, and a finished job cannot be cancelled.
    for query in [
        "kind=nightly",
        "state=asleep",
        "limit=0",
        "cursor=xyz",
        "colour=red",
    ] {
        let response = app.get(&format!("/api/v1/jobs?{query}"), &app.staff).await;
        problem(response, StatusCode::BAD_REQUEST).await;
    }
    let bad = problem(
        app.get("/api/v1/jobs?kind=nightly", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(bad["detail"].as_str().expect("detail").contains("kind"));
    problem(
        app.get(&format!("/api/v1/jobs/{id}?wait=21"), &app.staff)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/jobs/abc", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/jobs/999999", &app.staff).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/jobs", &app.advertiser).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let cancel = format!("/api/v1/jobs/{id}/cancel");
    problem(
        app.post(&cancel, &app.staff, &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let done = problem(
        app.post(&cancel, &app.admin, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        done["detail"]
            .as_str()
            .expect("detail")
            .contains("succeeded"),
        "{done}"
    );
    problem(
        app.post("/api/v1/jobs/999999/cancel", &app.admin, &json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once_and_its_segment_can_be_refreshed_again() {
    // This host runs no jobs, so the refresh stays queued.
    let app = spawn_app_with(|c| c.jobs.concurrency = 0).await;
    reader(&app, "Ashe").await;
    let wasm = component("churn_risk");
    install(&app, &example_manifest("churn-risk", &wasm), &wasm).await;
    segment(&app, "churn-low", "churn-risk", "churn-low").await;
    let path = "/api/v1/segments/churn-low/refresh";
    let queued: Value = app
        .post(path, &app.staff, &json!({}))
        .await
        .json()
        .await
        .expect("json");
    let id = queued["id"].as_i64().expect("id");
    let job: Value = app
        .get(&format!("/api/v1/jobs/{id}"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(job["state"], "queued");
    // One refresh of a segment at a time, queued or running.
    problem(
        app.post(path, &app.staff, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
    let response = app
        .post(&format!("/api/v1/jobs/{id}/cancel"), &app.admin, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.expect("json");
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_string());
    let view: Value = app
        .get("/api/v1/segments/churn-low", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["refreshes"][0]["state"], "cancelled");
    let again = app.post(path, &app.staff, &json!({})).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
}

/// A job kind for the runner tests: `steps` progress writes, `pause` apart, each run's span
/// recorded (its end too when the run is dropped mid-way).
struct Steps {
    steps: i64,
    pause: Duration,
    spans: Arc<Mutex<Vec<Span>>>,
}

#[derive(Debug, Clone)]
struct Span {
    host: String,
    started: Instant,
    ended: Option<Instant>,
}

struct SpanGuard {
    spans: Arc<Mutex<Vec<Span>>>,
    index: usize,
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if let Ok(mut spans) = self.spans.lock() {
            spans[self.index].ended = Some(Instant::now());
        }
    }
}

const STEPS: &str = "test_steps";

#[async_trait]
impl JobKind for Steps {
    fn kind(&self) -> &'static str {
        STEPS
    }

    async fn run(&self, _: &JobRecord, work: &Work) -> Result<Done, JobError> {
        let index = {
            let mut spans = self.spans.lock().expect("spans");
            spans.push(Span {
                host: work.fence().host.clone(),
                started: Instant::now(),
                ended: None,
            });
            spans.len() - 1
        };
        let _guard = SpanGuard {
            spans: Arc::clone(&self.spans),
            index,
        };
        for step in 1..=self.steps {
            tokio::time::sleep(self.pause).await;
            work.progress(step).await?;
        }
        Ok(Done::Result(json!({ "steps": self.steps })))
    }
}

/// A host of the runner tests: its own host id, short leases.
fn host(store: &Arc<dyn Store>) -> Arc<Jobs> {
    let settings = JobSettings {
        concurrency: 2,
        poll: Duration::from_millis(100),
        heartbeat: Duration::from_millis(300),
        lease: Duration::from_secs(2),
        max_attempts: 5,
    };
    Arc::new(Jobs::new(Arc::clone(store), settings))
}

fn steps_job(total: i64) -> NewJob {
    NewJob {
        kind: STEPS.into(),
        subject: "test".into(),
        period: None,
        arguments: json!({}),
        total: Some(total),
        created_by: "a test".into(),
        at: Utc::now(),
    }
}

/// Waits until `ready` holds for the job, reading it every 50 ms.
async fn until(jobs: &Jobs, id: i64, ready: impl Fn(&JobView) -> bool) -> JobView {
    let started = Instant::now();
    loop {
        let view = jobs.get(id).await.expect("the job");
        if ready(&view) {
            return view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "job {id} never got there: {:?}",
            view.job
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_running_job_stops_at_its_next_progress_write_once_cancelled() {
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kind = Arc::new(Steps {
        steps: 1_000,
        pause: Duration::from_millis(50),
        spans: Arc::clone(&spans),
    });
    let jobs = host(&store);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(Runner::new(Arc::clone(&jobs), vec![kind], vec![]).run(stopped));
    let job = jobs.enqueue(steps_job(1_000)).await.expect("queued");
    until(&jobs, job.id, |v| v.job.processed >= 3).await;
    let asked = jobs.cancel(job.id).await.expect("cancel");
    assert!(asked.cancel_requested);
    let asked_at = Instant::now();
    let view = until(&jobs, job.id, |v| v.job.state.is_finished()).await;
    assert!(
        asked_at.elapsed() < Duration::from_secs(2),
        "it stopped late"
    );
    assert_eq!(view.job.state, JobState::Cancelled);
    assert!(view.job.processed < 1_000);
    assert_eq!(view.runs[0].outcome.as_deref(), Some("cancelled"));
    assert!(spans.lock().expect("spans")[0].ended.is_some());
    match jobs.cancel(job.id).await {
        Err(masthead::services::ServiceError::Conflict(_)) => {}
        other => panic!("a finished job was cancelled again: {other:?}"),
    }
}

#[tokio::test]
async fn a_job_whose_host_stops_is_taken_over_once_its_lease_runs_out_and_never_runs_twice_at_once()
{
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kind = Arc::new(Steps {
        steps: 30,
        pause: Duration::from_millis(100),
        spans: Arc::clone(&spans),
    });
    let (first, second) = (host(&store), host(&store));
    let (_stop, stopped) = watch::channel(false);
    let dying = tokio::spawn(
        Runner::new(Arc::clone(&first), vec![kind.clone() as _], vec![]).run(stopped.clone()),
    );
    let job = first.enqueue(steps_job(30)).await.expect("queued");
    until(&first, job.id, |v| v.job.processed >= 5).await;
    // The first host stops dead: no more heartbeats, nothing given back.
    dying.abort();
    let _ = dying.await;
    let stopped_at = Utc::now();
    tokio::spawn(Runner::new(Arc::clone(&second), vec![kind as _], vec![]).run(stopped));
    let view = until(&second, job.id, |v| v.job.state.is_finished()).await;
    assert_eq!(view.job.state, JobState::Succeeded, "{:?}", view.job);
    assert_eq!(view.job.attempts, 2);
    assert_eq!(view.job.result, Some(json!({ "steps": 30 })));
    let runs = &view.runs;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].host, first.host());
    assert_eq!(runs[0].outcome.as_deref(), Some("lapsed"));
    assert_eq!(runs[1].host, second.host());
    assert_eq!(runs[1].outcome.as_deref(), Some("succeeded"));
    // Taken over only once the lease (2 s after the last heartbeat) had run out, and soon.
    let quiet = runs[1].claimed_at - runs[0].last_heartbeat_at;
    assert!(
        quiet >= chrono::Duration::seconds(2),
        "taken over early: {quiet}"
    );
    assert!(runs[1].claimed_at - stopped_at < chrono::Duration::seconds(5));
    let spans = spans.lock().expect("spans").clone();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        (spans[0].host.as_str(), spans[1].host.as_str()),
        (first.host(), second.host())
    );
    let ended = spans[0].ended.expect("the first run ended");
    assert!(ended <= spans[1].started, "the two runs overlapped");
}

/// With the lease only twice the heartbeat, a beat that holds keeps the job: the runner gives
/// up only when a beat failed and the lease would run out before the next one.
#[tokio::test]
async fn a_lease_of_two_heartbeats_keeps_a_job_that_runs_for_many() {
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kind = Arc::new(Steps {
        steps: 10,
        pause: Duration::from_millis(250),
        spans: Arc::clone(&spans),
    });
    let settings = JobSettings {
        concurrency: 1,
        poll: Duration::from_millis(100),
        heartbeat: Duration::from_millis(400),
        lease: Duration::from_millis(800),
        max_attempts: 5,
    };
    let jobs = Arc::new(Jobs::new(Arc::clone(&store), settings));
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(Runner::new(Arc::clone(&jobs), vec![kind as _], vec![]).run(stopped));

    let job = jobs.enqueue(steps_job(10)).await.expect("queued");
    let view = until(&jobs, job.id, |v| v.job.state.is_finished()).await;

    assert_eq!(view.job.state, JobState::Succeeded, "{:?}", view.job);
    assert_eq!(view.job.attempts, 1, "{:?}", view.runs);
    assert_eq!(spans.lock().expect("spans").len(), 1);
}

#[tokio::test]
async fn a_host_presumed_dead_can_write_nothing_once_another_holds_its_job() {
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let job = store.enqueue_job(steps_job(10)).await.expect("queued");
    let t0 = Utc::now();
    let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
    let claim = |host: &'static str, now, until, max_attempts| Claim {
        host,
        now,
        lease_until: until,
        max_attempts,
        only: None,
    };
    let a = store
        .claim_job(claim("host-a", t0, at(15), 5))
        .await
        .expect("claim")
        .expect("the queued job");
    assert_eq!((a.attempts, a.lease_host.as_deref()), (1, Some("host-a")));
    // Held: nobody else gets it before the lease runs out.
    assert!(
        store
            .claim_job(claim("host-b", at(10), at(25), 5))
            .await
            .expect("claim")
            .is_none()
    );
    let b = store
        .claim_job(claim("host-b", at(16), at(31), 5))
        .await
        .expect("claim")
        .expect("the lapsed job");
    assert_eq!((b.attempts, b.lease_host.as_deref()), (2, Some("host-b")));
    let fence_a = Fence {
        job: job.id,
        attempt: 1,
        host: "host-a".into(),
    };
    let fence_b = Fence {
        attempt: 2,
        host: "host-b".into(),
        ..fence_a.clone()
    };
    // Host A comes back: its heartbeat, progress and ending change nothing.
    assert_eq!(
        store
            .beat_job(&fence_a, Some(9), at(17), at(32))
            .await
            .expect("beat"),
        Beat::Lost
    );
    let ending = Ending::Succeeded(json!({ "by": "a" }));
    assert!(!store.end_job(&fence_a, &ending, at(17)).await.expect("end"));
    assert_eq!(
        store
            .beat_job(&fence_b, Some(4), at(18), at(33))
            .await
            .expect("beat"),
        Beat::Held {
            cancel_requested: false
        }
    );
    let ending = Ending::Succeeded(json!({ "by": "b" }));
    assert!(store.end_job(&fence_b, &ending, at(19)).await.expect("end"));
    let done = store.get_job(job.id).await.expect("read").expect("job");
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.result, Some(json!({ "by": "b" })));
    assert_eq!(done.processed, 4);
    let runs = store.job_runs(job.id).await.expect("runs");
    let outcomes: Vec<_> = runs.iter().map(|r| r.outcome.as_deref()).collect();
    assert_eq!(outcomes, [Some("lapsed"), Some("succeeded")]);
    assert!(runs[0].ended_at <= Some(runs[1].claimed_at));

    // A job whose hosts keep stopping is failed after the last attempt allowed.
    let doomed = store.enqueue_job(steps_job(1)).await.expect("queued");
    store
        .claim_job(claim("host-a", at(20), at(21), 2))
        .await
        .expect("claim");
    store
        .claim_job(claim("host-b", at(22), at(23), 2))
        .await
        .expect("claim");
    assert!(
        store
            .claim_job(claim("host-c", at(24), at(25), 2))
            .await
            .expect("claim")
            .is_none()
    );
    let failed = store.get_job(doomed.id).await.expect("read").expect("job");
    assert_eq!(failed.state, JobState::Failed);
    assert!(failed.error.expect("why").contains("every attempt"));
    // Cancelling a finished or unknown job says so.
    assert!(matches!(
        store.cancel_job(job.id, at(30)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.cancel_job(999_999, at(30)).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn a_host_shutting_down_gives_its_running_job_back_for_another_to_finish() {
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kind = Arc::new(Steps {
        steps: 20,
        pause: Duration::from_millis(100),
        spans,
    });
    let (first, second) = (host(&store), host(&store));
    let (stop, stopped) = watch::channel(false);
    let runner =
        tokio::spawn(Runner::new(Arc::clone(&first), vec![kind.clone() as _], vec![]).run(stopped));
    let job = first.enqueue(steps_job(20)).await.expect("queued");
    until(&first, job.id, |v| v.job.processed >= 2).await;
    stop.send(true).expect("stop");
    runner.await.expect("the runner ends");
    let view = first.get(job.id).await.expect("job");
    assert_eq!(
        view.job.state,
        JobState::Queued,
        "given back: {:?}",
        view.job
    );
    assert_eq!(view.job.lease_host, None);
    assert_eq!(view.runs[0].outcome.as_deref(), Some("released"));
    // Given back, not lapsed: the next host takes it at once, without waiting for a lease.
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(Runner::new(Arc::clone(&second), vec![kind as _], vec![]).run(stopped));
    let view = until(&second, job.id, |v| v.job.state.is_finished()).await;
    assert_eq!(view.job.state, JobState::Succeeded);
    assert_eq!(view.job.attempts, 2);
    assert!(
        view.runs[1].claimed_at - view.runs[0].ended_at.expect("ended")
            < chrono::Duration::seconds(2)
    );
}

#[tokio::test]
async fn the_daily_auto_renewal_runs_once_a_day_across_hosts() {
    let database = empty_database().await;
    let mut config = Config {
        database_url: Some(database.url.clone()),
        ..Config::default()
    };
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = true;
    config.jobs.renewals_at = "00:00".into();
    config.jobs.poll_ms = 100;
    let clock = FixedClock::at("2026-12-02T06:00:00Z".parse().expect("time"));
    // Three hosts on one database, each with its own runner and schedule.
    let mut hosts = Vec::new();
    let (_stop, stopped) = watch::channel(false);
    for _ in 0..3 {
        let store = store::open(&database.url).await.expect("open");
        let (audit, _task) = AuditLog::start(Arc::clone(&store));
        let services = Services::build(&config, Arc::clone(&store), audit, Arc::new(clock.clone()))
            .expect("services");
        tokio::spawn(services.runner().run(stopped.clone()));
        hosts.push(services);
    }
    let jobs = Arc::clone(&hosts[0].jobs);
    let daily = |period: &'static str| {
        let jobs = Arc::clone(&jobs);
        async move {
            let filter = JobFilter {
                kind: Some("auto_renewal".into()),
                limit: 10,
                ..JobFilter::default()
            };
            let started = Instant::now();
            loop {
                let all = jobs.list(&filter).await.expect("list");
                let done: Vec<_> = all
                    .iter()
                    .filter(|j| j.period.as_deref() == Some(period) && j.state.is_finished())
                    .cloned()
                    .collect();
                if !done.is_empty() || started.elapsed() > Duration::from_secs(20) {
                    return (all, done);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (all, done) = daily("2026-12-02").await;
    // Let every host's schedule tick a few more times.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (all_later, _) = daily("2026-12-02").await;
    assert_eq!(done.len(), 1, "{all:?}");
    assert_eq!(
        all_later.len(),
        1,
        "one job for the day across three hosts: {all_later:?}"
    );
    let job = &done[0];
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.result.as_ref().expect("report")["renewed"], 0);
    assert_eq!(jobs.get(job.id).await.expect("job").runs.len(), 1);
    // The next day has its own run.
    clock.set("2026-12-03T06:00:00Z".parse().expect("time"));
    let (all, done) = daily("2026-12-03").await;
    assert_eq!(done.len(), 1, "{all:?}");
    assert_eq!(all.len(), 2);
}

/// One `masthead serve` process of the three-host test.
struct Host {
    base: String,
    child: std::process::Child,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn masthead(url: &str, data: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_masthead-host"));
    command
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(data);
    command
}

/// Starts `masthead serve` with the environment given and waits until it answers.
async fn serve(url: &str, data: &std::path::Path, env: &[(&str, &str)], log: &str) -> Host {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let log = std::fs::File::create(data.join(log)).expect("log file");
    let mut command = masthead(url, data);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("MASTHEAD_LOG_LEVEL", "masthead=info,warn")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    for (key, value) in env {
        command.env(key, value);
    }
    let host = Host {
        base: format!("http://127.0.0.1:{port}"),
        child: command.spawn().expect("start masthead serve"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let healthy = client
            .get(format!("{}/healthz", host.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if healthy {
            return host;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("masthead serve did not start; see {}", data.display());
}

/// What the requests made next to the takeover got.
#[derive(Debug, Default)]
struct Answers {
    cards: usize,
    /// Renewals answered, by status (201 renewed; 409 and 422 are the domain's refusals).
    renewals: std::collections::BTreeMap<u16, usize>,
    /// The first refusal, to show why.
    refused: Option<String>,
    /// The readers renewed: their churn risk may change between one refresh and the next.
    renewed: std::collections::BTreeSet<i64>,
    failures: Vec<String>,
}

#[tokio::test]
async fn three_hosts_one_killed_mid_refresh_another_finishes_it_as_one_host_would() {
    if crate::helpers::postgres_server().is_none() {
        eprintln!(
            "three hosts share one database only on PostgreSQL: this test runs in the \
             PostgreSQL pass (TEST_DATABASE_URL), which CI always runs"
        );
        return;
    }
    let database = empty_database().await;
    let url = database.url.clone();
    let data = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let loaded = masthead(&url, data.path())
        .args(["demo-data", "--subscribers", "100000"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("demo-data");
    assert!(loaded.success());
    eprintln!(
        "100,000 demo readers loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = store::open(&url).await.expect("open");
    let issue = |role, name| {
        let store = Arc::clone(&store);
        async move {
            masthead::services::keys::issue(
                &*store,
                &masthead::services::clock::SystemClock,
                name,
                role,
            )
            .await
            .expect("key")
            .token
        }
    };
    let admin = issue(masthead::domain::Role::Admin, "test admin").await;
    let staff = issue(masthead::domain::Role::Staff, "reception desk").await;
    let mut numbers = Vec::new();
    for k in 0..200 {
        let first = 100_000 + k * 500;
        let page = store
            .readers_between(first, first + 499, false)
            .await
            .expect("page");
        for reader in page.decode().expect("readers").into_iter().take(1) {
            numbers.push(
                masthead::domain::SubscriberNumber::from_sequence(reader.row.sequence).to_string(),
            );
        }
    }

    // Readers holding a current title (an auto-renew term ending within the year) to renew.
    let today = Utc::now().date_naive();
    let renewing: Vec<String> = store
        .due_terms(today, today + chrono::Days::new(365), 0, 500)
        .await
        .expect("due terms")
        .iter()
        .map(|due| due.subscriber.to_string())
        .collect();
    assert!(!renewing.is_empty(), "the demo has current readers");

    // Three hosts. Small batches make the refresh of 100,000 readers long enough to kill
    // its host mid-way (10 readers a batch: 10,000 batches, each its own reads); the nightly
    // recomputation is due at once, so each host's schedule tries to queue it.
    let env = [
        ("MASTHEAD_PLUGINS__BATCH_SIZE", "10"),
        ("MASTHEAD_JOBS__RECOMPUTE_AT", "00:00"),
        ("MASTHEAD_JOBS__RENEWALS_ENABLED", "false"),
    ];
    let mut hosts = Vec::new();
    for n in 0..3 {
        hosts.push(Some(
            serve(&url, data.path(), &env, &format!("host-{n}.log")).await,
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let base = hosts[0].as_ref().expect("host").base.clone();
    let wasm = component("churn_risk");
    let form = reqwest::multipart::Form::new()
        .text("manifest", example_manifest("churn-risk", &wasm))
        .part(
            "component",
            reqwest::multipart::Part::bytes(wasm).file_name("plugin.wasm"),
        );
    let uploaded = client
        .post(format!("{base}/api/v1/plugins"))
        .bearer_auth(&admin)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let call = |method: Method, path: &str, token: &str| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token.to_owned())
    };
    let enabled = call(Method::POST, "/api/v1/plugins/churn-risk/enable", &admin)
        .json(&json!({}))
        .send()
        .await
        .expect("enable");
    assert_eq!(enabled.status(), StatusCode::OK);
    let body = json!({ "name": "churn-low", "plugin": "churn-risk", "key": "churn-low" });
    let created = call(Method::POST, "/api/v1/segments", &staff)
        .json(&body)
        .send()
        .await
        .expect("segment");
    assert_eq!(created.status(), StatusCode::CREATED);
    let refresh: Value = call(Method::POST, "/api/v1/segments/churn-low/refresh", &staff)
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let id = refresh["id"].as_i64().expect("job id");
    let job_path = format!("/api/v1/jobs/{id}");
    // Find the host holding the refresh once it is a fifth of the way through.
    let holder = loop {
        let job = read_job_from(&client, &base, &job_path, &staff).await;
        let total = job["total"].as_i64().expect("total");
        if job["state"] == "running" && job["processed"].as_i64().unwrap_or(0) * 5 >= total {
            break job["lease_host"].as_str().expect("the holder").to_owned();
        }
        assert_ne!(
            job["state"], "succeeded",
            "the refresh ended before it could be stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pid: u32 = holder
        .rsplit(':')
        .nth(1)
        .expect("pid")
        .parse()
        .expect("a pid");
    let victim = hosts
        .iter()
        .position(|h| h.as_ref().is_some_and(|h| h.child.id() == pid))
        .expect("the holder is one of the three");
    let survivors: Vec<String> = hosts
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != victim)
        .map(|(_, h)| h.as_ref().expect("host").base.clone())
        .collect();

    // Cards and renewals through the survivors, from before the kill to the end.
    let (done_tx, done_rx) = watch::channel(false);
    let traffic = {
        let (client, staff, numbers, survivors) = (
            client.clone(),
            staff.clone(),
            numbers.clone(),
            survivors.clone(),
        );
        tokio::spawn(async move {
            let mut answers = Answers::default();
            let mut n = 0usize;
            while !*done_rx.borrow() {
                let base = &survivors[n % survivors.len()];
                let renewal = n % 10 == 9;
                let number = if renewal {
                    &renewing[(n / 10) % renewing.len()]
                } else {
                    &numbers[(n * 7) % numbers.len()]
                };
                let request = if renewal {
                    client
                        .post(format!("{base}/api/v1/subscribers/{number}/renewals"))
                        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                } else {
                    client.get(format!("{base}/api/v1/subscribers/{number}"))
                };
                match request.bearer_auth(&staff).send().await {
                    Ok(r) if r.status().is_server_error() => {
                        answers.failures.push(format!("{number}: {}", r.status()));
                    }
                    Ok(r) if renewal => {
                        let status = r.status().as_u16();
                        *answers.renewals.entry(status).or_default() += 1;
                        if status == 201 {
                            let renewed: masthead::domain::SubscriberNumber =
                                number.parse().expect("a subscriber number");
                            answers.renewed.insert(renewed.sequence());
                        }
                        if status != 201 && answers.refused.is_none() {
                            answers.refused = Some(r.text().await.unwrap_or_default());
                        }
                    }
                    Ok(r) if r.status() == StatusCode::OK => answers.cards += 1,
                    Ok(r) => answers
                        .failures
                        .push(format!("card {number}: {}", r.status())),
                    Err(e) => answers.failures.push(format!("{number}: {e}")),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Utc::now();
    drop(hosts[victim].take());
    eprintln!("killed host {victim} (pid {pid}) holding the refresh");

    let finished = loop {
        let job = read_job_from(&client, &survivors[0], &job_path, &staff).await;
        if job["state"] == "succeeded" || job["state"] == "failed" {
            break job;
        }
        assert!(
            Utc::now() - killed_at < chrono::Duration::seconds(150),
            "the refresh was not finished by another host: {job}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    done_tx.send(true).expect("stop the traffic");
    let answers = traffic.await.expect("traffic");
    eprintln!("next to the takeover: {answers:?}");
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert!(answers.failures.is_empty(), "{:?}", answers.failures);
    let renewals: usize = answers.renewals.values().sum();
    assert!(answers.cards > 50 && renewals > 5, "{answers:?}");
    assert!(
        answers.renewals.get(&201).is_some_and(|n| *n > 0),
        "nothing renewed: {answers:?}"
    );

    // The job's claims: the killed host's run lapsed, and the next began only after its
    // lease (15 s from its last heartbeat) ran out, within 30 s of the kill.
    let runs = finished["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{finished}");
    assert_eq!(runs[0]["host"], holder);
    assert_eq!(runs[0]["outcome"], "lapsed");
    assert_ne!(runs[1]["host"], holder);
    assert_eq!(runs[1]["outcome"], "succeeded");
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
            .expect("rfc3339")
            .to_utc()
    };
    let last_beat = time(&runs[0]["last_heartbeat_at"]);
    let taken = time(&runs[1]["claimed_at"]);
    assert!(
        taken - last_beat >= chrono::Duration::seconds(15),
        "taken over early"
    );
    assert!(
        taken - killed_at <= chrono::Duration::seconds(30),
        "taken over late"
    );
    eprintln!(
        "taken over {:.1} s after the kill",
        (taken - killed_at).num_milliseconds() as f64 / 1000.0
    );

    // One nightly recomputation for today across the three hosts.
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();
    let nightly = store
        .list_jobs(&JobFilter {
            kind: Some("club_recompute".into()),
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("jobs");
    let tonight: Vec<_> = nightly
        .iter()
        .filter(|j| j.period.as_deref() == Some(&today))
        .collect();
    assert_eq!(tonight.len(), 1, "{nightly:?}");
    let nightly_runs = store.job_runs(tonight[0].id).await.expect("runs");
    for pair in nightly_runs.windows(2) {
        assert!(
            pair[0].ended_at <= Some(pair[1].claimed_at),
            "{nightly_runs:?}"
        );
    }

    // The membership is the one a single host computes: refresh again on one host alone.
    let members = |store: Arc<dyn Store>| async move {
        let segment = store
            .get_segment("churn-low")
            .await
            .expect("read")
            .expect("segment");
        let mut all = Vec::new();
        loop {
            let after = all
                .last()
                .map_or(0, |m: &masthead::store::SubscriberSummary| {
                    m.number.sequence()
                });
            let page = store
                .segment_members(segment.id, after, 10_000)
                .await
                .expect("members");
            if page.is_empty() {
                break all;
            }
            all.extend(page);
        }
        .into_iter()
        .map(|m| m.number.sequence())
        .collect::<Vec<i64>>()
    };
    let after_takeover = members(Arc::clone(&store)).await;
    assert_eq!(finished["result"]["size"], after_takeover.len());
    drop(hosts);
    let alone = serve(
        &url,
        data.path(),
        &[
            ("MASTHEAD_JOBS__RECOMPUTE_ENABLED", "false"),
            ("MASTHEAD_JOBS__RENEWALS_ENABLED", "false"),
        ],
        "alone.log",
    )
    .await;
    let again: Value = client
        .post(format!("{}/api/v1/segments/churn-low/refresh", alone.base))
        .bearer_auth(&staff)
        .send()
        .await
        .expect("refresh")
        .json()
        .await
        .expect("json");
    let again_path = format!("/api/v1/jobs/{}", again["id"]);
    loop {
        let job = read_job_from(&client, &alone.base, &again_path, &staff).await;
        if job["state"] != "queued" && job["state"] != "running" {
            assert_eq!(job["state"], "succeeded", "{job}");
            assert_eq!(job["runs"].as_array().map(Vec::len), Some(1));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let single_host = members(Arc::clone(&store)).await;
    assert!(!single_host.is_empty());
    // A reader renewed during the takeover may have been scored before the renewal there
    // and after it here; every other reader must be scored alike.
    let unrenewed = |all: &[i64]| -> Vec<i64> {
        all.iter()
            .copied()
            .filter(|s| !answers.renewed.contains(s))
            .collect()
    };
    assert_eq!(
        unrenewed(&after_takeover),
        unrenewed(&single_host),
        "the takeover's membership differs"
    );
    eprintln!(
        "{} members; the whole test took {:.1} s",
        single_host.len(),
        started.elapsed().as_secs_f64()
    );
}

async fn read_job_from(client: &reqwest::Client, base: &str, path: &str, token: &str) -> Value {
    client
        .get(format!("{base}{path}?wait=1"))
        .bearer_auth(token)
        .send()
        .await
        .expect("job")
        .json()
        .await
        .expect("json")
}
