//! The clear preview, the forced clear and the reset.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use batch_types::{
    ApiResponse, ClearPreview, ClearRequest, ClearResult, ErrorBody, ResetRequest, ResetResult,
    UnauthorizedBody,
};

use super::{CONTROL_BODY_LIMIT, caller_of, examples, parse_body, read_body};
use crate::engine::Engine;
use crate::engine::control::preview_message;
use crate::errors::ApiError;
use crate::i18n::pick;
use crate::metrics::METRICS;

fn clear_failed() -> String {
    pick("清除操作失败", "the clear failed")
}

/// Previews the clear: lists every processing batch and the live workers a
/// clear would stop. Changes nothing, in any state.
#[utoipa::path(
    tag = "clear",
    operation_id = "preview_clear",
    security(("api_key" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "What a clear would do now", body = ApiResponse<ClearPreview>, example = examples::preview_clear),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody, example = examples::unauthorized),
        (status = 500, description = "The clear failed, also when the database is unreachable", body = ErrorBody, example = examples::clear_failed),
    )
)]
#[get("/clear")]
pub async fn preview_clear(engine: web::Data<Engine>) -> Result<HttpResponse, ApiError> {
    let preview = engine
        .preview_clear()
        .await
        .map_err(|error| ApiError::from(error).during(clear_failed()))?;
    let message = preview_message(&preview);
    Ok(HttpResponse::Ok().json(ApiResponse::ok(message, preview)))
}

/// Force-clears every processing batch: cancels it, returns its in-flight
/// items to the queue (items with a stored analysis keep it), stops the
/// workers, and reports the state before and after. With no batch
/// processing it changes nothing and reports zero counts. With
/// `expectedBatchIds` it clears only when exactly those batches are
/// processing, else returns 409 with the current preview.
#[utoipa::path(
    tag = "clear",
    operation_id = "clear_batches",
    security(("api_key" = []), ("bearer" = [])),
    request_body(
        content = ClearRequest,
        description = "Empty, `{}`, or `{\"expectedBatchIds\": [...]}`",
        example = json!({})
    ),
    responses(
        (status = 200, description = "Cleared", body = ApiResponse<ClearResult>, example = examples::clear_batches),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody, example = examples::unauthorized),
        (status = 409, description = "expectedBatchIds differ; `data` is the current preview", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 500, description = "The clear failed, also when the database is unreachable", body = ErrorBody, example = examples::clear_failed),
    )
)]
#[post("/clear")]
pub async fn clear_batches(
    engine: web::Data<Engine>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, CONTROL_BODY_LIMIT).await?;
    let clear: ClearRequest = parse_body(&body, Some(ClearRequest::default()))?;

    let result = engine
        .clear(caller_of(&request), clear.expected_batch_ids)
        .await
        .map_err(|error| error.during(clear_failed()))?;

    METRICS.control_actions.with_label_values(&["clear"]).inc();
    let message = if result.cleared_tasks.processing_records == 0 {
        pick(
            "没有需要清除的AI批处理任务",
            "nothing to clear: no AI batch was processing",
        )
    } else {
        pick("所有AI批处理任务已成功清除", "all AI batches were cleared")
    };
    Ok(HttpResponse::Ok().json(ApiResponse::ok(message, result)))
}

/// Resets the engine. `force: true` behaves like a clear. `force: false`
/// repairs only inconsistencies (expired leases, items claimed by a batch
/// that is not processing, local workers whose batch stopped) and leaves a
/// healthy batch running.
#[utoipa::path(
    tag = "clear",
    operation_id = "reset_batches",
    security(("api_key" = []), ("bearer" = [])),
    request_body = ResetRequest,
    responses(
        (status = 200, description = "Success", body = ApiResponse<ResetResult>),
        (status = 400, description = "`force` missing or not a boolean", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
    )
)]
#[post("/reset")]
pub async fn reset_batches(
    engine: web::Data<Engine>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, CONTROL_BODY_LIMIT).await?;
    let reset: ResetRequest = parse_body(&body, None)?;

    let result = engine
        .reset(caller_of(&request), reset.force)
        .await
        .map_err(|error| error.during(pick("重置操作失败", "the reset failed")))?;

    let action = if reset.force {
        "reset_force"
    } else {
        "reset_gentle"
    };
    METRICS.control_actions.with_label_values(&[action]).inc();
    let message = if reset.force {
        pick(
            "AI批处理状态已强制重置",
            "the AI batch state was force-reset",
        )
    } else {
        pick(
            "AI批处理状态已检查并修复",
            "the AI batch state was checked and repaired",
        )
    };
    Ok(HttpResponse::Ok().json(ApiResponse::ok(message, result)))
}
