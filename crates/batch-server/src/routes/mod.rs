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
    if body.iter().all(u8::is_ascii_whitespace) {
        return empty.ok_or_else(|| {
            ApiError::invalid("body", "the request body is empty; send a JSON object")
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::Validation(vec![FieldError::new(field_of(&path, &message), message)])
    })
}

/// The field a serde error is about: its path, or for a missing field the
/// field's name, which serde puts only in the message.
fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
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
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::invalid(
            "limit",
            format!("limit is {limit}; use 1 to {max}"),
        )),
    }
}
