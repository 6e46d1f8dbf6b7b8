//! The profile's rules on the API and the import alike: whole and partial addresses, and text
//! stored in composed Unicode (NFC) however it was sent, and found by search either way.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};
use crate::money::import;

fn reader_at(address: Value) -> Value {
    json!({ "given_name": "Ada", "family_name": "Placed", "addresses": [address] })
}

/// The card of the only reader a search finds.
async fn found(app: &TestApp, query: &str) -> Value {
    let hits = app.search(query).await;
    assert_eq!(hits.len(), 1, "{query}: {hits:?}");
    app.card(hits[0]["number"].as_str().expect("number")).await
}

#[tokio::test]
async fn an_address_without_a_street_is_kept_as_a_partial_address_with_its_country() {
    let app = spawn_app().await;

    let country = app
        .create(reader_at(json!({ "kind": "delivery", "country": "de" })))
        .await;
    let city = app
        .create(reader_at(
            json!({ "kind": "delivery", "city": " Leeds ", "region": "Yorkshire" }),
        ))
        .await;

    assert_eq!(country["addresses"][0]["country"], "DE", "{country}");
    assert_eq!(country["addresses"][0]["lines"], json!([]));
    assert_eq!(city["addresses"][0]["city"], "Leeds");
    assert_eq!(city["addresses"][0]["country"], "GB");

    let readers = "legacy_id,given_name,family_name,street,postal_code,city,country\n\
        P-1,Bea,Abroad,,,,FR\n\
        P-2,Cid,Town,,,York,\n\
        P-3,Dot,Coded,,75001,,FR\n";
    let answer = import(&app, "subscribers", readers).await;
    assert_eq!(answer["report"]["created"], 3, "{answer}");
    assert_eq!(found(&app, "Abroad").await["addresses"][0]["country"], "FR");
    assert_eq!(found(&app, "Town").await["addresses"][0]["city"], "York");
    assert_eq!(
        found(&app, "75001").await["addresses"][0]["postal_code"],
        "75001"
    );
}

#[tokio::test]
async fn a_street_needs_its_postal_code_and_city_and_an_empty_address_is_refused() {
    let app = spawn_app().await;

    let street_only = problem(
        app.post(
            "/api/v1/subscribers",
            &app.staff,
            &reader_at(json!({ "kind": "delivery", "lines": ["1 High Street"] })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let empty = problem(
        app.post(
            "/api/v1/subscribers",
            &app.staff,
            &reader_at(json!({ "kind": "delivery", "lines": [" "], "city": "" })),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let errors: Vec<(&str, &str)> = street_only["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, "addresses[0].postal_code");
    assert!(
        errors[0]
            .1
            .starts_with("a street address needs its postal code")
    );
    assert_eq!(errors[1].0, "addresses[0].city");
    assert!(errors[1].1.starts_with("a street address needs its city"));
    assert_eq!(empty["errors"][0]["field"], "addresses[0].lines");
    assert!(
        empty["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("an address is empty")),
        "{empty}"
    );

    // The import applies the same rules and names its own columns.
    let readers = "legacy_id,given_name,family_name,street,postal_code,city\n\
        S-1,Eve,Street,1 High Street,,\n";
    let answer = import(&app, "subscribers", readers).await;
    let reason = answer["rejections"][0]["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("postal_code: a street address needs its postal code"),
        "{reason}"
    );
    assert!(
        reason.contains("; city: a street address needs its city"),
        "{reason}"
    );
}

#[tokio::test]
async fn decomposed_text_is_stored_composed_and_found_either_way() {
    // Arrange: "Zoë Müller" of "Köln" as macOS sends it, letters and marks apart.
    let app = spawn_app().await;
    let body = json!({
        "given_name": "Zoe\u{308}", "family_name": "Mu\u{308}ller",
        "addresses": [{ "kind": "delivery", "lines": ["Domstrasse 1"], "postal_code": "50668",
                        "city": "Ko\u{308}ln", "country": "DE" }],
    });

    // Act
    let card = app.create(body).await;

    // Assert: stored in the composed form, and found by either spelling.
    assert_eq!(card["given_name"], "Zo\u{eb}", "{card}");
    assert_eq!(card["family_name"], "M\u{fc}ller");
    assert_eq!(card["display_name"], "Zo\u{eb} M\u{fc}ller");
    assert_eq!(card["addresses"][0]["city"], "K\u{f6}ln");
    for query in ["M\u{fc}ller", "Mu\u{308}ller", "muller", "zo\u{eb}"] {
        assert_eq!(
            found(&app, query).await["number"],
            card["number"],
            "{query}"
        );
    }

    // Other text a person types is composed as well: a complaint, say.
    let opened = app
        .post(
            "/api/v1/interactions",
            &app.staff,
            &json!({ "subscriber": card["number"], "kind": "complaint", "channel": "phone",
                     "category": "missed_delivery", "text": "Zeitung nicht zugestellt, Gru\u{308}\u{df}e" }),
        )
        .await;
    assert_eq!(opened.status(), StatusCode::CREATED);
    let complaint: Value = opened.json().await.expect("json");
    assert_eq!(
        complaint["text"], "Zeitung nicht zugestellt, Gr\u{fc}\u{df}e",
        "{complaint}"
    );

    let readers = "legacy_id,given_name,family_name,city\nN-1,Ame\u{301}lie,Poulain,Paris\n";
    assert_eq!(
        import(&app, "subscribers", readers).await["report"]["created"],
        1
    );
    assert_eq!(found(&app, "Poulain").await["given_name"], "Am\u{e9}lie");
}

#[tokio::test]
async fn a_birth_date_is_checked_against_the_service_clock_on_the_api_and_the_import() {
    let app = spawn_app().await;
    let born =
        |date: &str| json!({ "given_name": "Bea", "family_name": "Born", "birth_date": date });

    // Ten years ahead of the wall clock, a child born nine years ahead is in the past.
    app.set_today("2036-06-15");
    let card = app.create(born("2035-01-01")).await;
    assert_eq!(card["birth_date"], "2035-01-01");
    let too_old = problem(
        app.post("/api/v1/subscribers", &app.staff, &born("1905-12-31"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(too_old["errors"][0]["field"], "birth_date", "{too_old}");

    // Back in 2001, a birth date of 2010 has not happened yet, on the API ...
    app.set_today("2001-03-01");
    let future = problem(
        app.post("/api/v1/subscribers", &app.staff, &born("2010-05-05"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(future["errors"][0]["field"], "birth_date", "{future}");
    assert!(
        future["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("past 130 years")),
        "{future}"
    );
    // ... and in the import, while one born in 1990 is taken.
    let readers = "legacy_id,given_name,family_name,birth_date\n\
        B-1,Bea,Later,2010-05-05\n\
        B-2,Bea,Earlier,1990-05-05\n";
    let answer = import(&app, "subscribers", readers).await;
    let rejections = answer["rejections"].as_array().expect("rejections");
    assert_eq!(rejections.len(), 1, "{answer}");
    let reason = rejections[0]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("birth_date: "), "{reason}");
}
