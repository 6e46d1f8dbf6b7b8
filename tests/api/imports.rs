//! The legacy circulation file: import over HTTP and the CLI, rejected rows, duplicates,
//! dry runs and the export round trip.

use clap::Parser;
use masthead::cli::{self, Cli};
use masthead::domain::SubscriberNumber;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};

const SUBSCRIBERS: &str = include_str!("../../examples/circulation/subscribers.csv");
const TERMS: &str = include_str!("../../examples/circulation/terms.csv");

async fn catalogue(app: &TestApp) {
    for code in ["DAILY", "WEEKLY"] {
        let body = json!({
            "code": code, "title": code, "kind": "daily",
            "formats": ["print", "digital", "bundle"], "term_months": [6, 12],
        });
        let response = app.post("/api/v1/publications", &app.admin, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

async fn upload(app: &TestApp, what: &str, csv: &str, dry_run: bool) -> Value {
    let response = app
        .request(Method::POST, &format!("/api/v1/imports/{what}"), &app.admin)
        .query(&[("dry_run", dry_run.to_string()), ("wait", "20".to_owned())])
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn download(app: &TestApp, what: &str) -> String {
    let response = app
        .get(&format!("/api/v1/exports/{what}.csv"), &app.admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/csv"))
    );
    response.text().await.expect("text")
}

async fn number_of(app: &TestApp, email: &str) -> String {
    let hits = app.search(email).await;
    assert_eq!(hits.len(), 1, "{email}");
    hits[0]["number"].as_str().expect("number").to_owned()
}

#[tokio::test]
async fn import_loads_readers_and_terms_and_reports_each_rejected_row_with_a_reason() {
    let app = spawn_app().await;
    catalogue(&app).await;

    let readers = upload(&app, "subscribers", SUBSCRIBERS, false).await;
    let terms = upload(&app, "terms", TERMS, false).await;

    assert_eq!(readers["report"]["created"], 4, "{readers}");
    assert_eq!(readers["report"]["rejected"], 1);
    assert_eq!(readers["rejections"][0]["line"], 6);
    let reason = readers["rejections"][0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("a person needs a given name or a family name"),
        "{reason}"
    );
    assert_eq!(terms["report"]["created"], 5, "{terms}");
    let rejected: Vec<(i64, String)> = terms["rejections"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().unwrap_or(0),
                r["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].0, 7);
    assert!(rejected[0].1.contains("no subscriber has legacy id C-9999"));
    assert_eq!(rejected[1].0, 8);
    assert!(
        rejected[1].1.starts_with("months: `thirteen`"),
        "{}",
        rejected[1].1
    );

    let hale = number_of(&app, "m.hale@example.org").await;
    let history: Value = app
        .get(&format!("/api/v1/subscribers/{hale}/terms"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    let daily = &history["titles"]
        .as_array()
        .expect("titles")
        .iter()
        .find(|t| t["publication"] == "DAILY")
        .expect("daily")["terms"];
    assert_eq!(daily[0]["start"], "2020-01-01");
    assert_eq!(daily[0]["discounts"][0]["reason"], "long-standing reader");
    assert_eq!(daily[0]["discounts"][0]["amount"]["amount"], 2_500);
    assert_eq!(history["first_subscribed"], "2019-01-01");
    assert_eq!(
        history["lifetime_revenue"]["amount"],
        24_000 + 22_500 + 4_000
    );
    let thornton = number_of(&app, "+441614960302").await;
    let history: Value = app
        .get(&format!("/api/v1/subscribers/{thornton}/terms"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    let term = &history["titles"][0]["terms"][0];
    assert_eq!(term["cancellation"]["reason"], "moved abroad");
    assert_eq!(term["cancellation"]["refund"]["amount"], 12_000);
}

#[tokio::test]
async fn import_then_export_then_import_again_changes_nothing() {
    let app = spawn_app().await;
    catalogue(&app).await;
    upload(&app, "subscribers", SUBSCRIBERS, false).await;
    upload(&app, "terms", TERMS, false).await;
    let readers = download(&app, "subscribers").await;
    let terms = download(&app, "terms").await;
    assert_eq!(readers.lines().count(), 5, "{readers}");
    assert_eq!(terms.lines().count(), 6, "{terms}");

    let again_readers = upload(&app, "subscribers", &readers, false).await;
    let again_terms = upload(&app, "terms", &terms, false).await;

    assert_eq!(again_readers["report"]["created"], 0, "{again_readers}");
    assert_eq!(again_readers["report"]["matched"], 4);
    assert_eq!(again_readers["report"]["rejected"], 0);
    assert_eq!(again_terms["report"]["created"], 0, "{again_terms}");
    assert_eq!(again_terms["report"]["unchanged"], 5);
    assert_eq!(download(&app, "subscribers").await, readers);
    assert_eq!(download(&app, "terms").await, terms);
}

#[tokio::test]
async fn an_export_imported_into_a_new_database_keeps_every_number() {
    // Arrange: readers from the file and over the API, with a gap in the numbers where a
    // duplicate was merged away.
    let old = spawn_app().await;
    catalogue(&old).await;
    upload(&old, "subscribers", SUBSCRIBERS, false).await;
    upload(&old, "terms", TERMS, false).await;
    let kept = old.create(person("Ada", "Walk-in")).await;
    let duplicate = old.create(person("Ada", "Walkin")).await;
    let last = old.create(person("Bea", "Late")).await;
    let merged = old
        .post(
            &format!(
                "/api/v1/subscribers/{}/merge",
                kept["number"].as_str().expect("n")
            ),
            &old.staff,
            &json!({ "source": duplicate["number"] }),
        )
        .await;
    assert_eq!(merged.status(), StatusCode::OK);
    let readers = download(&old, "subscribers").await;
    let terms = download(&old, "terms").await;
    assert_eq!(readers.lines().count(), 7, "{readers}");

    // Act: the export goes into a new database that knows only the titles.
    let new = spawn_app().await;
    catalogue(&new).await;
    let loaded = upload(&new, "subscribers", &readers, false).await;
    let loaded_terms = upload(&new, "terms", &terms, false).await;

    // Assert: every reader under the same number, every term, nothing refused.
    assert_eq!(loaded["report"]["created"], 6, "{loaded}");
    assert_eq!(loaded["report"]["rejected"], 0, "{loaded}");
    assert_eq!(loaded_terms["report"]["created"], 5, "{loaded_terms}");
    assert_eq!(download(&new, "subscribers").await, readers);
    assert_eq!(download(&new, "terms").await, terms);
    assert_eq!(
        new.card(last["number"].as_str().expect("n")).await["family_name"],
        "Late"
    );
    let missing = new
        .get(
            &format!(
                "/api/v1/subscribers/{}",
                duplicate["number"].as_str().expect("n")
            ),
            &new.staff,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // Numbering goes on after the highest number loaded.
    let next = new.create(person("Cy", "Next")).await;
    let sequence = |card: &Value| {
        let n = card["number"].as_str().expect("n");
        n[..n.len() - 1].parse::<i64>().expect("digits")
    };
    assert_eq!(sequence(&next), sequence(&last) + 1);
    // The same export again matches every reader; a number given twice or with a wrong
    // check digit is refused with its line.
    let again = upload(&new, "subscribers", &readers, false).await;
    assert_eq!(again["report"]["matched"], 6, "{again}");
    let header = readers.lines().next().expect("header");
    let free = SubscriberNumber::from_sequence(sequence(&next) + 1).to_string();
    let typo = SubscriberNumber::from_sequence(sequence(&next) + 2);
    let wrong_digit = format!("{}{}", typo.sequence(), (typo.check_digit() + 1) % 10);
    let file = format!(
        "{header}\n{free},,person,Dee,Twice,,,,,,,,,\n{free},,person,Dee,Again,,,,,,,,,\n\
         {wrong_digit},,person,Eve,Typo,,,,,,,,,\n"
    );
    let report = upload(&new, "subscribers", &file, false).await;
    assert_eq!(report["report"]["created"], 1, "{report}");
    assert_eq!(report["rejections"][0]["line"], 3, "{report}");
    let reason = report["rejections"][0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(&format!(
            "subscriber number {free} was already given on line 2"
        )),
        "{reason}"
    );
    assert_eq!(report["rejections"][1]["line"], 4, "{report}");
    assert!(
        report["rejections"][1]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("number:"),
        "{report}"
    );
    assert_eq!(new.card(&free).await["family_name"], "Twice");
}

#[tokio::test]
async fn an_imported_reader_who_is_already_known_is_matched_not_created_twice() {
    let app = spawn_app().await;
    catalogue(&app).await;
    let known = app
        .create(json!({ "given_name": "Maggie", "family_name": "Hale",
                        "emails": [{ "address": "M.Hale@example.org" }] }))
        .await;

    let report = upload(&app, "subscribers", SUBSCRIBERS, false).await;
    upload(&app, "terms", TERMS, false).await;

    assert_eq!(report["report"]["matched"], 1, "{report}");
    assert_eq!(report["report"]["created"], 3);
    let number = known["number"].as_str().expect("number");
    let history: Value = app
        .get(&format!("/api/v1/subscribers/{number}/terms"), &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history["first_subscribed"], "2019-01-01");
    // The same file again matches every reader by legacy id.
    let again = upload(&app, "subscribers", SUBSCRIBERS, false).await;
    assert_eq!(again["report"]["matched"], 4);
    assert_eq!(again["report"]["created"], 0);
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_writes_nothing() {
    let app = spawn_app().await;
    catalogue(&app).await;

    let report = upload(&app, "subscribers", SUBSCRIBERS, true).await;

    assert_eq!(report["report"]["dry_run"], true);
    assert_eq!(report["report"]["created"], 4);
    assert_eq!(report["report"]["batches"], 0);
    assert_eq!(report["report"]["rejected"], 1);
    let list: Value = app
        .get("/api/v1/subscribers", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn a_file_of_other_columns_is_refused_before_anything_is_written() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/api/v1/imports/subscribers", &app.admin)
        .header("content-type", "text/csv")
        .body("legacy_id,surname\nA1,Smith\n")
        .send()
        .await
        .expect("request");

    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("unknown column `surname`")
    );
    let response = app
        .request(Method::POST, "/api/v1/imports/terms", &app.admin)
        .header("content-type", "text/csv")
        .body("legacy_id,publication\nA1,DAILY\n")
        .send()
        .await
        .expect("request");
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("required column `format`")
    );
}

#[tokio::test]
async fn the_cli_imports_exports_and_renews_due_terms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let run = |rest: Vec<String>| {
        let mut all = vec![
            "masthead".to_owned(),
            "--database-url".to_owned(),
            url.clone(),
        ];
        all.extend(rest);
        let parsed = Cli::parse_from(all);
        async move {
            let config = parsed.config().expect("config");
            cli::run(parsed, config).await
        }
    };
    let store = masthead::store::open(&url).await.expect("open");
    for code in ["DAILY", "WEEKLY"] {
        let draft = serde_json::from_value(json!({
            "code": code, "title": code, "kind": "daily",
            "formats": ["print", "digital", "bundle"], "term_months": [6, 12],
        }))
        .expect("draft");
        store
            .create_publication(&draft, chrono::Utc::now())
            .await
            .expect("publication");
    }
    let subscribers = dir.path().join("subscribers.csv");
    let terms = dir.path().join("terms.csv");
    std::fs::write(&subscribers, SUBSCRIBERS).expect("write");
    std::fs::write(&terms, TERMS).expect("write");
    let path = |p: &std::path::Path| p.display().to_string();

    // The sample has bad rows on purpose: the command fails and names the report.
    let failed = run(vec!["import".into(), path(&subscribers), path(&terms)]).await;
    assert!(failed.is_err_and(|e| e.to_string().contains("3 rows were rejected")));
    let report =
        std::fs::read_to_string(dir.path().join("terms.csv.rejected.csv")).expect("report");
    assert!(report.contains("C-9999"), "{report}");
    let out = dir.path().join("out");
    run(vec!["export".into(), path(&out)])
        .await
        .expect("export");
    let exported = std::fs::read_to_string(out.join("terms.csv")).expect("exported");
    assert_eq!(exported.lines().count(), 6);
    run(vec![
        "import".into(),
        path(&out.join("subscribers.csv")),
        path(&out.join("terms.csv")),
    ])
    .await
    .expect("a clean file imports without rejections");
    run(vec!["renew-due".into(), "--days".into(), "14".into()])
        .await
        .expect("renew-due");
    let bad = run(vec!["renew-due".into(), "--days".into(), "0".into()]).await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn imports_have_their_own_body_limit() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.body_limit_bytes = 100;
        config.import_limit_bytes = 4_096;
    })
    .await;

    let fits = upload(&app, "subscribers", SUBSCRIBERS, true).await;
    assert_eq!(fits["report"]["rows"], 5);
    let too_big = SUBSCRIBERS.repeat(20);
    let response = app
        .request(Method::POST, "/api/v1/imports/subscribers", &app.admin)
        .header("content-type", "text/csv")
        .body(too_big)
        .send()
        .await
        .expect("request");
    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("masthead import")
    );
}

/// A batch is matched while the batch before it is still being written, so the file is
/// checked against that batch as well as against the database: a repeat is reported the same
/// way whether or not its first row has been committed yet.
#[tokio::test]
async fn repeats_across_batches_are_caught_while_the_batch_before_is_being_written() {
    use masthead::domain::Role;
    use masthead::services::legacy::{CollectRejections, ImportOptions, Importer};

    let app = spawn_app().await;
    let store = masthead::store::open(&app.config.database_url())
        .await
        .expect("open");
    let importer = Importer::new(
        store.clone(),
        std::sync::Arc::new(app.clock.clone()),
        app.config.home_country().expect("home"),
        app.config.currency().expect("currency"),
        masthead::store::Actor {
            key_id: None,
            name: "test".into(),
            role: Role::Admin,
        },
    );
    // Two rows a batch: lines 2-3, 4-5, 6-7, 8.
    let csv = "legacy_id,given_name,family_name,email\n\
               A-1,Ada,Byron,ada@example.org\n\
               A-2,Ben,Jonson,ben@example.org\n\
               A-3,Ada,Lovelace,ada@example.org\n\
               A-2,Benjamin,Jonson,benjamin@example.org\n\
               A-5,Cy,Twombly,cy@example.org\n\
               A-6,Ben,Johnson,ben@example.org\n\
               A-1,Ada,Byron,ada@example.org\n";
    let options = ImportOptions {
        dry_run: false,
        batch_size: 2,
    };
    let mut rejections = CollectRejections::default();
    let report = importer
        .import_subscribers(std::io::Cursor::new(csv), &options, &mut rejections)
        .await
        .expect("import");
    assert_eq!(
        (report.rows, report.created, report.matched, report.rejected),
        (7, 3, 1, 3),
        "{report:?}"
    );
    assert_eq!(report.batches, 2, "batches with nothing new write nothing");
    let reasons: Vec<(u64, String)> = rejections
        .0
        .into_iter()
        .map(|r| (r.line, r.reason))
        .collect();
    // Lines 4 and 5 repeat the batch still being written; line 7 one already committed.
    assert_eq!(reasons[0].0, 4);
    assert!(
        reasons[0].1.contains("the same reader as line 2 (email)"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, 5);
    assert!(
        reasons[1]
            .1
            .contains("legacy id A-2 was already given on line 3"),
        "{reasons:?}"
    );
    assert_eq!(reasons[2].0, 7);
    assert!(
        reasons[2].1.contains("who already has legacy id A-2"),
        "{reasons:?}"
    );
    for (email, name) in [
        ("ada@example.org", "Ada Byron"),
        ("ben@example.org", "Ben Jonson"),
        ("cy@example.org", "Cy Twombly"),
    ] {
        let number = number_of(&app, email).await;
        let card: Value = app
            .get(&format!("/api/v1/subscribers/{number}"), &app.staff)
            .await
            .json()
            .await
            .expect("card");
        assert_eq!(card["display_name"], name, "{card}");
    }
    assert!(app.search("benjamin@example.org").await.is_empty());
    store.close().await;
}
