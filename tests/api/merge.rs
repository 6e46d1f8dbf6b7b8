//! Merging a duplicate into the subscriber that stays.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{person, problem, spawn_app};

#[tokio::test]
async fn a_merge_folds_contacts_and_history_and_the_old_number_redirects() {
    // Arrange
    let app = spawn_app().await;
    let mut kept = person("Anna", "Smith");
    kept["emails"] = json!([{ "address": "anna@example.com" }]);
    kept["consents"] = json!([{ "purpose": "marketing_post", "granted": true, "channel": "post" }]);
    let kept = app.create(kept).await;
    let mut duplicate =
        json!({ "given_name": "Ann", "family_name": "Smyth", "birth_date": "1970-02-03" });
    duplicate["phones"] = json!([{ "number": "+44 20 7946 0000" }]);
    duplicate["consents"] =
        json!([{ "purpose": "marketing_email", "granted": true, "channel": "web" }]);
    let duplicate = app.create(duplicate).await;
    let (kept_no, dup_no) = (
        kept["number"].as_str().expect("n"),
        duplicate["number"].as_str().expect("n"),
    );

    // Act
    let response = app
        .post(
            &format!("/api/v1/subscribers/{kept_no}/merge"),
            &app.staff,
            &json!({ "source": dup_no }),
        )
        .await;

    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    let merged: Value = response.json().await.expect("json");
    assert_eq!(merged["family_name"], "Smith");
    assert_eq!(merged["birth_date"], "1970-02-03");
    assert_eq!(merged["phones"][0]["number"], "+442079460000");
    assert_eq!(merged["consents"]["marketing_email"]["granted"], true);
    assert_eq!(merged["consents"]["marketing_post"]["granted"], true);

    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/subscribers/{kept_no}/consents"),
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(history.len(), 2, "the duplicate's consent history followed");

    let old = app
        .get(&format!("/api/v1/subscribers/{dup_no}"), &app.staff)
        .await;
    assert_eq!(
        old.headers()["location"],
        format!("/api/v1/subscribers/{kept_no}").as_str()
    );
    let body = problem(old, StatusCode::PERMANENT_REDIRECT).await;
    assert_eq!(body["type"], "urn:masthead:problem:merged");

    let hits = app.search(dup_no).await;
    assert_eq!(
        hits[0]["number"], kept_no,
        "the old number finds the kept card"
    );
    assert_eq!(
        app.search("smyth").await.len(),
        0,
        "the duplicate's own name is gone"
    );
    assert_eq!(app.search("+44 20 7946 0000").await[0]["number"], kept_no);
}

#[tokio::test]
async fn merges_that_make_no_sense_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let a = app.create(person("Anna", "Smith")).await;
    let b = app.create(person("Bob", "Smith")).await;
    let (a_no, b_no) = (
        a["number"].as_str().expect("n"),
        b["number"].as_str().expect("n"),
    );
    let merge = |target: &str| format!("/api/v1/subscribers/{target}/merge");

    problem(
        app.post(&merge(a_no), &app.staff, &json!({ "source": a_no }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.post(&merge(a_no), &app.staff, &json!({ "source": "12a4" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let nobody = masthead::domain::SubscriberNumber::from_sequence(8_888_888).to_string();
    problem(
        app.post(&merge(a_no), &app.staff, &json!({ "source": nobody }))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let stale = app
        .request(reqwest::Method::POST, &merge(a_no), &app.staff)
        .header("If-Match", "\"7\"")
        .json(&json!({ "source": b_no }))
        .send()
        .await
        .expect("request");
    problem(stale, StatusCode::CONFLICT).await;
    assert_eq!(app.card(b_no).await["status"], "active");

    assert_eq!(
        app.post(&merge(a_no), &app.staff, &json!({ "source": b_no }))
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        app.post(&merge(a_no), &app.staff, &json!({ "source": b_no }))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let into_merged = app
        .post(&merge(b_no), &app.staff, &json!({ "source": a_no }))
        .await;
    assert_eq!(into_merged.status(), StatusCode::PERMANENT_REDIRECT);
}

#[tokio::test]
async fn a_chain_of_merges_leads_to_the_last_card() {
    let app = spawn_app().await;
    let a = app.create(person("A", "Chain")).await["number"]
        .as_str()
        .expect("n")
        .to_owned();
    let b = app.create(person("B", "Chain")).await["number"]
        .as_str()
        .expect("n")
        .to_owned();
    let c = app.create(person("C", "Chain")).await["number"]
        .as_str()
        .expect("n")
        .to_owned();
    app.post(
        &format!("/api/v1/subscribers/{b}/merge"),
        &app.staff,
        &json!({ "source": a }),
    )
    .await;
    app.post(
        &format!("/api/v1/subscribers/{c}/merge"),
        &app.staff,
        &json!({ "source": b }),
    )
    .await;
    let old = app
        .get(&format!("/api/v1/subscribers/{a}"), &app.staff)
        .await;
    assert_eq!(
        old.headers()["location"],
        format!("/api/v1/subscribers/{c}").as_str()
    );
}
