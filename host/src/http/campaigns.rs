//! Campaign audience previews: who a targeter would contact in a segment, best first.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{ApiJson, Auth, StaffOrAdmin};
use crate::services::plugins::campaigns::{AudiencePreview, PreviewRequest};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview_audience))
}

/// Ranks a segment's members for a campaign with a targeter plugin. Members without the
/// channel's marketing consent are left out before the plugin sees them; the plugin may
/// exclude more, with reasons, which are counted.
#[utoipa::path(
    post,
    path = "/api/v1/campaigns/preview",
    tag = "campaigns",
    request_body = PreviewRequest,
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = AudiencePreview),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The targeter is disabled or failed"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn preview_audience(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> ApiResult<Json<AudiencePreview>> {
    Ok(Json(state.campaigns.preview(request).await?))
}
