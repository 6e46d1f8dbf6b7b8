//! The served OpenAPI document is the contract: what it says a client may send is taken, and
//! what the service answers is what it says. schemathesis (`tests/contract/run`) fuzzes the
//! whole; these tests pin each promise that once did not hold.

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};

async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/v1/openapi.json", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("openapi")
}

/// Every operation of the document, as (method, path template, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    assert!(
        all.len() > 60,
        "the document lists {} operations",
        all.len()
    );
    all
}

/// A schema with references to components followed.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => resolve(doc, doc.pointer(&reference[1..]).expect("a component")),
        None => schema,
    }
}

#[tokio::test]
async fn only_path_template_names_are_path_parameters_and_queries_are_in_query() {
    // Arrange
    let app = spawn_app().await;
    let doc = document(&app).await;

    // Act
    let mut misplaced = Vec::new();
    for (method, path, operation) in operations(&doc) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().expect("name");
            let in_template = path.contains(&format!("{{{name}}}"));
            if (parameter["in"] == "path") != in_template {
                misplaced.push(format!("{method} {path}: {name} in {}", parameter["in"]));
            }
        }
    }

    // Assert
    assert!(misplaced.is_empty(), "misplaced parameters: {misplaced:#?}");
    let search = &doc["paths"]["/api/v1/search"]["get"]["parameters"];
    let q = search
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "q")
        .expect("q");
    assert_eq!(q["in"], "query");
    assert_eq!(q["required"], true);
    let limit = search
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit");
    assert_eq!(limit["required"], false);
}

#[tokio::test]
async fn the_documented_new_subscriber_body_is_the_one_the_service_takes() {
    // Arrange
    let app = spawn_app().await;
    let doc = document(&app).await;
    let body = &doc["paths"]["/api/v1/subscribers"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let body = resolve(&doc, body);

    // Assert: flat profile fields and the consents beside them, nothing nested.
    let properties = body["properties"].as_object().expect("one object schema");
    for field in [
        "given_name",
        "family_name",
        "emails",
        "addresses",
        "consents",
    ] {
        assert!(properties.contains_key(field), "{field} is not documented");
    }
    assert!(!properties.contains_key("profile"));
    assert_eq!(body["additionalProperties"], false);

    // Act: a body built from the document is taken; the old documented shape is not.
    let mut flat = person("Ada", "Lovelace");
    flat["consents"] = json!([{ "purpose": "marketing_email", "granted": true, "channel": "web" }]);
    let created = app.post("/api/v1/subscribers", &app.staff, &flat).await;
    let nested = json!({ "profile": person("Grace", "Hopper"), "consents": [] });
    let refused = app.post("/api/v1/subscribers", &app.staff, &nested).await;

    // Assert
    assert_eq!(created.status(), StatusCode::CREATED);
    let card: Value = created.json().await.expect("card");
    assert_eq!(card["consents"]["marketing_email"]["granted"], true);
    let refused = problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        refused["detail"]
            .as_str()
            .expect("detail")
            .contains("profile"),
        "{refused}"
    );
}

/// Every place in `node` where `allOf` combines a part that forbids extra properties.
fn closed_all_of(doc: &Value, node: &Value, at: &str, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(parts) = map.get("allOf").and_then(Value::as_array) {
                let closed = parts
                    .iter()
                    .any(|p| resolve(doc, p)["additionalProperties"] == false);
                if closed && parts.len() > 1 {
                    found.push(at.to_owned());
                }
            }
            for (key, child) in map {
                closed_all_of(doc, child, &format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                closed_all_of(doc, item, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn flattened_responses_and_bodies_are_one_satisfiable_object() {
    // Arrange
    let app = spawn_app().await;
    let doc = document(&app).await;

    // Act
    let mut found = Vec::new();
    closed_all_of(&doc, &doc, "", &mut found);

    // Assert: no `allOf` whose closed part forbids the other parts' fields.
    assert!(found.is_empty(), "unsatisfiable allOf at {found:#?}");
    let card = resolve(&doc, &doc["components"]["schemas"]["SubscriberCard"]);
    for field in [
        "number",
        "display_name",
        "given_name",
        "emails",
        "consents",
        "version",
    ] {
        assert!(
            card["properties"].get(field).is_some(),
            "card lacks {field}"
        );
    }
    let step = &doc["paths"]["/api/v1/interactions/{id}/steps"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let step = resolve(&doc, step);
    let variants = step["oneOf"].as_array().expect("one schema per step kind");
    assert!(
        variants
            .iter()
            .all(|v| v["properties"].get("action").is_some())
    );
    assert!(variants.iter().all(|v| v["additionalProperties"] == false));
}

#[tokio::test]
async fn every_operation_lists_the_problems_it_can_answer() {
    // Arrange
    let app = spawn_app().await;
    let doc = document(&app).await;

    // Act
    let mut missing = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let listed = operation["responses"].as_object().expect("responses");
        let mut expected = vec!["414"];
        if operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
        {
            expected.push("401");
        }
        if operation["parameters"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
        {
            expected.push("400");
        }
        let content = operation["requestBody"]["content"].as_object();
        if content.is_some() {
            expected.extend(["400", "413", "415"]);
        }
        if content.is_some_and(|c| c.contains_key("application/json")) {
            expected.push("422");
        }
        for status in expected {
            if !listed.contains_key(status) {
                missing.push(format!("{method} {path}: {status}"));
            }
        }
    }

    // Assert
    assert!(missing.is_empty(), "unlisted answers: {missing:#?}");
    let create = &doc["paths"]["/api/v1/subscribers"]["post"]["responses"];
    let forbidden = resolve(&doc, &create["403"]);
    assert!(forbidden["content"]["application/problem+json"]["schema"].is_object());
}

#[tokio::test]
async fn every_list_pages_with_items_and_an_opaque_next_cursor() {
    // Arrange: three audited key creations.
    let app = spawn_app().await;
    for name in ["one", "two", "three"] {
        let body = json!({ "name": name, "role": "staff" });
        let response = app.post("/api/v1/keys", &app.admin, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    // Act: follow the audit log a page at a time.
    let mut seen = Vec::new();
    let mut path = "/api/v1/audit?action=key.create&limit=1".to_owned();
    let mut cursors = Vec::new();
    loop {
        let page: Value = app.get(&path, &app.admin).await.json().await.expect("page");
        seen.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                cursors.push(cursor.to_owned());
                path = format!("/api/v1/audit?action=key.create&limit=1&cursor={cursor}");
            }
            None => break,
        }
        assert!(seen.len() <= 3, "the pages do not end");
    }

    // Assert
    assert_eq!(seen.len(), 3);
    assert!(
        cursors.iter().all(|c| c.parse::<i64>().is_err()),
        "cursors are opaque: {cursors:?}"
    );
    let bare = app.get("/api/v1/audit?cursor=42", &app.admin).await;
    problem(bare, StatusCode::BAD_REQUEST).await;
    // A cursor of one list means nothing to another.
    let foreign = format!("/api/v1/subscribers?cursor={}", cursors[0]);
    let foreign = problem(app.get(&foreign, &app.staff).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(foreign["type"], "urn:masthead:problem:invalid-cursor");
    let doc = document(&app).await;
    for path in [
        "/api/v1/audit",
        "/api/v1/subscribers",
        "/api/v1/interactions",
        "/api/v1/events/{id}/invitations",
        "/api/v1/segments/{name}/members",
        "/api/v1/subscribers/{number}/timeline",
    ] {
        let operation = &doc["paths"][path]["get"];
        let names: Vec<&str> = operation["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"cursor"), "{path} takes {names:?}");
        let page = resolve(
            &doc,
            &operation["responses"]["200"]["content"]["application/json"]["schema"],
        );
        let next = resolve(&doc, &page["properties"]["next_cursor"]);
        assert!(page["properties"]["items"].is_object(), "{path}: {page}");
        assert!(next.to_string().contains("string"), "{path}: {next}");
    }
}

#[tokio::test]
async fn a_too_long_uri_is_a_problem() {
    // Arrange
    let app = spawn_app().await;

    for length in [9_000, 60_000] {
        // Act
        let q = "a".repeat(length);
        let response = app.get(&format!("/api/v1/search?q={q}"), &app.staff).await;

        // Assert
        let body = problem(response, StatusCode::URI_TOO_LONG).await;
        assert_eq!(body["type"], "urn:masthead:problem:uri-too-long");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_refused_whichever_comes_first() {
    // Arrange
    let app = spawn_app().await;
    let url = format!("{}/api/v1/keys", app.address);

    for (first, second) in [(&app.staff, &app.admin), (&app.admin, &app.staff)] {
        // Act
        let response = app
            .client
            .request(Method::GET, &url)
            .header(AUTHORIZATION, format!("Bearer {first}"))
            .header(AUTHORIZATION, format!("Bearer {second}"))
            .send()
            .await
            .expect("request");

        // Assert
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["type"], "urn:masthead:problem:duplicate-authorization");
    }
    let once = app.get("/api/v1/keys", &app.admin).await;
    assert_eq!(once.status(), StatusCode::OK);
}
