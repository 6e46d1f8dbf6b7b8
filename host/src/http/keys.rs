//! API keys (admin) and the caller's own identity (any role).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AdminOnly, AnyRole, ApiJson, Auth, Id};
use crate::domain::{FieldErrors, Role};
use crate::services::keys;
use crate::services::subscribers::Caller;
use crate::store::{Advertiser, ApiKey, AuditEntry};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKeyRequest {
    /// Who holds the key, e.g. "reception desk".
    name: String,
    role: Role,
    /// The advertiser account an `advertiser` key acts for (required for the audience
    /// routes; a key without one reaches only `/me`). Only for the `advertiser` role.
    #[serde(default)]
    advertiser_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct NewKeyResponse {
    key: ApiKey,
    /// The bearer token. Shown this once; only its hash is stored.
    token: String,
}

/// Issues a key. The token is in the response and nowhere else.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    request_body = NewKeyRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = NewKeyResponse),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_key(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiJson(request): ApiJson<NewKeyRequest>,
) -> ApiResult<(StatusCode, Json<NewKeyResponse>)> {
    keys::check_name(&request.name)
        .map_err(|e| ApiError::invalid(FieldErrors::single("name", e)))?;
    if let Some(account) = request.advertiser_id {
        if request.role != Role::Advertiser {
            return Err(ApiError::invalid(FieldErrors::single(
                "advertiser_id",
                "only an advertiser key acts for an advertiser account; leave it out for \
                 other roles",
            )));
        }
        if state.store.get_advertiser(account).await?.is_none() {
            return Err(ApiError::invalid(FieldErrors::single(
                "advertiser_id",
                format!("there is no advertiser account {account}; see GET /api/v1/advertisers"),
            )));
        }
    }
    let issued = keys::issue_for(
        &*state.store,
        &*state.clock,
        &request.name,
        request.role,
        request.advertiser_id,
    )
    .await?;
    record(&state, &auth.caller, "key.create", &issued.key).await;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyResponse {
            key: issued.key,
            token: issued.token,
        }),
    ))
}

/// Every key, revoked ones included; never the tokens.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = [ApiKey]))
)]
async fn list_keys(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(state.store.list_api_keys().await?))
}

/// Revokes a key at once. The last active admin key cannot be revoked.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "keys",
    params(("id" = i64, Path, description = "The key's id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = ApiKey),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    Id(id): Id,
) -> ApiResult<Json<ApiKey>> {
    let keys = state.store.list_api_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found(format!("there is no API key {id}")))?;
    let active_admins = keys
        .iter()
        .filter(|k| k.role == Role::Admin && k.revoked_at.is_none())
        .count();
    if key.role == Role::Admin && key.revoked_at.is_none() && active_admins == 1 {
        return Err(ApiError::conflict(
            "this is the last active admin key; create another admin key before revoking it",
        ));
    }
    let revoked = state.store.revoke_api_key(id, state.clock.now()).await?;
    state.keys.clear();
    record(&state, &auth.caller, "key.revoke", &revoked).await;
    Ok(Json(revoked))
}

#[derive(Serialize, ToSchema)]
struct Me {
    key_id: Option<i64>,
    name: String,
    role: Role,
    /// The advertiser account the key acts for, when it is an advertiser key bound to one.
    advertiser: Option<Advertiser>,
}

/// The key making this request: its name, role and advertiser account.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "keys",
    security(("api_key" = ["admin", "staff", "advertiser"])),
    responses((status = 200, body = Me))
)]
async fn me(State(state): State<AppState>, auth: Auth<AnyRole>) -> ApiResult<Json<Me>> {
    let advertiser = match auth.advertiser {
        Some(id) => state.store.get_advertiser(id).await?,
        None => None,
    };
    let actor = auth.caller.actor;
    Ok(Json(Me {
        key_id: actor.key_id,
        name: actor.name,
        role: actor.role,
        advertiser,
    }))
}

async fn record(state: &AppState, caller: &Caller, action: &'static str, key: &ApiKey) {
    state
        .audit
        .record(AuditEntry {
            at: state.clock.now(),
            actor: caller.actor.clone(),
            action,
            subscriber: None,
            request_id: caller.request_id.clone(),
            detail: json!({
                "key_id": key.id,
                "name": key.name,
                "role": key.role,
                "advertiser_id": key.advertiser_id,
            }),
        })
        .await;
}
