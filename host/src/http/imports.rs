//! The legacy circulation file over HTTP: import of either CSV as a job (with its rejected
//! rows kept and listed), and export of both.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, PROBLEM, Problem};
use super::extract::{AdminOnly, ApiPath, ApiQuery, Auth};
use super::page::{self, Page};
use super::{AppState, jobs};
use crate::services::imports::ImportAnswer;
use crate::services::legacy::{self, ImportFile, Rejection};
use crate::store::{JobRecord, Store};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_subscribers))
        .routes(routes!(import_terms))
        .routes(routes!(import_rejections))
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
    /// Answer with the report once the import has finished, if it finishes within this many
    /// seconds (0 to 20); otherwise (and without `wait`) the answer is the queued job.
    #[param(minimum = 0, maximum = 20)]
    wait: Option<u64>,
}

/// Imports `subscribers.csv` (the body, `text/csv`) as a job that any host runs. Rows are
/// matched to known readers by number, legacy id, email, phone, or name and postal code
/// instead of created twice, so a job taken over by another host, or the same file sent
/// again, creates nothing twice. Each batch of valid rows commits at once; rejected rows are
/// kept with line and reason (`GET /api/v1/imports/{job}/rejections`). Cancelling the job
/// stops it between batches: the batches committed before stay. One import of this file
/// runs at a time. The stored file is deleted when the job ends.
#[utoipa::path(
    post,
    path = "/api/v1/imports/subscribers",
    tag = "imports",
    params(ImportQuery),
    request_body(content = Option<String>, content_type = "text/csv", description = "The CSV; an empty body imports nothing"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = ImportAnswer, description = "With `wait`: the import finished within it"),
        (status = 202, body = JobRecord, description = "The import job, queued (or still running after `wait`, or ended without success: see its state and error)",
            headers(("Location" = String, description = "The job, to follow with `GET /api/v1/jobs/{id}?wait=`"))),
        (status = 409, body = Problem, content_type = PROBLEM, description = "An import of this file is queued or running already; the detail names its job"),
        (status = 422, body = Problem, content_type = PROBLEM, description = "Not a CSV of the documented columns"),
    )
)]
async fn import_subscribers(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult<Response> {
    queue_import(state, auth, query, request, ImportFile::Subscribers).await
}

/// Imports `terms.csv` (the body, `text/csv`) as a job, like `subscribers.csv`; each reader
/// is named by `subscriber_number` or `legacy_id`. A term already present (same reader,
/// title and start) is left unchanged, so a job taken over, or a file sent again, adds no
/// term twice.
#[utoipa::path(
    post,
    path = "/api/v1/imports/terms",
    tag = "imports",
    params(ImportQuery),
    request_body(content = Option<String>, content_type = "text/csv", description = "The CSV; an empty body imports nothing"),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = ImportAnswer, description = "With `wait`: the import finished within it"),
        (status = 202, body = JobRecord, description = "The import job, queued (or still running after `wait`, or ended without success: see its state and error)",
            headers(("Location" = String, description = "The job, to follow with `GET /api/v1/jobs/{id}?wait=`"))),
        (status = 409, body = Problem, content_type = PROBLEM, description = "An import of this file is queued or running already; the detail names its job"),
        (status = 422, body = Problem, content_type = PROBLEM, description = "Not a CSV of the documented columns"),
    )
)]
async fn import_terms(
    State(state): State<AppState>,
    auth: Auth<AdminOnly>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    request: Request,
) -> ApiResult<Response> {
    queue_import(state, auth, query, request, ImportFile::Terms).await
}

async fn queue_import(
    state: AppState,
    auth: Auth<AdminOnly>,
    query: ImportQuery,
    request: Request,
    file: ImportFile,
) -> ApiResult<Response> {
    let wait = jobs::wait_of(query.wait)?;
    // Before the upload is read: it may be large, and it would only be refused.
    state.imports.ensure_free(file).await?;
    let (upload, bytes) = spool(request, state.import_limit_bytes).await?;
    let upload = check_header(upload, file).await?;
    let job = state
        .imports
        .queue(
            &auth.caller.actor,
            file,
            query.dry_run,
            tokio::fs::File::from_std(upload),
            bytes,
        )
        .await?;
    let imports = Arc::clone(&state.imports);
    jobs::follow(&state, job, wait, async |job| {
        Ok(imports.answer(job).await?)
    })
    .await
}

/// Refuses a file whose header is not one of the file's columns, before it is queued; gives
/// the file back from its start.
async fn check_header(mut upload: std::fs::File, file: ImportFile) -> ApiResult<std::fs::File> {
    let checked = tokio::task::spawn_blocking(move || {
        let checked = legacy::check_header(file, &mut upload);
        upload.seek(SeekFrom::Start(0)).map(|_| (upload, checked))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    match checked {
        (upload, Ok(())) => Ok(upload),
        (_, Err(detail)) => Err(ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-csv",
            "Invalid CSV",
            detail,
        )),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RejectionsQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The rows an import job rejected, in line order, each with its line and reason (while it
/// runs: those of its current attempt so far). Reasons name the column at fault but never
/// quote a personal value (a name, an email, an address).
#[utoipa::path(
    get,
    path = "/api/v1/imports/{job}/rejections",
    tag = "imports",
    params(("job" = String, Path, description = "The import's job id"), RejectionsQuery),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Page<Rejection>),
        (status = 404, body = Problem, content_type = PROBLEM, description = "No import job has this id"),
    )
)]
async fn import_rejections(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
    ApiPath(job): ApiPath<String>,
    ApiQuery(query): ApiQuery<RejectionsQuery>,
) -> ApiResult<Json<Page<Rejection>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 1000",
        ));
    }
    let job = job
        .parse()
        .map_err(|_| ApiError::bad_request("invalid-path", format!("`{job}` is not a job id")))?;
    let job = state.imports.job(job).await?;
    let after = page::decode_opt("import-rejections", query.cursor.as_deref())?.unwrap_or(0);
    let items = state.imports.rejections(job.id, after, limit).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.line))
        .flatten();
    Ok(Json(Page::new("import-rejections", items, next)))
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

/// Writes the body to a temporary file, so that it reaches the database in one transaction
/// with its job once it is whole; refuses it as soon as it is known to exceed `limit`.
/// Answers the file, from its start, and its length.
async fn spool(request: Request, limit: usize) -> ApiResult<(std::fs::File, u64)> {
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
    Ok((file, received as u64))
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
