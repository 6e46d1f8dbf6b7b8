//! Background jobs over HTTP: the list (by kind and state), one job with every claim made of
//! it, following one (`?wait=` answers once it has finished, or after that many seconds), and
//! cancelling. Reading is for admins and staff; cancelling for admins.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, PROBLEM, Problem};
use super::extract::{AdminOnly, ApiPath, ApiQuery, Auth, StaffOrAdmin};
use super::page::{self, Page};
use crate::services::auto_renewal::AUTO_RENEWAL;
use crate::services::clubs::RECOMPUTE;
use crate::services::imports::IMPORT;
use crate::services::jobs::{self, JobView};
use crate::services::segments::REFRESH;
use crate::store::{JobFilter, JobRecord, JobState};

/// The kinds of job there are.
const KINDS: [&str; 4] = [REFRESH, RECOMPUTE, AUTO_RENEWAL, IMPORT];
/// The longest a follower may wait in one request, in seconds (below the request timeout).
const MAX_WAIT_SECS: u64 = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    /// Only jobs of this kind: `segment_refresh`, `club_recompute`, `auto_renewal` or `import`.
    kind: Option<String>,
    /// Only jobs in this state.
    #[param(inline)]
    state: Option<JobState>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    params(JobsQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = Page<JobRecord>),
        (status = 400, body = Problem, content_type = PROBLEM),
    )
)]
async fn list_jobs(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    ApiQuery(query): ApiQuery<JobsQuery>,
) -> ApiResult<Json<Page<JobRecord>>> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            "limit must be between 1 and 1000",
        ));
    }
    if let Some(kind) = &query.kind
        && !KINDS.contains(&kind.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid-query",
            format!("kind `{kind}` is none of {}", KINDS.join(", ")),
        ));
    }
    let items = state
        .jobs
        .list(&JobFilter {
            kind: query.kind,
            subject: None,
            state: query.state,
            before: page::decode_opt("jobs", query.cursor.as_deref())?,
            limit,
        })
        .await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|j| j.id))
        .flatten();
    Ok(Json(Page::new("jobs", items, next)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Answer once the job has finished, or after this many seconds (0 to 20), whichever
    /// comes first: a client follows a job by asking again until it has.
    #[param(minimum = 0, maximum = 20)]
    wait: Option<u64>,
}

/// One job, with every claim a host made of it (which host ran it, when, and how that
/// ended). With `wait`, the answer comes when the job finishes, or at the end of the wait.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id"), WaitQuery),
    security(("api_key" = ["admin", "staff"])),
    responses(
        (status = 200, body = JobView),
        (status = 400, body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
    )
)]
async fn get_job(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> ApiResult<Json<JobView>> {
    let id = job_id(&id)?;
    let view = match wait_of(query.wait)? {
        None => state.jobs.get(id).await?,
        Some(wait) => state.jobs.wait(id, wait).await?,
    };
    Ok(Json(view))
}

/// The `wait` of a request, checked: `None` for no wait at all (absent or 0).
pub(super) fn wait_of(wait: Option<u64>) -> ApiResult<Option<Duration>> {
    match wait {
        None | Some(0) => Ok(None),
        Some(secs) if secs <= MAX_WAIT_SECS => Ok(Some(Duration::from_secs(secs))),
        Some(_) => Err(ApiError::bad_request(
            "invalid-query",
            format!("wait must be between 0 and {MAX_WAIT_SECS} seconds"),
        )),
    }
}

/// A queued job, followed for `wait`: its finished answer from `done` (`None` unless it
/// succeeded), else `202 Accepted` with the job as it stands and its `Location`.
pub(super) async fn follow<T: serde::Serialize>(
    state: &AppState,
    job: JobRecord,
    wait: Option<Duration>,
    done: impl AsyncFnOnce(&JobRecord) -> ApiResult<Option<T>>,
) -> ApiResult<Response> {
    let job = match wait {
        Some(wait) => state.jobs.wait(job.id, wait).await?.job,
        None => job,
    };
    if let Some(answer) = done(&job).await? {
        return Ok(Json(answer).into_response());
    }
    let mut response = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(location) = HeaderValue::from_str(&jobs::link(job.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Cancels a job: a queued one at once, a running one at its next progress write or
/// heartbeat (within seconds; follow it to see it end as `cancelled`).
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = JobRecord),
        (status = 400, body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, body = Problem, content_type = PROBLEM, description = "The job has finished"),
    )
)]
async fn cancel_job(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JobRecord>> {
    let id = job_id(&id)?;
    Ok(Json(state.jobs.cancel(id).await?))
}

fn job_id(text: &str) -> ApiResult<i64> {
    text.parse()
        .map_err(|_| ApiError::bad_request("invalid-path", format!("`{text}` is not a job id")))
}
