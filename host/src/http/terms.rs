//! The renewal history and the changes to it: new subscriptions, one-step renewals, holds,
//! cancellations, the auto-renew flag, and the auto-renewal run (a job).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{
    AdminOnly, ApiJson, ApiQuery, Auth, Number, OptionalJson, StaffOrAdmin, TermPath,
};
use super::idempotency::Idempotent;
use super::{AppState, jobs};
use crate::domain::renewal::RenewalChanges;
use crate::domain::term::Term;
use crate::services::auto_renewal::AutoRenewals;
use crate::services::renewals::{
    AutoRenewReport, CancelRequest, HoldRequest, NewSubscription, OrderView, Placed, RenewalHistory,
};
use crate::store::JobRecord;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(renewal_history, subscribe))
        .routes(routes!(renew))
        .routes(routes!(set_auto_renew))
        .routes(routes!(hold_delivery))
        .routes(routes!(cancel_term))
        .routes(routes!(run_auto_renewal))
}

const NUMBER: &str = "Subscriber number with its check digit";

/// Every term of every title the reader ever held, grouped by title with the most recent
/// first, each title with its status and tenure; plus the reader's overall status, tenure,
/// first subscription, lifetime revenue and share of wallet.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}/terms",
    tag = "renewals",
    params(("number" = String, Path, description = NUMBER)),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = RenewalHistory),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn renewal_history(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
) -> ApiResult<Json<RenewalHistory>> {
    Ok(Json(state.circulation.history(&auth.caller, number).await?))
}

/// Subscribes the reader to a title, priced by the list in force on the start date, less
/// the loyalty discount and any discounts staff grant with a reason.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/terms",
    tag = "renewals",
    params(
        ("number" = String, Path, description = NUMBER),
        ("Idempotency-Key" = String, Header, description = "A new random value per intended order"),
    ),
    request_body = NewSubscription,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = OrderView, description = "Created, or the earlier answer to the same key (`Idempotent-Replayed: true`)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Idempotency-Key missing"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The subscriber was erased"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn subscribe(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
    Idempotent {
        idempotency,
        body: ApiJson(request),
    }: Idempotent<ApiJson<NewSubscription>>,
) -> ApiResult<Response> {
    let placed = state
        .circulation
        .subscribe(&auth.caller, number, idempotency, request)
        .await?;
    Ok(order_response(placed))
}

/// Renews in one step. With no body, every current title is renewed "like last year": same
/// format, length, channel, payment and auto-renew, starting the day after its last term.
/// A lapsed reader renews the titles held when they lapsed, from today (tenure restarts).
/// The body may add or drop titles, change format or length, and set channel, payment and
/// auto-renew. Each new term is priced by the list in force on its start date, less the
/// loyalty discount and the club tier's perk. `offer` accepts an offer from
/// `GET .../offers` (its plugin is asked again): its title is renewed or added in the offer's
/// format and length at the offer's price, recorded as an `offer` discount. The same
/// `Idempotency-Key` always yields the same single renewal.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/renewals",
    tag = "renewals",
    params(
        ("number" = String, Path, description = NUMBER),
        ("Idempotency-Key" = String, Header, description = "A new random value per intended renewal"),
    ),
    request_body(content = Option<RenewalChanges>, description = "Optional changes from last year"),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = OrderView, description = "Renewed, or the earlier answer to the same key (`Idempotent-Replayed: true`)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Idempotency-Key missing"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Renewed meanwhile by another request"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Nothing to renew, a bad change, an offer no longer made to the reader, or a key reused for another request"),
    )
)]
async fn renew(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
    Idempotent {
        idempotency,
        body: OptionalJson(changes),
    }: Idempotent<OptionalJson<RenewalChanges>>,
) -> ApiResult<Response> {
    let placed = state
        .circulation
        .renew(&auth.caller, number, idempotency, changes, &state.offers)
        .await?;
    Ok(order_response(placed))
}

fn order_response(placed: Placed) -> Response {
    let mut response = (StatusCode::CREATED, Json(placed.order)).into_response();
    if placed.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TermPatch {
    auto_renew: bool,
}

/// Turns auto-renewal of a term on or off.
#[utoipa::path(
    patch,
    path = "/api/v1/subscribers/{number}/terms/{term}",
    tag = "renewals",
    params(
        ("number" = String, Path, description = NUMBER),
        ("term" = i64, Path, description = "Term id"),
    ),
    request_body = TermPatch,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Term),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Cancelled, or changed meanwhile"),
    )
)]
async fn set_auto_renew(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    path: TermPath,
    ApiJson(patch): ApiJson<TermPatch>,
) -> ApiResult<Json<Term>> {
    let term = state
        .circulation
        .set_auto_renew(&auth.caller, path.number, path.term, patch.auto_renew)
        .await?;
    Ok(Json(term))
}

/// Stops delivery of a print or bundle term for some days (a vacation stop); the term is
/// extended by as many days. A term already renewed cannot be extended: hold the renewal.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/terms/{term}/holds",
    tag = "renewals",
    params(
        ("number" = String, Path, description = NUMBER),
        ("term" = i64, Path, description = "Term id"),
    ),
    request_body = HoldRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = Term, description = "The term with its new end"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Cancelled, renewed, or changed meanwhile"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Digital term, dates outside the term, or an overlapping hold"),
    )
)]
async fn hold_delivery(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    path: TermPath,
    ApiJson(request): ApiJson<HoldRequest>,
) -> ApiResult<(StatusCode, Json<Term>)> {
    let term = state
        .circulation
        .hold(&auth.caller, path.number, path.term, request)
        .await?;
    Ok((StatusCode::CREATED, Json(term)))
}

/// Cancels a term from a date, with the reason and any refund (recorded, not paid out).
/// Auto-renewal of the term stops.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/terms/{term}/cancellation",
    tag = "renewals",
    params(
        ("number" = String, Path, description = NUMBER),
        ("term" = i64, Path, description = "Term id"),
    ),
    request_body = CancelRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Term),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already cancelled"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_term(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    path: TermPath,
    ApiJson(request): ApiJson<CancelRequest>,
) -> ApiResult<Json<Term>> {
    let term = state
        .circulation
        .cancel(&auth.caller, path.number, path.term, request)
        .await?;
    Ok(Json(term))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
struct AutoRenewRun {
    /// Renew terms ending within this many days (1 to 90, default 14).
    within_days: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AutoRenewQuery {
    /// Answer with the report once the run has finished, if it finishes within this many
    /// seconds (0 to 20); otherwise (and without `wait`) the answer is the queued job.
    #[param(minimum = 0, maximum = 20)]
    wait: Option<u64>,
}

/// Queues a job that renews every auto-renew term ending within the window (and any missed
/// within the grace period); any host runs it. While one is queued or running (the daily one
/// too), that one is answered instead, whatever its window. Safe to run again: a term is
/// never renewed twice. The same job runs from the CLI as `masthead renew-due`.
#[utoipa::path(
    post,
    path = "/api/v1/renewals/auto",
    tag = "renewals",
    params(AutoRenewQuery),
    request_body(content = Option<AutoRenewRun>, description = "Optional window"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = AutoRenewReport, description = "With `wait`: the run finished within it"),
        (status = 202, body = JobRecord, description = "The auto-renewal job, queued or running (or ended without success after `wait`: see its state and error)",
            headers(("Location" = String, description = "The job, to follow with `GET /api/v1/jobs/{id}?wait=`"))),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn run_auto_renewal(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<AutoRenewQuery>,
    OptionalJson(run): OptionalJson<AutoRenewRun>,
) -> ApiResult<Response> {
    let wait = jobs::wait_of(query.wait)?;
    let days = run.within_days.unwrap_or(14);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid(crate::domain::FieldErrors::single(
            "within_days",
            "renew terms ending within 1 to 90 days",
        )));
    }
    let job = state.auto_renewals.start(&auth.caller.actor, days).await?;
    jobs::follow(&state, job, wait, async |job| Ok(AutoRenewals::report(job))).await
}
