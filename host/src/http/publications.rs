//! The publications catalogue: titles and their price lists.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{AdminOnly, ApiJson, Auth, Code, StaffOrAdmin};
use crate::domain::publication::{PriceListDraft, PublicationDraft};
use crate::services::catalogue::{PublicationPatch, PublicationView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_publication, list_publications))
        .routes(routes!(get_publication, update_publication))
        .routes(routes!(add_price_list))
}

/// Adds a title to the catalogue. It can be sold once it has a price list.
#[utoipa::path(
    post,
    path = "/api/v1/publications",
    tag = "publications",
    request_body = PublicationDraft,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = PublicationView),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The code is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_publication(
    State(state): State<AppState>,
    _auth: Auth<AdminOnly>,
    ApiJson(draft): ApiJson<PublicationDraft>,
) -> ApiResult<(StatusCode, Json<PublicationView>)> {
    let view = state.catalogue.create(draft).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Every title with its price lists.
#[utoipa::path(
    get,
    path = "/api/v1/publications",
    tag = "publications",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = Vec<PublicationView>))
)]
async fn list_publications(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
) -> ApiResult<Json<Vec<PublicationView>>> {
    Ok(Json(state.catalogue.list().await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/publications/{code}",
    tag = "publications",
    params(("code" = String, Path, description = "Publication code, e.g. DAILY")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = PublicationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_publication(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    Code(code): Code,
) -> ApiResult<Json<PublicationView>> {
    Ok(Json(state.catalogue.get(&code).await?))
}

/// Renames a title, or takes it off sale (`"on_sale": false`): it can then no longer be
/// subscribed to or renewed, and existing terms run out. `true` puts it back on sale.
#[utoipa::path(
    patch,
    path = "/api/v1/publications/{code}",
    tag = "publications",
    params(("code" = String, Path, description = "Publication code, e.g. DAILY")),
    request_body = PublicationPatch,
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = PublicationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_publication(
    State(state): State<AppState>,
    _auth: Auth<AdminOnly>,
    Code(code): Code,
    ApiJson(patch): ApiJson<PublicationPatch>,
) -> ApiResult<Json<PublicationView>> {
    Ok(Json(state.catalogue.update(&code, patch).await?))
}

/// Adds a price list in force from its date until a later one begins. It must price every
/// format and term length the title sells. Lists are never edited, so every term keeps the
/// price it was sold at.
#[utoipa::path(
    post,
    path = "/api/v1/publications/{code}/price-lists",
    tag = "publications",
    params(("code" = String, Path, description = "Publication code, e.g. DAILY")),
    request_body = PriceListDraft,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = PublicationView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A list from that date exists"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn add_price_list(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    Code(code): Code,
    ApiJson(draft): ApiJson<PriceListDraft>,
) -> ApiResult<(StatusCode, Json<PublicationView>)> {
    let view = state
        .catalogue
        .add_price_list(&code, draft, &auth.caller.actor.name)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}
