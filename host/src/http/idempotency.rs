//! `Idempotent<B>`: a money-moving request's `Idempotency-Key` and the fingerprint of what the
//! key stands for, taken from the route and the body in canonical JSON.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::{IdempotencyKey, unreadable_body};
use crate::services::renewals::Idempotency;

/// The key, the request's fingerprint, and the body as `B` (e.g. `ApiJson<T>`) extracts it.
///
/// The fingerprint is a SHA-256 of the method, the route's template and the body in RFC 8785
/// canonical JSON: a retry whose keys come in another order or with other whitespace is the
/// same request, and the fingerprint does not change when the code does.
pub struct Idempotent<B> {
    pub idempotency: Idempotency,
    pub body: B,
}

impl<S, B> FromRequest<S> for Idempotent<B>
where
    S: Send + Sync,
    B: FromRequest<S, Rejection = ApiError>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let IdempotencyKey(key) = IdempotencyKey::from_request_parts(&mut parts, state).await?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(unreadable_body)?;
        let canonical = canonical_body(&bytes);
        let body =
            B::from_request(Request::from_parts(parts.clone(), Body::from(bytes)), state).await?;
        let mut hasher = Sha256::new();
        hasher.update(format!("{} {route}\n", parts.method));
        hasher.update(&canonical);
        Ok(Self {
            idempotency: Idempotency {
                key,
                fingerprint: format!("{:x}", hasher.finalize()),
            },
            body,
        })
    }
}

/// The body in canonical JSON; a body that is not JSON (which `B` refuses anyway, unless it
/// is empty) stands for itself.
fn canonical_body(bytes: &[u8]) -> Vec<u8> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|value| serde_json_canonicalizer::to_vec(&value).ok())
        .unwrap_or_else(|| bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::canonical_body;

    #[test]
    fn key_order_whitespace_and_number_spelling_do_not_change_the_canonical_body() {
        let a = canonical_body(br#"{"months": 12, "add": [{"publication": "DAILY"}]}"#);
        let b = canonical_body(b"{\n  \"add\":[ {\"publication\":\"DAILY\"} ],\"months\":12.0\n}");
        assert_eq!(a, b);
        assert_eq!(
            a,
            br#"{"add":[{"publication":"DAILY"}],"months":12}"#.to_vec()
        );
    }

    #[test]
    fn a_different_value_or_an_empty_body_is_a_different_canonical_body() {
        let a = canonical_body(br#"{"months": 12}"#);
        assert_ne!(a, canonical_body(br#"{"months": 6}"#));
        assert_ne!(a, canonical_body(b"  "));
        assert_eq!(canonical_body(b" \n"), Vec::<u8>::new());
    }
}
