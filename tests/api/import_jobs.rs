//! Imports over HTTP as jobs: 202 with the job's location, `?wait=` for the report, the
//! rejections kept and paged, one import of a file at a time, cancellation between batches,
//! a job taken over from a host presumed dead creating nothing twice, and the stored file
//! gone however the job ends. The on-demand auto-renewal is a job the same way.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use masthead::domain::Role;
use masthead::services::audit::AuditLog;
use masthead::services::clock::SystemClock;
use masthead::services::jobs::Runner;
use masthead::services::legacy::{CollectRejections, ImportFile, ImportOptions, Importer};
use masthead::startup::Services;
use masthead::store::{self, Actor, Claim, Ending, Fence, JobState, NewJob, Store, StoreError};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, empty_database, problem, spawn_app, spawn_app_with};

const SUBSCRIBERS: &str = include_str!("../../examples/circulation/subscribers.csv");
const TERMS: &str = include_str!("../../examples/circulation/terms.csv");

async fn send(app: &TestApp, what: &str, query: &str, csv: &str, token: &str) -> Response {
    app.request(
        Method::POST,
        &format!("/api/v1/imports/{what}{query}"),
        token,
    )
    .header("content-type", "text/csv")
    .body(csv.to_owned())
    .send()
    .await
    .expect("request")
}

/// Follows a job over the API until it has finished.
async fn follow(app: &TestApp, location: &str) -> Value {
    for _ in 0..30 {
        let job: Value = app
            .get(&format!("{location}?wait=5"), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        if ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or("")) {
            return job;
        }
    }
    panic!("{location} did not finish");
}

async fn open(app: &TestApp) -> Arc<dyn Store> {
    store::open(&app.config.database_url()).await.expect("open")
}

#[tokio::test]
async fn an_import_answers_202_with_its_job_which_is_followed_to_its_report() {
    let app = spawn_app().await;

    let response = send(&app, "subscribers", "", SUBSCRIBERS, &app.admin).await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let queued: Value = response.json().await.expect("json");
    let id = queued["id"].as_i64().expect("id");
    assert_eq!(location, format!("/api/v1/jobs/{id}"));
    assert_eq!(queued["kind"], "import");
    assert_eq!(queued["subject"], "subscribers");
    assert_eq!(queued["total"], SUBSCRIBERS.len());
    let done = follow(&app, &location).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["processed"], SUBSCRIBERS.len());
    let result = &done["result"];
    assert_eq!(result["report"]["created"], 4, "{result}");
    assert_eq!(result["report"]["rejected"], 1);
    assert_eq!(result["first_rejections"][0]["line"], 6);
    assert_eq!(
        result["rejections"],
        format!("/api/v1/imports/{id}/rejections")
    );
    // The file is gone with the job; the rejections stay.
    let store = open(&app).await;
    assert_eq!(store.import_chunks(id).await.expect("chunks"), 0);
    assert_eq!(app.search("m.hale@example.org").await.len(), 1);

    // With `wait`, the same file again answers 200 with the report of today's shape.
    let response = send(&app, "subscribers", "?wait=20", SUBSCRIBERS, &app.admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    let again: Value = response.json().await.expect("json");
    assert_eq!(again["report"]["created"], 0, "{again}");
    assert_eq!(again["report"]["matched"], 4);
    assert_eq!(again["rejections"][0]["line"], 6);
    assert!(
        again["job"]
            .as_str()
            .is_some_and(|j| j.starts_with("/api/v1/jobs/"))
    );
    store.close().await;
}

#[tokio::test]
async fn rejections_are_kept_with_the_job_and_listed_page_by_page_without_personal_values() {
    let app = spawn_app().await;
    let mut csv = String::from("legacy_id,given_name,family_name,email\n");
    for i in 0..7 {
        csv.push_str(&format!("R-{i},Ann,Lee{i},ann{i}@@example.org\n"));
    }
    csv.push_str("R-9,Bob,Ray,bob@example.org\n");

    let answer: Value = send(&app, "subscribers", "?wait=20", &csv, &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let id: i64 = answer["job"]
        .as_str()
        .and_then(|j| j.rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .expect("the job");

    assert_eq!(answer["report"]["rejected"], 7, "{answer}");
    let mut lines = Vec::new();
    let mut path = format!("/api/v1/imports/{id}/rejections?limit=3");
    loop {
        let response = app.get(&path, &app.admin).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.expect("json");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 3);
        for item in items {
            let reason = item["reason"].as_str().expect("reason");
            assert!(reason.starts_with("email: the value is not"), "{reason}");
            assert!(!reason.contains("example.org"), "{reason}");
            lines.push(item["line"].as_i64().expect("line"));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/imports/{id}/rejections?limit=3&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8]);

    let body = problem(
        app.get(
            &format!("/api/v1/imports/{id}/rejections?cursor=bm90LWEtY3Vyc29y"),
            &app.admin,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["detail"].as_str().unwrap_or("").contains("cursor"));
    problem(
        app.get("/api/v1/imports/999999/rejections", &app.admin)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(
            &format!("/api/v1/imports/{id}/rejections?limit=0"),
            &app.admin,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn imports_and_their_rejections_are_for_admins_only() {
    let app = spawn_app().await;
    for token in [&app.staff, &app.advertiser] {
        let response = send(&app, "subscribers", "?wait=5", SUBSCRIBERS, token).await;
        problem(response, StatusCode::FORBIDDEN).await;
        let response = send(&app, "terms", "", TERMS, token).await;
        problem(response, StatusCode::FORBIDDEN).await;
        problem(
            app.get("/api/v1/imports/1/rejections", token).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.post("/api/v1/renewals/auto", token, &json!({})).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    assert!(app.search("m.hale@example.org").await.is_empty());
}

#[tokio::test]
async fn a_wait_out_of_bounds_is_refused_naming_the_field_before_anything_is_queued() {
    let app = spawn_app().await;
    for query in ["?wait=21", "?wait=soon", "?wait=-1"] {
        let body = problem(
            send(&app, "subscribers", query, SUBSCRIBERS, &app.admin).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap_or("").contains("wait"),
            "{query}: {body}"
        );
        let body = problem(
            app.post(
                &format!("/api/v1/renewals/auto{query}"),
                &app.admin,
                &json!({}),
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap_or("").contains("wait"),
            "{query}: {body}"
        );
    }
    let jobs: Value = app
        .get("/api/v1/jobs", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(jobs["items"], json!([]));
}

#[tokio::test]
async fn a_second_import_of_a_file_while_one_is_queued_is_a_conflict_naming_it() {
    // A host that runs no jobs: what it queues stays queued.
    let app = spawn_app_with(|config| config.jobs.concurrency = 0).await;
    let first: Value = send(&app, "subscribers", "", SUBSCRIBERS, &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let id = first["id"].as_i64().expect("id");

    let body = problem(
        send(&app, "subscribers", "?wait=1", SUBSCRIBERS, &app.admin).await,
        StatusCode::CONFLICT,
    )
    .await;

    let detail = body["detail"].as_str().unwrap_or("");
    assert!(detail.contains(&format!("job {id}")), "{detail}");
    assert!(detail.contains(&format!("/api/v1/jobs/{id}")), "{detail}");
    // The other file is another import; it is queued beside the first.
    let response = send(&app, "terms", "?wait=1", TERMS, &app.admin).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // Cancelled while queued, the first import is gone with its file, and the file can come
    // again.
    let cancelled = app
        .post(&format!("/api/v1/jobs/{id}/cancel"), &app.admin, &json!({}))
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let store = open(&app).await;
    assert_eq!(store.import_chunks(id).await.expect("chunks"), 0);
    let again = send(&app, "subscribers", "", SUBSCRIBERS, &app.admin).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    store.close().await;
}

#[tokio::test]
async fn a_cancelled_import_stops_between_batches_and_keeps_the_batches_it_committed() {
    let app = spawn_app().await;
    let rows = 60_000;
    let mut csv = String::from("legacy_id,given_name,family_name\n");
    for i in 0..rows {
        csv.push_str(&format!("L-{i},Reader,Number{i}\n"));
    }
    let queued: Value = send(&app, "subscribers", "", &csv, &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let id = queued["id"].as_i64().expect("id");
    let started = std::time::Instant::now();
    loop {
        let job: Value = app
            .get(&format!("/api/v1/jobs/{id}"), &app.staff)
            .await
            .json()
            .await
            .expect("json");
        if job["processed"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(job["state"] != "succeeded", "the import finished first");
        assert!(started.elapsed() < Duration::from_secs(60), "{job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let asked = app
        .post(&format!("/api/v1/jobs/{id}/cancel"), &app.admin, &json!({}))
        .await;

    assert_eq!(asked.status(), StatusCode::OK);
    let done = follow(&app, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    let store = open(&app).await;
    let readers = store.count_readers().await.expect("count");
    assert!(readers > 0 && readers < rows, "{readers} readers");
    assert_eq!(readers % 5_000, 0, "only whole batches are committed");
    assert_eq!(store.import_chunks(id).await.expect("chunks"), 0);
    store.close().await;
}

fn admin(name: &str) -> Actor {
    Actor {
        key_id: None,
        name: name.into(),
        role: Role::Admin,
    }
}

/// Host A claims an import and writes every batch, then stops dead before it records the
/// end; host B takes the job over once A's lease has run out and runs it from the top.
#[tokio::test]
async fn an_import_taken_over_from_a_stopped_host_creates_nothing_twice_and_fences_the_old_host() {
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let mut config = masthead::config::Config {
        database_url: Some(database.url.clone()),
        ..masthead::config::Config::default()
    };
    config.jobs.recompute_enabled = false;
    config.jobs.renewals_enabled = false;
    let (audit, _writer) = AuditLog::start(Arc::clone(&store));
    let services = Services::build(&config, Arc::clone(&store), audit, Arc::new(SystemClock))
        .expect("services");
    for code in ["DAILY", "WEEKLY"] {
        let draft = serde_json::from_value(json!({
            "code": code, "title": code, "kind": "daily",
            "formats": ["print", "digital", "bundle"], "term_months": [6, 12],
        }))
        .expect("draft");
        store
            .create_publication(&draft, Utc::now())
            .await
            .expect("title");
    }
    let importer = |fence: Fence| {
        Importer::new(
            Arc::clone(&store),
            Arc::new(SystemClock),
            config.home_country().expect("home"),
            config.currency().expect("currency"),
            admin("host a"),
        )
        .fenced(fence)
    };
    for (file, csv, created) in [
        (ImportFile::Subscribers, SUBSCRIBERS, 4),
        (ImportFile::Terms, TERMS, 5),
    ] {
        let upload = tempfile::tempfile().expect("temp");
        let mut upload = tokio::fs::File::from_std(upload);
        tokio::io::AsyncWriteExt::write_all(&mut upload, csv.as_bytes())
            .await
            .expect("write");
        tokio::io::AsyncSeekExt::rewind(&mut upload)
            .await
            .expect("rewind");
        let job = services
            .imports
            .queue(&admin("test"), file, false, upload, csv.len() as u64)
            .await
            .expect("queued");
        let now = Utc::now();
        let claimed = store
            .claim_job(Claim {
                host: "host-a",
                now,
                lease_until: now + chrono::Duration::milliseconds(500),
                max_attempts: 5,
                only: Some(job.id),
            })
            .await
            .expect("claim")
            .expect("the queued job");
        let fence_a = Fence {
            job: job.id,
            attempt: claimed.attempts,
            host: "host-a".into(),
        };
        let written = importer(fence_a.clone())
            .import(
                file,
                std::io::Cursor::new(csv),
                &ImportOptions::default(),
                &mut CollectRejections::default(),
            )
            .await
            .expect("host A writes every batch");
        assert_eq!(written.created, created);
        tokio::time::sleep(Duration::from_millis(700)).await;

        let runner = Runner::new(
            Arc::clone(&services.jobs),
            vec![Arc::clone(&services.imports) as _],
            vec![],
        );
        let done = runner.run_here(job.id).await.expect("host B runs it");

        assert_eq!(done.state, JobState::Succeeded, "{done:?}");
        assert_eq!(done.attempts, 2);
        let report = &done.result.as_ref().expect("result")["report"];
        assert_eq!(report["created"], 0, "{report}");
        assert_eq!(report["rejected"], if created == 4 { 1 } else { 2 });
        let runs = store.job_runs(job.id).await.expect("runs");
        assert_eq!(runs[0].outcome.as_deref(), Some("lapsed"));
        assert_eq!(runs[1].outcome.as_deref(), Some("succeeded"));
        assert_eq!(store.import_chunks(job.id).await.expect("chunks"), 0);
        if file == ImportFile::Terms {
            continue;
        }
        // Host A comes back with new readers to write: its writes are refused.
        let refused = importer(fence_a)
            .import(
                file,
                std::io::Cursor::new("legacy_id,given_name,family_name\nZ-1,Zed,Zulu\n"),
                &ImportOptions::default(),
                &mut CollectRejections::default(),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(masthead::services::legacy::ImportError::Store(
                    StoreError::Fenced(_)
                ))
            ),
            "{refused:?}"
        );
    }
    assert_eq!(store.count_readers().await.expect("count"), 4);
    store.close().await;
}

#[tokio::test]
async fn a_stored_file_is_deleted_however_its_job_ends() {
    let database = empty_database().await;
    let store = store::open(&database.url).await.expect("open");
    let new = |subject: &str| NewJob {
        kind: "import".into(),
        subject: subject.into(),
        period: None,
        arguments: json!({}),
        total: None,
        created_by: "a test".into(),
        at: Utc::now(),
    };
    let big = vec![b'x'; masthead::store::CHUNK_BYTES + 10];
    let mut endings = Vec::new();
    for (subject, ending) in [
        ("a", Ending::Succeeded(json!({}))),
        ("b", Ending::Failed("broke".into())),
        ("c", Ending::Cancelled),
        ("d", Ending::Released),
    ] {
        let job = store
            .enqueue_import(new(subject), &mut big.as_slice())
            .await
            .expect("queued");
        assert_eq!(store.import_chunks(job.id).await.expect("chunks"), 2);
        let now = Utc::now();
        let claimed = store
            .claim_job(Claim {
                host: "host",
                now,
                lease_until: now + chrono::Duration::seconds(30),
                max_attempts: 5,
                only: Some(job.id),
            })
            .await
            .expect("claim")
            .expect("job");
        let fence = Fence {
            job: job.id,
            attempt: claimed.attempts,
            host: "host".into(),
        };
        assert!(store.end_job(&fence, &ending, now).await.expect("end"));
        endings.push((subject, store.import_chunks(job.id).await.expect("chunks")));
    }
    // Given back at shutdown, the job is queued again and keeps its file.
    assert_eq!(endings, [("a", 0), ("b", 0), ("c", 0), ("d", 2)]);
    store.close().await;
}

#[tokio::test]
async fn the_auto_renewal_on_demand_is_a_job_and_a_second_request_follows_the_first() {
    let app = spawn_app_with(|config| config.jobs.concurrency = 0).await;

    let first = app
        .post(
            "/api/v1/renewals/auto",
            &app.admin,
            &json!({ "within_days": 7 }),
        )
        .await;
    let second = app
        .post("/api/v1/renewals/auto?wait=1", &app.admin, &json!({}))
        .await;

    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let location = first.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["kind"], "auto_renewal");
    assert_eq!(first["arguments"]["days"], 7);
    assert_eq!(location, format!("/api/v1/jobs/{}", first["id"]));
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let second: Value = second.json().await.expect("json");
    assert_eq!(second["id"], first["id"]);
    // A host that runs jobs takes it; the report is the job's result.
    let runner = app
        .another_instance_with(|config| config.jobs.concurrency = 1)
        .await;
    assert!(runner.starts_with("http://"));
    let done = follow(&app, &location).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"]["renewed"], 0);
}
