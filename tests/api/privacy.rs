//! Privacy: export of everything held, erasure, and the audit log of reads and changes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{person, problem, spawn_app};

#[tokio::test]
async fn an_export_holds_the_card_the_consents_and_who_accessed_it() {
    let app = spawn_app().await;
    let mut body = person("Erika", "Mustermann");
    body["consents"] =
        json!([{ "purpose": "marketing_phone", "granted": true, "channel": "phone" }]);
    let card = app.create(body).await;
    let number = card["number"].as_str().expect("number");
    app.card(number).await;

    let response = app
        .get(&format!("/api/v1/subscribers/{number}/export"), &app.admin)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .contains(number)
    );
    let export: Value = response.json().await.expect("json");
    assert_eq!(export["subscriber"]["family_name"], "Mustermann");
    assert_eq!(export["consent_history"][0]["purpose"], "marketing_phone");
    assert_eq!(export["terms"], serde_json::json!([]));
    let actions: Vec<&str> = export["access_log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert!(actions.contains(&"subscriber.create"));
    assert!(actions.contains(&"subscriber.read"));
    assert!(actions.contains(&"subscriber.export"));
    problem(
        app.get(&format!("/api/v1/subscribers/{number}/export"), &app.staff)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn erasure_removes_personal_data_but_keeps_the_number() {
    let app = spawn_app().await;
    let mut body = person("Erika", "Mustermann");
    body["emails"] = json!([{ "address": "erika@example.de" }]);
    body["birth_date"] = json!("1964-08-12");
    body["addresses"] = json!([{ "kind": "delivery", "lines": ["Heidestraße 17"], "postal_code": "51147", "city": "Köln", "region": "NRW", "country": "DE" }]);
    body["consents"] = json!([{ "purpose": "marketing_email", "granted": true, "channel": "web", "note": "newsletter form, erika@example.de" }]);
    let card = app.create(body).await;
    let number = card["number"].as_str().expect("number");
    let path = format!("/api/v1/subscribers/{number}/erase");

    problem(
        app.post(&path, &app.staff, &json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let response = app.post(&path, &app.admin, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);

    let erased = app.card(number).await;
    assert_eq!(erased["number"], number);
    assert_eq!(erased["status"], "erased");
    let text = erased.to_string();
    for personal in [
        "Erika",
        "Mustermann",
        "erika@",
        "Heidestraße",
        "51147",
        // The birth date, as a date: the year alone can turn up in a timestamp's nanoseconds.
        "1964-08",
    ] {
        assert!(
            !text.contains(personal),
            "{personal} survived erasure: {text}"
        );
    }
    assert!(app.search("mustermann").await.is_empty());
    assert!(app.search("erika@example.de").await.is_empty());
    let history = app
        .get(
            &format!("/api/v1/subscribers/{number}/consents"),
            &app.staff,
        )
        .await
        .text()
        .await
        .expect("text");
    assert!(
        !history.contains("newsletter form"),
        "consent notes are erased: {history}"
    );
    assert!(
        history.contains("marketing_email"),
        "the anonymous consent history stays"
    );

    let patched = app
        .patch(
            &format!("/api/v1/subscribers/{number}"),
            &app.staff,
            2,
            &json!({ "family_name": "Back" }),
        )
        .await;
    problem(patched, StatusCode::CONFLICT).await;
    problem(
        app.post(&path, &app.admin, &json!({})).await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn the_audit_log_names_who_read_and_changed_personal_data() {
    let app = spawn_app().await;
    let card = app.create(person("Audit", "Trail")).await;
    let number = card["number"].as_str().expect("number");
    // The log is in the order things happened: the read, a minute later the change.
    let start = chrono::Utc::now();
    app.clock.set(start);
    app.card(number).await;
    app.clock.set(start + chrono::Duration::minutes(1));
    app.patch(
        &format!("/api/v1/subscribers/{number}"),
        &app.staff,
        1,
        &json!({ "given_name": "Audrey" }),
    )
    .await;
    app.search("trail").await;

    let log: Value = app
        .get(&format!("/api/v1/audit?subscriber={number}"), &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let entries = log["items"].as_array().expect("items");
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["subscriber.update", "subscriber.read", "subscriber.create"]
    );
    assert!(
        entries
            .iter()
            .all(|e| e["actor"]["name"] == "reception desk" && e["actor"]["role"] == "staff")
    );
    assert_eq!(entries[0]["detail"]["fields"], json!(["given_name"]));
    assert!(
        !log.to_string().contains("Audrey"),
        "the audit log holds no personal values"
    );

    let searches: Value = app
        .get("/api/v1/audit?action=subscriber.search", &app.admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(searches["items"][0]["detail"]["results"], 1);
    assert!(
        !searches.to_string().contains("trail"),
        "search terms are not logged"
    );

    problem(
        app.get("/api/v1/audit", &app.staff).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get("/api/v1/audit?subscriber=123", &app.admin).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}
