//! The legacy circulation file over HTTP: import of either CSV, and export of both.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AdminOnly, ApiQuery, Auth};
use crate::services::legacy::{
    self, CollectRejections, ImportError, ImportOptions, ImportReport, Importer, Rejection,
};
use crate::store::Store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_subscribers))
        .routes(routes!(import_terms))
        .routes(routes!(export_subscribers))
        .routes(routes!(export_terms))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// Check and match every row, write nothing.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Serialize, ToSchema)]
struct ImportAnswer {
    report: ImportReport,
    /// Every rejected row with its line and reason.
    rejections: Vec<Rejection>,
}

/// Imports `subscribers.csv` (the body, `text/csv`). Rows are matched to known readers by
/// number, legacy id, email, phone, or name and postal code instead of created twice. Each
/// batch of valid rows commits at once; rejected rows are listed with line and reason.
#[utoipa::path(
    post,
    path = "/api/v1/imports/subscribers",
    tag = "imports",
    params(ImportQuery),
    request_body(content = Option<String>, content_type = "text/csv", description = "The CSV; an empty body imports nothing"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = ImportAnswer),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Not a CSV of the documented columns"),
    )
)]
async fn import_subscribers(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult<Json<ImportAnswer>> {
    run_import(state, auth, query, request, true).await
}

/// Imports `terms.csv` (the body, `text/csv`); each reader is named by `subscriber_number`
/// or `legacy_id`. A term already present (same reader, title and start) is left unchanged.
#[utoipa::path(
    post,
    path = "/api/v1/imports/terms",
    tag = "imports",
    params(ImportQuery),
    request_body(content = Option<String>, content_type = "text/csv", description = "The CSV; an empty body imports nothing"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = ImportAnswer),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Not a CSV of the documented columns"),
    )
)]
async fn import_terms(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult<Json<ImportAnswer>> {
    run_import(state, auth, query, request, false).await
}

async fn run_import(
    state: AppState,
    auth: Auth<AdminOnly>,
    query: ImportQuery,
    request: Request,
    subscribers: bool,
) -> ApiResult<Json<ImportAnswer>> {
    let file = spool(request, state.import_limit_bytes).await?;
    let importer = Importer::new(
        Arc::clone(&state.store),
        Arc::clone(&state.clock),
        state.registry.home(),
        state.catalogue.currency(),
        auth.caller.actor,
    );
    let options = ImportOptions {
        dry_run: query.dry_run,
        ..ImportOptions::default()
    };
    let mut rejections = CollectRejections::default();
    let report = if subscribers {
        importer
            .import_subscribers(file, &options, &mut rejections)
            .await
    } else {
        importer.import_terms(file, &options, &mut rejections).await
    };
    match report {
        Ok(report) => {
            let mut rejections = rejections.0;
            rejections.sort_by_key(|r| r.line);
            Ok(Json(ImportAnswer { report, rejections }))
        }
        Err(ImportError::BadFile(detail)) => Err(ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-csv",
            "Invalid CSV",
            detail,
        )),
        Err(ImportError::Store(e)) => Err(e.into()),
        Err(e @ ImportError::Writer(_)) => Err(ApiError::internal(e)),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::with_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Body too large",
        format!(
            "the file is larger than this server accepts over HTTP ({limit} bytes, \
             import_limit_bytes); import it with `masthead import` instead"
        ),
    )
}

/// Writes the body to a temporary file, so the import reads it at its own pace; refuses it
/// as soon as it is known to exceed `limit`.
async fn spool(request: Request, limit: usize) -> ApiResult<std::fs::File> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let body: Body = request.into_body();
    let mut received = 0;
    let mut file = tempfile::tempfile().map_err(ApiError::internal)?;
    let mut writer = tokio::fs::File::from_std(file.try_clone().map_err(ApiError::internal)?);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("unreadable-body", format!("the upload broke off: {e}"))
        })?;
        received += chunk.len();
        if received > limit {
            return Err(too_large(limit));
        }
        writer.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    writer.flush().await.map_err(ApiError::internal)?;
    drop(writer);
    file.seek(SeekFrom::Start(0)).map_err(ApiError::internal)?;
    Ok(file)
}

/// Every subscriber (not merged) as `subscribers.csv`, streamed.
#[utoipa::path(
    get,
    path = "/api/v1/exports/subscribers.csv",
    tag = "imports",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = String, content_type = "text/csv"))
)]
async fn export_subscribers(State(state): State<AppState>, auth: Auth<AdminOnly>) -> Response {
    state
        .audit
        .record(auth.caller.audit("subscribers.export_csv", None, json!({})))
        .await;
    csv_stream(state.store, "subscribers.csv", true)
}

/// Every term as `terms.csv`, streamed.
#[utoipa::path(
    get,
    path = "/api/v1/exports/terms.csv",
    tag = "imports",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = String, content_type = "text/csv"))
)]
async fn export_terms(State(state): State<AppState>, auth: Auth<AdminOnly>) -> Response {
    state
        .audit
        .record(auth.caller.audit("terms.export_csv", None, json!({})))
        .await;
    csv_stream(state.store, "terms.csv", false)
}

fn csv_stream(store: Arc<dyn Store>, name: &str, subscribers: bool) -> Response {
    let pages = futures::stream::unfold(Some(0_i64), move |after| {
        let store = Arc::clone(&store);
        async move {
            let after = after?;
            let page = if subscribers {
                legacy::export_subscribers(&*store, after).await
            } else {
                legacy::export_terms(&*store, after).await
            };
            match page {
                Ok(page) => Some((Ok::<_, std::io::Error>(page.csv), page.next)),
                Err(e) => {
                    tracing::error!(error = %e, "export failed");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let mut response = Body::from_stream(pages).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
