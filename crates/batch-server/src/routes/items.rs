//! Item upsert and listing, and batch results.

use actix_web::{HttpResponse, get, post, web};
use batch_types::{
    AnalysisState, ApiResponse, BatchResult, ErrorBody, Item, MAX_ITEMS_PER_UPSERT, Page,
    UnauthorizedBody, UpsertItemsRequest, UpsertItemsResult,
};
use serde::Deserialize;

use super::batches::page_of;
use super::{check_text, page_limit, parse_body, parse_cursor, read_body};
use crate::db::items::{self, ItemQuery, ItemRow};
use crate::engine::Engine;
use crate::errors::ApiError;
use crate::i18n::pick;
use crate::ingest;

/// Largest upsert body: 10,000 short texts with their fields.
const UPSERT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The upsert body before validation: items stay raw JSON so every error
/// can name its item's index and field.
#[derive(Deserialize)]
struct RawUpsert {
    items: Vec<serde_json::Value>,
}

/// Inserts or updates up to 10,000 items by `externalId`. If any item is
/// invalid, nothing is written and the 400 names each bad item and field.
/// An update keeps the item's stored analysis.
#[utoipa::path(
    tag = "items",
    operation_id = "upsert_items",
    security(("api_key" = []), ("bearer" = [])),
    request_body = UpsertItemsRequest,
    responses(
        (status = 200, description = "Success", body = ApiResponse<UpsertItemsResult>),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[post("")]
pub async fn upsert_items(
    engine: web::Data<Engine>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, UPSERT_BODY_LIMIT).await?;
    let raw: RawUpsert = parse_body(&body, None)?;
    if raw.items.is_empty() || raw.items.len() > MAX_ITEMS_PER_UPSERT {
        return Err(ApiError::invalid(
            "items",
            format!(
                "items has {} entries; send 1 to {MAX_ITEMS_PER_UPSERT} per request",
                raw.items.len()
            ),
        ));
    }
    let rows = ingest::parse_items(&raw.items).map_err(ApiError::Validation)?;

    let (inserted, updated) = engine
        .db(move |connection| items::upsert_items(connection, &rows))
        .await?;

    log::info!("items upserted: {inserted} inserted, {updated} updated");
    let message = pick(
        format!("已写入 {inserted} 条新数据，更新 {updated} 条"),
        format!("{inserted} items inserted, {updated} updated"),
    );
    Ok(HttpResponse::Ok().json(ApiResponse::ok(
        message,
        UpsertItemsResult { inserted, updated },
    )))
}

/// Query of the item listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListItemsQuery {
    /// Only items in this state: pending, processing, analyzed or failed.
    pub state: Option<String>,
    /// Only items of this list.
    pub list_id: Option<String>,
    /// Only items of this author.
    pub username: Option<String>,
    /// Only items whose latest result came from this batch.
    pub batch_id: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000; default 100.
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
}

/// Lists items in id order, with cursor pagination.
#[utoipa::path(
    tag = "items",
    operation_id = "list_items",
    security(("api_key" = []), ("bearer" = [])),
    params(ListItemsQuery),
    responses(
        (status = 200, description = "Success", body = ApiResponse<Page<Item>>),
        (status = 400, description = "Invalid request; `details` names each field", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = UnauthorizedBody),
        (status = 500, description = "The operation failed; `details` gives the next step", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry shortly", body = ErrorBody),
    )
)]
#[get("")]
pub async fn list_items(
    engine: web::Data<Engine>,
    query: web::Query<ListItemsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(state) = query.state.as_deref()
        && AnalysisState::parse(state).is_none()
    {
        return Err(ApiError::invalid(
            "state",
            format!("unknown state {state:?}; use pending, processing, analyzed or failed"),
        ));
    }
    check_text("listId", query.list_id.as_deref())?;
    check_text("username", query.username.as_deref())?;
    check_text("batchId", query.batch_id.as_deref())?;
    let limit = page_limit(query.limit.as_deref(), 100, 1000)?;
    let filter = ItemQuery {
        state: query.state,
        list_id: query.list_id,
        username: query.username,
        batch_id: query.batch_id,
        after_id: parse_cursor(query.cursor.as_deref())?,
        limit: limit + 1,
    };

    let rows = engine
        .db(move |connection| items::list_items(connection, &filter))
        .await?;

    let page = page_of(
        rows.into_iter().map(item_of).collect(),
        limit,
        |item: &Item| item.id.to_string(),
    );
    Ok(HttpResponse::Ok().json(ApiResponse::ok(pick("数据列表", "items"), page)))
}

fn item_of(row: ItemRow) -> Item {
    Item {
        id: row.id,
        external_id: row.external_id,
        content: row.content,
        username: row.username,
        list_id: row.list_id,
        published_at: row.published_at,
        analysis_state: AnalysisState::parse(&row.analysis_state).unwrap_or(AnalysisState::Pending),
        analysis: row
            .analysis
            .and_then(|value| serde_json::from_value(value).ok()),
        analysed_at: row.analysed_at,
        provider: row.provider,
        model: row.model,
        batch_id: row.batch_id,
        claim_batch_id: row.claim_batch_id,
        last_error: row.last_error,
        attempts: row.attempts,
    }
}

/// Converts an item to its result in the batch that last processed it: a
/// failed attempt reads as failed even when an older analysis was kept.
fn result_of(row: ItemRow) -> BatchResult {
    let failed = row.last_error.is_some();
    BatchResult {
        item_id: row.id,
        external_id: row.external_id,
        state: if failed {
            AnalysisState::Failed
        } else {
            AnalysisState::parse(&row.analysis_state).unwrap_or(AnalysisState::Failed)
        },
        analysis: if failed {
            None
        } else {
            row.analysis
                .and_then(|value| serde_json::from_value(value).ok())
        },
        error: row.last_error,
        analysed_at: if failed { None } else { row.analysed_at },
    }
}

/// One page of a batch's results.
pub async fn results_page(
    engine: &Engine,
    batch_id: String,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<BatchResult>, ApiError> {
    let query = ItemQuery {
        batch_id: Some(batch_id),
        after_id: after,
        limit,
        ..ItemQuery::default()
    };
    let rows = engine
        .db(move |connection| items::list_items(connection, &query))
        .await?;
    Ok(rows.into_iter().map(result_of).collect())
}

/// Streams every result of a batch as JSON lines, a page at a time, so
/// memory stays flat however large the batch.
pub fn stream_results(engine: Engine, batch_id: String) -> HttpResponse {
    const PAGE: i64 = 1_000;
    let pages = futures_util::stream::unfold(Some(None::<i64>), move |cursor| {
        let engine = engine.clone();
        let batch_id = batch_id.clone();
        async move {
            let after = cursor?;
            match results_page(&engine, batch_id, after, PAGE).await {
                Ok(results) => {
                    let next = (results.len() as i64 == PAGE)
                        .then(|| results.last().map(|last| last.item_id));
                    let mut lines = Vec::new();
                    for result in &results {
                        if serde_json::to_writer(&mut lines, result).is_ok() {
                            lines.push(b'\n');
                        }
                    }
                    Some((
                        Ok::<_, actix_web::Error>(web::Bytes::from(lines)),
                        next.flatten().map(Some),
                    ))
                }
                Err(error) => {
                    log::error!("streaming batch results stopped: {error}");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError(
                            "streaming stopped",
                        )),
                        None,
                    ))
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(pages)
}
