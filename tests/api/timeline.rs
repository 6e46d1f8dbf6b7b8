//! The timeline: one chronological, filterable, paginated view of a subscriber.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};
use crate::renewals::{print_year, publication, subscribe};

async fn timeline(app: &TestApp, number: &str, query: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/subscribers/{number}/timeline{query}"),
            &app.staff,
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "timeline failed: {body}");
    body
}

fn kinds(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test]
async fn the_timeline_shows_everything_in_order_filtered_and_paged() {
    let app = spawn_app().await;
    publication(&app, "DAILY", &[("2025-01-01", 20_000)]).await;
    app.clock.set("2026-03-09T08:00:00Z".parse().unwrap());
    let card = app.create(person("Tilly", "Line")).await;
    let number = card["number"].as_str().expect("number").to_owned();
    let order = subscribe(&app, &number, print_year("DAILY", "2026-03-09")).await;
    let term = order["terms"][0]["id"].clone();
    app.clock.set("2026-03-09T09:00:00Z".parse().unwrap());
    let consent = app
        .post(
            &format!("/api/v1/subscribers/{number}/consents"),
            &app.staff,
            &json!({ "changes": [{ "purpose": "marketing_email", "granted": true,
                                  "channel": "phone" }] }),
        )
        .await;
    assert_eq!(consent.status(), StatusCode::OK);
    app.clock.set("2026-03-09T10:00:00Z".parse().unwrap());
    let opened: Value = app
        .post(
            "/api/v1/interactions",
            &app.staff,
            &json!({ "subscriber": number, "kind": "complaint", "channel": "email",
                     "category": "damaged_copy", "text": "Soaked through",
                     "resolution": { "resolution": "Sent a new copy",
                                     "compensation": { "kind": "extension", "term": term,
                                                       "days": 2, "reason": "wet paper" } } }),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(opened["state"], "resolved");
    let version = app.card(&number).await["version"]
        .as_i64()
        .expect("version");
    let renamed = app
        .patch(
            &format!("/api/v1/subscribers/{number}"),
            &app.staff,
            version,
            &json!({ "given_name": "Matilda" }),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);

    let all = timeline(&app, &number, "").await;
    let seen = kinds(&all);
    for kind in ["term", "interaction", "compensation", "consent", "profile"] {
        assert!(seen.iter().any(|k| k == kind), "no {kind} in {seen:?}");
    }
    let times: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| {
        let parse = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        parse(b).cmp(&parse(a))
    });
    assert_eq!(times, sorted, "newest first");
    // Consent and profile changes are dated by the service's clock, like everything else.
    let at_of = |kind: &str| {
        let entry = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"));
        entry["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    assert_eq!(
        at_of("consent"),
        "2026-03-09T09:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(
        at_of("profile"),
        "2026-03-09T10:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(all["next_cursor"], Value::Null);
    let opened_entry = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail"]["action"] == "opened")
        .expect("the opening step");
    assert!(
        opened_entry["summary"]
            .as_str()
            .unwrap()
            .contains("damaged_copy"),
        "{opened_entry}"
    );

    // Filtered by kind.
    let only = timeline(&app, &number, "?kind=interaction,compensation").await;
    let mut only_kinds = kinds(&only);
    only_kinds.dedup();
    assert!(
        only_kinds
            .iter()
            .all(|k| k == "interaction" || k == "compensation")
    );
    assert_eq!(kinds(&only).len(), 3, "opened, resolved, and the extension");

    // Paged two at a time: the same entries, each once, in the same order.
    let mut paged = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = timeline(&app, &number, &query).await;
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all["items"].as_array().unwrap().clone());

    problem(
        app.get(
            &format!("/api/v1/subscribers/{number}/timeline?kind=tiers"),
            &app.staff,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get(
            &format!("/api/v1/subscribers/{number}/timeline?cursor=garbage"),
            &app.staff,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get(
            &format!("/api/v1/subscribers/{number}/timeline"),
            &app.advertiser,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let unused = masthead::domain::SubscriberNumber::from_sequence(9_999_999).to_string();
    problem(
        app.get(
            &format!("/api/v1/subscribers/{unused}/timeline"),
            &app.staff,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
