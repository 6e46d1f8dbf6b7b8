//! The one page shape of every list: `items`, `next_cursor`, and an opaque `cursor` sent back.

use std::fmt::Display;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page whose next one starts after `key`, if there is a next one.
    pub fn new(list: &'static str, items: Vec<T>, next_key: Option<impl Display>) -> Self {
        Self {
            items,
            next_cursor: next_key.map(|key| encode(list, key)),
        }
    }
}

/// The cursor of the page after `key` in `list`. Cursors are opaque to clients (base64url of
/// the list's name and the key), so the key can change shape without breaking one.
pub fn encode(list: &'static str, key: impl Display) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}:{key}"))
}

/// The key a cursor of `list` carries; a cursor of another list, or not one at all, is a 400.
pub fn decode<K: FromStr>(list: &'static str, cursor: &str) -> ApiResult<K> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(list)?.strip_prefix(':')?.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid-cursor",
                "`cursor` is not one this list handed out; send the `next_cursor` of the \
                 previous page, or start again without one",
            )
        })
}

/// The key of an optional `cursor` query parameter.
pub fn decode_opt<K: FromStr>(list: &'static str, cursor: Option<&str>) -> ApiResult<Option<K>> {
    cursor.map(|c| decode(list, c)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_within_their_list_only() {
        let cursor = encode("audit", 42);
        assert_eq!(decode::<i64>("audit", &cursor).unwrap(), 42);
        assert!(decode::<i64>("subscribers", &cursor).is_err());
        assert!(decode::<i64>("audit", "42").is_err());
        assert!(decode::<i64>("audit", &encode("audit", "x")).is_err());
        let timeline = encode("timeline", "2026-01-01T00:00:00Z.term.7");
        assert_eq!(
            decode::<String>("timeline", &timeline).unwrap(),
            "2026-01-01T00:00:00Z.term.7"
        );
    }
}
