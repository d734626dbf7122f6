//! HTTP handlers, one file per resource.

pub mod batches;
pub mod clear;
pub mod examples;
pub mod health;
pub mod items;

use actix_web::{HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::auth::KeyFingerprint;
use crate::engine::control::Caller;
use crate::errors::ApiError;
use batch_types::FieldError;

/// Largest body of a control or start request: a few ids and settings.
pub const CONTROL_BODY_LIMIT: usize = 256 * 1024;

/// Reads a request body of at most `limit` bytes, returning 413 past it.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;

    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::invalid(
                "body",
                format!("the request body could not be read: {error}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON body, naming the offending field in the 400 when it fails.
/// An empty body parses as `T::default()` when `empty` is given.
pub fn parse_body<T: DeserializeOwned>(body: &[u8], empty: Option<T>) -> Result<T, ApiError> {
    // Swagger UI sends `null` for an optional body left as it is.
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        return empty.ok_or_else(|| {
            ApiError::invalid("body", "the request body is empty; send a JSON object")
        });
    }
    // serde accepts a JSON array for a struct, field by field in order.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid(
            "body",
            "the request body must be a JSON object, such as {}",
        ));
    }
    // PostgreSQL text cannot hold NUL, and JSON can carry it only escaped.
    if contains_nul_escape(body) {
        return Err(ApiError::invalid(
            "body",
            "the body contains a NUL character (\\u0000), which text fields cannot store; remove it",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let mut message = error.into_inner().to_string();
        // serde names the Rust type; say what a caller may send instead.
        if message.contains("expected u32") || message.contains("expected u64") {
            message.push_str("; send a positive whole number");
        }
        ApiError::Validation(vec![FieldError::new(field_of(&path, &message), message)])
    })
}

fn contains_nul_escape(body: &[u8]) -> bool {
    body.windows(6)
        .any(|window| window.eq_ignore_ascii_case(b"\\u0000"))
}

/// The field a serde error is about: its path, or for a missing field the
/// field's name, which serde puts only in the message.
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    // serde_path_to_error writes `?` for a position it could not name.
    let path = path.trim_end_matches(".?").trim_end_matches('?');
    match (path, missing) {
        (".", Some(name)) | ("", Some(name)) => name.to_owned(),
        (".", None) | ("", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// The caller of a control action: key fingerprint and peer address.
pub fn caller_of(request: &HttpRequest) -> Caller {
    Caller {
        key_fingerprint: request
            .extensions()
            .get::<KeyFingerprint>()
            .map(|fingerprint| fingerprint.0.clone())
            .unwrap_or_default(),
        client_addr: request.peer_addr().map(|addr| addr.ip().to_string()),
    }
}

/// Checks a query-string or path value for a NUL character, which
/// PostgreSQL text cannot hold.
pub fn check_text(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(text) if text.contains('\0') => Err(ApiError::invalid(
            field,
            format!("{field} contains a NUL character, which text cannot store; remove it"),
        )),
        _ => Ok(()),
    }
}

/// A cursor parsed from a query string, or a 400 naming it.
pub fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    "cursor",
                    format!("cursor {text:?} is invalid; pass the nextCursor of the previous page"),
                )
            })
        })
        .transpose()
}

/// A page size between 1 and `max`, default `default`, or a 400 naming it.
pub fn page_limit(limit: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    let Some(text) = limit else {
        return Ok(default);
    };
    match text.parse::<i64>() {
        Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(ApiError::invalid(
            "limit",
            format!("limit is {text:?}; use a whole number from 1 to {max}"),
        )),
    }
}

/// Checks that a path or cursor value is a batch id, `batch_<unix-ms>_<6 of
/// a-z0-9>`; anything else cannot name a batch.
pub fn is_batch_id(text: &str) -> bool {
    let mut parts = text.splitn(3, '_');
    let (Some("batch"), Some(millis), Some(suffix)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    millis.len() == 13
        && millis.bytes().all(|byte| byte.is_ascii_digit())
        && suffix.len() == 6
        && suffix
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_id_shape_is_checked() {
        assert!(is_batch_id("batch_1758539874517_hyqk4w"));
        assert!(!is_batch_id("batch_1758539874517_HYQK4W"));
        assert!(!is_batch_id("batch_175853987451_hyqk4w"));
        assert!(!is_batch_id("batch_1758539874517_hyqk4w_x"));
        assert!(!is_batch_id("../etc/passwd"));
    }

    #[test]
    fn arrays_and_nul_escapes_are_rejected() {
        let array = parse_body::<batch_types::ClearRequest>(b"[]", None);
        let nul = parse_body::<serde_json::Value>(br#"{"a": "x\u0000y"}"#, None);
        assert!(array.is_err());
        assert!(nul.is_err());
    }

    #[test]
    fn unknown_positions_name_the_body() {
        assert_eq!(field_of("?", "expected value"), "body");
        assert_eq!(field_of("items[0].?", "expected value"), "items[0]");
        assert_eq!(field_of(".", "missing field `force`"), "force");
    }
}
