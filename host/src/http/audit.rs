//! The audit log, for admins: who read or changed personal data.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AdminOnly, ApiQuery, Auth};
use super::page::{self, Page};
use crate::domain::SubscriberNumber;
use crate::store::{AuditFilter, AuditRecord};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only entries about this subscriber number.
    subscriber: Option<String>,
    /// Only this action, e.g. `subscriber.read`.
    action: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Audit entries, newest first (by when they happened; reads are written within 20 ms).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Page<AuditRecord>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_audit(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 1000",
        ));
    }
    let subscriber = query
        .subscriber
        .as_deref()
        .map(SubscriberNumber::parse)
        .transpose()?;
    // Reads are written in batches; make the newest visible before answering.
    state.audit.flush().await;
    let items = state
        .store
        .list_audit(&AuditFilter {
            subscriber,
            action: query.action,
            before: page::decode_opt("audit", query.cursor.as_deref())?,
            limit,
        })
        .await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.id))
        .flatten();
    Ok(Json(Page::new("audit", items, next)))
}
