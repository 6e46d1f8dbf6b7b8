//! Duplicate detection on create: email, phone, or name with postal code.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{person, problem, spawn_app};

fn address(postal_code: &str) -> Value {
    json!([{ "kind": "delivery", "lines": ["2 Mill Lane"], "postal_code": postal_code, "city": "York" }])
}

#[tokio::test]
async fn a_matching_email_phone_or_name_and_postal_code_is_a_409_with_candidates() {
    let app = spawn_app().await;
    let mut original = person("Peter", "Hall");
    original["emails"] = json!([{ "address": "peter.hall@example.org" }]);
    original["phones"] = json!([{ "number": "+44 1904 555123" }]);
    original["addresses"] = address("YO1 7HH");
    let number = app.create(original).await["number"].clone();

    for (label, body) in [
        (
            "email",
            json!({ "given_name": "P", "family_name": "Hall", "emails": [{ "address": "PETER.HALL@example.org" }] }),
        ),
        (
            "phone",
            json!({ "given_name": "P", "family_name": "H", "phones": [{ "number": "01904 555123" }] }),
        ),
        (
            "name_and_postal_code",
            json!({ "given_name": "PETER", "family_name": "hall", "addresses": address("yo17hh") }),
        ),
    ] {
        let response = app.post("/api/v1/subscribers", &app.staff, &body).await;
        let problem_body = problem(response, StatusCode::CONFLICT).await;
        assert_eq!(
            problem_body["type"], "urn:masthead:problem:possible-duplicate",
            "{label}"
        );
        assert_eq!(problem_body["candidates"][0]["number"], number, "{label}");
        assert_eq!(
            problem_body["candidates"][0]["matched_on"],
            json!([label]),
            "{label}"
        );
    }
    let list: Value = app
        .get("/api/v1/subscribers", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        list["items"].as_array().expect("items").len(),
        1,
        "refused creates wrote nothing"
    );
}

#[tokio::test]
async fn a_confirmed_duplicate_is_created_and_a_namesake_elsewhere_is_not_a_duplicate() {
    let app = spawn_app().await;
    let mut original = person("Peter", "Hall");
    original["addresses"] = address("YO1 7HH");
    app.create(original.clone()).await;

    let response = app
        .post(
            "/api/v1/subscribers?allow_duplicate=true",
            &app.staff,
            &original,
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let mut namesake = person("Peter", "Hall");
    namesake["addresses"] = address("LS1 4AP");
    app.create(namesake).await;
    problem(
        app.post(
            "/api/v1/subscribers?allow_duplicate=perhaps",
            &app.staff,
            &person("A", "B"),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}
