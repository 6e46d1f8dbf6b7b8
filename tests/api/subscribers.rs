//! The subscriber card: create, read, update with optimistic concurrency, list, consents.

use masthead::domain::SubscriberNumber;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{person, problem, spawn_app};

fn full_reader() -> Value {
    json!({
        "kind": "person",
        "given_name": "Margaret",
        "family_name": "Thornbury",
        "birth_date": "1958-04-12",
        "emails": [{ "address": "m.thornbury@example.co.uk", "label": "home" }],
        "phones": [{ "number": "020 7946 0123" }],
        "addresses": [
            { "kind": "delivery", "lines": ["14 Elm Row"], "postal_code": "EH7 4AA", "city": "Edinburgh", "region": "Scotland" },
            { "kind": "billing", "lines": ["PO Box 9"], "postal_code": "EH1 1AA", "city": "Edinburgh" }
        ],
        "preferences": { "delivery_method": "letterbox", "packaging": "paper", "payment_method": "direct_debit", "contact_channel": "email" },
        "relationship_level": "proactive",
        "custom_attributes": { "school_subscription": true, "legacy_code": "A-17" },
        "consents": [
            { "purpose": "marketing_email", "granted": true, "channel": "phone", "note": "asked on renewal call" },
            { "purpose": "third_party_audiences", "granted": false, "channel": "phone" }
        ]
    })
}

#[tokio::test]
async fn creating_a_subscriber_returns_the_whole_card_with_a_checked_number() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let response = app
        .post("/api/v1/subscribers", &app.staff, &full_reader())
        .await;
    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let card: Value = response.json().await.expect("json");
    let number = card["number"].as_str().expect("number");
    assert!(
        SubscriberNumber::parse(number).is_ok(),
        "{number} has a valid check digit"
    );
    assert_eq!(location, format!("/api/v1/subscribers/{number}"));
    assert_eq!(card["display_name"], "Margaret Thornbury");
    assert_eq!(card["phones"][0]["number"], "+442079460123");
    assert_eq!(card["addresses"][0]["country"], "GB");
    assert_eq!(card["preferences"]["delivery_method"], "letterbox");
    assert_eq!(card["relationship_level"], "proactive");
    assert_eq!(card["custom_attributes"]["legacy_code"], "A-17");
    assert_eq!(card["consents"]["marketing_email"]["granted"], true);
    assert_eq!(card["consents"]["marketing_email"]["channel"], "phone");
    assert_eq!(card["consents"]["third_party_audiences"]["granted"], false);
    assert_eq!(card["status"], "active");
    assert_eq!(card["version"], 1);

    let read = app.card(number).await;
    assert_eq!(read, card);
}

#[tokio::test]
async fn organisations_need_their_name_and_show_it() {
    let app = spawn_app().await;
    let card = app
        .create(json!({ "kind": "organisation", "organisation_name": "Leith Public Library" }))
        .await;
    assert_eq!(card["display_name"], "Leith Public Library");
    let body = problem(
        app.post(
            "/api/v1/subscribers",
            &app.staff,
            &json!({ "kind": "organisation" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "organisation_name");
}

#[tokio::test]
async fn malformed_json_is_a_400_that_says_where() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/api/v1/subscribers", &app.staff)
        .header("content-type", "application/json")
        .body("{\"given_name\": \"Anna\",")
        .send()
        .await
        .expect("request");
    let body = problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["type"], "urn:masthead:problem:malformed-json");
    assert!(body["detail"].as_str().expect("detail").contains("line 1"));
}

#[tokio::test]
async fn unknown_fields_are_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let mut body = person("Anna", "Smith");
    body["nickname"] = json!("Annie");
    let problem_body = problem(
        app.post("/api/v1/subscribers", &app.staff, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        problem_body["detail"]
            .as_str()
            .expect("detail")
            .contains("unknown field `nickname`")
    );
    let list: Value = app
        .get("/api/v1/subscribers", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().expect("items").len(), 0);
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once() {
    let app = spawn_app().await;
    let body = json!({
        "given_name": "Anna",
        "family_name": "Smith",
        "birth_date": "2999-01-01",
        "emails": [{ "address": "anna@" }, { "address": "ok@example.com" }],
        "phones": [{ "number": "12" }],
        "addresses": [{ "kind": "delivery", "lines": ["1", "2", "3", "4", "5", "6"], "postal_code": "", "city": "X", "country": "Scotland" }],
        "custom_attributes": { "Has Space": 1, "nested": { "a": 1 } },
        "status": "erased"
    });
    let problem_body = problem(
        app.post("/api/v1/subscribers", &app.staff, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = problem_body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    for expected in [
        "birth_date",
        "emails[0].address",
        "phones[0].number",
        "addresses[0].lines",
        "addresses[0].postal_code",
        "addresses[0].country",
        "custom_attributes.Has Space",
        "custom_attributes.nested",
        "status",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
    assert!(!fields.contains(&"emails[1].address"));
}

#[tokio::test]
async fn unsupported_media_type_and_oversized_bodies_are_refused() {
    let app = crate::helpers::spawn_app_with(|c| c.body_limit_bytes = 2_048).await;
    let response = app
        .request(Method::POST, "/api/v1/subscribers", &app.staff)
        .body("given_name=Anna")
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let mut body = person("Anna", "Smith");
    body["custom_attributes"] = json!({ "essay": "x".repeat(4_000) });
    problem(
        app.post("/api/v1/subscribers", &app.staff, &body).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_check_digit_is_a_400_never_someone_elses_card() {
    let app = spawn_app().await;
    let card = app.create(person("Anna", "Smith")).await;
    let number = card["number"].as_str().expect("number");
    // Change the last digit: a typo on the phone.
    let last = number
        .chars()
        .last()
        .expect("digit")
        .to_digit(10)
        .expect("digit");
    let typo = format!("{}{}", &number[..number.len() - 1], (last + 1) % 10);
    let body = problem(
        app.get(&format!("/api/v1/subscribers/{typo}"), &app.staff)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        body["type"],
        "urn:masthead:problem:invalid-subscriber-number"
    );
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("check digit")
    );
    // Swapped neighbours are caught as well.
    let mut swapped: Vec<char> = number.chars().collect();
    let i = (0..swapped.len() - 1)
        .find(|&i| swapped[i] != swapped[i + 1])
        .expect("distinct neighbours");
    swapped.swap(i, i + 1);
    let swapped: String = swapped.into_iter().collect();
    problem(
        app.get(&format!("/api/v1/subscribers/{swapped}"), &app.staff)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/subscribers/12ab", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A well-formed number nobody holds is a 404.
    let unused = SubscriberNumber::from_sequence(9_999_999).to_string();
    problem(
        app.get(&format!("/api/v1/subscribers/{unused}"), &app.staff)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn an_update_needs_the_current_version_and_bumps_it() {
    let app = spawn_app().await;
    let card = app.create(person("Anna", "Smith")).await;
    let path = format!(
        "/api/v1/subscribers/{}",
        card["number"].as_str().expect("number")
    );

    let missing = app
        .request(Method::PATCH, &path, &app.staff)
        .json(&json!({ "family_name": "Jones" }))
        .send()
        .await
        .expect("request");
    problem(missing, StatusCode::PRECONDITION_REQUIRED).await;

    let response = app
        .patch(&path, &app.staff, 1, &json!({ "family_name": "Jones", "given_name": null, "emails": [{ "address": "aj@example.com" }] }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["display_name"], "Jones");
    assert!(updated.get("given_name").is_none());
    assert_eq!(updated["emails"][0]["address"], "aj@example.com");

    let stale = app
        .patch(&path, &app.staff, 1, &json!({ "family_name": "Brown" }))
        .await;
    let body = problem(stale, StatusCode::CONFLICT).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("changed by someone else")
    );
    assert_eq!(
        app.card(card["number"].as_str().expect("number")).await["family_name"],
        "Jones"
    );

    let invalid = app
        .patch(
            &path,
            &app.staff,
            2,
            &json!({ "emails": [{ "address": "nope" }] }),
        )
        .await;
    problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await;
    let unknown = app
        .patch(&path, &app.staff, 2, &json!({ "shoe_size": 9 }))
        .await;
    problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;
    let garbage = app
        .request(Method::PATCH, &path, &app.staff)
        .header("If-Match", "yesterday")
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    problem(garbage, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn concurrent_updates_on_one_version_let_exactly_one_win() {
    let app = spawn_app().await;
    let card = app.create(person("Anna", "Smith")).await;
    let path = format!(
        "/api/v1/subscribers/{}",
        card["number"].as_str().expect("number")
    );
    let attempts = (0..8).map(|i| {
        let (app, path) = (&app, &path);
        async move {
            let body = json!({ "family_name": format!("Writer{i}") });
            app.patch(path, &app.staff, 1, &body).await.status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((wins, conflicts), (1, 7), "{statuses:?}");
    let after = app.card(card["number"].as_str().expect("number")).await;
    assert_eq!(after["version"], 2);
}

#[tokio::test]
async fn the_list_pages_with_a_cursor_and_filters() {
    let app = spawn_app().await;
    let mut numbers = Vec::new();
    for i in 0..7 {
        let mut body = person(&format!("Reader{i}"), "Page");
        if i % 2 == 0 {
            body["addresses"] = json!([{ "kind": "delivery", "lines": ["1 Road"], "postal_code": "AB1 2CD", "city": "Aberdeen", "region": "Scotland" }]);
        }
        numbers.push(
            app.create(body).await["number"]
                .as_str()
                .expect("number")
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/subscribers?limit=3".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.get(&path, &app.staff).await.json().await.expect("json");
        for item in page["items"].as_array().expect("items") {
            seen.push(item["number"].as_str().expect("number").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, numbers);

    let scots: Value = app
        .get(
            "/api/v1/subscribers?region=Scotland&postal_code=ab12cd",
            &app.staff,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(scots["items"].as_array().expect("items").len(), 4);
    assert_eq!(scots["items"][0]["city"], "Aberdeen");

    problem(
        app.get("/api/v1/subscribers?cursor=bogus", &app.staff)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/subscribers?limit=0", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/subscribers?status=gone", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/subscribers?colour=red", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn consent_changes_are_kept_as_history() {
    let app = spawn_app().await;
    let card = app.create(full_reader()).await;
    let number = card["number"].as_str().expect("number");
    let path = format!("/api/v1/subscribers/{number}/consents");
    let body = json!({ "changes": [{ "purpose": "marketing_email", "granted": false, "channel": "email", "note": "unsubscribe link" }] });
    let response = app.post(&path, &app.staff, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["consents"]["marketing_email"]["granted"], false);
    assert_eq!(updated["consents"]["marketing_email"]["channel"], "email");
    assert_eq!(updated["version"], 2);

    let history: Vec<Value> = app.get(&path, &app.staff).await.json().await.expect("json");
    let email: Vec<&Value> = history
        .iter()
        .filter(|e| e["purpose"] == "marketing_email")
        .collect();
    assert_eq!(email.len(), 2);
    assert_eq!(email[0]["granted"], true);
    assert_eq!(email[1]["granted"], false);
    assert_eq!(email[1]["recorded_by"], "reception desk");

    let bad = json!({ "changes": [{ "purpose": "telepathy", "granted": true, "channel": "web" }] });
    problem(
        app.post(&path, &app.staff, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let twice = json!({ "changes": [
        { "purpose": "marketing_post", "granted": true, "channel": "web" },
        { "purpose": "marketing_post", "granted": false, "channel": "web" }
    ] });
    problem(
        app.post(&path, &app.staff, &twice).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.post(&path, &app.staff, &json!({ "changes": [] })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let after: Vec<Value> = app.get(&path, &app.staff).await.json().await.expect("json");
    assert_eq!(after.len(), history.len(), "refused changes wrote nothing");
}

#[tokio::test]
async fn the_relationship_manager_must_be_a_staff_member() {
    let app = spawn_app().await;
    let staff: Value = app
        .post(
            "/api/v1/staff",
            &app.admin,
            &json!({ "name": "Fiona Keir", "email": "fiona@publisher.example" }),
        )
        .await
        .json()
        .await
        .expect("json");
    let mut body = person("Anna", "Smith");
    body["relationship_manager"] = staff["id"].clone();
    let card = app.create(body).await;
    assert_eq!(card["relationship_manager"], staff["id"]);

    let mut body = person("Brian", "Smith");
    body["relationship_manager"] = json!(424242);
    let problem_body = problem(
        app.post("/api/v1/subscribers", &app.staff, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_body["errors"][0]["field"], "relationship_manager");

    let listed: Vec<Value> = app
        .get("/api/v1/staff", &app.staff)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1);
    problem(
        app.post(
            "/api/v1/staff",
            &app.admin,
            &json!({ "name": "X", "email": "bad" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}
