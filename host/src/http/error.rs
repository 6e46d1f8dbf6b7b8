//! The one API error type: problem+json bodies (RFC 9457) with a stable `type` per problem.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FieldError, FieldErrors, SubscriberNumberError};
use crate::services::{DuplicateCandidate, ServiceError};
use crate::store::StoreError;

/// The content type of every problem.
pub const PROBLEM: &str = "application/problem+json";

/// An `application/problem+json` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable identifier of the kind of problem, e.g. `urn:masthead:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// What went wrong and what to do about it, for a person.
    pub detail: String,
    /// One entry per invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Existing subscribers that look like the one being created.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<DuplicateCandidate>,
    /// When a spent privacy budget refills and a release can be made again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refills_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An error answer; boxed so that `Result<T, ApiError>` stays small on the happy path.
#[derive(Debug)]
pub struct ApiError(Box<Details>);

#[derive(Debug)]
struct Details {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    candidates: Vec<DuplicateCandidate>,
    location: Option<String>,
    refills_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(Details {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            candidates: Vec::new(),
            location: None,
            refills_at: None,
        }))
    }

    fn with(mut self, change: impl FnOnce(&mut Details)) -> Self {
        change(&mut self.0);
        self
    }

    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    pub fn invalid(errors: FieldErrors) -> Self {
        let errors = errors.into_vec();
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid; see `errors`", many.len()),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid fields",
            detail,
        )
        .with(|d| d.errors = errors)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn precondition_required(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "Precondition required",
            detail,
        )
    }

    pub fn with_status(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(status, slug, title, detail)
    }

    /// A server-side failure: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to handle the request; it has been logged",
        )
    }
}

impl From<SubscriberNumberError> for ApiError {
    fn from(e: SubscriberNumberError) -> Self {
        Self::bad_request("invalid-subscriber-number", e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("the record does not exist"),
            StoreError::Conflict(detail) => Self::conflict(detail),
            other => Self::internal(other),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(errors) => Self::invalid(errors),
            ServiceError::NotFound(detail) => Self::not_found(detail),
            ServiceError::Conflict(detail) => Self::conflict(detail),
            ServiceError::PossibleDuplicates(candidates) => Self::new(
                StatusCode::CONFLICT,
                "possible-duplicate",
                "Possible duplicate",
                "this reader looks like an existing subscriber (see `candidates`); use that \
                 record, or repeat the request with ?allow_duplicate=true to create a new one",
            )
            .with(|d| d.candidates = candidates),
            ServiceError::Moved { from, to } => Self::new(
                StatusCode::PERMANENT_REDIRECT,
                "merged",
                "Subscriber merged",
                format!("subscriber {from} was merged into {to}; use {to}"),
            )
            .with(|d| d.location = Some(format!("/api/v1/subscribers/{to}"))),
            ServiceError::IdempotencyKeyReused => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "this Idempotency-Key was already used for a different request; send a new key \
                 for a new request, or repeat the original request exactly",
            ),
            ServiceError::BudgetSpent { detail, refills_at } => Self::new(
                StatusCode::CONFLICT,
                "budget-spent",
                "Privacy budget spent",
                detail,
            )
            .with(|d| d.refills_at = Some(refills_at)),
            ServiceError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        let problem = Problem {
            kind: format!("urn:masthead:problem:{}", this.slug),
            title: this.title,
            status: this.status.as_u16(),
            detail: this.detail,
            errors: this.errors,
            candidates: this.candidates,
            refills_at: this.refills_at,
        };
        let mut response = (this.status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM));
        if this.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(refills_at) = this.refills_at {
            let wait = (refills_at - chrono::Utc::now()).num_seconds().max(1);
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        if let Some(location) = this.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
