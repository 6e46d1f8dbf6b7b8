//! Complaints and other interactions: logging a contact, its workflow steps, the breach
//! queue, the report and the commitments in force.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, PROBLEM, Problem};
use super::extract::{ApiJson, ApiQuery, Auth, Id, StaffOrAdmin};
use super::page::{self, Page};
use crate::domain::SubscriberNumber;
use crate::domain::interaction::{Category, Interaction, Kind, State as Stage};
use crate::services::complaints::report::ComplaintReport;
use crate::services::complaints::{InteractionView, NewInteraction, PolicyView, Queue, Step};
use crate::store::InteractionFilter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_interaction, list_interactions))
        .routes(routes!(get_interaction))
        .routes(routes!(add_step))
        .routes(routes!(queue))
        .routes(routes!(report))
        .routes(routes!(policy))
}

/// Logs a contact with a reader: a complaint, question, suggestion or praise. Complaints
/// and questions get their response and resolution due times from the configured targets,
/// counted in business hours. With `resolution` the interaction is resolved in this same
/// contact (first-contact resolution), with any compensation applied at once.
#[utoipa::path(
    post,
    path = "/api/v1/interactions",
    tag = "complaints",
    request_body = NewInteraction,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = InteractionView),
        (status = 404, body = Problem, content_type = PROBLEM, description = "No such subscriber"),
        (status = 409, body = Problem, content_type = PROBLEM, description = "The compensation cannot apply to that term"),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn open_interaction(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiJson(request): ApiJson<NewInteraction>,
) -> ApiResult<(StatusCode, Json<InteractionView>)> {
    let view = state.complaints.open(&auth.caller, request).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only this subscriber's.
    subscriber: Option<String>,
    state: Option<Stage>,
    /// Only those owned by this staff member.
    owner: Option<i64>,
    category: Option<Category>,
    kind: Option<Kind>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Interactions, newest first, filtered by subscriber, state, owner, category or kind.
#[utoipa::path(
    get,
    path = "/api/v1/interactions",
    tag = "complaints",
    params(ListQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Page<Interaction>),
        (status = 400, body = Problem, content_type = PROBLEM),
    )
)]
async fn list_interactions(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Interaction>>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 500",
        ));
    }
    let subscriber = query
        .subscriber
        .as_deref()
        .map(SubscriberNumber::parse)
        .transpose()?;
    let filter = InteractionFilter {
        subscriber,
        state: query.state,
        owner: query.owner,
        category: query.category,
        kind: query.kind,
        before: page::decode_opt("interactions", query.cursor.as_deref())?,
        limit,
    };
    let items = state.complaints.list(&auth.caller, &filter).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(Json(Page::new("interactions", items, next)))
}

/// One interaction with its due times, every step (who, when) and its compensations.
#[utoipa::path(
    get,
    path = "/api/v1/interactions/{id}",
    tag = "complaints",
    params(("id" = i64, Path, description = "Interaction id")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = InteractionView),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn get_interaction(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
) -> ApiResult<Json<InteractionView>> {
    Ok(Json(state.complaints.get(&auth.caller, id).await?))
}

/// Takes the next workflow step, named by `action`:
/// `respond` (the first answer), `resolve` (with the resolution and any compensation:
/// extra days on a term, or a credit, applied in the same transaction), `close` (a resolved
/// interaction), `reopen`, `pause` (waiting for the reader: the clock stops), `resume`,
/// `assign` (to a staff member) and `link` (an unidentified contact to a subscriber).
/// A step the workflow does not allow, such as closing an unresolved interaction or
/// resolving twice, is refused with 409 and what to do instead.
#[utoipa::path(
    post,
    path = "/api/v1/interactions/{id}/steps",
    tag = "complaints",
    params(("id" = i64, Path, description = "Interaction id")),
    request_body = Step,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = InteractionView),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "Not allowed in this state, or changed meanwhile"),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn add_step(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Id(id): Id,
    ApiJson(step): ApiJson<Step>,
) -> ApiResult<Json<InteractionView>> {
    Ok(Json(state.complaints.apply(&auth.caller, id, step).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    /// Only those owned by this staff member.
    owner: Option<i64>,
    category: Option<Category>,
    /// Also list those due within this many minutes (default: `complaints.due_soon_minutes`).
    within_minutes: Option<u32>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The breach queue: unresolved interactions past their due time (flagged `overdue`) or
/// due soon, soonest first. Paused interactions are not listed: their clock stands still.
#[utoipa::path(
    get,
    path = "/api/v1/interactions/queue",
    tag = "complaints",
    params(QueueQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Queue),
        (status = 400, body = Problem, content_type = PROBLEM),
    )
)]
async fn queue(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> ApiResult<Json<Queue>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 500",
        ));
    }
    if query.within_minutes.is_some_and(|m| m > 7 * 24 * 60) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "within_minutes must be at most a week (10080)",
        ));
    }
    let within = query
        .within_minutes
        .map(|m| chrono::Duration::minutes(i64::from(m)));
    let queue = state
        .complaints
        .queue(query.owner, query.category, within, limit)
        .await?;
    Ok(Json(queue))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// First day of the period (in the desk's time zone).
    from: NaiveDate,
    /// Last day of the period, at most 366 days after `from`.
    to: NaiveDate,
}

/// Complaints opened in a period: service-level compliance per category (met / decided),
/// median and p90 business minutes to first response and to resolution (pauses excluded,
/// nearest rank), the first-contact resolution rate, repeat complainers, and the renewal
/// rate of terms that ended in the period for readers whose complaints were resolved in
/// time, late, or who did not complain.
#[utoipa::path(
    get,
    path = "/api/v1/interactions/report",
    tag = "complaints",
    params(ReportQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = ComplaintReport),
        (status = 400, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn report(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> ApiResult<Json<ComplaintReport>> {
    Ok(Json(state.complaints.report(query.from, query.to).await?))
}

/// The response and resolution targets in force, and the time zone of the desk's hours.
#[utoipa::path(
    get,
    path = "/api/v1/interactions/policy",
    tag = "complaints",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = PolicyView))
)]
async fn policy(State(state): State<AppState>, _: Auth<StaffOrAdmin>) -> Json<PolicyView> {
    Json(state.complaints.policy_view())
}
