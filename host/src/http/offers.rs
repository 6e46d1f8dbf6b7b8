//! One-to-one offers for a reader, from every enabled offer-provider plugin.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{ApiQuery, Auth, Number, StaffOrAdmin};
use crate::services::plugins::offers::{OfferOccasion, OffersView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(subscriber_offers))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct OffersQuery {
    /// renewal (default), service_call or web.
    occasion: Option<OfferOccasion>,
}

/// Asks every enabled offer provider about this reader and answers the offers, priced from
/// today's price list and ranked best first, each with its reason. A provider that fails is
/// listed under `errors`; the others still answer.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{number}/offers",
    tag = "offers",
    params(("number" = String, Path, description = "Subscriber number with check digit"), OffersQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = OffersView),
        (status = 308, description = "Merged: follow Location"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Bad check digit"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn subscriber_offers(
    State(state): State<AppState>,
    auth: Auth<StaffOrAdmin>,
    Number(number): Number,
    ApiQuery(query): ApiQuery<OffersQuery>,
) -> ApiResult<Json<OffersView>> {
    let occasion = query.occasion.unwrap_or_default();
    Ok(Json(
        state
            .offers
            .for_subscriber(&auth.caller, number, occasion)
            .await?,
    ))
}
