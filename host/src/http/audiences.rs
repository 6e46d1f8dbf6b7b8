//! Audiences: staff publish them from segments, release their figures and see the exact
//! counts, the releases and the audit of advertisers' requests; advertisers read the released
//! figures of the audiences shared with their account, and nothing of one reader.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{AdvertiserOnly, ApiJson, ApiQuery, Auth, Id, StaffOrAdmin};
use super::page::{self, Page};
use crate::services::audiences::bookings::{
    BookingRequest, BookingView, DecisionRequest, StaffBookingView,
};
use crate::services::audiences::{
    AudienceDraft, AudienceView, ReleaseView, SharedAudience, SizePoint, StaffReleaseView,
};
use crate::store::{AudienceRequest, NewAudienceRequest};

/// Requests listed at a time unless asked otherwise.
const REQUESTS_PAGE: i64 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish, list_audiences))
        .routes(routes!(get_audience))
        .routes(routes!(unpublish))
        .routes(routes!(make_release, list_releases))
        .routes(routes!(audience_requests))
        .routes(routes!(shared_audiences))
        .routes(routes!(shared_audience))
        .routes(routes!(shared_release))
        .routes(routes!(shared_release_csv))
        .routes(routes!(shared_sizes))
        .routes(routes!(book, shared_bookings))
        .routes(routes!(audience_bookings))
        .routes(routes!(decide_booking))
        .routes(routes!(deliver_booking))
}

/// Publishes an audience from a refreshed segment and makes its first release: the members
/// who granted `third_party_audiences`, counted in total and by every declared dimension and
/// pair, each count noised. Refused when its members differ from another published
/// audience's by fewer readers than the minimum cell.
#[utoipa::path(
    post,
    path = "/api/v1/audiences",
    tag = "audiences",
    request_body = AudienceDraft,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = AudienceView),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The name is taken, or the audience would difference another"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn publish(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiJson(draft): ApiJson<AudienceDraft>,
) -> ApiResult<(StatusCode, Json<AudienceView>)> {
    let (view, release) = state.audiences.publish(&auth.caller, draft).await?;
    let detail = json!({ "audience_id": view.id, "release_id": release.id });
    let entry = auth.caller.audit("audience.publish", None, detail);
    state.audit.record(entry).await;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every audience, unpublished ones included, with its budget.
#[utoipa::path(
    get,
    path = "/api/v1/audiences",
    tag = "audiences",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = Vec<AudienceView>))
)]
async fn list_audiences(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
) -> ApiResult<Json<Vec<AudienceView>>> {
    Ok(Json(state.audiences.list().await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/audiences/{id}",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = AudienceView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_audience(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<AudienceView>> {
    Ok(Json(state.audiences.get(id).await?))
}

/// Stops every advertiser's access at once. The releases stay for the publisher.
#[utoipa::path(
    post,
    path = "/api/v1/audiences/{id}/unpublish",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = AudienceView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn unpublish(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<AudienceView>> {
    let view = state.audiences.unpublish(id).await?;
    let entry = auth
        .caller
        .audit("audience.unpublish", None, json!({ "audience_id": id }));
    state.audit.record(entry).await;
    Ok(Json(view))
}

/// Makes a new release now from the segment's last refresh. Refused when the last release
/// is more recent than the audience's spacing, when it would overdraw the period's budget
/// (the problem's `refills_at` says when it refills), or when the members differ from the
/// last release's by fewer readers than the minimum cell (held).
#[utoipa::path(
    post,
    path = "/api/v1/audiences/{id}/releases",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = StaffReleaseView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Too soon, held, unpublished, or the budget is spent"),
    )
)]
async fn make_release(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<(StatusCode, Json<StaffReleaseView>)> {
    let release = state.audiences.release(id).await?;
    let detail = json!({ "audience_id": id, "release_id": release.id });
    let entry = auth.caller.audit("audience.release", None, detail);
    state.audit.record(entry).await;
    let views = state.audiences.staff_releases(id).await?;
    let view = views.into_iter().find(|v| v.release_id == release.id);
    let view = view.ok_or_else(|| super::error::ApiError::internal("the release vanished"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every release, newest first: the exact figures next to what advertisers were shown.
#[utoipa::path(
    get,
    path = "/api/v1/audiences/{id}/releases",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Vec<StaffReleaseView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_releases(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<Vec<StaffReleaseView>>> {
    Ok(Json(state.audiences.staff_releases(id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RequestsQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Requests per page, 1 to 500 (default 100).
    limit: Option<i64>,
}

/// Every request advertisers made of this audience: who (account and key), which release,
/// when; oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/audiences/{id}/requests",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id"), RequestsQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Page<AudienceRequest>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn audience_requests(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    Id(id): Id,
    ApiQuery(query): ApiQuery<RequestsQuery>,
) -> ApiResult<Json<Page<AudienceRequest>>> {
    state.audiences.get(id).await?;
    let limit = query.limit.unwrap_or(REQUESTS_PAGE);
    if !(1..=500).contains(&limit) {
        return Err(super::error::ApiError::bad_request(
            "invalid-query",
            "`limit` is 1 to 500",
        ));
    }
    let after = page::decode_opt("audience-requests", query.cursor.as_deref())?.unwrap_or(0);
    let mut items = state
        .store
        .list_audience_requests(Some(id), after, limit + 1)
        .await?;
    let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more.then(|| items.last().map(|r| r.id)).flatten();
    Ok(Json(Page::new("audience-requests", items, next)))
}

/// Records an advertiser's request for the publisher's audit, answered or not (asking for an
/// audience not shared is on record too); the answer waits for it, so nothing is shown that
/// is not on record.
async fn audited(
    state: &AppState,
    auth: &Auth<AdvertiserOnly>,
    audience_id: Option<i64>,
    release_id: Option<i64>,
    what: &'static str,
) -> ApiResult<()> {
    let request = NewAudienceRequest {
        at: auth.caller.now,
        advertiser_id: auth.account()?,
        key_id: auth.caller.actor.key_id.unwrap_or(0),
        audience_id,
        release_id,
        what,
        request_id: auth.caller.request_id.clone(),
    };
    state.store.record_audience_request(request).await?;
    Ok(())
}

/// The published audiences shared with your account, each with its budget.
#[utoipa::path(
    get,
    path = "/api/v1/shared-audiences",
    tag = "audiences",
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 200, body = Vec<SharedAudience>),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "The key is bound to no advertiser account"),
    )
)]
async fn shared_audiences(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
) -> ApiResult<Json<Vec<SharedAudience>>> {
    let account = auth.account()?;
    audited(&state, &auth, None, None, "audiences").await?;
    Ok(Json(state.audiences.shared(account).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/shared-audiences/{id}",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 200, body = SharedAudience),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No audience of that id is shared with you"),
    )
)]
async fn shared_audience(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
    Id(id): Id,
) -> ApiResult<Json<SharedAudience>> {
    let shared = state.audiences.shared_one(auth.account()?, id).await;
    audited(&state, &auth, Some(id), None, "audience").await?;
    Ok(Json(shared?))
}

/// The latest release of an audience shared with you: the total, every dimension and every
/// allowed pair, each count noised (`privacy` says how) with its 95 % interval, or
/// `suppressed` below the minimum cell. Asking again returns the same figures and spends
/// nothing.
#[utoipa::path(
    get,
    path = "/api/v1/shared-audiences/{id}/release",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 200, body = ReleaseView),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No audience of that id is shared with you"),
    )
)]
async fn shared_release(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
    Id(id): Id,
) -> ApiResult<Json<ReleaseView>> {
    let release = state.audiences.latest(auth.account()?, id).await;
    let shown = release.as_ref().ok().map(|r| r.release_id);
    audited(&state, &auth, Some(id), shown, "release").await?;
    Ok(Json(release?))
}

/// The latest release as CSV: one row per cell, `part,dimension_1,value_1,dimension_2,
/// value_2,count,low,high,suppressed`.
#[utoipa::path(
    get,
    path = "/api/v1/shared-audiences/{id}/release.csv",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 200, body = String, content_type = "text/csv"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No audience of that id is shared with you"),
    )
)]
async fn shared_release_csv(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
    Id(id): Id,
) -> ApiResult<Response> {
    let release = state.audiences.latest(auth.account()?, id).await;
    let shown = release.as_ref().ok().map(|r| r.release_id);
    audited(&state, &auth, Some(id), shown, "release.csv").await?;
    let body = release?.figures.to_csv();
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

/// The released total of every release of an audience shared with you, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/shared-audiences/{id}/sizes",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 200, body = Vec<SizePoint>),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No audience of that id is shared with you"),
    )
)]
async fn shared_sizes(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
    Id(id): Id,
) -> ApiResult<Json<Vec<SizePoint>>> {
    let sizes = state.audiences.sizes(auth.account()?, id).await;
    audited(&state, &auth, Some(id), None, "history").await?;
    Ok(Json(sizes?))
}

/// Books a placement on an audience shared with you: a print insert delivered to its print
/// readers, or a digital placement, over a range of days. The publisher accepts or declines
/// it; once delivered, the booking shows the reach, noised like a release.
#[utoipa::path(
    post,
    path = "/api/v1/shared-audiences/{id}/bookings",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    request_body = BookingRequest,
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 201, body = BookingView),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No audience of that id is shared with you"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn book(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
    Id(id): Id,
    ApiJson(request): ApiJson<BookingRequest>,
) -> ApiResult<(StatusCode, Json<BookingView>)> {
    let booking = state.audiences.book(auth.account()?, id, request).await;
    audited(&state, &auth, Some(id), None, "booking").await?;
    Ok((StatusCode::CREATED, Json(booking?)))
}

/// Your bookings on an audience shared with you, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/shared-audiences/{id}/bookings",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["advertiser"])),
    responses(
        (status = 200, body = Vec<BookingView>),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No audience of that id is shared with you"),
    )
)]
async fn shared_bookings(
    State(state): State<AppState>,
    auth: Auth<AdvertiserOnly>,
    Id(id): Id,
) -> ApiResult<Json<Vec<BookingView>>> {
    let bookings = state.audiences.bookings_of(auth.account()?, id).await;
    audited(&state, &auth, Some(id), None, "bookings").await?;
    Ok(Json(bookings?))
}

/// Every booking on the audience, newest first, with the exact reach beside what was shown.
#[utoipa::path(
    get,
    path = "/api/v1/audiences/{id}/bookings",
    tag = "audiences",
    params(("id" = i64, Path, description = "The audience's id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Vec<StaffBookingView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn audience_bookings(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<Vec<StaffBookingView>>> {
    Ok(Json(state.audiences.bookings(id).await?))
}

/// Accepts or declines a requested booking (a reason is required to decline).
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/decision",
    tag = "audiences",
    params(("id" = i64, Path, description = "The booking's id")),
    request_body = DecisionRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = StaffBookingView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Decided already"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn decide_booking(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> ApiResult<Json<StaffBookingView>> {
    let view = state.audiences.decide(&auth.caller, id, request).await?;
    let detail = json!({ "booking_id": id, "state": view.booking.state });
    let entry = auth.caller.audit("booking.decide", None, detail);
    state.audit.record(entry).await;
    Ok(Json(view))
}

/// Records an accepted booking as delivered once its last day has passed, and releases its
/// reach: the readers of the audience's last release the placement reached, noised under the
/// audience's release epsilon (spent from its budget) and suppressed below its minimum cell.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/delivery",
    tag = "audiences",
    params(("id" = i64, Path, description = "The booking's id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = StaffBookingView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Not accepted, still running, delivered already, or the budget is spent"),
    )
)]
async fn deliver_booking(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<StaffBookingView>> {
    let view = state.audiences.deliver(id).await?;
    let entry = auth
        .caller
        .audit("booking.deliver", None, json!({ "booking_id": id }));
    state.audit.record(entry).await;
    Ok(Json(view))
}
