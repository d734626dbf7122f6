//! The workers of one batch on this instance.
//!
//! A runner starts `concurrency` workers. Each claims a chunk, sends it to
//! the provider and writes the results, until nothing is left to claim or
//! the batch's token is cancelled. Cancelling drops the in-flight provider
//! request (its connection is closed), and the results transaction checks
//! the batch is still processing, so a stopped batch gets no new results.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use batch_types::ProcessingMode;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::db::batches::{self, BatchRow, ClaimedItem, StoredOutcome, WriteOutcome};
use crate::metrics::METRICS;
use crate::providers::{ItemOutcome, Provider, ProviderError, ProviderItem};

/// Pause after a failed database call before a worker tries again.
const DB_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What the workers of one batch share.
struct BatchWork {
    engine: Engine,
    batch_id: String,
    provider: Provider,
    mode: ProcessingMode,
    chunk_size: i64,
    token: CancellationToken,
    /// Set once a sweep below the claim cursor found no more skipped items.
    caught_up: AtomicBool,
}

/// Spawns the workers of a freshly started batch.
pub fn spawn(engine: Engine, batch: BatchRow, provider: Provider, mode: ProcessingMode) {
    let handle = engine.manager().register(&batch.batch_id);
    let work = Arc::new(BatchWork {
        engine: engine.clone(),
        batch_id: batch.batch_id.clone(),
        provider,
        mode,
        chunk_size: i64::from(batch.batch_size),
        token: handle.token.clone(),
        caught_up: AtomicBool::new(false),
    });
    let concurrency = batch.concurrency.max(1) as usize;
    engine.inner.runtime.clone().spawn(async move {
        let workers = (0..concurrency).map(|_| work_loop(Arc::clone(&work)));
        futures_util::future::join_all(workers).await;
        finish(&work).await;
        handle.mark_stopped();
        engine.manager().remove(&work.batch_id);
    });
}

/// Completes the batch when the workers ran out of items.
async fn finish(work: &BatchWork) {
    let batch_id = work.batch_id.clone();
    if work.token.is_cancelled() {
        log::info!("batch {batch_id}: local workers stopped");
        return;
    }
    let id = batch_id.clone();
    match work
        .engine
        .db(move |connection| batches::complete_if_done(connection, &id))
        .await
    {
        Ok(true) => {
            let id = batch_id.clone();
            let counts = work
                .engine
                .db(move |connection| batches::find_batch(connection, &id))
                .await;
            if let Ok(Some(row)) = counts {
                log::info!(
                    "batch {batch_id}: completed, {} of {} processed, {} succeeded, {} failed",
                    row.processed,
                    row.total,
                    row.succeeded,
                    row.failed
                );
            }
        }
        Ok(false) => {
            log::info!("batch {batch_id}: workers stopped; the batch is not processing any more")
        }
        Err(error) => log::error!("batch {batch_id}: marking completed failed: {error}"),
    }
}

async fn work_loop(work: Arc<BatchWork>) {
    while !work.token.is_cancelled() {
        let chunk = match claim(&work).await {
            Ok(chunk) => chunk,
            Err(error) => {
                log::warn!(
                    "batch {}: claiming a chunk failed: {error}; retrying",
                    work.batch_id
                );
                tokio::select! {
                    _ = work.token.cancelled() => break,
                    _ = tokio::time::sleep(DB_RETRY_PAUSE) => continue,
                }
            }
        };
        if chunk.is_empty() {
            break;
        }
        let ids: Vec<i64> = chunk.iter().map(|item| item.id).collect();

        // The select is what makes cancel abort the request in flight: the
        // losing branch's future, and with it the HTTP request, is dropped.
        let outcome = tokio::select! {
            _ = work.token.cancelled() => None,
            outcome = analyze(&work, chunk) => Some(outcome),
        };
        let Some(outcome) = outcome else {
            release(&work, ids).await;
            break;
        };
        let outcomes = match outcome {
            Ok(outcomes) => outcomes,
            Err(ProviderError::Fatal(reason)) => {
                fail_batch(&work, reason).await;
                break;
            }
            Err(ProviderError::Failed(reason)) => ids
                .iter()
                .map(|id| StoredOutcome {
                    item_id: *id,
                    analysis: None,
                    error: Some(reason.clone()),
                })
                .collect(),
        };
        if !write(&work, outcomes).await {
            break;
        }
    }
}

async fn claim(work: &BatchWork) -> Result<Vec<ClaimedItem>, crate::errors::DbError> {
    let id = work.batch_id.clone();
    let size = work.chunk_size;
    let chunk = work
        .engine
        .db(move |connection| batches::claim_chunk(connection, &id, size, false))
        .await?;
    if !chunk.is_empty() || work.caught_up.load(Ordering::SeqCst) {
        return Ok(chunk);
    }

    // The cursor reached the end: sweep below it for items a claim skipped
    // because another transaction held them, until a sweep comes up short.
    let id = work.batch_id.clone();
    let chunk = work
        .engine
        .db(move |connection| batches::claim_chunk(connection, &id, size, true))
        .await?;
    if (chunk.len() as i64) < size {
        work.caught_up.store(true, Ordering::SeqCst);
    }
    Ok(chunk)
}

async fn analyze(
    work: &BatchWork,
    chunk: Vec<ClaimedItem>,
) -> Result<Vec<StoredOutcome>, ProviderError> {
    let items: Vec<ProviderItem> = chunk
        .into_iter()
        .map(|item| ProviderItem {
            id: item.id,
            content: item.content,
        })
        .collect();
    let pairs = match work.mode {
        ProcessingMode::Optimized => work.provider.analyze_chunk(&items).await?,
        ProcessingMode::Traditional => {
            let mut pairs = Vec::with_capacity(items.len());
            for item in &items {
                let outcome = match work.provider.analyze_item(item).await {
                    Ok(outcome) => outcome,
                    Err(ProviderError::Failed(reason)) => ItemOutcome::Failed(reason),
                    Err(fatal) => return Err(fatal),
                };
                pairs.push((item.id, outcome));
            }
            pairs
        }
    };
    Ok(pairs
        .into_iter()
        .map(|(item_id, outcome)| match outcome {
            ItemOutcome::Analyzed(analysis) => StoredOutcome {
                item_id,
                analysis: serde_json::to_value(analysis).ok(),
                error: None,
            },
            ItemOutcome::Failed(reason) => StoredOutcome {
                item_id,
                analysis: None,
                error: Some(reason),
            },
        })
        .collect())
}

/// Writes a chunk's results; returns whether the batch goes on.
async fn write(work: &BatchWork, outcomes: Vec<StoredOutcome>) -> bool {
    let id = work.batch_id.clone();
    let provider = work.provider.config().kind.as_str().to_owned();
    let model = work.provider.config().model.clone();
    let count = outcomes.len();
    let written = work
        .engine
        .db(move |connection| batches::write_results(connection, &id, &provider, &model, &outcomes))
        .await;
    match written {
        Ok(WriteOutcome::Written { succeeded, failed }) => {
            METRICS
                .item_results
                .with_label_values(&["succeeded"])
                .inc_by(succeeded as u64);
            METRICS
                .item_results
                .with_label_values(&["failed"])
                .inc_by(failed as u64);
            log::debug!(
                "batch {}: wrote {succeeded} analyses and {failed} failures",
                work.batch_id
            );
            true
        }
        Ok(WriteOutcome::BatchNotProcessing) => {
            log::info!(
                "batch {}: discarded {count} results because the batch is no longer processing",
                work.batch_id
            );
            work.token.cancel();
            false
        }
        Err(error) => {
            // The items stay claimed; the lease watchdog or a clear releases them.
            log::error!(
                "batch {}: writing {count} results failed: {error}",
                work.batch_id
            );
            work.token.cancel();
            fail_batch(work, format!("writing results failed: {error}")).await;
            false
        }
    }
}

async fn release(work: &BatchWork, ids: Vec<i64>) {
    let id = work.batch_id.clone();
    let count = ids.len();
    match work
        .engine
        .db(move |connection| batches::release_chunk(connection, &id, &ids))
        .await
    {
        Ok(released) => log::debug!(
            "batch {}: released {released} of {count} claimed items",
            work.batch_id
        ),
        Err(error) => log::warn!(
            "batch {}: releasing {count} items failed: {error}",
            work.batch_id
        ),
    }
}

async fn fail_batch(work: &BatchWork, reason: String) {
    work.token.cancel();
    let id = work.batch_id.clone();
    let stored = reason.clone();
    let result = work
        .engine
        .db(move |connection| batches::finish_batches(connection, &[id], "failed", &stored))
        .await;
    match result {
        Ok((changed, released)) if !changed.is_empty() => {
            log::warn!(
                "batch {}: failed ({reason}); {released} items released",
                work.batch_id
            );
        }
        Ok(_) => {}
        Err(error) => log::error!(
            "batch {}: marking failed did not work: {error}",
            work.batch_id
        ),
    }
}
