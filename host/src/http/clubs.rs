//! Reader clubs over HTTP: defining clubs, recomputing tiers, the club report, and a reader's
//! tiers, history and overrides.

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
use super::extract::{AdminOnly, ApiJson, ApiPath, ApiQuery, Auth, IfMatch, Number, StaffOrAdmin};
use crate::domain::SubscriberNumber;
use crate::domain::club::ClubDraft;
use crate::services::clubs::report::ClubReport;
use crate::services::clubs::{ClubView, OverrideRequest, ReaderClubs, Recomputation};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_club, list_clubs))
        .routes(routes!(get_club, update_club))
        .routes(routes!(start_recompute, list_recomputes))
        .routes(routes!(get_recompute))
        .routes(routes!(report))
        .routes(routes!(reader_clubs))
        .routes(routes!(set_override, end_override))
}

/// Parses `(number, code)` path segments.
fn number_and_code((number, code): (String, String)) -> ApiResult<(SubscriberNumber, String)> {
    Ok((SubscriberNumber::parse(&number)?, code))
}

/// Defines a club: its tiers, lowest first, each with a qualification rule and perks. Rules
/// are JSON with one key naming the condition: `tenure` (`min_years`), `spend` (`min` minor
/// units over `months`), `titles` (`min`), `holds` (`publication`), `no_open_complaint`
/// (`older_than_days`), `plugin` (`id`, `key` of a segmenter), and `all` / `any` of rules.
#[utoipa::path(
    post,
    path = "/api/v1/clubs",
    tag = "clubs",
    request_body = ClubDraft,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = ClubView),
        (status = 409, body = Problem, content_type = PROBLEM, description = "The code is taken"),
        (status = 422, body = Problem, content_type = PROBLEM, description = "A rule, tier or perk is invalid"),
    )
)]
async fn create_club(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiJson(draft): ApiJson<ClubDraft>,
) -> ApiResult<(StatusCode, Json<ClubView>)> {
    let view = state.clubs.create(&auth.caller, draft).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every club with its tiers and how many readers hold each.
#[utoipa::path(
    get,
    path = "/api/v1/clubs",
    tag = "clubs",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = Vec<ClubView>))
)]
async fn list_clubs(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
) -> ApiResult<Json<Vec<ClubView>>> {
    Ok(Json(state.clubs.list().await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/clubs/{code}",
    tag = "clubs",
    params(("code" = String, Path)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = ClubView),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn get_club(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<ClubView>> {
    Ok(Json(state.clubs.get(&code).await?))
}

/// Replaces the club's definition. Send the club's `version` in `If-Match`. Readers move to
/// new rules at the next recomputation; a tier readers still hold cannot be removed.
#[utoipa::path(
    put,
    path = "/api/v1/clubs/{code}",
    tag = "clubs",
    params(("code" = String, Path), ("If-Match" = String, Header, description = "The club's version")),
    request_body = ClubDraft,
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = ClubView),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "Changed meanwhile, or a removed tier is held"),
        (status = 422, body = Problem, content_type = PROBLEM),
        (status = 428, body = Problem, content_type = PROBLEM),
    )
)]
async fn update_club(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiPath(code): ApiPath<String>,
    IfMatch(version): IfMatch,
    ApiJson(draft): ApiJson<ClubDraft>,
) -> ApiResult<Json<ClubView>> {
    Ok(Json(
        state
            .clubs
            .update(&auth.caller, &code, version, draft)
            .await?,
    ))
}

/// Starts recomputing every reader's tier in the background (the nightly job; renewals and
/// cancellations recompute their reader at once). Follow the job at its own URL.
#[utoipa::path(
    post,
    path = "/api/v1/clubs/{code}/recomputations",
    tag = "clubs",
    params(("code" = String, Path)),
    security(("api_key" = ["admin"])),
    responses(
        (status = 202, body = Recomputation),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "One is already running"),
    )
)]
async fn start_recompute(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Recomputation>)> {
    let job = state.clubs.start_recompute(&auth.caller, &code).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// The latest recomputations, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/clubs/{code}/recomputations",
    tag = "clubs",
    params(("code" = String, Path)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Vec<Recomputation>),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn list_recomputes(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<Json<Vec<Recomputation>>> {
    Ok(Json(state.clubs.recomputes(&code).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/clubs/{code}/recomputations/{id}",
    tag = "clubs",
    params(("code" = String, Path), ("id" = i64, Path)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Recomputation),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn get_recompute(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath((code, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Recomputation>> {
    let id = id.parse().map_err(|_| {
        ApiError::bad_request("invalid-path", format!("`{id}` is not a recomputation id"))
    })?;
    Ok(Json(state.clubs.recompute_status(&code, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// First day of the period.
    from: NaiveDate,
    /// Last day of the period.
    to: NaiveDate,
}

/// Members per tier at each month's end, promotions and demotions in the period, and the
/// attendance rate of the period's events.
#[utoipa::path(
    get,
    path = "/api/v1/clubs/{code}/report",
    tag = "clubs",
    params(("code" = String, Path), ReportQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = ClubReport),
        (status = 400, body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn report(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(code): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> ApiResult<Json<ClubReport>> {
    Ok(Json(state.clubs.report(&code, query.from, query.to).await?))
}

/// The reader's tiers with the rule results (or override) behind each, overrides, the
/// history of moves between tiers, and their club events.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}/clubs",
    tag = "clubs",
    params(("number" = String, Path, description = "Subscriber number with its check digit")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = ReaderClubs),
        (status = 400, body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn reader_clubs(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
) -> ApiResult<Json<ReaderClubs>> {
    Ok(Json(state.clubs.reader(&auth.caller, number).await?))
}

/// Grants (at least this tier) or holds (exactly this tier) a tier for the reader until the
/// end of `expires`, with a reason; the reader's standing is recomputed at once.
#[utoipa::path(
    put,
    path = "/api/v1/subscribers/{number}/clubs/{code}/override",
    tag = "clubs",
    params(("number" = String, Path), ("code" = String, Path)),
    request_body = OverrideRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = ReaderClubs),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "An override is in force already"),
        (status = 422, body = Problem, content_type = PROBLEM),
    )
)]
async fn set_override(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiPath(path): ApiPath<(String, String)>,
    ApiJson(request): ApiJson<OverrideRequest>,
) -> ApiResult<Json<ReaderClubs>> {
    let (number, code) = number_and_code(path)?;
    Ok(Json(
        state
            .clubs
            .set_override(&auth.caller, number, &code, request)
            .await?,
    ))
}

/// Ends the override in force before it expires; the rules decide again at once.
#[utoipa::path(
    delete,
    path = "/api/v1/subscribers/{number}/clubs/{code}/override",
    tag = "clubs",
    params(("number" = String, Path), ("code" = String, Path)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = ReaderClubs),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "The subscriber was erased"),
    )
)]
async fn end_override(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiPath(path): ApiPath<(String, String)>,
) -> ApiResult<Json<ReaderClubs>> {
    let (number, code) = number_and_code(path)?;
    Ok(Json(
        state
            .clubs
            .end_override(&auth.caller, number, &code)
            .await?,
    ))
}
