//! Segments, defined by a segmenter plugin or by a filter: their definitions, previews of a
//! filter, background refreshes, and members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AdminOnly, ApiJson, ApiPath, ApiQuery, Auth, StaffOrAdmin};
use super::page::{self, Page};
use crate::services::segments::{
    PreviewDraft, Refresh, SegmentChange, SegmentDraft, SegmentPreview, SegmentView,
};
use crate::store::SubscriberSummary;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_segment, list_segments))
        .routes(routes!(preview_segment))
        .routes(routes!(get_segment, update_segment, delete_segment))
        .routes(routes!(refresh_segment))
        .routes(routes!(segment_members))
}

/// Defines a segment: the members are the readers for whom a segmenter plugin returns `key`,
/// or those a filter matches (today, or `as_of` a past day). A filter names the publications,
/// clubs, tiers and segments it reads, which must exist; segments may not refer to each
/// other in a cycle. The segment has no members until its first refresh.
#[utoipa::path(
    post,
    path = "/api/v1/segments",
    tag = "segments",
    request_body = SegmentDraft,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = SegmentView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The name is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_segment(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiJson(draft): ApiJson<SegmentDraft>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    let view = state.segments.create(&auth.caller, draft).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    get,
    path = "/api/v1/segments",
    tag = "segments",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = Vec<SegmentView>))
)]
async fn list_segments(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
) -> ApiResult<Json<Vec<SegmentView>>> {
    Ok(Json(state.segments.list().await?))
}

/// A segment with its size, refresh time and latest refreshes (a running one shows progress).
#[utoipa::path(
    get,
    path = "/api/v1/segments/{name}",
    tag = "segments",
    params(("name" = String, Path, description = "Segment name")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SegmentView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_segment(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<SegmentView>> {
    Ok(Json(state.segments.get(&name).await?))
}

/// Counts the live readers a filter matches (today, or `as_of` a past day) and lists the
/// first in number order; nothing is saved.
#[utoipa::path(
    post,
    path = "/api/v1/segments/preview",
    tag = "segments",
    request_body = PreviewDraft,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SegmentPreview),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A segment or club the filter names was deleted meanwhile"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn preview_segment(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiJson(draft): ApiJson<PreviewDraft>,
) -> ApiResult<Json<SegmentPreview>> {
    Ok(Json(state.segments.preview(draft).await?))
}

/// Changes a segment's description or definition: a filter segment's `filter` and `as_of`,
/// a plugin segment's `plugin_version` and `key`. The members stay those of the last refresh
/// until the next one.
#[utoipa::path(
    patch,
    path = "/api/v1/segments/{name}",
    tag = "segments",
    params(("name" = String, Path, description = "Segment name")),
    request_body = SegmentChange,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SegmentView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_segment(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(name): ApiPath<String>,
    ApiJson(change): ApiJson<SegmentChange>,
) -> ApiResult<Json<SegmentView>> {
    Ok(Json(state.segments.update(&name, change).await?))
}

/// Deletes a segment with its members; refused while another segment's filter refers to it.
#[utoipa::path(
    delete,
    path = "/api/v1/segments/{name}",
    tag = "segments",
    params(("name" = String, Path, description = "Segment name")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Another segment's filter refers to it"),
    )
)]
async fn delete_segment(
    State(state): State<AppState>,
    _auth: Auth<AdminOnly>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.segments.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a refresh job: a host runs the plugin, or matches the filter, over every reader in
/// batches. Follow it at
/// its `job` link (or poll the segment). One refresh per segment runs at a time.
#[utoipa::path(
    post,
    path = "/api/v1/segments/{name}/refresh",
    tag = "segments",
    params(("name" = String, Path, description = "Segment name")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 202, body = Refresh),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A refresh runs already, or the plugin is disabled"),
    )
)]
async fn refresh_segment(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Refresh>)> {
    let job = state.segments.refresh(&auth.caller, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct MembersQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Members of the last completed refresh, in subscriber-number order.
#[utoipa::path(
    get,
    path = "/api/v1/segments/{name}/members",
    tag = "segments",
    params(("name" = String, Path, description = "Segment name"), MembersQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Page<SubscriberSummary>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn segment_members(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<MembersQuery>,
) -> ApiResult<Json<Page<SubscriberSummary>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 1000",
        ));
    }
    let after = page::decode_opt("members", query.cursor.as_deref())?;
    let members = state.segments.members(&name, after, limit).await?;
    Ok(Json(Page::new("members", members.members, members.next)))
}
