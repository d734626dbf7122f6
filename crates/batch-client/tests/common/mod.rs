//! JSON bodies in the server's wire format, shared by the test binaries.

#![allow(dead_code)]

use serde_json::{Value, json};

/// The API key that the mocks expect.
pub const API_KEY: &str = "test-api-key";

/// A batch id in the server's format.
pub const BATCH_ID: &str = "batch_1758539874517_hyqk4w";

/// Wraps `data` in a success envelope.
pub fn envelope(data: Value) -> Value {
    json!({"success": true, "message": "操作成功", "data": data})
}

/// Builds an error envelope with optional `details` and `data`.
pub fn error_body(error: &str, details: Option<Value>, data: Option<Value>) -> Value {
    let mut body = json!({
        "success": false,
        "error": error,
        "timestamp": "2025-09-22T11:48:00.000Z",
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    if let Some(data) = data {
        body["data"] = data;
    }
    body
}

/// Builds a processing batch.
pub fn batch_info() -> Value {
    json!({
        "batchId": BATCH_ID,
        "status": "processing",
        "isActive": true,
        "progress": {"total": 710, "processed": 10, "succeeded": 9, "failed": 1, "percentage": 1.4},
        "error": null,
        "cancelReason": null,
        "provider": "openai-badger",
        "model": "gpt-4o",
        "mode": "optimized",
        "batchSize": 10,
        "concurrency": 2,
        "startedAt": "2025-09-22T11:17:54.000Z",
        "finishedAt": null,
        "previousBatchId": null,
        "ownerInstanceId": "instance-1",
    })
}

/// Builds the global state while `batch_info` is processing.
pub fn global_status() -> Value {
    json!({
        "hasGlobalTask": true,
        "currentBatchId": BATCH_ID,
        "globalMessage": "AI批处理任务正在运行中",
        "currentBatch": batch_info(),
        "activeProcessesCount": 1,
        "pendingItems": 700,
    })
}

/// Builds the clear preview while `batch_info` is processing.
pub fn clear_preview() -> Value {
    json!({
        "needsClear": true,
        "currentStatus": {
            "hasGlobalTask": true,
            "currentBatchId": BATCH_ID,
            "globalMessage": "AI批处理任务正在运行中",
        },
        "activeProcesses": {"count": 1, "batchIds": [BATCH_ID]},
        "processingRecords": {
            "count": 1,
            "tasks": [{
                "batchId": BATCH_ID,
                "startedAt": "2025-09-22T11:17:54.000Z",
                "progress": "10/710",
                "aiProvider": "openai-badger",
                "aiModel": "gpt-4o",
                "duration": "1800秒",
            }],
        },
        "estimation": {"tasksToCancel": 1, "memoryToReset": 1, "globalStateToReset": true},
        "timestamp": "2025-09-22T11:48:00.000Z",
    })
}

/// Builds a state snapshot with `processing` batches.
pub fn snapshot(processing: u64) -> Value {
    json!({
        "hasGlobalTask": processing > 0,
        "currentBatchId": if processing > 0 { Value::from(BATCH_ID) } else { Value::Null },
        "activeProcessesCount": processing,
        "processingRecordsCount": processing,
    })
}

/// Builds the result of a clear that cancelled `batch_info`.
pub fn clear_result() -> Value {
    json!({
        "clearTime": "2025-09-22T11:48:00.000Z",
        "beforeClear": snapshot(1),
        "afterClear": snapshot(0),
        "clearedTasks": {"processingRecords": 1, "activeProcesses": 1, "databaseUpdates": 1},
        "releasedItems": 700,
    })
}

/// Builds the result of a forced reset.
pub fn reset_result() -> Value {
    json!({
        "previousStatus": snapshot(1),
        "updatedRecords": 1,
        "resetAt": "2025-09-22T11:48:00.000Z",
        "mode": "force",
        "releasedItems": 700,
        "stoppedWorkers": 1,
        "currentStatus": snapshot(0),
    })
}

/// Builds the data of a successful start.
pub fn start_data() -> Value {
    json!({
        "batchId": BATCH_ID,
        "status": "processing",
        "totalItems": 710,
        "batchSize": 10,
        "estimatedBatches": 71,
        "mode": "optimized",
        "startedAt": "2025-09-22T11:17:54.000Z",
        "provider": "local",
        "model": "local-keywords",
        "concurrency": 2,
        "previousBatchId": null,
    })
}

/// Builds the data of a cancel that stopped `batch_info`.
pub fn cancel_data() -> Value {
    json!({"batchId": BATCH_ID, "status": "cancelled", "cancelled": true, "releasedItems": 700})
}

/// Builds one analysed result.
pub fn batch_result(item_id: i64) -> Value {
    json!({
        "itemId": item_id,
        "externalId": format!("tw-{item_id}"),
        "state": "analyzed",
        "analysis": {
            "keywords": ["rust", "async"],
            "topicTags": ["#rustlang"],
            "contentTypes": ["text"],
            "isValueless": false,
        },
        "error": null,
        "analysedAt": "2025-09-22T11:20:00.000Z",
    })
}

/// Builds one stored item.
pub fn item(id: i64) -> Value {
    json!({
        "id": id,
        "externalId": format!("tw-{id}"),
        "content": "Rust 2024 edition is out",
        "username": "alice",
        "listId": "list-1",
        "publishedAt": "2025-09-20T08:00:00.000Z",
        "analysisState": "pending",
        "analysis": null,
        "analysedAt": null,
        "provider": null,
        "model": null,
        "batchId": null,
        "claimBatchId": null,
        "lastError": null,
        "attempts": 0,
    })
}

/// Builds a page of `entries` with the next cursor.
pub fn page(entries: Vec<Value>, next_cursor: Option<&str>) -> Value {
    json!({"entries": entries, "nextCursor": next_cursor})
}
