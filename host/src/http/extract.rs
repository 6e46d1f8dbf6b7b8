//! Extractors that keep the error format: JSON bodies, queries, paths, `If-Match`, and the
//! caller's API key with the roles a route admits.

use std::marker::PhantomData;

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::ApiError;
use crate::domain::publication::PublicationCode;
use crate::domain::{Role, SubscriberNumber, api_key};
use crate::services::subscribers::Caller;
use crate::store::Actor;

/// A JSON body whose rejections are problem+json with a message that says what to fix.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::with_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid body",
            format!(
                "the body does not match the expected shape: {}",
                source_text(&e)
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "malformed-json",
            format!("the body is not valid JSON: {}", source_text(&e)),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::with_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                "the body is larger than this server accepts (body_limit_bytes)",
            )
        }
        other => ApiError::bad_request("unreadable-body", other.body_text()),
    }
}

/// The innermost cause, which names the field and the line and column.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// Query parameters with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                "invalid-query",
                format!("the query string is invalid: {}", source_text(&e)),
            )),
            Err(other) => Err(ApiError::bad_request("invalid-query", other.body_text())),
        }
    }
}

/// Path parameters with problem+json rejections.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|e| ApiError::bad_request("invalid-path", e.body_text()))
    }
}

/// The `{number}` path segment, checked digit and all.
pub struct Number(pub SubscriberNumber);

impl<S: Send + Sync> FromRequestParts<S> for Number {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_segment(parts, state).await?;
        Ok(Self(SubscriberNumber::parse(&raw)?))
    }
}

/// The one parameter segment of the path, as text.
async fn path_segment<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request("invalid-path", e.body_text()))?;
    Ok(raw)
}

/// An `{id}` path segment.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = path_segment(parts, state).await?;
        raw.parse().map(Self).map_err(|_| {
            ApiError::bad_request(
                "invalid-path",
                format!("`{raw}` is not an id; ids are whole numbers"),
            )
        })
    }
}

/// The version a change is based on, from `If-Match: "<version>"`; required.
pub struct IfMatch(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match OptionalIfMatch::parse(parts)? {
            Some(version) => Ok(Self(version)),
            None => Err(ApiError::precondition_required(
                "send the card's version in `If-Match` (the ETag of your last GET) so that a \
                 change made by someone else in between is not overwritten",
            )),
        }
    }
}

/// `If-Match` where it is optional.
pub struct OptionalIfMatch(pub Option<i64>);

impl OptionalIfMatch {
    fn parse(parts: &Parts) -> Result<Option<i64>, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or("").trim();
        let bare = text.trim_start_matches("W/").trim_matches('"');
        bare.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(
                "invalid-if-match",
                format!(
                    "If-Match `{text}` is not a version; send the ETag of the card, e.g. \"3\""
                ),
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OptionalIfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::parse(parts)?))
    }
}

/// The roles a route admits, named by a marker type in the handler's signature.
pub trait Roles: Send + Sync + 'static {
    const ALLOWED: &'static [Role];
}

pub struct AdminOnly;
impl Roles for AdminOnly {
    const ALLOWED: &'static [Role] = &[Role::Admin];
}

pub struct StaffOrAdmin;
impl Roles for StaffOrAdmin {
    const ALLOWED: &'static [Role] = &[Role::Admin, Role::Staff];
}

pub struct AdvertiserOnly;
impl Roles for AdvertiserOnly {
    const ALLOWED: &'static [Role] = &[Role::Advertiser];
}

pub struct AnyRole;
impl Roles for AnyRole {
    const ALLOWED: &'static [Role] = &[Role::Admin, Role::Staff, Role::Advertiser];
}

/// An authenticated caller whose role is one of `R::ALLOWED`.
pub struct Auth<R: Roles> {
    pub caller: Caller,
    /// The advertiser account the key acts for, if any.
    pub advertiser: Option<i64>,
    _roles: PhantomData<R>,
}

impl Auth<AdvertiserOnly> {
    /// The account an advertiser key acts for: a key bound to none reaches only `/me`.
    pub fn account(&self) -> Result<i64, ApiError> {
        self.advertiser.ok_or_else(|| {
            ApiError::forbidden(
                "this advertiser key is bound to no advertiser account; ask the publisher for \
                 a key of your account",
            )
        })
    }
}

impl<R: Roles> FromRequestParts<AppState> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut sent = parts.headers.get_all(header::AUTHORIZATION).iter();
        let first = sent.next();
        if sent.next().is_some() {
            // Proxies and servers disagree on which of two to honour; honour neither.
            return Err(ApiError::bad_request(
                "duplicate-authorization",
                "send one `Authorization` header; this request has several",
            ));
        }
        let token = first
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("send an API key as `Authorization: Bearer <key>`")
            })?;
        if !api_key::looks_like_token(token) {
            return Err(ApiError::unauthorized("the API key is malformed"));
        }
        let key = state
            .keys
            .find(&*state.store, &api_key::hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"))?;
        if !R::ALLOWED.contains(&key.role) {
            return Err(ApiError::forbidden(format!(
                "this route is for {}; your key has the {} role",
                R::ALLOWED
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                key.role
            )));
        }
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            advertiser: key.advertiser_id,
            caller: Caller {
                actor: Actor {
                    key_id: Some(key.id),
                    name: key.name,
                    role: key.role,
                },
                request_id,
                now: state.clock.now(),
            },
            _roles: PhantomData,
        })
    }
}

/// The `{number}` and `{term}` path segments of a term's routes.
pub struct TermPath {
    pub number: SubscriberNumber,
    pub term: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for TermPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((number, term)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request("invalid-path", e.body_text()))?;
        let term = term.parse().map_err(|_| {
            ApiError::bad_request("invalid-path", format!("`{term}` is not a term id"))
        })?;
        Ok(Self {
            number: SubscriberNumber::parse(&number)?,
            term,
        })
    }
}

/// The `{code}` path segment naming a publication.
pub struct Code(pub PublicationCode);

impl<S: Send + Sync> FromRequestParts<S> for Code {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request("invalid-path", e.body_text()))?;
        PublicationCode::parse(&raw)
            .map(Self)
            .map_err(|e| ApiError::bad_request("invalid-publication-code", e))
    }
}

/// `Idempotency-Key`: required on requests that move money, so that a retry is safe.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Err(ApiError::bad_request(
                "missing-idempotency-key",
                "send an `Idempotency-Key` header (a new random value, e.g. a UUID, per \
                 intended order) so that a retried request cannot charge the reader twice",
            ));
        };
        let key = value.to_str().unwrap_or("").trim();
        let printable = key.bytes().all(|b| b.is_ascii_graphic());
        if key.is_empty() || key.len() > 255 || !printable {
            return Err(ApiError::bad_request(
                "invalid-idempotency-key",
                "the Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(key.to_owned()))
    }
}

/// A body that could not be read: too large, or broken off.
pub(super) fn unreadable_body(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            "the body is larger than this server accepts (body_limit_bytes)",
        )
    } else {
        ApiError::bad_request("unreadable-body", e.body_text())
    }
}

/// A JSON body that may be left out entirely, meaning `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(unreadable_body)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !has_json_type {
            return Err(json_problem(JsonRejection::MissingJsonContentType(
                Default::default(),
            )));
        }
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(value)| Self(value))
            .map_err(json_problem)
    }
}
