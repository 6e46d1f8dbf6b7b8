//! API keys and roles: each route admits exactly the roles it declares.

use masthead::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, person, problem, spawn_app};

/// Fills a path template with ids that exist, so that an admitted role gets past routing.
async fn concrete_path(app: &TestApp, template: &str) -> String {
    let mut path = template.to_owned();
    if path.contains("{number}") {
        let card = app.create(person("Role", "Probe")).await;
        path = path.replace("{number}", card["number"].as_str().expect("number"));
    }
    if path.contains("{id}") {
        let body = json!({ "name": "throwaway", "role": "staff" });
        let created: Value = app
            .post("/api/v1/keys", &app.admin, &body)
            .await
            .json()
            .await
            .expect("json");
        path = path.replace("{id}", &created["key"]["id"].to_string());
    }
    path
}

#[tokio::test]
async fn every_operation_admits_exactly_the_roles_it_declares() {
    // Arrange
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api/v1/openapi.json", "")
        .await
        .json()
        .await
        .expect("openapi");
    let paths = doc["paths"].as_object().expect("paths");
    let mut checked = 0;
    for (template, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let method: Method = method.to_uppercase().parse().expect("method");
            let declared: Vec<String> = operation["security"][0]["api_key"]
                .as_array()
                .map(|roles| {
                    roles
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for (role, token) in [
                ("admin", &app.admin),
                ("staff", &app.staff),
                ("advertiser", &app.advertiser),
            ] {
                // Act
                let path = concrete_path(&app, template).await;
                let status = app
                    .request(method.clone(), &path, token)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("request")
                    .status();
                // Assert
                let admitted = declared.is_empty() || declared.iter().any(|r| r == role);
                assert_eq!(
                    status == StatusCode::FORBIDDEN,
                    !admitted,
                    "{method} {template} as {role} answered {status}; declared roles {declared:?}"
                );
                assert_ne!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {template} as {role}"
                );
            }
            if !declared.is_empty() {
                let path = concrete_path(&app, template).await;
                let response = app
                    .client
                    .request(method.clone(), format!("{}{path}", app.address))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {template} without a key"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} operations found in the OpenAPI document"
    );
}

#[tokio::test]
async fn advertiser_reaches_no_subscriber_data_at_all() {
    let app = spawn_app().await;
    let card = app.create(person("Private", "Reader")).await;
    let number = card["number"].as_str().expect("number");
    for path in [
        "/api/v1/subscribers".to_owned(),
        "/api/v1/search?q=private".to_owned(),
        format!("/api/v1/subscribers/{number}"),
        format!("/api/v1/subscribers/{number}/consents"),
        format!("/api/v1/subscribers/{number}/export"),
        "/api/v1/audit".to_owned(),
        "/api/v1/staff".to_owned(),
        "/api/v1/keys".to_owned(),
    ] {
        let body = problem(app.get(&path, &app.advertiser).await, StatusCode::FORBIDDEN).await;
        assert!(
            !body.to_string().contains("Private"),
            "{path} leaked data: {body}"
        );
    }
    // The only secured operations an advertiser may call are the declared ones: its own
    // identity and the released figures of audiences (see `audiences.rs`), none of which is
    // about one subscriber.
    let doc: Value = app
        .get("/api/v1/openapi.json", "")
        .await
        .json()
        .await
        .expect("openapi");
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for operation in operations.as_object().expect("operations").values() {
            let roles = operation["security"][0]["api_key"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if roles.iter().any(|r| r == "advertiser") {
                let audience = path.starts_with("/api/v1/shared-audiences");
                assert!(
                    path == "/api/v1/me" || audience,
                    "advertisers may reach {path}"
                );
            }
        }
    }
}

#[tokio::test]
async fn missing_malformed_unknown_and_revoked_keys_are_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/v1/me", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, StatusCode::UNAUTHORIZED).await;
    problem(
        app.get("/api/v1/me", "not-a-key").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = format!("mh_{}", "0".repeat(64));
    problem(
        app.get("/api/v1/me", &unknown).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let created: Value = app
        .post(
            "/api/v1/keys",
            &app.admin,
            &json!({ "name": "temp desk", "role": "staff" }),
        )
        .await
        .json()
        .await
        .expect("json");
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(app.get("/api/v1/me", &token).await.status(), StatusCode::OK);
    let id = created["key"]["id"].as_i64().expect("id");
    let response = app
        .request(Method::DELETE, &format!("/api/v1/keys/{id}"), &app.admin)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    problem(
        app.get("/api/v1/me", &token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn a_key_revoked_elsewhere_stops_working_within_the_cache_time() {
    // Revoked as the CLI or another instance would: straight in the database.
    for seconds in [0, 1] {
        let app = crate::helpers::spawn_app_with(|c| c.key_cache_secs = seconds).await;
        let url = app.config.database_url.clone().expect("url");
        let store = masthead::store::open(&url).await.expect("open");
        let issued = masthead::services::keys::issue(&*store, &app.clock, "temp desk", Role::Staff)
            .await
            .expect("issue");
        assert_eq!(
            app.get("/api/v1/me", &issued.token).await.status(),
            StatusCode::OK
        );
        store
            .revoke_api_key(issued.key.id, chrono::Utc::now())
            .await
            .expect("revoke");
        if seconds > 0 {
            // Trusted from the cache until it expires, then read again and refused.
            assert_eq!(
                app.get("/api/v1/me", &issued.token).await.status(),
                StatusCode::OK
            );
            tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        }
        problem(
            app.get("/api/v1/me", &issued.token).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
}

#[tokio::test]
async fn keys_are_shown_once_and_never_listed() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/api/v1/keys", &app.admin)
        .header("x-request-id", "issue-desk-key")
        .json(&json!({ "name": "circulation desk", "role": "staff" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let token = created["token"].as_str().expect("token");
    assert!(token.starts_with("mh_") && token.len() == 67);
    let me: Value = app
        .get("/api/v1/me", token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["name"], "circulation desk");
    assert_eq!(me["role"], "staff");

    let listed = app
        .get("/api/v1/keys", &app.admin)
        .await
        .text()
        .await
        .expect("text");
    assert!(!listed.contains(token), "the key list shows a token");
    assert!(listed.contains("circulation desk"));

    let log: Value = app
        .get("/api/v1/audit?action=key.create", &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let entry = &log["items"][0];
    assert_eq!(entry["actor"]["name"], "test admin");
    assert_eq!(entry["request_id"], "issue-desk-key");
    assert_eq!(entry["detail"]["name"], "circulation desk");
    assert!(
        !log.to_string().contains(token),
        "the audit log never holds a token"
    );
}

#[tokio::test]
async fn key_requests_are_validated() {
    let app = spawn_app().await;
    let body = problem(
        app.post(
            "/api/v1/keys",
            &app.admin,
            &json!({ "name": " ", "role": "staff" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "name");
    let body = problem(
        app.post(
            "/api/v1/keys",
            &app.admin,
            &json!({ "name": "x", "role": "owner" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().expect("detail").contains("owner"));
    let missing = app
        .request(Method::DELETE, "/api/v1/keys/999999", &app.admin)
        .send()
        .await
        .expect("request");
    problem(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn the_last_admin_key_cannot_be_revoked() {
    let app = spawn_app().await;
    let me: Value = app
        .get("/api/v1/me", &app.admin)
        .await
        .json()
        .await
        .expect("json");
    let id = me["key_id"].as_i64().expect("id");
    let response = app
        .request(Method::DELETE, &format!("/api/v1/keys/{id}"), &app.admin)
        .send()
        .await
        .expect("request");
    let body = problem(response, StatusCode::CONFLICT).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("last active admin")
    );
    assert_eq!(
        app.get("/api/v1/me", &app.admin).await.status(),
        StatusCode::OK
    );
}
