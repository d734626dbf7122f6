//! Batches: starting, watching, listing and cancelling AI analysis runs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Analysis, AnalysisState};

/// The status of a batch.
///
/// - `processing`: set by start and continue. The only non-final state, and
///   at most one batch is in it across every instance. It moves to
///   `completed` when every item of the batch is processed, to `failed` on a
///   fatal provider error or when its owner's lease expires, and to
///   `cancelled` by cancel, clear or a forced reset.
/// - `completed`, `failed` and `cancelled` are final: nothing moves a batch out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// Running; holds the global task lock.
    Processing,
    /// Every item was processed.
    Completed,
    /// Stopped by a fatal error or an expired lease.
    Failed,
    /// Stopped by cancel, clear or a forced reset.
    Cancelled,
}

impl BatchStatus {
    /// The name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or query-string name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "processing" => Some(Self::Processing),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }

    /// Whether nothing moves the batch out of this status.
    pub fn is_final(self) -> bool {
        self != Self::Processing
    }
}

/// The way a batch sends items to the provider.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProcessingMode {
    /// One request per chunk of `batchSize` items.
    #[default]
    Optimized,
    /// One request per item.
    Traditional,
}

impl ProcessingMode {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optimized => "optimized",
            Self::Traditional => "traditional",
        }
    }
}

/// Provider settings of a start request.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AiConfig {
    /// `openai`, `openai-badger`, `zhipu`, `anthropic` or `local`.
    #[serde(default)]
    pub provider: Option<String>,
    /// The model name; each provider has a default.
    #[serde(default)]
    pub model: Option<String>,
    /// The provider key; kept in memory only, never stored, logged or echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The provider's base URL, for OpenAI-compatible gateways; without
    /// user info, since the key belongs in `apiKey`.
    #[serde(default, rename = "baseURL", skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl std::fmt::Debug for AiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// The body of `POST /api/external/ai-batch/start` and `continue`.
///
/// Unknown fields are rejected, so a misspelt name such as `batchsize` or
/// `aiconfig` fails loudly instead of silently starting a different batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBatchRequest {
    /// Only items of these lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_ids: Option<Vec<String>>,
    /// Only items of these authors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usernames: Option<Vec<String>>,
    /// Only items published at or after this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_after: Option<String>,
    /// `"false"` (default): items without an analysis; `"true"`: items with
    /// one; `"all"`: both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_extracted: Option<String>,
    /// Items per chunk, 1 to 100; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// `optimized` (default) or `traditional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_processing_mode: Option<String>,
    /// Replaces the built-in instructions sent to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// At most this many items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Provider requests in flight at once, 1 to 32; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Provider settings; default the offline `local` analyzer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_config: Option<AiConfig>,
    /// For `continue` only: the batch whose chain to continue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_batch_id: Option<String>,
}

/// The data of a successful start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StartBatchData {
    /// The new batch's id, `batch_<unix-ms>_<6 of a-z0-9>`.
    #[cfg_attr(feature = "openapi", schema(example = "batch_1758539874517_hyqk4w"))]
    pub batch_id: String,
    /// Always `processing` right after a start.
    pub status: BatchStatus,
    /// Items the batch will process.
    pub total_items: u64,
    /// Items per chunk.
    pub batch_size: u32,
    /// Chunks needed: `ceil(totalItems / batchSize)`.
    pub estimated_batches: u64,
    /// The way items are sent to the provider.
    pub mode: ProcessingMode,
    /// When the batch started.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: DateTime<Utc>,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Provider requests in flight at once.
    pub concurrency: u32,
    /// The batch this one continues.
    pub previous_batch_id: Option<String>,
}

/// Counters of a batch. `processed = succeeded + failed <= total` always holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Items in the batch.
    pub total: u64,
    /// Items finished, either way.
    pub processed: u64,
    /// Items that got an analysis.
    pub succeeded: u64,
    /// Items whose analysis failed.
    pub failed: u64,
    /// `processed / total * 100`, one decimal.
    pub percentage: f64,
}

/// One batch as status and history report it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// The batch id.
    pub batch_id: String,
    /// The status.
    pub status: BatchStatus,
    /// Whether the batch is still processing.
    pub is_active: bool,
    /// The counters.
    pub progress: Progress,
    /// The reason the batch failed, when it did.
    pub error: Option<String>,
    /// The reason the batch was cancelled, when it was.
    pub cancel_reason: Option<String>,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// The way items are sent to the provider.
    pub mode: ProcessingMode,
    /// Items per chunk.
    pub batch_size: u32,
    /// Provider requests in flight at once.
    pub concurrency: u32,
    /// When the batch started.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: DateTime<Utc>,
    /// When the batch reached a final status.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<DateTime<Utc>>,
    /// The batch this one continues.
    pub previous_batch_id: Option<String>,
    /// The server instance that works the batch.
    pub owner_instance_id: Option<String>,
}

/// The global state: whether a batch runs, and which.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GlobalStatus {
    /// Whether a batch holds the global task lock.
    pub has_global_task: bool,
    /// The batch that holds it.
    pub current_batch_id: Option<String>,
    /// A sentence describing the state.
    pub global_message: String,
    /// The processing batch, when there is one.
    pub current_batch: Option<BatchInfo>,
    /// Live workers in the cluster.
    pub active_processes_count: u64,
    /// Items without an analysis that no batch holds.
    pub pending_items: u64,
}

/// The data of a cancel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CancelBatchData {
    /// The batch id.
    pub batch_id: String,
    /// The status after the call.
    pub status: BatchStatus,
    /// Whether this call cancelled the batch; `false` when it had already finished.
    pub cancelled: bool,
    /// Items handed back to the queue.
    pub released_items: u64,
}

/// One item's outcome in a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// The server's id of the item.
    pub item_id: i64,
    /// The caller's id of the item.
    pub external_id: String,
    /// `analyzed` or `failed`.
    pub state: AnalysisState,
    /// The analysis, when it succeeded.
    pub analysis: Option<Analysis>,
    /// The failure reason, when it failed.
    pub error: Option<String>,
    /// When the result was written.
    #[serde(with = "crate::time::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub analysed_at: Option<DateTime<Utc>>,
}
