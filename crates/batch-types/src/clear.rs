//! The clear preview, the forced clear and the reset.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The body of `GET /api/external/ai-batch/clear`: what a clear would do now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClearPreview {
    /// Whether any batch is processing.
    pub needs_clear: bool,
    /// The global task state.
    pub current_status: CurrentStatus,
    /// Live workers in the cluster.
    pub active_processes: ActiveProcesses,
    /// Batches whose status is `processing`.
    pub processing_records: ProcessingRecords,
    /// The changes a clear would make.
    pub estimation: Estimation,
    /// When the preview was read.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2025-09-22T11:48:00.000Z"))]
    pub timestamp: DateTime<Utc>,
}

/// The global task state of the preview.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CurrentStatus {
    /// Whether a batch holds the global task lock.
    pub has_global_task: bool,
    /// The batch that holds it.
    #[cfg_attr(feature = "openapi", schema(example = "batch_1758539874517_hyqk4w"))]
    pub current_batch_id: Option<String>,
    /// A sentence describing the state.
    #[cfg_attr(feature = "openapi", schema(example = "AI批处理任务正在运行中"))]
    pub global_message: String,
}

/// Live workers: batches worked by an instance whose heartbeat is fresh.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActiveProcesses {
    /// Number of live workers.
    pub count: u64,
    /// The batches they work.
    pub batch_ids: Vec<String>,
}

/// The processing records a clear would cancel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProcessingRecords {
    /// Number of batches in `processing`.
    pub count: u64,
    /// One entry per such batch.
    pub tasks: Vec<ProcessingTask>,
}

/// One processing batch in the preview.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProcessingTask {
    /// The batch id.
    #[cfg_attr(feature = "openapi", schema(example = "batch_1758539874517_hyqk4w"))]
    pub batch_id: String,
    /// When the batch started.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2025-09-22T11:17:54.000Z"))]
    pub started_at: DateTime<Utc>,
    /// `processed/total`.
    #[cfg_attr(feature = "openapi", schema(example = "10/710"))]
    pub progress: String,
    /// The provider the batch uses.
    #[cfg_attr(feature = "openapi", schema(example = "openai-badger"))]
    pub ai_provider: String,
    /// The model the batch uses.
    #[cfg_attr(feature = "openapi", schema(example = "gpt-4o"))]
    pub ai_model: String,
    /// Whole seconds since the start, with the unit: `1800秒`, or `1800s` in English.
    #[cfg_attr(feature = "openapi", schema(example = "1800秒"))]
    pub duration: String,
}

/// The changes a clear would make.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Estimation {
    /// Batches in `processing` that a clear would cancel.
    pub tasks_to_cancel: u64,
    /// Live workers that a clear would stop.
    pub memory_to_reset: u64,
    /// Whether a clear would release the global task lock.
    pub global_state_to_reset: bool,
}

/// The optional body of `POST /api/external/ai-batch/clear`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearRequest {
    /// Clear only if exactly these batches are processing; otherwise return 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_batch_ids: Option<Vec<String>>,
}

/// The global state before or after a clear or reset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// Whether a batch held the global task lock.
    pub has_global_task: bool,
    /// The batch that held it.
    pub current_batch_id: Option<String>,
    /// Live workers in the cluster.
    pub active_processes_count: u64,
    /// Batches in `processing`.
    pub processing_records_count: u64,
}

/// The changes a clear made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClearedTasks {
    /// Batches moved from `processing` to `cancelled`.
    pub processing_records: u64,
    /// Live workers stopped.
    pub active_processes: u64,
    /// Batch rows the clear changed.
    pub database_updates: u64,
}

/// The body of a successful `POST /api/external/ai-batch/clear`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClearResult {
    /// When the clear ran.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2025-09-22T11:48:00.000Z"))]
    pub clear_time: DateTime<Utc>,
    /// The state read before the clear.
    pub before_clear: StateSnapshot,
    /// The state measured after the workers stopped.
    pub after_clear: StateSnapshot,
    /// The changes the clear made.
    pub cleared_tasks: ClearedTasks,
    /// Items handed back to the queue (`pending`, or `analyzed` when they held an analysis).
    pub released_items: u64,
}

/// The body of `POST /api/external/ai-batch/reset`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    /// `true` cancels every processing batch; `false` repairs only inconsistencies.
    pub force: bool,
}

/// The body of a successful reset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ResetResult {
    /// The state read before the reset.
    pub previous_status: StateSnapshot,
    /// Batch rows the reset changed.
    pub updated_records: u64,
    /// When the reset ran.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime, example = "2025-09-22T11:48:00.000Z"))]
    pub reset_at: DateTime<Utc>,
    /// `force` or `gentle`.
    pub mode: String,
    /// Items handed back to the queue.
    pub released_items: u64,
    /// Local workers stopped.
    pub stopped_workers: u64,
    /// The state measured after the reset.
    pub current_status: StateSnapshot,
}
