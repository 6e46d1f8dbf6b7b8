//! Operations: health, readiness, metrics, the OpenAPI document, request ids, bad URLs.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), StatusCode::OK);

    app.get("/api/v1/me", &app.staff).await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("request");
    let text = metrics.text().await.expect("text");
    assert!(text.contains("masthead_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/me\""));

    let doc: Value = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.address))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["info"]["title"], "Masthead");
    assert!(doc["paths"]["/api/v1/subscribers/{number}"]["patch"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

#[tokio::test]
async fn a_request_id_sent_by_the_caller_comes_back() {
    let app = spawn_app().await;
    let response = app
        .request(reqwest::Method::GET, "/api/v1/me", &app.staff)
        .header("x-request-id", "desk-42-call-7")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "desk-42-call-7");
}

#[tokio::test]
async fn unknown_routes_are_problem_json_404s() {
    let app = spawn_app().await;
    problem(
        app.get("/api/v1/nothing-here", &app.staff).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn unknown_or_unreachable_databases_fail_with_a_sentence_that_names_the_fix() {
    let error = masthead::store::open("mysql://root@localhost/db")
        .await
        .err()
        .expect("refused");
    let text = format!("{error:#}");
    assert!(
        text.contains("sqlite://") && text.contains("postgres://"),
        "{text}"
    );
    let error = masthead::store::open("postgres://nobody:secret@127.0.0.1:1/none")
        .await
        .err()
        .expect("refused");
    let text = format!("{error:#}");
    assert!(text.contains("cannot connect to PostgreSQL"), "{text}");
    assert!(
        !text.contains("secret"),
        "the password is not shown: {text}"
    );
}
