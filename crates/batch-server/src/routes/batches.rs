//! Starting, watching, listing and cancelling batches.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use batch_types::{
    ApiResponse, BatchInfo, BatchResult, CancelBatchData, ErrorBody, GlobalStatus, Page,
    StartBatchData, StartBatchRequest, UnauthorizedBody,
};
use serde::Deserialize;

use super::{
    CONTROL_BODY_LIMIT, caller_of, is_batch_id, page_limit, parse_body, parse_cursor, read_body,
};
use crate::db;
use crate::engine::Engine;
use crate::engine::control::{batch_info, batch_not_found};
use crate::engine::start;
use crate::errors::ApiError;
use crate::i18n::pick;
use crate::metrics::METRICS;

/// Starts a batch over the items the filters select. Returns 409 while any
/// batch is processing, on any instance, and 404 when nothing matches.
#[utoipa::path(
    tag = "batches",
    operation_id = "start_batch",
    security(("api_key" = []), ("bearer" = [])),
    request_body = StartBatchRequest,
    responses(
        (status = 201, description = "Created", body = ApiResponse<StartBatchData>),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 404, description = "No matching items; `data.remainingItems` is 0", body = ErrorBody),
        (status = 409, description = "A batch is processing; `data.currentBatchId` names it", body = ErrorBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[post("/start")]
pub async fn start_batch(
    engine: web::Data<Engine>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, CONTROL_BODY_LIMIT).await?;
    let request: StartBatchRequest = parse_body(&body, Some(StartBatchRequest::default()))?;
    if request.previous_batch_id.is_some() {
        return Err(ApiError::invalid(
            "previousBatchId",
            "previousBatchId belongs to POST /api/external/ai-batch/continue; leave it out of start",
        ));
    }
    started(&engine, request).await
}

/// Continues a chain of batches: a new batch over the matching items that
/// no batch of the chain ending at `previousBatchId` has processed. Fields
/// the request leaves out (filters, chunk size, concurrency, mode, provider,
/// model, base URL, system prompt) come from the previous batch; a remote
/// provider's key does not, since keys are never stored.
#[utoipa::path(
    tag = "batches",
    operation_id = "continue_batch",
    security(("api_key" = []), ("bearer" = [])),
    request_body = StartBatchRequest,
    responses(
        (status = 201, description = "Created", body = ApiResponse<StartBatchData>),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 404, description = "Unknown previous batch, or no items left", body = ErrorBody),
        (status = 409, description = "Conflicts with the current state; `data` has the facts to recover", body = ErrorBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[post("/continue")]
pub async fn continue_batch(
    engine: web::Data<Engine>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, CONTROL_BODY_LIMIT).await?;
    let request: StartBatchRequest = parse_body(&body, None)?;
    let previous_id = match request.previous_batch_id.as_deref() {
        None => {
            return Err(ApiError::invalid(
                "previousBatchId",
                "previousBatchId is missing; name the batch whose chain to continue",
            ));
        }
        Some(id) if !is_batch_id(id) => {
            return Err(ApiError::invalid(
                "previousBatchId",
                "previousBatchId is not a batch id; it looks like batch_1758539874517_hyqk4w",
            ));
        }
        Some(id) => id.to_owned(),
    };

    let id = previous_id.clone();
    let Some(previous) = engine
        .db(move |connection| db::batches::find_batch(connection, &id))
        .await?
    else {
        return Err(batch_not_found(&previous_id));
    };

    let request = start::inherit(request, &previous);
    if request.max_items == Some(0) {
        return Err(ApiError::NotFound {
            message: pick(
                "前序批次的 maxItems 已用完，没有剩余数据",
                "the previous batch's maxItems is used up; nothing is left",
            ),
            data: Some(serde_json::json!({ "remainingItems": 0 })),
        });
    }
    started(&engine, request).await
}

async fn started(engine: &Engine, request: StartBatchRequest) -> Result<HttpResponse, ApiError> {
    let valid = start::validate(&request, engine)?;
    let data = start::start_batch(engine, valid).await?;
    METRICS.batches_started.inc();
    let message = pick(
        format!("AI批处理任务已启动，共 {} 条待处理", data.total_items),
        format!("the AI batch started with {} items", data.total_items),
    );
    Ok(HttpResponse::Created().json(ApiResponse::ok(message, data)))
}

/// Reports the global state: whether a batch runs, which, and its progress.
#[utoipa::path(
    tag = "batches",
    operation_id = "get_global_status",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Success", body = ApiResponse<GlobalStatus>),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[get("/status")]
pub async fn get_global_status(engine: web::Data<Engine>) -> Result<HttpResponse, ApiError> {
    global_status(&engine).await
}

/// The same global state as `GET /status`, for callers that poll the start route.
#[utoipa::path(
    tag = "batches",
    operation_id = "get_start_status",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Success", body = ApiResponse<GlobalStatus>),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[get("/start")]
pub async fn get_start_status(engine: web::Data<Engine>) -> Result<HttpResponse, ApiError> {
    global_status(&engine).await
}

async fn global_status(engine: &Engine) -> Result<HttpResponse, ApiError> {
    let status = engine.global_status().await?;
    let message = status.global_message.clone();
    Ok(HttpResponse::Ok().json(ApiResponse::ok(message, status)))
}

/// Reports one batch's status and counters.
#[utoipa::path(
    tag = "batches",
    operation_id = "get_batch_status",
    security(("api_key" = []), ("bearer" = [])),
    params(("batchId" = String, Path, description = "The batch id")),
    responses(
        (status = 200, description = "Success", body = ApiResponse<BatchInfo>),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[get("/status/{batchId}")]
pub async fn get_batch_status(
    engine: web::Data<Engine>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let batch_id = path.into_inner();
    if !is_batch_id(&batch_id) {
        return Err(batch_not_found(&batch_id));
    }
    let id = batch_id.clone();
    let Some(row) = engine
        .db(move |connection| db::batches::find_batch(connection, &id))
        .await?
    else {
        return Err(batch_not_found(&batch_id));
    };
    let info = batch_info(&row);
    let message = match info.status {
        batch_types::BatchStatus::Processing => pick("任务处理中", "the batch is processing"),
        batch_types::BatchStatus::Completed => pick("任务已完成", "the batch completed"),
        batch_types::BatchStatus::Failed => pick("任务失败", "the batch failed"),
        batch_types::BatchStatus::Cancelled => pick("任务已取消", "the batch was cancelled"),
    };
    Ok(HttpResponse::Ok().json(ApiResponse::ok(message, info)))
}

/// Query of the batch history.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListBatchesQuery {
    /// Only batches in this status.
    pub status: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 200; default 50.
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
}

/// Lists batches, newest first.
#[utoipa::path(
    tag = "batches",
    operation_id = "list_batches",
    security(("api_key" = []), ("bearer" = [])),
    params(ListBatchesQuery),
    responses(
        (status = 200, description = "Success", body = ApiResponse<Page<BatchInfo>>),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[get("/batches")]
pub async fn list_batches(
    engine: web::Data<Engine>,
    query: web::Query<ListBatchesQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = page_limit(query.limit.as_deref(), 50, 200)?;
    if let Some(cursor) = query.cursor.as_deref()
        && !is_batch_id(cursor)
    {
        return Err(ApiError::invalid(
            "cursor",
            "cursor is not a batch id; pass the nextCursor of the previous page",
        ));
    }
    if let Some(status) = query.status.as_deref()
        && batch_types::BatchStatus::parse(status).is_none()
    {
        return Err(ApiError::invalid(
            "status",
            format!("unknown status {status:?}; use processing, completed, failed or cancelled"),
        ));
    }
    let rows = engine
        .db(move |connection| {
            db::batches::list_batches(
                connection,
                query.status.as_deref(),
                query.cursor.as_deref(),
                limit + 1,
            )
        })
        .await?;
    let page = page_of(rows.iter().map(batch_info).collect(), limit, |info| {
        info.batch_id.clone()
    });
    Ok(HttpResponse::Ok().json(ApiResponse::ok(pick("批次列表", "batches"), page)))
}

/// Cancels one batch and returns its in-flight items to the queue. A batch
/// that already finished is left as it is, and the response states that.
#[utoipa::path(
    tag = "batches",
    operation_id = "cancel_batch",
    security(("api_key" = []), ("bearer" = [])),
    params(("batchId" = String, Path, description = "The batch id")),
    responses(
        (status = 200, description = "Success", body = ApiResponse<CancelBatchData>),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[post("/batches/{batchId}/cancel")]
pub async fn cancel_batch(
    engine: web::Data<Engine>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let data = engine
        .cancel_batch(caller_of(&request), path.into_inner())
        .await?;
    METRICS.control_actions.with_label_values(&["cancel"]).inc();
    let message = if data.cancelled {
        pick("任务已取消", "the batch was cancelled")
    } else {
        pick(
            format!("任务已是 {} 状态，无需取消", data.status.as_str()),
            format!(
                "the batch is already {}; nothing was changed",
                data.status.as_str()
            ),
        )
    };
    Ok(HttpResponse::Ok().json(ApiResponse::ok(message, data)))
}

/// Query of a batch's results.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000; default 100.
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `json` (default) or `jsonl`: every result, one JSON object a line, streamed.
    pub format: Option<String>,
}

/// Lists the results a batch wrote, in item order.
///
/// An item keeps the results of its latest batch only, so a later batch
/// over the same item takes it out of this list.
#[utoipa::path(
    tag = "batches",
    operation_id = "list_batch_results",
    security(("api_key" = []), ("bearer" = [])),
    params(("batchId" = String, Path, description = "The batch id"), ResultsQuery),
    responses(
        (status = 200, description = "Success", body = ApiResponse<Page<BatchResult>>, description = "A page, or with format=jsonl one BatchResult per line"),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[get("/batches/{batchId}/results")]
pub async fn list_batch_results(
    engine: web::Data<Engine>,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> Result<HttpResponse, ApiError> {
    let batch_id = path.into_inner();
    if !is_batch_id(&batch_id) {
        return Err(batch_not_found(&batch_id));
    }
    let query = query.into_inner();
    let id = batch_id.clone();
    if engine
        .db(move |connection| db::batches::find_batch(connection, &id))
        .await?
        .is_none()
    {
        return Err(batch_not_found(&batch_id));
    }
    match query.format.as_deref() {
        None | Some("json") => {}
        Some("jsonl") => {
            return Ok(super::items::stream_results(
                engine.get_ref().clone(),
                batch_id,
            ));
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("unknown format {other:?}; use json or jsonl"),
            ));
        }
    }
    let limit = page_limit(query.limit.as_deref(), 100, 1000)?;
    let after = parse_cursor(query.cursor.as_deref())?;
    let results = super::items::results_page(&engine, batch_id, after, limit + 1).await?;
    let page = page_of(results, limit, |result| result.item_id.to_string());
    Ok(HttpResponse::Ok().json(ApiResponse::ok(pick("批次结果", "batch results"), page)))
}

/// Cuts a list fetched with `limit + 1` rows into a page and its cursor.
pub fn page_of<T>(mut entries: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let has_more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_cursor = if has_more {
        entries.last().map(cursor_of)
    } else {
        None
    };
    Page {
        entries,
        next_cursor,
    }
}
