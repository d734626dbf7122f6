//! The error type of every client call, and the mapping of HTTP responses onto it.

use std::fmt;

use batch_types::{ClearPreview, ErrorBody, ErrorDetails, FieldError, UnauthorizedBody};
use reqwest::StatusCode;

/// Maximum number of characters of an undecodable body that [`Error::Decode`] keeps.
pub const MAX_DECODE_BODY_CHARS: usize = 512;

/// A failed client call.
///
/// `Display` writes one line without the underlying cause. The transport,
/// decode and runtime errors keep their cause in [`std::error::Error::source`].
///
/// Every variant except [`Error::Transport`], [`Error::InvalidConfig`] and
/// [`Error::Runtime`] means that the server sent a response. For those,
/// [`Error::status`] returns the HTTP status and [`Error::error_body`] the
/// decoded error envelope, when there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be sent or its response could not be read, such
    /// as a refused or reset connection, a timeout or a TLS failure. Idempotent
    /// GETs are retried on connection errors before this is returned.
    #[error("request to the batch server failed")]
    Transport(#[source] reqwest::Error),

    /// 401: the API key is missing or invalid.
    #[error("401 {}; check the API key", .0.error)]
    Unauthorized(UnauthorizedBody),

    /// 400 or 422: the request failed validation. [`Error::field_errors`] lists
    /// the invalid fields.
    #[error("{}", describe(*status, body))]
    Validation {
        /// The HTTP status, 400 or 422.
        status: StatusCode,
        /// The decoded error envelope.
        body: ErrorBody,
    },

    /// 404: the batch does not exist, or a start found no item to process
    /// (then [`Error::remaining_items`] returns `Some(0)`).
    #[error("{}", describe(StatusCode::NOT_FOUND, .0))]
    NotFound(ErrorBody),

    /// 409: the request conflicts with the current state, such as a start while
    /// a batch is processing ([`Error::current_batch_id`]) or a clear whose
    /// `expectedBatchIds` no longer match ([`Error::clear_preview`]).
    #[error("{}", describe(StatusCode::CONFLICT, .0))]
    Conflict(ErrorBody),

    /// 503: the server cannot reach its database. The call may succeed later.
    #[error("{}", describe(StatusCode::SERVICE_UNAVAILABLE, .0))]
    Unavailable(ErrorBody),

    /// Any other 5xx: the server failed while handling the request.
    #[error("{}", describe(*status, body))]
    Server {
        /// The HTTP status.
        status: StatusCode,
        /// The decoded error envelope, with `details` and `timestamp`.
        body: ErrorBody,
    },

    /// Any other non-success status that carried an error envelope.
    #[error("{}", describe(*status, body))]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The decoded error envelope.
        body: ErrorBody,
    },

    /// The response body is not the expected JSON.
    #[error("cannot decode the {status} response of the batch server: {body}")]
    Decode {
        /// The HTTP status of the response.
        status: StatusCode,
        /// The body, cut to [`MAX_DECODE_BODY_CHARS`] characters.
        body: String,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },

    /// The client was configured with an invalid value, such as a base URL that
    /// is not http(s) or an API key that is not a valid header value.
    #[error("invalid client configuration: {0}")]
    InvalidConfig(String),

    /// The blocking client could not start its tokio runtime.
    #[error("cannot start the tokio runtime of the blocking client")]
    Runtime(#[source] std::io::Error),
}

/// The result of every client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Returns the HTTP status of the response, or `None` when no response was read.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Transport(source) => source.status(),
            Self::Unauthorized(_) => Some(StatusCode::UNAUTHORIZED),
            Self::Validation { status, .. } => Some(*status),
            Self::NotFound(_) => Some(StatusCode::NOT_FOUND),
            Self::Conflict(_) => Some(StatusCode::CONFLICT),
            Self::Unavailable(_) => Some(StatusCode::SERVICE_UNAVAILABLE),
            Self::Server { status, .. } => Some(*status),
            Self::Api { status, .. } => Some(*status),
            Self::Decode { status, .. } => Some(*status),
            Self::InvalidConfig(_) | Self::Runtime(_) => None,
        }
    }

    /// Returns the decoded error envelope, for every API error except 401.
    pub fn error_body(&self) -> Option<&ErrorBody> {
        match self {
            Self::Validation { body, .. } | Self::Server { body, .. } | Self::Api { body, .. } => {
                Some(body)
            }
            Self::NotFound(body) | Self::Conflict(body) | Self::Unavailable(body) => Some(body),
            Self::Transport(_)
            | Self::Unauthorized(_)
            | Self::Decode { .. }
            | Self::InvalidConfig(_)
            | Self::Runtime(_) => None,
        }
    }

    /// Returns the server's one-sentence error message, including the 401 one.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Unauthorized(body) => Some(&body.error),
            _ => self.error_body().map(|body| body.error.as_str()),
        }
    }

    /// Returns `details` when the server sent it as a sentence. In 500 and 503
    /// responses it contains the cause.
    pub fn details(&self) -> Option<&str> {
        match self.error_body()?.details.as_ref()? {
            ErrorDetails::Message(text) => Some(text),
            ErrorDetails::Fields(_) => None,
        }
    }

    /// Returns the invalid fields of a validation error; empty for every other error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self.error_body().and_then(|body| body.details.as_ref()) {
            Some(ErrorDetails::Fields(fields)) => fields,
            _ => &[],
        }
    }

    /// Returns `data.currentBatchId` of a 409, the batch that holds the global task lock.
    pub fn current_batch_id(&self) -> Option<&str> {
        match self {
            Self::Conflict(body) => body.data.as_ref()?.get("currentBatchId")?.as_str(),
            _ => None,
        }
    }

    /// Returns `data.remainingItems` of a 404, which a start sends as 0 when no
    /// item matches its filters.
    pub fn remaining_items(&self) -> Option<u64> {
        match self {
            Self::NotFound(body) => body.data.as_ref()?.get("remainingItems")?.as_u64(),
            _ => None,
        }
    }

    /// Decodes the current clear preview that a 409 from `clear_batches` carries
    /// when `expectedBatchIds` did not match the processing batches.
    pub fn clear_preview(&self) -> Option<ClearPreview> {
        match self {
            Self::Conflict(body) => serde_json::from_value(body.data.clone()?).ok(),
            _ => None,
        }
    }

    /// Returns whether the server rejected the API key (401).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized(_))
    }

    /// Returns whether the request failed validation (400 or 422).
    pub fn is_validation(&self) -> bool {
        matches!(self, Self::Validation { .. })
    }

    /// Returns whether the server responded 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// Returns whether the server responded 409.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// Returns whether the server responded 503 because its database is unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Returns whether the server failed with a 5xx other than 503.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Server { .. })
    }

    /// Returns whether the request could not be sent or its response could not be read.
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Transport(_))
    }

    /// Returns whether the response body was not the expected JSON.
    pub fn is_decode(&self) -> bool {
        matches!(self, Self::Decode { .. })
    }
}

impl From<reqwest::Error> for Error {
    fn from(source: reqwest::Error) -> Self {
        Self::Transport(source)
    }
}

/// Maps a non-success response to its error variant.
///
/// A 401 body only needs an `error` string, because the server sends the bare
/// `{"error": ...}` there. Every other status needs a full [`ErrorBody`]. Any
/// other body, such as an HTML page from a proxy, becomes [`Error::Decode`].
pub(crate) fn from_error_response(status: StatusCode, body: &[u8]) -> Error {
    if status == StatusCode::UNAUTHORIZED {
        return match serde_json::from_slice::<UnauthorizedBody>(body) {
            Ok(body) => Error::Unauthorized(body),
            Err(source) => decode_error(status, body, source),
        };
    }

    let body = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(decoded) => decoded,
        Err(source) => return decode_error(status, body, source),
    };
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            Error::Validation { status, body }
        }
        StatusCode::NOT_FOUND => Error::NotFound(body),
        StatusCode::CONFLICT => Error::Conflict(body),
        StatusCode::SERVICE_UNAVAILABLE => Error::Unavailable(body),
        _ if status.is_server_error() => Error::Server { status, body },
        _ => Error::Api { status, body },
    }
}

/// Builds [`Error::Decode`] with the body cut to [`MAX_DECODE_BODY_CHARS`] characters.
pub(crate) fn decode_error(status: StatusCode, body: &[u8], source: serde_json::Error) -> Error {
    Error::Decode {
        status,
        body: truncate_body(body),
        source,
    }
}

/// Converts `body` to text, lossily, and cuts it at a character boundary.
fn truncate_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(MAX_DECODE_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// Formats an API error on one line: status, message, then details.
fn describe(status: StatusCode, body: &ErrorBody) -> String {
    let mut line = format!("{status}: {}", body.error);
    match &body.details {
        Some(ErrorDetails::Message(text)) => {
            line.push_str(": ");
            line.push_str(text);
        }
        Some(ErrorDetails::Fields(fields)) => {
            line.push_str(": ");
            line.push_str(&FieldList(fields).to_string());
        }
        None => {}
    }
    if let Some(current) = body
        .data
        .as_ref()
        .and_then(|data| data.get("currentBatchId"))
        .and_then(|id| id.as_str())
    {
        line.push_str(&format!(" (current batch: {current})"));
    }
    line
}

/// Field errors joined as `field: message; field: message`.
struct FieldList<'a>(&'a [FieldError]);

impl fmt::Display for FieldList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, field) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", field.field, field.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_body_keeps_short_text() {
        assert_eq!(truncate_body(b"short"), "short");
    }

    #[test]
    fn truncate_body_cuts_at_char_boundary() {
        let body = "错".repeat(MAX_DECODE_BODY_CHARS + 10);
        let cut = truncate_body(body.as_bytes());
        assert_eq!(cut.chars().count(), MAX_DECODE_BODY_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
