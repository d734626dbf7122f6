//! Validating a start request and starting a batch.

use batch_types::{FieldError, ProcessingMode, StartBatchData, StartBatchRequest};
use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rand::Rng;

use super::Engine;
use crate::db::batches::{self, BatchRow, ItemFilter, NewBatch};
use crate::errors::{ApiError, DbError};
use crate::i18n::pick;
use crate::providers::{ApiKey, Provider, ProviderConfig, ProviderKind};

/// Default items per chunk.
const DEFAULT_BATCH_SIZE: u32 = 10;
/// Largest chunk: a provider reply for 100 short texts still fits one
/// model response.
const MAX_BATCH_SIZE: u32 = 100;
/// Default provider requests in flight.
const DEFAULT_CONCURRENCY: u32 = 2;
/// Most provider requests in flight; the database pool must serve each.
const MAX_CONCURRENCY: u32 = 32;
/// Maximum system prompt length, in characters.
const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;

/// A start request that passed validation.
#[derive(Debug)]
pub struct ValidStart {
    filter: ItemFilter,
    max_items: Option<i64>,
    batch_size: u32,
    concurrency: u32,
    mode: ProcessingMode,
    provider: ProviderConfig,
    previous_batch_id: Option<String>,
}

/// Six characters of `a-z0-9`.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new batch id: `batch_<unix-ms>_<6 of a-z0-9>`.
pub fn new_batch_id(at: DateTime<Utc>) -> String {
    format!("batch_{}_{}", at.timestamp_millis(), random_suffix())
}

/// Fills the fields a continue request leaves out from the batch it
/// continues, so the chain keeps its filters and settings.
pub fn inherit(mut request: StartBatchRequest, previous: &BatchRow) -> StartBatchRequest {
    let filter: ItemFilter = serde_json::from_value(previous.filter.clone()).unwrap_or_default();
    let text = |key: &str| {
        previous
            .settings
            .get(key)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };

    request.list_ids = request.list_ids.or(filter.list_ids);
    request.usernames = request.usernames.or(filter.usernames);
    request.published_after = request.published_after.or_else(|| {
        filter
            .published_after
            .map(|at| batch_types::time::format_millis(&at))
    });
    request.is_extracted = request.is_extracted.or_else(|| {
        let name = match filter.has_analysis {
            Some(true) => "true",
            Some(false) => "false",
            None => "all",
        };
        Some(name.to_owned())
    });
    request.batch_size = request
        .batch_size
        .or(u32::try_from(previous.batch_size).ok());
    request.concurrency = request
        .concurrency
        .or(u32::try_from(previous.concurrency).ok());
    request.batch_processing_mode = request
        .batch_processing_mode
        .or(Some(previous.mode.clone()));
    request.system_prompt = request.system_prompt.or_else(|| text("systemPrompt"));
    // A limit carries over as what the previous batch left of it.
    let previous_limit = previous
        .settings
        .get("maxItems")
        .and_then(serde_json::Value::as_i64);
    request.max_items = request.max_items.or_else(|| {
        previous_limit.map(|limit| u64::try_from(limit - previous.processed).unwrap_or(0))
    });

    let mut ai = request.ai_config.take().unwrap_or_default();
    let same_provider = ai
        .provider
        .as_deref()
        .is_none_or(|name| name == previous.provider);
    if same_provider {
        ai.provider = Some(previous.provider.clone());
        ai.model = ai.model.or(Some(previous.model.clone()));
        ai.base_url = ai.base_url.or_else(|| text("baseURL"));
    }
    request.ai_config = Some(ai);
    request
}

/// Checks every field of a start request and collects all problems.
pub fn validate(request: &StartBatchRequest, engine: &Engine) -> Result<ValidStart, ApiError> {
    let mut errors = Vec::new();

    let batch_size = request.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
        errors.push(FieldError::new(
            "batchSize",
            format!("batchSize is {batch_size}; use a whole number from 1 to {MAX_BATCH_SIZE}"),
        ));
    }
    let concurrency = request.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
        errors.push(FieldError::new(
            "concurrency",
            format!("concurrency is {concurrency}; use a whole number from 1 to {MAX_CONCURRENCY}"),
        ));
    }
    let mode = match request.batch_processing_mode.as_deref() {
        None | Some("optimized") => ProcessingMode::Optimized,
        Some("traditional") => ProcessingMode::Traditional,
        Some(other) => {
            errors.push(FieldError::new(
                "batchProcessingMode",
                format!("unknown mode {other:?}; use \"optimized\" or \"traditional\""),
            ));
            ProcessingMode::Optimized
        }
    };
    let has_analysis = match request.is_extracted.as_deref() {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some("all") => None,
        Some(other) => {
            errors.push(FieldError::new(
                "isExtracted",
                format!("isExtracted is {other:?}; use \"all\", \"true\" or \"false\""),
            ));
            None
        }
    };
    let published_after = match request.published_after.as_deref() {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(error) => {
                errors.push(FieldError::new(
                    "publishedAfter",
                    format!("{text:?} is not an RFC 3339 time ({error}); write it like 2024-01-31T00:00:00Z"),
                ));
                None
            }
        },
    };
    check_list("listIds", request.list_ids.as_deref(), &mut errors);
    check_list("usernames", request.usernames.as_deref(), &mut errors);
    let max_items = match request.max_items {
        Some(0) => {
            errors.push(FieldError::new(
                "maxItems",
                "maxItems is 0; use at least 1, or leave it out for no limit",
            ));
            None
        }
        Some(count) => Some(i64::try_from(count).unwrap_or(i64::MAX)),
        None => None,
    };
    if let Some(prompt) = &request.system_prompt
        && (prompt.trim().is_empty() || prompt.chars().count() > MAX_SYSTEM_PROMPT_CHARS)
    {
        errors.push(FieldError::new(
            "systemPrompt",
            format!("systemPrompt must be non-empty text of at most {MAX_SYSTEM_PROMPT_CHARS} characters"),
        ));
    }
    let provider = provider_config(request, engine, &mut errors);

    match (errors.is_empty(), provider) {
        (true, Some(provider)) => Ok(ValidStart {
            filter: ItemFilter {
                list_ids: request.list_ids.clone(),
                usernames: request.usernames.clone(),
                published_after,
                has_analysis,
                exclude_batch_ids: Vec::new(),
            },
            max_items,
            batch_size,
            concurrency,
            mode,
            provider,
            previous_batch_id: request.previous_batch_id.clone(),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

fn check_list(field: &str, values: Option<&[String]>, errors: &mut Vec<FieldError>) {
    if let Some(values) = values {
        if values.is_empty() {
            errors.push(FieldError::new(
                field,
                format!("{field} is empty; leave it out to match every value"),
            ));
        } else if values.iter().any(|value| value.trim().is_empty()) {
            errors.push(FieldError::new(
                field,
                format!("{field} contains an empty string"),
            ));
        }
    }
}

fn provider_config(
    request: &StartBatchRequest,
    engine: &Engine,
    errors: &mut Vec<FieldError>,
) -> Option<ProviderConfig> {
    let ai = request.ai_config.clone().unwrap_or_default();
    let name = ai.provider.as_deref().unwrap_or("local");
    let Some(kind) = ProviderKind::parse(name) else {
        errors.push(FieldError::new(
            "aiConfig.provider",
            format!(
                "unknown provider {name:?}; use one of {}",
                ProviderKind::NAMES.join(", ")
            ),
        ));
        return None;
    };
    let base_url = match ai.base_url.as_deref() {
        None => None,
        Some(text) => {
            match url::Url::parse(text) {
                Ok(url) if !url.username().is_empty() || url.password().is_some() => {
                    errors.push(FieldError::new(
                        "aiConfig.baseURL",
                        "baseURL contains a user name or password; remove it and pass the key \
                         in aiConfig.apiKey",
                    ));
                    return None;
                }
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    Some(url)
                }
                _ => {
                    errors.push(FieldError::new(
                    "aiConfig.baseURL",
                    format!("{text:?} is not an http(s) URL; write it like https://api.openai.com/v1"),
                ));
                    return None;
                }
            }
        }
    };
    let api_key = ai
        .api_key
        .filter(|key| !key.trim().is_empty())
        .or_else(|| {
            kind.api_key_env_var()
                .and_then(|var| std::env::var(var).ok())
        })
        .filter(|key| !key.trim().is_empty())
        .map(ApiKey::new);
    if kind != ProviderKind::Local && api_key.is_none() {
        let variable = kind
            .api_key_env_var()
            .unwrap_or("the provider's key variable");
        errors.push(FieldError::new(
            "aiConfig.apiKey",
            format!(
                "provider {name} needs a key; pass aiConfig.apiKey or set {variable} on the server"
            ),
        ));
        return None;
    }
    let model = ai
        .model
        .filter(|model| !model.trim().is_empty())
        .unwrap_or_else(|| kind.default_model().to_owned());
    let settings = engine.settings();
    Some(ProviderConfig {
        kind,
        model,
        api_key,
        base_url,
        system_prompt: request.system_prompt.clone(),
        timeout: settings.provider_timeout,
        max_retries: settings.provider_retries,
        retry_base_delay: settings.provider_retry_delay,
    })
}

/// Builds the 409 that names the processing batch.
async fn conflict(engine: &Engine) -> ApiError {
    let current = engine
        .db(batches::processing_batches)
        .await
        .ok()
        .and_then(|rows| rows.into_iter().next())
        .map(|row| row.batch_id);
    ApiError::Conflict {
        message: pick(
            "已有AI批处理任务正在运行",
            "an AI batch is already processing",
        ),
        details: pick(
            "请等待当前任务完成，或先取消、清除它再启动新任务",
            "wait for it to finish, or cancel or clear it before starting another",
        ),
        data: Some(serde_json::json!({ "currentBatchId": current })),
    }
}

/// Starts a batch: fixes its item set, inserts it as processing (the
/// database's unique index makes this the global lock), and spawns its
/// workers on this instance.
pub async fn start_batch(engine: &Engine, valid: ValidStart) -> Result<StartBatchData, ApiError> {
    let provider = Provider::new(valid.provider.clone(), engine.inner.http.clone())
        .map_err(|error| ApiError::invalid("aiConfig", error.to_string()))?;
    let mut filter = valid.filter.clone();

    if let Some(previous) = valid.previous_batch_id.clone() {
        let found = engine
            .db(move |connection| batches::chain_ids(connection, &previous))
            .await?;
        if found.is_empty() {
            return Err(ApiError::NotFound {
                message: pick("未找到指定的前序批次", "the previous batch was not found"),
                data: Some(serde_json::json!({ "previousBatchId": valid.previous_batch_id })),
            });
        }
        filter.exclude_batch_ids = found;
    }

    let started_at = Utc::now();
    let new = NewBatch {
        batch_id: new_batch_id(started_at),
        filter: serde_json::to_value(&filter).unwrap_or_default(),
        settings: serde_json::json!({
            "systemPrompt": valid.provider.system_prompt,
            // Without the query string, which some gateways use for tokens.
            "baseURL": valid.provider.base_url.as_ref().map(|url| {
                let mut url = url.clone();
                url.set_query(None);
                url.to_string()
            }),
            "maxItems": valid.max_items,
        }),
        provider: valid.provider.kind.as_str().to_owned(),
        model: valid.provider.model.clone(),
        mode: valid.mode.as_str().to_owned(),
        batch_size: valid.batch_size as i32,
        concurrency: valid.concurrency as i32,
        max_item_id: 0,
        total: 0,
        owner_instance_id: engine.instance_id().to_owned(),
        heartbeat_at: started_at,
        started_at,
        previous_batch_id: valid.previous_batch_id.clone(),
    };
    let max_items = valid.max_items;
    let inserted = engine
        .db(move |connection| {
            use diesel::Connection;
            connection.transaction(|connection| {
                if !batches::processing_batches(connection)?.is_empty() {
                    return Ok(None);
                }
                let set = batches::select_item_set(connection, &filter, max_items)?;
                if set.total == 0 {
                    return Ok(Some(Err(())));
                }
                let row = NewBatch {
                    total: set.total,
                    max_item_id: set.max_item_id,
                    ..new
                };
                batches::insert_batch(connection, &row).map(|row| Some(Ok(row)))
            })
        })
        .await;

    let row = match inserted {
        Ok(Some(Ok(row))) => row,
        Ok(Some(Err(()))) => {
            return Err(ApiError::NotFound {
                message: pick("没有符合条件的待处理数据", "no items match the request"),
                data: Some(serde_json::json!({ "remainingItems": 0 })),
            });
        }
        Ok(None) => return Err(conflict(engine).await),
        Err(DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))) => {
            return Err(conflict(engine).await);
        }
        Err(error) => return Err(error.into()),
    };

    log::info!(
        "batch {}: started with {} items, provider {}, model {}, mode {}, chunk {}, concurrency {}",
        row.batch_id,
        row.total,
        row.provider,
        row.model,
        row.mode,
        row.batch_size,
        row.concurrency
    );
    super::runner::spawn(engine.clone(), row.clone(), provider, valid.mode);

    let total = row.total as u64;
    let size = u64::from(valid.batch_size);
    Ok(StartBatchData {
        batch_id: row.batch_id,
        status: batch_types::BatchStatus::Processing,
        total_items: total,
        batch_size: valid.batch_size,
        estimated_batches: total.div_ceil(size),
        mode: valid.mode,
        started_at: row.started_at,
        provider: row.provider,
        model: row.model,
        concurrency: valid.concurrency,
        previous_batch_id: row.previous_batch_id,
    })
}
