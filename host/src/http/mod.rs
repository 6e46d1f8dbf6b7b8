//! The HTTP API under `/api/v1`: one router per resource, merged here with the OpenAPI
//! document, request ids, tracing, metrics, a body limit and a timeout.

mod advertisers;
mod audiences;
mod audit;
mod campaigns;
mod clubs;
mod complaints;
mod document;
pub mod error;
mod events;
pub mod extract;
mod heads;
mod health;
mod idempotency;
mod imports;
mod jobs;
mod keys;
mod offers;
mod page;
mod plugins;
mod publications;
mod replica;
mod search;
mod segments;
pub mod server;
mod staff;
mod subscribers;
mod terms;
mod timeline;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::services::audiences::Audiences;
use crate::services::audit::AuditLog;
use crate::services::auto_renewal::AutoRenewals;
use crate::services::catalogue::Catalogue;
use crate::services::clock::Clock;
use crate::services::clubs::Clubs;
use crate::services::clubs::events::Events;
use crate::services::complaints::Complaints;
use crate::services::imports::Imports;
use crate::services::jobs::Jobs;
use crate::services::keys::KeyCache;
use crate::services::plugins::Plugins;
use crate::services::plugins::campaigns::Campaigns;
use crate::services::plugins::offers::Offers;
use crate::services::renewals::Circulation;
use crate::services::segments::Segments;
use crate::services::subscribers::Registry;
use crate::services::timeline::Timelines;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub catalogue: Arc<Catalogue>,
    pub circulation: Arc<Circulation>,
    pub imports: Arc<Imports>,
    pub auto_renewals: Arc<AutoRenewals>,
    /// Largest CSV an import over HTTP accepts.
    pub import_limit_bytes: usize,
    pub audit: AuditLog,
    pub metrics: PrometheusHandle,
    pub plugins: Arc<Plugins>,
    pub segments: Arc<Segments>,
    pub offers: Arc<Offers>,
    pub campaigns: Arc<Campaigns>,
    pub complaints: Arc<Complaints>,
    pub timelines: Arc<Timelines>,
    pub clubs: Arc<Clubs>,
    pub events: Arc<Events>,
    pub jobs: Arc<Jobs>,
    pub audiences: Arc<Audiences>,
    /// The clock requests are dated by.
    pub clock: Arc<dyn Clock>,
    /// API keys recently checked.
    pub keys: Arc<KeyCache>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Masthead",
        description = "Subscriber database and CRM plugin host. Every operation lists the roles \
                       that may call it as the scopes of its `api_key` requirement; operations \
                       without one are public.",
    ),
    modifiers(&SecurityAddon),
    tags(
        (name = "subscribers", description = "The registry: cards, consents, merges, erasure"),
        (name = "publications", description = "Titles, formats, term lengths and price lists"),
        (name = "renewals", description = "Terms, one-step renewals, holds and cancellations"),
        (name = "imports", description = "The legacy circulation file: CSV import and export"),
        (name = "keys", description = "API keys and the caller's identity"),
        (name = "staff", description = "Staff members (relationship managers)"),
        (name = "audit", description = "Who read or changed personal data"),
        (name = "plugins", description = "WebAssembly plugins: upload, enable, roll back, failures"),
        (name = "segments", description = "Segments decided by segmenter plugins"),
        (name = "offers", description = "One-to-one offers from offer-provider plugins"),
        (name = "campaigns", description = "Campaign audiences ranked by targeter plugins"),
        (name = "complaints", description = "Complaints and other interactions: service-level clocks, workflow, queue, report"),
        (name = "clubs", description = "Reader clubs: tiers earned by rules, overrides, recomputation, events, report"),
        (name = "audiences", description = "Advertiser accounts, published audiences, releases under differential privacy"),
        (name = "jobs", description = "Background jobs on every host: list, follow, cancel"),
        (name = "timeline", description = "Everything that happened with one subscriber, in order"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Settings of the HTTP layer itself.
pub struct HttpLimits {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Longest an import over HTTP may run.
    pub import_timeout: Duration,
    /// Largest plugin component accepted by an upload.
    pub max_component_bytes: usize,
}

pub fn router(state: AppState, limits: &HttpLimits) -> Router {
    let timeout = |limit| TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limit);
    // Imports take large files and may run long; every other route answers quickly.
    let imports = imports::router().layer(timeout(limits.import_timeout));
    let (routes, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(keys::router())
        .merge(advertisers::router())
        .merge(audiences::router())
        .merge(staff::router())
        .merge(subscribers::router())
        .merge(publications::router())
        .merge(terms::router())
        .merge(search::router())
        .merge(audit::router())
        .merge(plugins::router(limits.max_component_bytes))
        .merge(segments::router())
        .merge(offers::router())
        .merge(campaigns::router())
        .merge(complaints::router())
        .merge(timeline::router())
        .merge(clubs::router())
        .merge(events::router())
        .merge(jobs::router())
        .layer(timeout(limits.request_timeout))
        .merge(imports)
        .split_for_parts();
    let api = Arc::new(document::finish(api));
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let api = Arc::clone(&api);
                async move { Json(api) }
            }),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            replica::sessions,
        ))
        .route_layer(middleware::from_fn(track_metrics))
        .fallback(|| async { error::ApiError::not_found("no such route; see /api/v1/openapi.json") })
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(middleware::from_fn(refuse_long_uri))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The path only: query strings can hold names typed into the search box.
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Refuses a request target longer than the document promises to read, as a problem. Past
/// 64 KiB the connection refuses the head itself, before it is parsed (`heads`).
async fn refuse_long_uri(req: Request, next: Next) -> Response {
    let length = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if length > document::MAX_URI_BYTES {
        return error::ApiError::with_status(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!(
                "the path and query are {length} bytes; this service reads at most {}",
                document::MAX_URI_BYTES
            ),
        )
        .into_response();
    }
    next.run(req).await
}

async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("masthead_http_requests_total", &labels).increment(1);
    metrics::histogram!("masthead_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
