//! Advertiser accounts (admin): opened, listed, read and changed. Keys bound to an account
//! are issued at `POST /api/v1/keys` with its `advertiser_id`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{AdminOnly, ApiJson, Auth, Id};
use crate::services::audiences::AdvertiserRequest;
use crate::services::subscribers::Caller;
use crate::store::Advertiser;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_account, list_accounts))
        .routes(routes!(get_account, change_account))
}

/// Opens an advertiser account. Issue its keys with `POST /api/v1/keys` (role `advertiser`,
/// `advertiser_id`); share audiences with it when publishing them.
#[utoipa::path(
    post,
    path = "/api/v1/advertisers",
    tag = "audiences",
    request_body = AdvertiserRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = Advertiser),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The name is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn open_account(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiJson(request): ApiJson<AdvertiserRequest>,
) -> ApiResult<(StatusCode, Json<Advertiser>)> {
    let account = state.audiences.open_account(request).await?;
    record(&state, &auth.caller, "advertiser.create", &account).await;
    Ok((StatusCode::CREATED, Json(account)))
}

#[utoipa::path(
    get,
    path = "/api/v1/advertisers",
    tag = "audiences",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = Vec<Advertiser>))
)]
async fn list_accounts(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
) -> ApiResult<Json<Vec<Advertiser>>> {
    Ok(Json(state.store.list_advertisers().await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/advertisers/{id}",
    tag = "audiences",
    params(("id" = i64, Path, description = "The account's id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Advertiser),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_account(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
    Id(id): Id,
) -> ApiResult<Json<Advertiser>> {
    Ok(Json(state.audiences.account(id).await?))
}

/// Replaces the account's name, contact person and notes.
#[utoipa::path(
    put,
    path = "/api/v1/advertisers/{id}",
    tag = "audiences",
    params(("id" = i64, Path, description = "The account's id")),
    request_body = AdvertiserRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Advertiser),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The name is taken"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn change_account(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    Id(id): Id,
    ApiJson(request): ApiJson<AdvertiserRequest>,
) -> ApiResult<Json<Advertiser>> {
    let account = state.audiences.change_account(id, request).await?;
    record(&state, &auth.caller, "advertiser.update", &account).await;
    Ok(Json(account))
}

async fn record(state: &AppState, caller: &Caller, action: &'static str, account: &Advertiser) {
    let detail = json!({ "advertiser_id": account.id });
    state.audit.record(caller.audit(action, None, detail)).await;
}
