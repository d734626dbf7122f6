//! The success and error envelopes of every `/api/external` response.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A success response: `{"success": true, "message", "data"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiResponse<T> {
    /// Always `true` for this envelope.
    pub success: bool,
    /// A sentence for people, in the request's language.
    pub message: String,
    /// The payload of the operation.
    pub data: T,
}

impl<T> ApiResponse<T> {
    /// Wraps `data` in a success envelope with `message`.
    pub fn ok(message: impl Into<String>, data: T) -> Self {
        Self {
            success: true,
            message: message.into(),
            data,
        }
    }
}

/// An error response: `{"success": false, "error", "details"?, "timestamp"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "success": false,
    "error": "请求参数无效",
    "details": [{"field": "batchSize", "message": "batchSize is 101; use a whole number from 1 to 100"}],
    "timestamp": "2025-09-22T11:48:00.000Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Always `false` for this envelope.
    pub success: bool,
    /// The failure, as one sentence.
    pub error: String,
    /// The next step for the caller: a sentence, or one entry per invalid field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ErrorDetails>,
    /// Facts the caller needs to recover, such as `currentBatchId` on a 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<serde_json::Value>,
    /// When the error was produced.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2025-09-22T11:48:00.000Z"))]
    pub timestamp: DateTime<Utc>,
}

/// The `details` of an error body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ErrorDetails {
    /// A sentence telling the caller what to do next.
    Message(String),
    /// One entry per invalid field of the request.
    Fields(Vec<FieldError>),
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// Path of the field, such as `batchSize` or `items[3].externalId`.
    pub field: String,
    /// The problem with the value and the values accepted.
    pub message: String,
}

impl FieldError {
    /// Creates an entry for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of a 401 answer, exactly `{"error": "Unauthorized: Invalid API Key"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnauthorizedBody {
    /// Always `Unauthorized: Invalid API Key`.
    #[cfg_attr(feature = "openapi", schema(example = "Unauthorized: Invalid API Key"))]
    pub error: String,
}

/// The exact message of every 401 answer.
pub const UNAUTHORIZED_MESSAGE: &str = "Unauthorized: Invalid API Key";

/// One page of a listing, with the cursor of the next page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The entries of this page.
    pub entries: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
