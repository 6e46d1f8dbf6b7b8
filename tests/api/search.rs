//! Search-as-you-type over numbers, names in several scripts, emails, phones and postal codes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};

fn numbers(hits: &[Value]) -> Vec<&str> {
    hits.iter()
        .map(|h| h["number"].as_str().expect("number"))
        .collect()
}

async fn seeded() -> (TestApp, Vec<String>) {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for body in [
        json!({ "given_name": "Anna", "family_name": "Smith", "emails": [{ "address": "anna.smith@example.com" }],
                "phones": [{ "number": "020 7946 0958" }],
                "addresses": [{ "kind": "delivery", "lines": ["1 Lane"], "postal_code": "SW1A 1AA", "city": "London" }] }),
        json!({ "given_name": "Annabel", "family_name": "Smithson" }),
        json!({ "given_name": "Ёлка", "family_name": "Иванова" }),
        json!({ "given_name": "小明", "family_name": "王" }),
        json!({ "given_name": "José", "family_name": "Müller-García" }),
        json!({ "kind": "organisation", "organisation_name": "Smith & Sons Ltd" }),
        json!({ "given_name": "Łukasz", "family_name": "Søderberg" }),
    ] {
        created.push(
            app.create(body).await["number"]
                .as_str()
                .expect("number")
                .to_owned(),
        );
    }
    (app, created)
}

#[tokio::test]
async fn a_number_is_found_with_or_without_its_check_digit() {
    let (app, created) = seeded().await;
    let hits = app.search(&created[2]).await;
    assert_eq!(numbers(&hits)[0], created[2]);
    assert_eq!(hits[0]["matched"], "number");
    let without_check = &created[2][..created[2].len() - 1];
    let hits = app.search(without_check).await;
    assert!(numbers(&hits).contains(&created[2].as_str()));
    assert!(
        hits.iter()
            .any(|h| h["matched"] == "number_without_check_digit")
    );
}

#[tokio::test]
async fn any_word_of_the_name_is_found_by_its_beginning_exact_words_first() {
    let (app, created) = seeded().await;
    let hits = app.search("smith").await;
    // Whole-word matches (Anna Smith, Smith & Sons) come before the prefix match (Smithson).
    assert_eq!(numbers(&hits).len(), 3);
    assert_eq!(hits[0]["matched"], "name");
    assert_eq!(hits[1]["matched"], "name");
    assert_eq!(numbers(&hits)[2], created[1]);
    assert_eq!(hits[2]["matched"], "name_prefix");

    let hits = app.search("ann smi").await;
    assert_eq!(numbers(&hits).len(), 2, "both words must match: {hits:?}");
    let hits = app.search("Sons").await;
    assert_eq!(numbers(&hits), [created[5].as_str()]);
}

#[tokio::test]
async fn cyrillic_chinese_and_accented_names_fold_case_and_diacritics() {
    let (app, created) = seeded().await;
    assert_eq!(numbers(&app.search("елка").await), [created[2].as_str()]);
    assert_eq!(numbers(&app.search("ИВАН").await), [created[2].as_str()]);
    assert_eq!(numbers(&app.search("王").await), [created[3].as_str()]);
    assert_eq!(numbers(&app.search("王小").await), [created[3].as_str()]);
    assert_eq!(numbers(&app.search("小明").await), [created[3].as_str()]);
    assert_eq!(numbers(&app.search("jose").await), [created[4].as_str()]);
    assert_eq!(numbers(&app.search("MULLER").await), [created[4].as_str()]);
    assert_eq!(numbers(&app.search("garcía").await), [created[4].as_str()]);
    assert_eq!(numbers(&app.search("soder").await), [created[6].as_str()]);
    assert_eq!(
        numbers(&app.search("SØDERBERG").await),
        [created[6].as_str()]
    );
    assert_eq!(numbers(&app.search("lukasz").await), [created[6].as_str()]);
}

#[tokio::test]
async fn emails_phones_and_postal_codes_are_found_normalised() {
    let (app, created) = seeded().await;
    let anna = created[0].as_str();
    let hits = app.search("Anna.Smith@Example.com").await;
    assert_eq!(
        (numbers(&hits)[0], &hits[0]["matched"]),
        (anna, &json!("email"))
    );
    assert_eq!(numbers(&app.search("anna.smith@ex").await), [anna]);
    for phone in [
        "020 7946 0958",
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "442079460958",
    ] {
        let hits = app.search(phone).await;
        assert_eq!(
            numbers(&hits).first(),
            Some(&anna),
            "phone typed as {phone}"
        );
    }
    assert_eq!(numbers(&app.search("sw1a 1aa").await), [anna]);
    assert_eq!(numbers(&app.search("SW1A").await), [anna]);
}

#[tokio::test]
async fn empty_overlong_and_unknown_queries_are_handled() {
    let (app, _) = seeded().await;
    problem(
        app.get("/api/v1/search?q=%20", &app.staff).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let long = "a".repeat(101);
    problem(
        app.get(&format!("/api/v1/search?q={long}"), &app.staff)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.get("/api/v1/search", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    problem(
        app.get("/api/v1/search?q=a&limit=1000", &app.staff).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(app.search("zzzzzz").await.is_empty());
}

#[tokio::test]
async fn a_changed_name_is_found_by_the_new_name_only() {
    let app = spawn_app().await;
    let card = app.create(person("Olga", "Petrova")).await;
    let number = card["number"].as_str().expect("number");
    let response = app
        .patch(
            &format!("/api/v1/subscribers/{number}"),
            &app.staff,
            1,
            &json!({ "family_name": "Sokolova" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(app.search("petrova").await.is_empty());
    assert_eq!(numbers(&app.search("sokol").await), [number]);
}
