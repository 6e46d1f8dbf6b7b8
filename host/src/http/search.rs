//! Search-as-you-type: one query box for numbers, names, emails, phones and postal codes.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiQuery, Auth, StaffOrAdmin};
use crate::services::subscribers::SearchHit;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    /// What was typed: a number (with or without check digit), a name or its beginning,
    /// an email, a phone number or a postal code.
    q: String,
    /// At most this many results, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
struct SearchResults {
    items: Vec<SearchHit>,
}

/// Finds subscribers as staff type; best matches first (number, then exact contact, then
/// whole name words, then name prefixes, postal codes and partial contacts).
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "subscribers",
    params(SearchQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = SearchResults),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn search(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 100",
        ));
    }
    let items = state.registry.search(&auth.caller, &query.q, limit).await?;
    Ok(Json(SearchResults { items }))
}
