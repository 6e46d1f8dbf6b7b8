//! Operations endpoints: liveness, readiness and Prometheus metrics. All public.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: its database answers. With a hot standby configured, a second
/// line says what the last check of it saw (a standby that is down or lagging does not make
/// the process unready: its reads go to the primary).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, body = String), (status = 503, body = String))
)]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let standby = state
        .store
        .standby()
        .map(|s| format!("\nstandby: {}", s.health()))
        .unwrap_or_default();
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, format!("ready{standby}")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unavailable{standby}"),
            )
        }
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
