//! Subscriber cards: create, list, read, update, consents, merge, erase and export.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{
    AdminOnly, ApiJson, ApiQuery, Auth, IfMatch, Number, OptionalIfMatch, StaffOrAdmin,
};
use super::page::{self, Page};
use crate::domain::subscriber::{ProfilePatch, RelationshipLevel, SubscriberKind};
use crate::domain::{
    ConsentChange, ConsentEvent, ProfileDraft, SubscriberNumber, SubscriberStatus,
};
use crate::services::subscribers::{SubscriberCard, SubscriberExport};
use crate::store::{Subscriber, SubscriberFilter, SubscriberSummary};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_subscriber, list_subscribers))
        .routes(routes!(get_subscriber, update_subscriber))
        .routes(routes!(record_consents, consent_history))
        .routes(routes!(merge_subscriber))
        .routes(routes!(erase_subscriber))
        .routes(routes!(export_subscriber))
}

/// A new subscriber: the profile fields, flat, plus the consents given at sign-up.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the body for OpenAPI; the handler splits it by hand.
#[serde(deny_unknown_fields)] // As the handler: it refuses fields it does not know.
struct NewSubscriberRequest {
    #[serde(flatten)]
    profile: ProfileDraft,
    #[serde(default)]
    consents: Vec<ConsentChange>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CreateQuery {
    /// Create even though the reader looks like an existing subscriber.
    #[serde(default)]
    allow_duplicate: bool,
}

/// Creates a subscriber. A reader whose email, phone, or name and postal code match an
/// existing one is refused with 409 and the candidates, unless `allow_duplicate=true`.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers",
    tag = "subscribers",
    params(CreateQuery),
    request_body = NewSubscriberRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 201, body = SubscriberCard, description = "Created; ETag holds the version"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Possible duplicate"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_subscriber(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<CreateQuery>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    let (draft, consents) = split_new_subscriber(body)?;
    let subscriber = state
        .registry
        .create(&auth.caller, draft, consents, query.allow_duplicate)
        .await?;
    Ok(card_response(StatusCode::CREATED, subscriber))
}

/// The consents travel beside the profile in one object; `deny_unknown_fields` cannot see
/// through `#[serde(flatten)]`, so they are taken out before the profile is read.
fn split_new_subscriber(
    mut body: serde_json::Value,
) -> ApiResult<(ProfileDraft, Vec<ConsentChange>)> {
    let invalid = |detail: String| {
        ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid body",
            detail,
        )
    };
    let object = body
        .as_object_mut()
        .ok_or_else(|| invalid("the body must be a JSON object".into()))?;
    let consents = match object.remove("consents") {
        None => Vec::new(),
        Some(value) => {
            serde_json::from_value(value).map_err(|e| invalid(format!("consents: {e}")))?
        }
    };
    let draft = serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
    Ok((draft, consents))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<SubscriberStatus>,
    kind: Option<SubscriberKind>,
    relationship_level: Option<RelationshipLevel>,
    /// Staff id of the relationship manager.
    relationship_manager: Option<i64>,
    postal_code: Option<String>,
    region: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists subscribers in number order, filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers",
    tag = "subscribers",
    params(ListQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Page<SubscriberSummary>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_subscribers(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<SubscriberSummary>>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 500",
        ));
    }
    let after = page::decode_opt("subscribers", query.cursor.as_deref())?;
    let filter = SubscriberFilter {
        status: query.status,
        kind: query.kind,
        relationship_level: query.relationship_level,
        relationship_manager: query.relationship_manager,
        postal_code: query
            .postal_code
            .as_deref()
            .map(crate::domain::contact::normalize_postal_code),
        region: query.region,
        after,
        limit,
    };
    let items = state.registry.list(&auth.caller, &filter).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|s| s.number.sequence()))
        .flatten();
    Ok(Json(Page::new("subscribers", items, next)))
}

/// The reader's whole card. A merged number answers 308 with the number that holds it now.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}",
    tag = "subscribers",
    params(("number" = String, Path, description = "Subscriber number with its check digit")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SubscriberCard, description = "ETag holds the version"),
        (status = 308, body = Problem, content_type = "application/problem+json", description = "Merged; Location names the new number"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Wrong check digit"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_subscriber(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
) -> ApiResult<Response> {
    let subscriber = state.registry.get(&auth.caller, number).await?;
    Ok(card_response(StatusCode::OK, subscriber))
}

/// Changes profile fields. Send the version from the card's ETag in `If-Match`; a stale
/// version is refused with 409 so that nobody's change is overwritten unseen.
#[utoipa::path(
    patch,
    path = "/api/v1/subscribers/{number}",
    tag = "subscribers",
    params(
        ("number" = String, Path, description = "Subscriber number with its check digit"),
        ("If-Match" = String, Header, description = "The card's version, e.g. \"3\""),
    ),
    request_body = ProfilePatch,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SubscriberCard),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Stale version"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json", description = "If-Match missing"),
    )
)]
async fn update_subscriber(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
    IfMatch(version): IfMatch,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> ApiResult<Response> {
    let subscriber = state
        .registry
        .update(&auth.caller, number, version, patch)
        .await?;
    Ok(card_response(StatusCode::OK, subscriber))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    changes: Vec<ConsentChange>,
}

/// Records consents given or withdrawn; each change joins the history.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/consents",
    tag = "subscribers",
    params(("number" = String, Path, description = "Subscriber number with its check digit")),
    request_body = ConsentRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SubscriberCard),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The subscriber was erased"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn record_consents(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
    ApiJson(request): ApiJson<ConsentRequest>,
) -> ApiResult<Response> {
    let subscriber = state
        .registry
        .record_consents(&auth.caller, number, request.changes)
        .await?;
    Ok(card_response(StatusCode::OK, subscriber))
}

/// Every consent change of the subscriber, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}/consents",
    tag = "subscribers",
    params(("number" = String, Path, description = "Subscriber number with its check digit")),
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = [ConsentEvent]))
)]
async fn consent_history(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
) -> ApiResult<Json<Vec<ConsentEvent>>> {
    Ok(Json(
        state.registry.consent_history(&auth.caller, number).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    /// The duplicate to fold into this subscriber; its number will redirect here.
    #[schema(value_type = String)]
    source: String,
}

/// Folds another subscriber into this one in one transaction: contacts are combined, the
/// history follows, and the other number redirects here. `If-Match` is optional.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/merge",
    tag = "subscribers",
    params(("number" = String, Path, description = "The subscriber that stays")),
    request_body = MergeRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SubscriberCard),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn merge_subscriber(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(target): Number,
    OptionalIfMatch(version): OptionalIfMatch,
    ApiJson(request): ApiJson<MergeRequest>,
) -> ApiResult<Response> {
    let source = SubscriberNumber::parse(&request.source).map_err(|e| {
        ApiError::invalid(crate::domain::FieldErrors::single("source", e.to_string()))
    })?;
    let subscriber = state
        .registry
        .merge(&auth.caller, target, source, version)
        .await?;
    Ok(card_response(StatusCode::OK, subscriber))
}

/// Erases the subscriber's personal data on request; the number and anonymous history stay.
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{number}/erase",
    tag = "subscribers",
    params(("number" = String, Path, description = "Subscriber number with its check digit")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = SubscriberCard),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn erase_subscriber(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    Number(number): Number,
    OptionalIfMatch(version): OptionalIfMatch,
) -> ApiResult<Response> {
    let subscriber = state.registry.erase(&auth.caller, number, version).await?;
    Ok(card_response(StatusCode::OK, subscriber))
}

/// Everything held about the subscriber, for a subject access request.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}/export",
    tag = "subscribers",
    params(("number" = String, Path, description = "Subscriber number with its check digit")),
    security(("api_key" = ["admin"])),
    responses((status = 200, body = SubscriberExport))
)]
async fn export_subscriber(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    Number(number): Number,
) -> ApiResult<Response> {
    let export = state.registry.export(&auth.caller, number).await?;
    let filename = format!("attachment; filename=\"subscriber-{number}.json\"");
    let mut response = Json(export).into_response();
    if let Ok(value) = HeaderValue::from_str(&filename) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn card_response(status: StatusCode, subscriber: Subscriber) -> Response {
    let number = subscriber.number;
    let etag = format!("\"{}\"", subscriber.version);
    let mut response = (status, Json(SubscriberCard::from(subscriber))).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED
        && let Ok(value) = HeaderValue::from_str(&format!("/api/v1/subscribers/{number}"))
    {
        headers.insert(header::LOCATION, value);
    }
    response
}
