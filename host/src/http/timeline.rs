//! The subscriber's timeline: one chronological view across every channel.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiQuery, Auth, Number, StaffOrAdmin};
use super::page;
use crate::services::timeline::{EntryKind, Timeline, TimelineQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(timeline))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Query {
    /// Only these kinds, comma-separated: term, hold, cancellation, interaction,
    /// compensation, consent, profile, tier, event.
    kind: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Everything that happened with the subscriber, newest first: terms and renewals, holds,
/// cancellations, every step of their complaints and other interactions, compensations,
/// consent changes and profile changes. Pages follow a cursor, so every staff member reads
/// the same history.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}/timeline",
    tag = "timeline",
    params(("number" = String, Path, description = "Subscriber number with its check digit"), Query),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Timeline),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn timeline(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
    ApiQuery(query): ApiQuery<Query>,
) -> ApiResult<Json<Timeline>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 200",
        ));
    }
    let kinds = query
        .kind
        .as_deref()
        .map(EntryKind::parse_list)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid-query", e))?
        .unwrap_or_default();
    // Profile changes are read from the audit log, which is written in batches.
    state.audit.flush().await;
    let mut timeline = state
        .timelines
        .timeline(
            &auth.caller,
            number,
            TimelineQuery {
                kinds,
                cursor: page::decode_opt("timeline", query.cursor.as_deref())?,
                limit,
            },
        )
        .await?;
    // The service's key is readable; clients get it opaque, like every other cursor.
    timeline.next_cursor = timeline
        .next_cursor
        .map(|key| page::encode("timeline", key));
    Ok(Json(timeline))
}
