//! Example bodies for the OpenAPI document, taken from the clear API
//! contract so Swagger UI shows the documented wire format.

use serde_json::{Value, json};

/// A preview with one processing batch.
pub fn preview_clear() -> Value {
    json!({
        "success": true,
        "message": "发现 1 个任务待清除",
        "data": {
            "needsClear": true,
            "currentStatus": {
                "hasGlobalTask": true,
                "currentBatchId": "batch_1758539874517_hyqk4w",
                "globalMessage": "AI批处理任务正在运行中"
            },
            "activeProcesses": { "count": 1, "batchIds": ["batch_1758539874517_hyqk4w"] },
            "processingRecords": {
                "count": 1,
                "tasks": [{
                    "batchId": "batch_1758539874517_hyqk4w",
                    "startedAt": "2025-09-22T11:17:54.000Z",
                    "progress": "10/710",
                    "aiProvider": "openai-badger",
                    "aiModel": "gpt-4o",
                    "duration": "1800秒"
                }]
            },
            "estimation": { "tasksToCancel": 1, "memoryToReset": 1, "globalStateToReset": true },
            "timestamp": "2025-09-22T11:48:00.000Z"
        }
    })
}

/// A clear that cancelled one batch.
pub fn clear_batches() -> Value {
    json!({
        "success": true,
        "message": "所有AI批处理任务已成功清除",
        "data": {
            "clearTime": "2025-09-22T11:48:00.000Z",
            "beforeClear": {
                "hasGlobalTask": true,
                "currentBatchId": "batch_1758539874517_hyqk4w",
                "activeProcessesCount": 1,
                "processingRecordsCount": 1
            },
            "afterClear": {
                "hasGlobalTask": false,
                "currentBatchId": null,
                "activeProcessesCount": 0,
                "processingRecordsCount": 0
            },
            "clearedTasks": { "processingRecords": 1, "activeProcesses": 1, "databaseUpdates": 1 },
            "releasedItems": 10
        }
    })
}

/// The 401 body of every `/api/external` route.
pub fn unauthorized() -> Value {
    json!({ "error": "Unauthorized: Invalid API Key" })
}

/// The 500 body of a failed clear.
pub fn clear_failed() -> Value {
    json!({
        "success": false,
        "error": "清除操作失败",
        "details": "具体错误信息",
        "timestamp": "2025-09-22T11:48:00.000Z"
    })
}
