//! Publications, terms and one-step renewal: pricing by the list in force, loyalty,
//! idempotency, concurrent renewals, lapsed readers, holds, cancellations and auto-renewal.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};

/// A title sold in print and digital for 6 or 12 months, with a price list from each
/// `(date, 12-month print price)`; digital costs half, six months 55 %.
pub(crate) async fn publication(app: &TestApp, code: &str, lists: &[(&str, i64)]) {
    let body = json!({
        "code": code, "title": format!("The {code}"), "kind": "daily",
        "formats": ["print", "digital"], "term_months": [6, 12],
    });
    let response = app.post("/api/v1/publications", &app.admin, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    for (from, print_year) in lists {
        let prices: Vec<Value> = [("print", 1.0), ("digital", 0.5)]
            .iter()
            .flat_map(|(format, factor)| {
                [(12, 1.0), (6, 0.55)].map(|(months, share)| {
                    json!({
                        "format": format, "months": months,
                        "amount": (*print_year as f64 * factor * share) as i64,
                    })
                })
            })
            .collect();
        let response = app
            .post(
                &format!("/api/v1/publications/{code}/price-lists"),
                &app.admin,
                &json!({ "effective_from": from, "prices": prices }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

pub(crate) async fn reader(app: &TestApp, family: &str) -> String {
    let card = app.create(person("Ada", family)).await;
    card["number"].as_str().expect("number").to_owned()
}

async fn send_order(app: &TestApp, path: &str, key: &str, body: Option<&Value>) -> Response {
    let mut request = app
        .request(Method::POST, path, &app.staff)
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

/// Subscribes `number` to a title from `start`; returns the order.
pub(crate) async fn subscribe(app: &TestApp, number: &str, body: Value) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let path = format!("/api/v1/subscribers/{number}/terms");
    let response = send_order(app, &path, &key, Some(&body)).await;
    let status = response.status();
    let order: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::CREATED, "subscribe failed: {order}");
    order
}

pub(crate) fn print_year(code: &str, start: &str) -> Value {
    json!({
        "publication": code, "format": "print", "months": 12, "start": start,
        "channel": "phone", "payment_method": "direct_debit",
    })
}

pub(crate) async fn renew(
    app: &TestApp,
    number: &str,
    key: &str,
    body: Option<&Value>,
) -> Response {
    send_order(
        app,
        &format!("/api/v1/subscribers/{number}/renewals"),
        key,
        body,
    )
    .await
}

pub(crate) async fn history(app: &TestApp, number: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/subscribers/{number}/terms"), &app.staff)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn renewal_like_last_year_uses_the_price_list_in_force_and_the_loyalty_discount() {
    // Arrange: a reader of two titles since 2024; prices rise on 1 January 2025.
    let app = spawn_app().await;
    publication(
        &app,
        "DAILY",
        &[("2024-01-01", 20_000), ("2025-01-01", 24_000)],
    )
    .await;
    publication(&app, "WEEKLY", &[("2024-01-01", 8_000)]).await;
    let number = reader(&app, "Loyal").await;
    app.set_today("2024-01-01");
    let first = subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    assert_eq!(first["terms"][0]["list_price"]["amount"], 20_000);
    assert_eq!(first["terms"][0]["end"], "2024-12-31");
    subscribe(&app, &number, print_year("WEEKLY", "2024-01-01")).await;

    // Act: on 15 December the desk renews with nothing but a key.
    app.set_today("2024-12-15");
    let response = renew(&app, &number, "renew-2025", None).await;

    // Assert: both titles continue on 1 January at the 2025 prices, less 2 % for a year.
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("json");
    assert_eq!(order["kind"], "renewal");
    let terms = order["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 2);
    let daily = terms
        .iter()
        .find(|t| t["publication"] == "DAILY")
        .expect("daily");
    assert_eq!(daily["start"], "2025-01-01");
    assert_eq!(daily["end"], "2025-12-31");
    assert_eq!(daily["renews"], first["terms"][0]["id"]);
    assert_eq!(
        daily["list_price"],
        json!({ "amount": 24_000, "currency": "GBP" })
    );
    assert_eq!(daily["discounts"][0]["kind"], "loyalty");
    assert_eq!(daily["discounts"][0]["amount"]["amount"], 480);
    let reason = daily["discounts"][0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("1 full year of tenure since 2024-01-01"),
        "{reason}"
    );
    assert_eq!(daily["price_paid"]["amount"], 23_520);
    assert_eq!(order["total"]["list_price"]["amount"], 32_000);
    assert_eq!(order["total"]["discounts"]["amount"], 640);
    assert_eq!(order["total"]["total"]["amount"], 31_360);
}

#[tokio::test]
async fn renewal_with_changes_adds_drops_and_switches_format() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    publication(&app, "WEEKLY", &[("2024-01-01", 8_000)]).await;
    publication(&app, "MAG", &[("2024-01-01", 6_000)]).await;
    let number = reader(&app, "Changer").await;
    app.set_today("2024-06-01");
    subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    subscribe(&app, &number, print_year("WEEKLY", "2024-01-01")).await;
    app.set_today("2024-12-20");

    let changes = json!({
        "drop": ["WEEKLY"],
        "change": [{ "publication": "DAILY", "format": "digital", "months": 6 }],
        "add": [{ "publication": "MAG", "format": "print", "months": 12 }],
    });
    let response = renew(&app, &number, "k1", Some(&changes)).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("json");
    let summary: Vec<(String, String, i64, String)> = order["terms"]
        .as_array()
        .expect("terms")
        .iter()
        .map(|t| {
            (
                t["publication"].as_str().unwrap_or("").to_owned(),
                t["format"].as_str().unwrap_or("").to_owned(),
                t["months"].as_i64().unwrap_or(0),
                t["start"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(summary.contains(&("DAILY".into(), "digital".into(), 6, "2025-01-01".into())));
    assert!(summary.contains(&("MAG".into(), "print".into(), 12, "2024-12-20".into())));
    assert_eq!(summary.len(), 2);
}

#[tokio::test]
async fn bad_renewal_changes_are_reported_field_by_field_and_nothing_is_written() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Typo").await;
    app.set_today("2024-06-01");
    subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;

    let changes = json!({
        "drop": ["WEEKLY"],
        "add": [{ "publication": "NOPE", "format": "print", "months": 12 }],
        "change": [{ "publication": "DAILY", "months": 7 }],
    });
    let body = problem(
        renew(&app, &number, "bad", Some(&changes)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["drop[0]", "change[0]", "add[0]"]);
    let history = history(&app, &number).await;
    assert_eq!(
        history["titles"][0]["terms"].as_array().map(Vec::len),
        Some(1)
    );
    // An unknown field is named, too.
    let body = problem(
        renew(&app, &number, "bad2", Some(&json!({ "titles": [] }))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().unwrap_or("").contains("titles"));
}

#[tokio::test]
async fn renewal_with_same_idempotency_key_creates_one_term() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Retry").await;
    app.set_today("2024-06-01");
    subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    app.set_today("2024-12-01");

    let first = renew(&app, &number, "same-key", None).await;
    let second = renew(&app, &number, "same-key", None).await;

    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let (first, second): (Value, Value) = (
        first.json().await.expect("json"),
        second.json().await.expect("json"),
    );
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["terms"], second["terms"]);
    let history = history(&app, &number).await;
    assert_eq!(
        history["titles"][0]["terms"].as_array().map(Vec::len),
        Some(2)
    );
    // The same key with another request is refused rather than answered with the old order.
    let other = json!({ "auto_renew": true });
    let body = problem(
        renew(&app, &number, "same-key", Some(&other)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["type"], "urn:masthead:problem:idempotency-key-reused");
}

/// Sends `body` exactly as written, so that its layout is what the test says it is.
async fn send_raw(app: &TestApp, path: &str, key: &str, body: &str) -> Response {
    app.request(Method::POST, path, &app.staff)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_retry_with_its_json_laid_out_differently_replays_the_order() {
    // Arrange: a reader and one subscription placed under a key.
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Layout").await;
    app.set_today("2024-06-01");
    let terms = format!("/api/v1/subscribers/{number}/terms");
    let first = send_raw(
        &app,
        &terms,
        "layout-key",
        r#"{"publication":"DAILY","format":"print","months":12,"start":"2024-06-01",
            "channel":"phone","payment_method":"direct_debit",
            "discounts":[{"percent":10,"reason":"loyal"}]}"#,
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");

    // Act: the same request with its keys in another order, other whitespace, and a number
    // spelt with a decimal point.
    let retry = send_raw(
        &app,
        &terms,
        "layout-key",
        "{ \"payment_method\" : \"direct_debit\", \"channel\": \"phone\",\n\t\"start\": \"2024-06-01\",\
         \"discounts\": [ { \"reason\": \"loyal\", \"percent\": 10.0 } ],\
         \"months\": 12, \"format\": \"print\", \"publication\": \"DAILY\" }",
    )
    .await;

    // Assert: the first order comes back, and nothing new was written.
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let retry: Value = retry.json().await.expect("json");
    assert_eq!(retry["id"], first["id"]);
    let history = history(&app, &number).await;
    assert_eq!(
        history["titles"][0]["terms"].as_array().map(Vec::len),
        Some(1)
    );

    // A different body under the same key is refused, and so is the key on another route.
    let other = send_raw(
        &app,
        &terms,
        "layout-key",
        r#"{"publication":"DAILY","format":"print","months":6,"start":"2024-06-01",
            "channel":"phone","payment_method":"direct_debit",
            "discounts":[{"percent":10,"reason":"loyal"}]}"#,
    )
    .await;
    let body = problem(other, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["type"], "urn:masthead:problem:idempotency-key-reused");
    let renewal = renew(&app, &number, "layout-key", None).await;
    let body = problem(renewal, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["type"], "urn:masthead:problem:idempotency-key-reused");

    // A renewal's body is matched the same way.
    app.set_today("2025-05-20");
    let renewals = format!("/api/v1/subscribers/{number}/renewals");
    let renewed = send_raw(
        &app,
        &renewals,
        "renew-key",
        r#"{"auto_renew":true,"channel":"web"}"#,
    )
    .await;
    assert_eq!(renewed.status(), StatusCode::CREATED);
    let again = send_raw(
        &app,
        &renewals,
        "renew-key",
        "{\n  \"channel\": \"web\",\n  \"auto_renew\": true\n}\n",
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(again.headers().get("idempotent-replayed").is_some());
    let changed = send_raw(
        &app,
        &renewals,
        "renew-key",
        r#"{"auto_renew":false,"channel":"web"}"#,
    )
    .await;
    let body = problem(changed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["type"], "urn:masthead:problem:idempotency-key-reused");
}

#[tokio::test]
async fn concurrent_double_renewal_creates_exactly_one() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Double").await;
    app.set_today("2024-06-01");
    subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    app.set_today("2024-12-01");

    // Two desks click at once, each with its own key; then one client retries in parallel.
    let clicks = futures::future::join_all(
        (0..6).map(|i| renew(&app, &number, if i < 3 { "desk-a" } else { "desk-b" }, None)),
    )
    .await;

    let mut orders = std::collections::BTreeSet::new();
    let mut refused = 0;
    for response in clicks {
        match response.status() {
            StatusCode::CREATED => {
                let order: Value = response.json().await.expect("json");
                orders.insert(order["id"].as_i64().expect("id"));
            }
            // Racing the winner (409), or arriving after it ("already renewed", 422).
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(orders.len(), 1, "exactly one renewal order");
    // Every click but the winner may be refused: a retry that overlaps the winning request
    // under the same key is told to retry (409) rather than waiting for it.
    assert!((1..=5).contains(&refused), "{refused} refused");
    let history = history(&app, &number).await;
    assert_eq!(
        history["titles"][0]["terms"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn a_lapsed_reader_renews_from_today_and_tenure_restarts() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2015-01-01", 20_000)]).await;
    let number = reader(&app, "Lapsed").await;
    app.set_today("2015-01-01");
    for year in 2015..2020 {
        let start = format!("{year}-01-01");
        subscribe(&app, &number, print_year("DAILY", &start)).await;
    }
    app.set_today("2021-03-10");
    let before = history(&app, &number).await;
    assert_eq!(before["status"], "lapsed");
    assert_eq!(before["tenure"]["days"], 0);
    assert_eq!(before["first_subscribed"], "2015-01-01");

    let response = renew(&app, &number, "win-back", None).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("json");
    let term = &order["terms"][0];
    assert_eq!(term["start"], "2021-03-10");
    assert_eq!(term["discounts"], json!([]), "no loyalty after a lapse");
    let after = history(&app, &number).await;
    assert_eq!(after["status"], "active");
    assert_eq!(after["tenure"]["since"], "2021-03-10");
    assert_eq!(after["first_subscribed"], "2015-01-01");
}

#[tokio::test]
async fn a_renewal_inside_grace_keeps_tenure_and_one_day_late_does_not() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2010-01-01", 10_000)]).await;
    let on_time = reader(&app, "Ontime").await;
    let late = reader(&app, "Late").await;
    app.set_today("2010-01-01");
    for number in [&on_time, &late] {
        subscribe(&app, number, print_year("DAILY", "2010-01-01")).await;
        for year in 2011..2016 {
            let body = json!({ "add": [], "start": null });
            app.set_today(&format!("{year}-01-01"));
            let response = renew(&app, number, &format!("{number}-{year}"), Some(&body)).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    }
    // The last term ends 2015-12-31; day 29 without service is still grace, day 30 is not.
    app.set_today("2016-01-30");
    let kept: Value = renew(&app, &on_time, "kept", None)
        .await
        .json()
        .await
        .expect("json");
    app.set_today("2016-01-31");
    let lost: Value = renew(&app, &late, "lost", None)
        .await
        .json()
        .await
        .expect("json");

    let loyalty = |order: &Value| order["terms"][0]["discounts"][0]["reason"].clone();
    assert!(
        loyalty(&kept)
            .as_str()
            .is_some_and(|r| r.contains("6 full years") && r.ends_with("= 10% (the maximum)")),
        "{kept}"
    );
    assert_eq!(kept["terms"][0]["start"], "2016-01-01");
    assert_eq!(lost["terms"][0]["start"], "2016-01-31");
    assert_eq!(lost["terms"][0]["discounts"], json!([]));
}

#[tokio::test]
async fn a_vacation_hold_extends_the_print_term_by_the_days_held() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Holiday").await;
    app.set_today("2024-01-01");
    let order = subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    let term = order["terms"][0]["id"].as_i64().expect("id");
    let holds = format!("/api/v1/subscribers/{number}/terms/{term}/holds");

    let response = app
        .post(
            &holds,
            &app.staff,
            &json!({ "from": "2024-07-01", "to": "2024-07-14", "reason": "Holiday" }),
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let held: Value = response.json().await.expect("json");
    assert_eq!(held["end"], "2025-01-14");
    assert_eq!(held["extension_days"], 14);
    assert_eq!(held["holds"][0]["from"], "2024-07-01");
    // Overlapping, inverted and out-of-term holds are refused and change nothing.
    for bad in [
        json!({ "from": "2024-07-10", "to": "2024-07-20" }),
        json!({ "from": "2024-08-10", "to": "2024-08-01" }),
        json!({ "from": "2023-12-20", "to": "2024-01-05" }),
    ] {
        problem(
            app.post(&holds, &app.staff, &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let history = history(&app, &number).await;
    assert_eq!(history["titles"][0]["terms"][0]["end"], "2025-01-14");
    // The renewal starts after the extended end.
    app.set_today("2024-12-20");
    let renewal: Value = renew(&app, &number, "after-hold", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(renewal["terms"][0]["start"], "2025-01-15");
    // A renewed term can no longer be extended.
    let body = problem(
        app.post(
            &holds,
            &app.staff,
            &json!({ "from": "2024-12-24", "to": "2024-12-26" }),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("already been renewed")
    );
}

#[tokio::test]
async fn a_digital_term_cannot_be_held() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Digital").await;
    app.set_today("2024-01-01");
    let mut body = print_year("DAILY", "2024-01-01");
    body["format"] = json!("digital");
    let order = subscribe(&app, &number, body).await;
    let term = order["terms"][0]["id"].as_i64().expect("id");

    let body = problem(
        app.post(
            &format!("/api/v1/subscribers/{number}/terms/{term}/holds"),
            &app.staff,
            &json!({ "from": "2024-07-01", "to": "2024-07-14" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().unwrap_or("").contains("digital"));
}

#[tokio::test]
async fn cancellation_records_reason_and_refund_and_ends_service() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Leaving").await;
    app.set_today("2024-01-01");
    let mut body = print_year("DAILY", "2024-01-01");
    body["auto_renew"] = json!(true);
    let order = subscribe(&app, &number, body).await;
    let term = order["terms"][0]["id"].as_i64().expect("id");
    let cancel = format!("/api/v1/subscribers/{number}/terms/{term}/cancellation");

    // A refund above the price and a date outside the term are refused.
    let bad = json!({ "effective": "2026-01-01", "reason": "", "refund": 50_000 });
    let body = problem(
        app.post(&cancel, &app.staff, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(3));

    let good = json!({ "effective": "2024-07-01", "reason": "Moved abroad", "refund": 10_000 });
    let response = app.post(&cancel, &app.staff, &good).await;

    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.expect("json");
    assert_eq!(cancelled["cancellation"]["reason"], "Moved abroad");
    assert_eq!(cancelled["cancellation"]["refund"]["amount"], 10_000);
    assert_eq!(cancelled["auto_renew"], false);
    problem(
        app.post(&cancel, &app.staff, &good).await,
        StatusCode::CONFLICT,
    )
    .await;
    app.set_today("2024-07-02");
    let history = history(&app, &number).await;
    assert_eq!(history["status"], "cancelled");
    assert_eq!(history["lifetime_revenue"]["amount"], 10_000);
    // A subject access request includes the terms.
    let export: Value = app
        .get(&format!("/api/v1/subscribers/{number}/export"), &app.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(export["terms"][0]["cancellation"]["reason"], "Moved abroad");
    // Nothing is left to renew "like last year".
    let body = problem(
        renew(&app, &number, "after-cancel", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("nothing to renew")
    );
}

#[tokio::test]
async fn history_groups_titles_newest_first_with_status_tenure_and_share_of_wallet() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2020-01-01", 20_000)]).await;
    publication(&app, "WEEKLY", &[("2020-01-01", 8_000)]).await;
    publication(&app, "MAG", &[("2020-01-01", 6_000)]).await;
    let number = reader(&app, "History").await;
    app.set_today("2020-01-01");
    subscribe(&app, &number, print_year("WEEKLY", "2020-01-01")).await;
    subscribe(&app, &number, print_year("DAILY", "2022-01-01")).await;
    subscribe(&app, &number, print_year("DAILY", "2023-01-01")).await;
    app.set_today("2023-06-01");

    let history = history(&app, &number).await;

    assert_eq!(history["status"], "active");
    assert_eq!(
        history["share_of_wallet"],
        json!({ "held": 1, "offered": 3, "percent": 33 })
    );
    assert_eq!(history["tenure"]["since"], "2022-01-01");
    assert_eq!(history["first_subscribed"], "2020-01-01");
    assert_eq!(history["titles"][0]["publication"], "DAILY");
    assert_eq!(history["titles"][0]["status"], "active");
    assert_eq!(history["titles"][0]["terms"][0]["start"], "2023-01-01");
    assert_eq!(history["titles"][0]["terms"][1]["start"], "2022-01-01");
    assert_eq!(history["titles"][1]["publication"], "WEEKLY");
    assert_eq!(history["titles"][1]["status"], "lapsed");
    let paid: i64 = 8_000 + 20_000 + 19_600;
    assert_eq!(history["lifetime_revenue"]["amount"], paid);
}

#[tokio::test]
async fn orders_need_an_idempotency_key_and_a_price_list_in_force() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Keyless").await;
    let path = format!("/api/v1/subscribers/{number}/terms");

    let body = problem(
        app.post(&path, &app.staff, &print_year("DAILY", "2024-01-01"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["type"], "urn:masthead:problem:missing-idempotency-key");
    let response = send_order(
        &app,
        &path,
        "early",
        Some(&print_year("DAILY", "2023-06-01")),
    )
    .await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("no price list in force on 2023-06-01")
    );
    let response = send_order(
        &app,
        "/api/v1/subscribers/1000007/terms",
        "ghost",
        Some(&print_year("DAILY", "2024-01-01")),
    )
    .await;
    assert!(matches!(
        response.status(),
        StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
    ));
}

#[tokio::test]
async fn the_catalogue_refuses_bad_titles_and_incomplete_price_lists() {
    let app = spawn_app().await;
    let bad =
        json!({ "code": "x", "title": "", "kind": "daily", "formats": [], "term_months": [0] });
    let body = problem(
        app.post("/api/v1/publications", &app.admin, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("publication code")
    );
    let bad =
        json!({ "code": "DAILY", "title": "", "kind": "daily", "formats": [], "term_months": [0] });
    let body = problem(
        app.post("/api/v1/publications", &app.admin, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(3));
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let again = json!({ "code": "daily", "title": "Again", "kind": "daily", "formats": ["print"], "term_months": [12] });
    problem(
        app.post("/api/v1/publications", &app.admin, &again).await,
        StatusCode::CONFLICT,
    )
    .await;

    let lists = "/api/v1/publications/DAILY/price-lists";
    let partial = json!({ "effective_from": "2025-01-01", "prices": [{ "format": "print", "months": 12, "amount": 1 }] });
    let body = problem(
        app.post(lists, &app.admin, &partial).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(3));
    let duplicate = app.get("/api/v1/publications/DAILY", &app.staff).await;
    let current: Value = duplicate.json().await.expect("json");
    let same_day = json!({ "effective_from": "2024-01-01", "prices": current["price_lists"][0]["prices"]
        .as_array().expect("prices").iter()
        .map(|p| json!({ "format": p["format"], "months": p["months"], "amount": p["price"]["amount"] }))
        .collect::<Vec<_>>() });
    problem(
        app.post(lists, &app.admin, &same_day).await,
        StatusCode::CONFLICT,
    )
    .await;
    problem(
        app.get("/api/v1/publications/NOPE", &app.staff).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn auto_renewal_renews_each_due_term_once() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let due = reader(&app, "Due").await;
    let later = reader(&app, "Later").await;
    let manual = reader(&app, "Manual").await;
    app.set_today("2024-01-01");
    for (number, start, auto) in [
        (&due, "2024-01-01", true),
        (&later, "2024-03-01", true),
        (&manual, "2024-01-01", false),
    ] {
        let mut body = print_year("DAILY", start);
        body["auto_renew"] = json!(auto);
        subscribe(&app, number, body).await;
    }
    app.set_today("2024-12-20");

    let first = run_auto_renewal(&app).await;
    let second = run_auto_renewal(&app).await;

    assert_eq!(first["renewed"], 1, "{first}");
    assert_eq!(second["renewed"], 0, "{second}");
    let renewed = history(&app, &due).await;
    let terms = renewed["titles"][0]["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 2);
    assert_eq!(terms[0]["start"], "2025-01-01");
    assert_eq!(terms[0]["auto_renew"], true);
    for number in [&later, &manual] {
        let untouched = history(&app, number).await;
        assert_eq!(
            untouched["titles"][0]["terms"].as_array().map(Vec::len),
            Some(1)
        );
    }
    let body = problem(
        app.post(
            "/api/v1/renewals/auto",
            &app.admin,
            &json!({ "within_days": 0 }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "within_days");
}

async fn run_auto_renewal(app: &TestApp) -> Value {
    let body = json!({ "within_days": 14 });
    let response = app
        .post("/api/v1/renewals/auto?wait=20", &app.admin, &body)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test]
async fn turning_auto_renew_off_keeps_the_term_out_of_the_run() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    let number = reader(&app, "Optout").await;
    app.set_today("2024-01-01");
    let mut body = print_year("DAILY", "2024-01-01");
    body["auto_renew"] = json!(true);
    let order = subscribe(&app, &number, body).await;
    let term = order["terms"][0]["id"].as_i64().expect("id");

    let response = app
        .request(
            Method::PATCH,
            &format!("/api/v1/subscribers/{number}/terms/{term}"),
            &app.staff,
        )
        .json(&json!({ "auto_renew": false }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    app.set_today("2024-12-25");
    let report: Value = app
        .post("/api/v1/renewals/auto?wait=20", &app.admin, &json!({}))
        .await
        .json()
        .await
        .expect("json");

    assert_eq!(report["renewed"], 0);
    problem(
        app.request(
            Method::PATCH,
            &format!("/api/v1/subscribers/{number}/terms/999999"),
            &app.staff,
        )
        .json(&json!({ "auto_renew": true }))
        .send()
        .await
        .expect("request"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_merge_brings_the_renewal_history_along() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2020-01-01", 20_000)]).await;
    let kept = reader(&app, "Kept").await;
    let card = app
        .post(
            "/api/v1/subscribers?allow_duplicate=true",
            &app.staff,
            &person("Ada", "Kept"),
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    let source = card["number"].as_str().expect("number").to_owned();
    app.set_today("2020-01-01");
    subscribe(&app, &source, print_year("DAILY", "2020-01-01")).await;
    subscribe(&app, &kept, print_year("DAILY", "2021-01-01")).await;

    let response = app
        .post(
            &format!("/api/v1/subscribers/{kept}/merge"),
            &app.staff,
            &json!({ "source": source }),
        )
        .await;

    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap_or_default()
    );
    app.set_today("2021-06-01");
    let history = history(&app, &kept).await;
    assert_eq!(
        history["titles"][0]["terms"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(history["tenure"]["since"], "2020-01-01");
}

#[tokio::test]
async fn a_discontinued_title_is_no_longer_sold_or_renewed_and_leaves_the_wallet() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2024-01-01", 20_000)]).await;
    publication(&app, "WEEKLY", &[("2024-01-01", 8_000)]).await;
    let number = reader(&app, "Discontinued").await;
    app.set_today("2024-01-01");
    subscribe(&app, &number, print_year("DAILY", "2024-01-01")).await;
    subscribe(&app, &number, print_year("WEEKLY", "2024-01-01")).await;

    let response = app
        .request(Method::PATCH, "/api/v1/publications/WEEKLY", &app.admin)
        .json(&json!({ "on_sale": false, "title": "The Weekly (closed)" }))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["on_sale"], false);
    assert_eq!(updated["title"], "The Weekly (closed)");
    let history = history(&app, &number).await;
    assert_eq!(
        history["share_of_wallet"],
        json!({ "held": 1, "offered": 1, "percent": 100 })
    );
    app.set_today("2024-12-01");
    let body = problem(
        renew(&app, &number, "k1", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("WEEKLY is no longer sold")
    );
    let dropped = renew(&app, &number, "k2", Some(&json!({ "drop": ["WEEKLY"] }))).await;
    assert_eq!(dropped.status(), StatusCode::CREATED);
    let path = format!("/api/v1/subscribers/{number}/terms");
    let response = send_order(&app, &path, "k3", Some(&print_year("WEEKLY", "2025-01-01"))).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"][0]["field"], "publication");
    let response = app
        .request(Method::PATCH, "/api/v1/publications/WEEKLY", &app.admin)
        .json(&json!({ "formats": ["digital"] }))
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}
