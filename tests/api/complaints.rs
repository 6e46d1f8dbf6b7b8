//! Complaints over HTTP with the service's clock set by the test: business-hours due times,
//! pauses, compensation applied exactly once, the breach queue, the report on a known data
//! set, and the workflow's refusals.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};
use crate::renewals::{print_year, publication, reader, subscribe};

fn at(app: &TestApp, instant: &str) {
    app.clock.set(instant.parse().expect("an RFC 3339 instant"));
}

async fn open(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/interactions", &app.staff, &body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "open failed: {view}");
    view
}

fn complaint(number: &str, category: &str) -> Value {
    json!({
        "subscriber": number, "kind": "complaint", "channel": "phone",
        "category": category, "text": "The paper did not come this morning",
    })
}

async fn step(app: &TestApp, id: &Value, body: Value) -> reqwest::Response {
    app.post(
        &format!("/api/v1/interactions/{id}/steps"),
        &app.staff,
        &body,
    )
    .await
}

async fn step_ok(app: &TestApp, id: &Value, body: Value) -> Value {
    let response = step(app, id, body).await;
    let status = response.status();
    let view: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "step failed: {view}");
    view
}

async fn queue(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app
        .get(&format!("/api/v1/interactions/queue{query}"), &app.staff)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// The fields a validation problem names.
pub(crate) fn fields_of(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default()
}

/// GETs a path as staff and returns the JSON body.
async fn read(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, &app.staff).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.expect("json")
}

async fn staff_member(app: &TestApp, name: &str) -> Value {
    let staff: Value = app
        .post("/api/v1/staff", &app.admin, &json!({ "name": name }))
        .await
        .json()
        .await
        .expect("json");
    staff["id"].clone()
}

#[tokio::test]
async fn a_friday_afternoon_complaint_is_due_on_monday_and_the_queue_shows_it() {
    let app = spawn_app().await;
    let number = reader(&app, "Friday").await;
    let owner = staff_member(&app, "Fiona Keir").await;
    // Friday 6 March 2026, 16:30 in London (GMT): 1.5 business hours left that day.
    at(&app, "2026-03-06T16:30:00Z");
    let mut body = complaint(&number, "missed_delivery");
    body["owner"] = owner.clone();
    let view = open(&app, body).await;
    assert_eq!(view["state"], "open");
    assert_eq!(view["priority"], "routine");
    assert_eq!(view["taken_by"], "reception desk");
    assert_eq!(view["due"]["respond_by"], "2026-03-09T08:30:00Z");
    // 24 business hours: 1.5 on Friday, 10 on Monday and Tuesday, 2.5 on Wednesday.
    assert_eq!(view["due"]["resolve_by"], "2026-03-11T10:30:00Z");
    let actions: Vec<&str> = view["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    assert_eq!(actions, ["opened", "assigned"]);

    // Not due soon on Friday evening, nor over the weekend.
    at(&app, "2026-03-06T17:00:00Z");
    assert!(queue(&app, "").await.is_empty());
    at(&app, "2026-03-08T12:00:00Z");
    assert!(queue(&app, "").await.is_empty());
    // Monday 08:10: due within the 30-minute warning window.
    at(&app, "2026-03-09T08:10:00Z");
    let items = queue(&app, "").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["due"], "respond");
    assert_eq!(items[0]["minutes_left"], 20);
    assert_eq!(items[0]["overdue"], false);
    // Monday 09:00: overdue, by owner and by category; not for another owner or category.
    at(&app, "2026-03-09T09:00:00Z");
    let items = queue(&app, &format!("?owner={owner}&category=missed_delivery")).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["overdue"], true);
    assert_eq!(items[0]["minutes_left"], -30);
    assert!(queue(&app, "?category=billing").await.is_empty());
    assert!(queue(&app, "?owner=999").await.is_empty());
    let id = &view["id"];
    let got: Value = read(&app, &format!("/api/v1/interactions/{id}")).await;
    assert_eq!(got["overdue"], true);

    // Answered late: the queue now watches the resolution.
    let answered = step_ok(
        &app,
        id,
        json!({ "action": "respond", "note": "called back" }),
    )
    .await;
    assert_eq!(answered["state"], "responded");
    assert_eq!(answered["steps"][2]["detail"]["late"], true);
    assert!(queue(&app, "").await.is_empty());
    at(&app, "2026-03-11T10:10:00Z");
    let items = queue(&app, "").await;
    assert_eq!(items[0]["due"], "resolve");
    let policy: Value = read(&app, "/api/v1/interactions/policy").await;
    assert_eq!(policy["time_zone"], "Europe/London");
}

#[tokio::test]
async fn a_paused_complaint_stops_its_clock() {
    let app = spawn_app().await;
    let number = reader(&app, "Pause").await;
    at(&app, "2026-03-09T09:00:00Z");
    let view = open(&app, complaint(&number, "billing")).await;
    let id = &view["id"];
    assert_eq!(view["due"]["respond_by"], "2026-03-09T11:00:00Z");
    at(&app, "2026-03-09T09:30:00Z");
    let paused = step_ok(
        &app,
        id,
        json!({ "action": "pause", "note": "waiting for the bank statement" }),
    )
    .await;
    assert!(paused["paused_since"].is_string());
    // Long past the old due time, a paused complaint is not in the queue.
    at(&app, "2026-03-09T16:00:00Z");
    assert!(queue(&app, "").await.is_empty());
    let refused = problem(
        step(&app, id, json!({ "action": "respond" })).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("resume it"));
    // Resumed on Tuesday 09:30: 8.5 + 1.5 business hours stood still.
    at(&app, "2026-03-10T09:30:00Z");
    let resumed = step_ok(&app, id, json!({ "action": "resume" })).await;
    assert_eq!(resumed["paused_since"], Value::Null);
    assert_eq!(resumed["paused_seconds"], 36_000);
    assert_eq!(resumed["due"]["respond_by"], "2026-03-10T11:00:00Z");
    let last = resumed["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "resumed");
    assert_eq!(last["by"], "reception desk");
    at(&app, "2026-03-10T10:00:00Z");
    let answered = step_ok(&app, id, json!({ "action": "respond" })).await;
    // One business hour worked (30 min before the pause, 30 after).
    assert_eq!(answered["response_seconds"], 3_600);
    assert_eq!(answered["steps"][3]["detail"]["late"], false);
    // A running clock cannot be resumed.
    problem(
        step(&app, id, json!({ "action": "resume" })).await,
        StatusCode::CONFLICT,
    )
    .await;
}

async fn term_end(app: &TestApp, number: &str) -> (String, i64) {
    let history = read(app, &format!("/api/v1/subscribers/{number}/terms")).await;
    let term = &history["titles"][0]["terms"][0];
    (
        term["end"].as_str().expect("end").to_owned(),
        term["extension_days"].as_i64().expect("days"),
    )
}

#[tokio::test]
async fn compensation_extends_the_term_exactly_once_even_when_resolved_twice_at_once() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2025-01-01", 20_000)]).await;
    let number = reader(&app, "Compensated").await;
    at(&app, "2026-03-09T09:00:00Z");
    let order = subscribe(&app, &number, print_year("DAILY", "2026-01-01")).await;
    let term = order["terms"][0]["id"].clone();
    assert_eq!(term_end(&app, &number).await, ("2026-12-31".to_owned(), 0));
    let view = open(&app, complaint(&number, "missed_delivery")).await;
    let id = view["id"].clone();
    let resolution = json!({
        "action": "resolve", "resolution": "Apologised; a week added to the subscription",
        "compensation": { "kind": "extension", "term": term, "days": 7,
                          "reason": "three missed deliveries" },
    });
    let (a, b) = tokio::join!(
        step(&app, &id, resolution.clone()),
        step(&app, &id, resolution.clone())
    );
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    assert_eq!(term_end(&app, &number).await, ("2027-01-07".to_owned(), 7));
    // A retry after the fact is refused too, and changes nothing.
    let again = problem(step(&app, &id, resolution).await, StatusCode::CONFLICT).await;
    assert!(
        again["detail"]
            .as_str()
            .unwrap()
            .contains("already resolved")
    );
    assert_eq!(term_end(&app, &number).await, ("2027-01-07".to_owned(), 7));
    let got: Value = read(&app, &format!("/api/v1/interactions/{id}")).await;
    assert_eq!(got["state"], "resolved");
    assert_eq!(got["first_contact_resolution"], true);
    assert_eq!(got["compensations"].as_array().unwrap().len(), 1);
    assert_eq!(got["compensations"][0]["days"], 7);

    // A credit, and an extension of a term that cannot take one: nothing is half-written.
    let other = open(&app, complaint(&number, "billing")).await;
    let cancel = app
        .post(
            &format!("/api/v1/subscribers/{number}/terms/{term}/cancellation"),
            &app.staff,
            &json!({ "effective": "2026-06-01", "reason": "moving abroad" }),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let refused = problem(
        step(
            &app,
            &other["id"],
            json!({ "action": "resolve", "resolution": "extended",
                    "compensation": { "kind": "extension", "term": term, "days": 3,
                                      "reason": "late" } }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("cancelled"));
    let unchanged: Value = read(&app, &format!("/api/v1/interactions/{}", other["id"])).await;
    assert_eq!(unchanged["state"], "open");
    assert_eq!(unchanged["steps"].as_array().unwrap().len(), 1);
    let credited = step_ok(
        &app,
        &other["id"],
        json!({ "action": "resolve", "resolution": "refunded the double charge",
                "compensation": { "kind": "credit", "amount": 1250, "reason": "double charge" } }),
    )
    .await;
    assert_eq!(credited["compensations"][0]["amount"]["amount"], 1250);
    assert_eq!(credited["compensations"][0]["kind"], "credit");
    // Both show in the renewal history, oldest first.
    let history = read(&app, &format!("/api/v1/subscribers/{number}/terms")).await;
    let given: Vec<(&str, &str)> = history["compensations"]
        .as_array()
        .expect("compensations")
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        given,
        [
            ("extension", "three missed deliveries"),
            ("credit", "double charge")
        ]
    );
    let bad = problem(
        step(
            &app,
            &open(&app, complaint(&number, "billing")).await["id"],
            json!({ "action": "resolve", "resolution": "x",
                    "compensation": { "kind": "credit", "amount": -5, "reason": "" } }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = fields_of(&bad);
    assert!(fields.contains(&"compensation.amount") && fields.contains(&"compensation.reason"));
}

#[tokio::test]
async fn invalid_steps_and_bad_input_are_refused_clearly() {
    let app = spawn_app().await;
    let number = reader(&app, "Refused").await;
    at(&app, "2026-03-09T09:00:00Z");
    let view = open(&app, complaint(&number, "content")).await;
    let id = &view["id"];
    let closing = problem(
        step(&app, id, json!({ "action": "close" })).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        closing["detail"]
            .as_str()
            .unwrap()
            .contains("resolve it before closing")
    );
    step_ok(
        &app,
        id,
        json!({ "action": "resolve", "resolution": "explained" }),
    )
    .await;
    let twice = problem(
        step(
            &app,
            id,
            json!({ "action": "resolve", "resolution": "again" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        twice["detail"]
            .as_str()
            .unwrap()
            .contains("already resolved")
    );
    let closed = step_ok(&app, id, json!({ "action": "close" })).await;
    assert_eq!(closed["state"], "closed");
    let reopened = step_ok(
        &app,
        id,
        json!({ "action": "reopen", "note": "the reader called again" }),
    )
    .await;
    assert_eq!(reopened["state"], "responded");
    assert_eq!(reopened["reopened"], 1);

    problem(
        step(&app, id, json!({ "action": "escalate" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        step(&app, &json!(987654), json!({ "action": "close" })).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get("/api/v1/interactions/abc", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let unassignable = problem(
        step(&app, id, json!({ "action": "assign", "owner": 4242 })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(unassignable["errors"][0]["field"], "owner");

    let empty = problem(
        app.post(
            "/api/v1/interactions",
            &app.staff,
            &json!({ "kind": "complaint", "channel": "phone", "category": "billing",
                     "text": "  " }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = fields_of(&empty);
    assert_eq!(fields, ["text", "contact"]);
    problem(
        app.post(
            "/api/v1/interactions",
            &app.staff,
            &json!({ "kind": "complaint", "channel": "pigeon", "category": "billing",
                     "text": "x", "contact": "y" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.post(
            "/api/v1/interactions",
            &app.staff,
            &complaint(
                &masthead::domain::SubscriberNumber::from_sequence(9_999_999).to_string(),
                "billing",
            ),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.post(
            "/api/v1/interactions",
            &app.advertiser,
            &complaint(&number, "billing"),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get(
            "/api/v1/interactions/report?from=2026-03-31&to=2026-03-01",
            &app.staff,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.get("/api/v1/interactions/queue?limit=0", &app.staff)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn an_unidentified_contact_is_linked_to_a_subscriber_later() {
    let app = spawn_app().await;
    at(&app, "2026-03-09T09:00:00Z");
    let view = open(
        &app,
        json!({ "contact": "Mr Brown, 01632 960123", "kind": "question", "channel": "phone",
                "category": "subscription_change", "text": "Can I pause my paper?",
                "priority": "low" }),
    )
    .await;
    assert_eq!(view["subscriber"], Value::Null);
    assert_eq!(view["due"]["respond_by"], "2026-03-09T17:00:00Z");
    let id = &view["id"];
    let number = reader(&app, "Brown").await;
    let linked = step_ok(&app, id, json!({ "action": "link", "subscriber": number })).await;
    assert_eq!(linked["subscriber"], number.as_str());
    problem(
        step(&app, id, json!({ "action": "link", "subscriber": number })).await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        step(&app, id, json!({ "action": "link", "subscriber": "12345" })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let page: Value = read(&app, &format!("/api/v1/interactions?subscriber={number}")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let praise = open(
        &app,
        json!({ "subscriber": number, "kind": "praise", "channel": "letter",
                "category": "content", "text": "Lovely crossword" }),
    )
    .await;
    assert_eq!(praise["due"]["respond_by"], Value::Null);
}

/// Opens a complaint at `opened`, then answers and resolves it at the given instants.
async fn played(
    app: &TestApp,
    number: &str,
    category: &str,
    opened: &str,
    respond: Option<&str>,
    resolve: Option<&str>,
) {
    at(app, opened);
    let view = open(app, complaint(number, category)).await;
    if let Some(instant) = respond {
        at(app, instant);
        step_ok(app, &view["id"], json!({ "action": "respond" })).await;
    }
    if let Some(instant) = resolve {
        at(app, instant);
        step_ok(
            app,
            &view["id"],
            json!({ "action": "resolve", "resolution": "done" }),
        )
        .await;
    }
}

#[tokio::test]
async fn the_report_computes_the_documented_figures() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    at(&app, "2025-03-01T12:00:00Z");
    let readers = [
        reader(&app, "InTime").await,
        reader(&app, "Billing").await,
        reader(&app, "Late").await,
        reader(&app, "Loyal").await,
        reader(&app, "Leaving").await,
    ];
    // Terms ending on 4 March 2026 for all but the second reader.
    for number in [&readers[0], &readers[2], &readers[3], &readers[4]] {
        subscribe(&app, number, print_year("DAILY", "2025-03-05")).await;
    }
    at(&app, "2026-03-06T12:00:00Z");
    for number in [&readers[0], &readers[3]] {
        let renewed = app
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/subscribers/{number}/renewals"),
                &app.staff,
            )
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .expect("request");
        assert_eq!(renewed.status(), StatusCode::CREATED);
    }
    // Monday 9 March 2026, London; routine targets: respond 2 h, resolve 24 h.
    let (r1, r2, r3) = (&readers[0], &readers[1], &readers[2]);
    let mon = |t: &str| format!("2026-03-09T{t}:00Z");
    played(
        &app,
        r1,
        "missed_delivery",
        &mon("09:00"),
        Some(&mon("09:30")),
        Some(&mon("10:00")),
    )
    .await;
    played(
        &app,
        r1,
        "missed_delivery",
        &mon("09:00"),
        None,
        Some(&mon("09:10")),
    )
    .await;
    played(
        &app,
        r2,
        "billing",
        &mon("09:00"),
        Some(&mon("12:00")),
        Some("2026-03-10T09:00:00Z"),
    )
    .await;
    played(
        &app,
        r3,
        "billing",
        &mon("09:00"),
        None,
        Some("2026-03-11T14:00:00Z"),
    )
    .await;
    // A question is not a complaint and stays out of the figures.
    open(
        &app,
        json!({ "subscriber": r2, "kind": "question", "channel": "email",
                "category": "billing", "text": "When is the next invoice?" }),
    )
    .await;

    let report: Value = read(
        &app,
        "/api/v1/interactions/report?from=2026-03-01&to=2026-03-31",
    )
    .await;
    let overall = &report["overall"];
    assert_eq!(overall["complaints"], 4);
    assert_eq!(
        overall["response"],
        json!({ "met": 2, "missed": 2, "pending": 0, "percent": 50.0 })
    );
    assert_eq!(
        overall["resolution"],
        json!({ "met": 3, "missed": 1, "pending": 0, "percent": 75.0 })
    );
    // Business minutes: 30, 10, 180 and 1500 to the first response; 60, 10, 600 and 1500
    // to the resolution.
    assert_eq!(
        overall["minutes_to_first_response"],
        json!({ "count": 4, "median": 30, "p90": 1500 })
    );
    assert_eq!(
        overall["minutes_to_resolution"],
        json!({ "count": 4, "median": 60, "p90": 1500 })
    );
    // Categories in their documented order: missed delivery before billing.
    assert_eq!(report["by_category"][0]["category"], "missed_delivery");
    assert_eq!(report["by_category"][0]["resolution"]["percent"], 100.0);
    let billing = &report["by_category"][1];
    assert_eq!(billing["category"], "billing");
    assert_eq!(billing["response"]["percent"], 0.0);
    assert_eq!(billing["resolution"]["percent"], 50.0);
    assert_eq!(
        report["first_contact_resolution"],
        json!({ "count": 1, "of": 4, "percent": 25.0 })
    );
    assert_eq!(
        report["repeat_complainers"],
        json!([{ "subscriber": r1, "complaints": 2 }])
    );
    let renewal = &report["renewal"];
    assert_eq!(
        renewal["complained_resolved_in_time"],
        json!({ "count": 1, "of": 1, "percent": 100.0 })
    );
    assert_eq!(
        renewal["complained_resolved_late"],
        json!({ "count": 0, "of": 1, "percent": 0.0 })
    );
    assert_eq!(
        renewal["did_not_complain"],
        json!({ "count": 1, "of": 2, "percent": 50.0 })
    );

    // A period with nothing in it has no percentages rather than made-up ones.
    let empty: Value = read(
        &app,
        "/api/v1/interactions/report?from=2025-01-01&to=2025-01-31",
    )
    .await;
    assert_eq!(empty["overall"]["complaints"], 0);
    assert_eq!(empty["overall"]["response"]["percent"], Value::Null);
}
