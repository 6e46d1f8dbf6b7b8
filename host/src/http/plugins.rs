//! The plugin lifecycle over HTTP: upload (multipart: manifest + component), list, show,
//! enable (also a rollback), disable, configure, delete.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::multipart::Multipart;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AdminOnly, ApiJson, ApiPath, ApiQuery, Auth, OptionalJson, StaffOrAdmin};
use crate::domain::plugin::SettingValue;
use crate::services::plugins::{DisableRequest, EnableRequest, PluginDetail, PluginView, Upload};

pub fn router(max_component_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_plugin, list_plugins))
        .layer(DefaultBodyLimit::max(max_component_bytes + (256 << 10)))
        .routes(routes!(get_plugin, delete_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(configure_plugin))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// Grants the `pii` permission the manifest asks for: the plugin then sees contact
    /// details. The grant is audited.
    #[serde(default)]
    grant_pii: bool,
}

/// The multipart form of an upload.
#[allow(dead_code)]
#[derive(ToSchema)]
struct UploadForm {
    /// `masthead-plugin.toml`, as text.
    manifest: String,
    /// The component (`.wasm`) built for `wasm32-wasip2`.
    #[schema(value_type = String, format = Binary)]
    component: Vec<u8>,
}

/// Uploads a plugin version: the manifest and the component are checked (contract version,
/// kind, imports, size, SHA-256, limits within the host's caps) and the component is
/// precompiled once. The version runs only after `enable`.
#[utoipa::path(
    post,
    path = "/api/v1/plugins",
    tag = "plugins",
    params(UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = PluginDetail),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The version is taken, or the plugin is of another kind"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "The manifest or the component is refused; `errors` says why"),
    )
)]
async fn upload_plugin(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    request: Request,
) -> ApiResult<(StatusCode, Json<PluginDetail>)> {
    let mut form = Multipart::from_request(request, &state)
        .await
        .map_err(|e| {
            ApiError::bad_request(
                "multipart",
                format!("send multipart/form-data with the parts `manifest` and `component`: {e}"),
            )
        })?;
    let (mut manifest, mut component) = (None, None);
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("manifest") => manifest = Some(field.text().await.map_err(multipart_error)?),
            Some("component") => {
                component = Some(field.bytes().await.map_err(multipart_error)?.to_vec())
            }
            other => {
                let part = match other {
                    Some(name) => format!("unexpected part `{name}`"),
                    None => "a part without a name".to_string(),
                };
                return Err(ApiError::bad_request(
                    "multipart",
                    format!("{part}; send only `manifest` and `component`"),
                ));
            }
        }
    }
    let (Some(manifest), Some(component)) = (manifest, component) else {
        return Err(ApiError::bad_request(
            "multipart",
            "both parts are needed: `manifest` (masthead-plugin.toml) and `component` (the .wasm)",
        ));
    };
    let upload = Upload {
        manifest,
        component,
        grant_pii: query.grant_pii,
    };
    let detail = state.plugins.upload(&auth.caller, upload).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Payload too large",
            "the upload is larger than this host's component size cap",
        );
    }
    ApiError::bad_request("multipart", format!("the multipart body is malformed: {e}"))
}

/// Every plugin with its state.
#[utoipa::path(
    get,
    path = "/api/v1/plugins",
    tag = "plugins",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = Vec<PluginView>))
)]
async fn list_plugins(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
) -> ApiResult<Json<Vec<PluginView>>> {
    Ok(Json(state.plugins.list().await?))
}

/// A plugin with every version, its history (uploads, enables, rollbacks, circuit-breaker
/// trips) and its latest failures with their causes.
#[utoipa::path(
    get,
    path = "/api/v1/plugins/{id}",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id, e.g. churn-risk")),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = PluginDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_plugin(
    State(state): State<AppState>,
    _auth: Auth<StaffOrAdmin>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PluginDetail>> {
    Ok(Json(state.plugins.show(&id).await?))
}

/// Deletes a plugin and all its versions; refused while a segment uses it.
#[utoipa::path(
    delete,
    path = "/api/v1/plugins/{id}",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Segments use it"),
    )
)]
async fn delete_plugin(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.plugins.delete(&auth.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns a plugin on at a version (default: the active one, else the latest). Naming an
/// older version rolls back; a newer one upgrades. Resets the failure streak.
#[utoipa::path(
    post,
    path = "/api/v1/plugins/{id}/enable",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    request_body(content = Option<EnableRequest>),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = PluginDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "No such version"),
    )
)]
async fn enable_plugin(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(request): OptionalJson<EnableRequest>,
) -> ApiResult<Json<PluginDetail>> {
    Ok(Json(
        state.plugins.enable(&auth.caller, &id, request).await?,
    ))
}

/// Turns a plugin off, with the reason staff will see.
#[utoipa::path(
    post,
    path = "/api/v1/plugins/{id}/disable",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    request_body = DisableRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = PluginDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn disable_plugin(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<DisableRequest>,
) -> ApiResult<Json<PluginDetail>> {
    Ok(Json(
        state.plugins.disable(&auth.caller, &id, request).await?,
    ))
}

/// Replaces the installation's configuration overrides; each is checked against the
/// manifest's schema (name and type), then the whole by the `configure` of the version that
/// would run: a configuration it refuses is answered 422 with its message, and not kept.
/// Settings not named keep their defaults.
#[utoipa::path(
    put,
    path = "/api/v1/plugins/{id}/config",
    tag = "plugins",
    params(("id" = String, Path, description = "Plugin id")),
    request_body(content = Object, description = "Setting name to value"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = PluginDetail),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn configure_plugin(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiPath(id): ApiPath<String>,
    ApiJson(config): ApiJson<BTreeMap<String, SettingValue>>,
) -> ApiResult<Json<PluginDetail>> {
    Ok(Json(
        state.plugins.configure(&auth.caller, &id, config).await?,
    ))
}
