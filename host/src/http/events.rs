//! Club events over HTTP: planning, invitations, answers with the waitlist, and check-in.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, PROBLEM, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Auth, Id, OptionalJson, StaffOrAdmin};
use super::page::{self, Page};
use crate::domain::SubscriberNumber;
use crate::domain::club::event::{EventDraft, InvitationState};
use crate::services::clubs::events::{
    AnswerRequest, AnswerView, InvitationView, InviteRequest, Invited,
};
use crate::store::EventRecord;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_event, list_events))
        .routes(routes!(get_event))
        .routes(routes!(invite, list_invitations))
        .routes(routes!(answer))
        .routes(routes!(check_in))
}

/// Parses `(event id, subscriber number)` path segments.
fn event_and_number((id, number): (String, String)) -> ApiResult<(i64, SubscriberNumber)> {
    let id = id
        .parse()
        .map_err(|_| ApiError::bad_request("invalid-path", format!("`{id}` is not an event id")))?;
    Ok((id, SubscriberNumber::parse(&number)?))
}

/// Plans a club event: a concert, trip, forum, sports or other event, with a capacity and the
/// tiers whose members may come (each must bring event access).
#[utoipa::path(
    post,
    path = "/api/v1/clubs/{code}/events",
    tag = "clubs",
    params(("code" = String, Path)),
    request_body = EventDraft,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = EventRecord),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn create_event(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiPath(code): ApiPath<String>,
    ApiJson(draft): ApiJson<EventDraft>,
) -> ApiResult<(StatusCode, Json<EventRecord>)> {
    let event = state.events.create(&auth.caller, &code, draft).await?;
    Ok((StatusCode::CREATED, Json(event)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Events starting at or after this instant (default: now).
    from: Option<DateTime<Utc>>,
    /// Events starting before this instant.
    to: Option<DateTime<Utc>>,
}

/// The club's events, soonest first, with how many readers were invited, accepted, wait,
/// declined and came.
#[utoipa::path(
    get,
    path = "/api/v1/clubs/{code}/events",
    tag = "clubs",
    params(("code" = String, Path), EventsQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Vec<EventRecord>),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn list_events(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Vec<EventRecord>>> {
    Ok(Json(state.events.list(&code, query.from, query.to).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "clubs",
    params(("id" = i64, Path)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = EventRecord),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn get_event(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<EventRecord>> {
    Ok(Json(state.events.get(id).await?))
}

/// Invites every current member of the eligible tiers, or with `segment` only those in that
/// segment. Readers invited before keep their invitation; running it again invites only new
/// members.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/invitations",
    tag = "clubs",
    params(("id" = i64, Path)),
    request_body(content = Option<InviteRequest>, description = "Optional"),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Invited),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "The event has begun"),
    )
)]
async fn invite(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
    OptionalJson(request): OptionalJson<InviteRequest>,
) -> ApiResult<Json<Invited>> {
    Ok(Json(state.events.invite(&auth.caller, id, request).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct InvitationsQuery {
    state: Option<InvitationState>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The invited readers, by subscriber number, optionally in one state.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}/invitations",
    tag = "clubs",
    params(("id" = i64, Path), InvitationsQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Page<InvitationView>),
        (status = 400, body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn list_invitations(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    Id(id): Id,
    ApiQuery(query): ApiQuery<InvitationsQuery>,
) -> ApiResult<Json<Page<InvitationView>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 1000",
        ));
    }
    let after = page::decode_opt("invitations", query.cursor.as_deref())?;
    let items = state
        .events
        .invitations(id, query.state, after.unwrap_or(0), limit)
        .await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.subscriber.sequence()))
        .flatten();
    Ok(Json(Page::new("invitations", items, next)))
}

/// Records the reader's answer. Yes takes a free place, or a place on the waitlist when the
/// event is full; no gives a place back, and the first reader on the waitlist gets it.
/// Answers to one event are taken one at a time, so the capacity is never exceeded.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/invitations/{number}/answer",
    tag = "clubs",
    params(("id" = i64, Path), ("number" = String, Path)),
    request_body = AnswerRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = AnswerView),
        (status = 404, body = Problem, content_type = PROBLEM, description = "No such event, or the reader is not invited"),
        (status = 409, body = Problem, content_type = PROBLEM, description = "The event has begun, or the reader checked in"),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn answer(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<AnswerRequest>,
) -> ApiResult<Json<AnswerView>> {
    let (id, number) = event_and_number(path)?;
    Ok(Json(
        state
            .events
            .answer(&auth.caller, id, number, request.answer)
            .await?,
    ))
}

/// Checks a reader with an accepted place in, from a day before the start to a day after.
#[utoipa::path(
    post,
    path = "/api/v1/events/{id}/invitations/{number}/check-in",
    tag = "clubs",
    params(("id" = i64, Path), ("number" = String, Path)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = InvitationView),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "No accepted place, or outside the check-in window"),
    )
)]
async fn check_in(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiPath(path): ApiPath<(String, String)>,
) -> ApiResult<Json<InvitationView>> {
    let (id, number) = event_and_number(path)?;
    Ok(Json(state.events.check_in(&auth.caller, id, number).await?))
}
