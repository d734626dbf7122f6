//! Control actions on running batches: preview, clear, reset and cancel,
//! and the snapshots they report.

use batch_types::{
    ActiveProcesses, BatchInfo, BatchStatus, CancelBatchData, ClearPreview, ClearResult,
    ClearedTasks, CurrentStatus, Estimation, GlobalStatus, ProcessingMode, ProcessingRecords,
    ProcessingTask, Progress, ResetResult, StateSnapshot,
};
use chrono::{DateTime, Utc};

use super::{Engine, STOP_WAIT};
use crate::db::batches::{self, BatchRow};
use crate::db::control::{self, NewControlEvent};
use crate::errors::{ApiError, DbError};
use crate::i18n::pick;

/// The caller of a control action, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Fingerprint of the API key.
    pub key_fingerprint: String,
    /// The caller's address.
    pub client_addr: Option<String>,
}

/// The processing batches and the moment they were read.
struct State {
    processing: Vec<BatchRow>,
    at: DateTime<Utc>,
    lease_secs: i64,
}

impl State {
    fn live(&self) -> Vec<&BatchRow> {
        self.processing
            .iter()
            .filter(|batch| batches::is_live(batch, self.at, self.lease_secs))
            .collect()
    }

    fn snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            has_global_task: !self.processing.is_empty(),
            current_batch_id: self.processing.first().map(|batch| batch.batch_id.clone()),
            active_processes_count: self.live().len() as u64,
            processing_records_count: self.processing.len() as u64,
        }
    }

    fn ids(&self) -> Vec<String> {
        self.processing
            .iter()
            .map(|batch| batch.batch_id.clone())
            .collect()
    }
}

impl Engine {
    async fn read_state(&self) -> Result<State, DbError> {
        let processing = self.db(batches::processing_batches).await?;
        Ok(State {
            processing,
            at: Utc::now(),
            lease_secs: self.lease_secs(),
        })
    }

    /// The current global state.
    pub async fn snapshot(&self) -> Result<StateSnapshot, DbError> {
        Ok(self.read_state().await?.snapshot())
    }

    /// What a clear would do now; changes nothing.
    pub async fn preview_clear(&self) -> Result<ClearPreview, DbError> {
        Ok(preview_of(&self.read_state().await?))
    }

    /// Cancels every processing batch, releases its items, stops the local
    /// workers and measures the state afterwards.
    ///
    /// With `expected`, clears only when exactly those batches are
    /// processing; otherwise returns 409 with the current preview.
    pub async fn clear(
        &self,
        caller: Caller,
        expected: Option<Vec<String>>,
    ) -> Result<ClearResult, ApiError> {
        let clear_time = Utc::now();
        let (before, outcome) = self
            .cancel_processing(
                "clear",
                &caller,
                expected,
                pick("由清除操作取消", "cancelled by clear"),
            )
            .await?;

        let after = self.snapshot().await?;
        let result = ClearResult {
            clear_time,
            before_clear: before,
            after_clear: after,
            cleared_tasks: ClearedTasks {
                processing_records: outcome.changed.len() as u64,
                active_processes: outcome.live_stopped,
                database_updates: outcome.changed.len() as u64,
            },
            released_items: outcome.released as u64,
        };
        self.complete_event(
            outcome.event_id,
            &result.after_clear,
            &result.cleared_tasks,
            outcome.released,
        )
        .await;
        log::info!(
            "clear: {} batches cancelled {:?}, {} items released, {} live workers stopped",
            outcome.changed.len(),
            outcome.changed,
            outcome.released,
            outcome.live_stopped
        );
        Ok(result)
    }

    /// Resets the engine. Force cancels like a clear; gentle repairs only
    /// inconsistencies and leaves healthy batches running.
    pub async fn reset(&self, caller: Caller, force: bool) -> Result<ResetResult, ApiError> {
        let reset_at = Utc::now();
        if force {
            let (before, outcome) = self
                .cancel_processing(
                    "reset_force",
                    &caller,
                    None,
                    pick("由强制重置取消", "cancelled by a forced reset"),
                )
                .await?;
            let after = self.snapshot().await?;
            let counts = ClearedTasks {
                processing_records: outcome.changed.len() as u64,
                active_processes: outcome.live_stopped,
                database_updates: outcome.changed.len() as u64,
            };
            self.complete_event(outcome.event_id, &after, &counts, outcome.released)
                .await;
            log::info!(
                "forced reset: {} batches cancelled, {} items released",
                outcome.changed.len(),
                outcome.released
            );
            return Ok(ResetResult {
                previous_status: before,
                updated_records: outcome.changed.len() as u64,
                reset_at,
                mode: "force".to_owned(),
                released_items: outcome.released as u64,
                stopped_workers: outcome.local_stopped as u64,
                current_status: after,
            });
        }
        self.gentle_reset(caller, reset_at).await
    }

    async fn gentle_reset(
        &self,
        caller: Caller,
        reset_at: DateTime<Utc>,
    ) -> Result<ResetResult, ApiError> {
        let before = self.snapshot().await?;
        let (expired, expired_released) = self.fail_expired_batches().await;

        // The deferred constraint triggers prevent items processing without a
        // processing batch. This repairs rows written before the triggers
        // existed or edited by hand.
        let orphans = self
            .db(|connection| {
                use diesel::RunQueryDsl;
                diesel::sql_query(format!(
                    "UPDATE items SET analysis_state = {}, claim_batch_id = NULL, updated_at = now() \
                     WHERE claim_batch_id IS NOT NULL AND claim_batch_id NOT IN \
                       (SELECT batch_id FROM ai_batches WHERE status = 'processing')",
                    batches::RELEASED_STATE_SQL
                ))
                .execute(connection)
            })
            .await?;

        // Local workers whose batch is no longer processing.
        let local = self.manager().batch_ids();
        let ids = local.clone();
        let stale = self
            .db(move |connection| batches::stopped_among(connection, &ids))
            .await?;
        let stopped = self.manager().cancel_and_wait(&stale, STOP_WAIT).await;

        let after = self.snapshot().await?;
        let released = expired_released + orphans;
        let event = NewControlEvent {
            action: "reset_gentle".to_owned(),
            key_fingerprint: caller.key_fingerprint,
            client_addr: caller.client_addr,
            instance_id: self.instance_id().to_owned(),
            before_snapshot: serde_json::to_value(&before).unwrap_or_default(),
            counts: serde_json::json!({
                "expiredBatches": expired.len(),
                "releasedItems": released,
                "stoppedWorkers": stopped,
            }),
            batch_ids: expired.clone(),
        };
        let after_json = serde_json::to_value(&after).unwrap_or_default();
        let counts = event.counts.clone();
        self.db(move |connection| {
            let id = control::insert_event(connection, &event)?;
            control::complete_event(connection, id, &after_json, &counts)
        })
        .await?;
        log::info!(
            "gentle reset: {} expired batches failed, {released} items released, {stopped} stale workers stopped",
            expired.len()
        );
        Ok(ResetResult {
            previous_status: before,
            updated_records: expired.len() as u64,
            reset_at,
            mode: "gentle".to_owned(),
            released_items: released as u64,
            stopped_workers: stopped as u64,
            current_status: after,
        })
    }

    /// Cancels one batch. A finished batch is left as it is.
    pub async fn cancel_batch(
        &self,
        caller: Caller,
        batch_id: String,
    ) -> Result<CancelBatchData, ApiError> {
        let id = batch_id.clone();
        let Some(batch) = self
            .db(move |connection| batches::find_batch(connection, &id))
            .await?
        else {
            return Err(batch_not_found(&batch_id));
        };
        let before = self.snapshot().await?;
        let reason = pick("由取消操作取消", "cancelled by request");
        let ids = vec![batch_id.clone()];
        let event = NewControlEvent {
            action: "cancel".to_owned(),
            key_fingerprint: caller.key_fingerprint,
            client_addr: caller.client_addr,
            instance_id: self.instance_id().to_owned(),
            before_snapshot: serde_json::to_value(&before).unwrap_or_default(),
            counts: serde_json::json!({}),
            batch_ids: ids.clone(),
        };
        let (changed, released) = if batch.status == "processing" {
            let ids = ids.clone();
            self.db(move |connection| {
                use diesel::Connection;
                connection.transaction(|connection| {
                    crate::db::set_lock_timeout(connection)?;
                    let outcome = batches::finish_batches_in(connection, &ids, "cancelled", &reason)?;
                    let event = NewControlEvent {
                        counts: serde_json::json!({ "cancelled": outcome.0.len(), "releasedItems": outcome.1 }),
                        ..event
                    };
                    control::insert_event(connection, &event)?;
                    Ok(outcome)
                })
            })
            .await?
        } else {
            (Vec::new(), 0)
        };
        self.manager().cancel_and_wait(&ids, STOP_WAIT).await;
        let id = batch_id.clone();
        let status = self
            .db(move |connection| batches::find_batch(connection, &id))
            .await?
            .and_then(|row| BatchStatus::parse(&row.status))
            .unwrap_or(BatchStatus::Cancelled);
        if !changed.is_empty() {
            log::info!("batch {batch_id}: cancelled, {released} items released");
        }
        Ok(CancelBatchData {
            batch_id,
            status,
            cancelled: !changed.is_empty(),
            released_items: released as u64,
        })
    }

    /// The shared part of clear and forced reset.
    async fn cancel_processing(
        &self,
        action: &'static str,
        caller: &Caller,
        expected: Option<Vec<String>>,
        reason: String,
    ) -> Result<(StateSnapshot, CancelOutcome), ApiError> {
        let lease_secs = self.lease_secs();
        let instance_id = self.instance_id().to_owned();
        let caller = caller.clone();
        let transaction = self
            .db(move |connection| {
                use diesel::Connection;
                connection.transaction(|connection| {
                    crate::db::set_lock_timeout(connection)?;
                    // Lock the processing rows first, so the state read here
                    // is the state the update changes.
                    let processing: Vec<BatchRow> = {
                        use crate::db::schema::ai_batches;
                        use diesel::prelude::*;
                        ai_batches::table
                            .filter(ai_batches::status.eq("processing"))
                            .select(BatchRow::as_select())
                            .for_update()
                            .load(connection)?
                    };
                    let state = State { processing, at: Utc::now(), lease_secs };
                    if let Some(expected) = &expected {
                        let mut wanted = expected.clone();
                        wanted.sort();
                        wanted.dedup();
                        let mut actual = state.ids();
                        actual.sort();
                        if wanted != actual {
                            // The preview is built outside this blocking
                            // closure, where the request's language is known.
                            return Ok(Err(state));
                        }
                    }
                    let ids = state.ids();
                    let live = state.live().len() as u64;
                    let (changed, released) = batches::finish_batches_in(connection, &ids, "cancelled", &reason)?;
                    let before = state.snapshot();
                    let event = NewControlEvent {
                        action: action.to_owned(),
                        key_fingerprint: caller.key_fingerprint,
                        client_addr: caller.client_addr,
                        instance_id,
                        before_snapshot: serde_json::to_value(&before).unwrap_or_default(),
                        counts: serde_json::json!({ "cancelled": changed.len(), "releasedItems": released }),
                        batch_ids: changed.clone(),
                    };
                    let event_id = control::insert_event(connection, &event)?;
                    Ok(Ok((before, changed, released, live, event_id)))
                })
            })
            .await?;

        let (before, changed, released, live, event_id) = match transaction {
            Ok(done) => done,
            Err(state) => {
                let preview = preview_of(&state);
                return Err(ApiError::Conflict {
                    message: pick(
                        "当前运行的任务与 expectedBatchIds 不一致，未执行清除",
                        "the processing batches differ from expectedBatchIds; nothing was cleared",
                    ),
                    details: pick(
                        "请重新获取预览（GET），确认后用新的 expectedBatchIds 再次清除",
                        "read the preview again (GET) and retry with the batch ids it lists",
                    ),
                    data: serde_json::to_value(&preview).ok(),
                });
            }
        };

        // Stop this instance's workers for every cancelled batch, and any
        // other local worker, so no request starts after the response.
        let mut local: Vec<String> = self.manager().batch_ids();
        local.retain(|id| changed.contains(id));
        let local_stopped = self.manager().cancel_and_wait(&local, STOP_WAIT).await;
        Ok((
            before,
            CancelOutcome {
                changed,
                released,
                live_stopped: live.max(local_stopped as u64),
                local_stopped,
                event_id,
            },
        ))
    }

    async fn complete_event(
        &self,
        event_id: i64,
        after: &StateSnapshot,
        counts: &ClearedTasks,
        released: usize,
    ) {
        let after = serde_json::to_value(after).unwrap_or_default();
        let mut counts = serde_json::to_value(counts).unwrap_or_default();
        counts["releasedItems"] = serde_json::json!(released);
        if let Err(error) = self
            .db(move |connection| control::complete_event(connection, event_id, &after, &counts))
            .await
        {
            log::warn!("control event {event_id}: recording the after-snapshot failed: {error}");
        }
    }

    /// The global state with the processing batch's details.
    pub async fn global_status(&self) -> Result<GlobalStatus, DbError> {
        let state = self.read_state().await?;
        let pending = self.db(crate::db::items::count_pending).await?;
        let snapshot = state.snapshot();
        Ok(GlobalStatus {
            has_global_task: snapshot.has_global_task,
            current_batch_id: snapshot.current_batch_id,
            global_message: global_message(!state.processing.is_empty()),
            current_batch: state.processing.first().map(batch_info),
            active_processes_count: snapshot.active_processes_count,
            pending_items: pending as u64,
        })
    }
}

/// What a cancel of the processing batches did.
struct CancelOutcome {
    changed: Vec<String>,
    released: usize,
    live_stopped: u64,
    local_stopped: usize,
    event_id: i64,
}

fn global_message(running: bool) -> String {
    if running {
        pick("AI批处理任务正在运行中", "an AI batch is running")
    } else {
        pick("当前没有运行中的AI批处理任务", "no AI batch is running")
    }
}

/// Builds the 404 for an unknown batch id; a long id is cut to keep the response small.
pub fn batch_not_found(batch_id: &str) -> ApiError {
    let batch_id: String = batch_id.chars().take(64).collect();
    ApiError::NotFound {
        message: pick(
            format!("未找到批次 {batch_id}"),
            format!("batch {batch_id} was not found"),
        ),
        data: Some(serde_json::json!({ "batchId": batch_id })),
    }
}

fn preview_of(state: &State) -> ClearPreview {
    let live = state.live();
    let count = state.processing.len() as u64;
    ClearPreview {
        needs_clear: count > 0,
        current_status: CurrentStatus {
            has_global_task: count > 0,
            current_batch_id: state.processing.first().map(|batch| batch.batch_id.clone()),
            global_message: global_message(count > 0),
        },
        active_processes: ActiveProcesses {
            count: live.len() as u64,
            batch_ids: live.iter().map(|batch| batch.batch_id.clone()).collect(),
        },
        processing_records: ProcessingRecords {
            count,
            tasks: state
                .processing
                .iter()
                .map(|batch| task_of(batch, state.at))
                .collect(),
        },
        estimation: Estimation {
            tasks_to_cancel: count,
            memory_to_reset: live.len() as u64,
            global_state_to_reset: count > 0,
        },
        timestamp: state.at,
    }
}

fn task_of(batch: &BatchRow, at: DateTime<Utc>) -> ProcessingTask {
    let seconds = (at - batch.started_at).num_seconds().max(0);
    ProcessingTask {
        batch_id: batch.batch_id.clone(),
        started_at: batch.started_at,
        progress: format!("{}/{}", batch.processed, batch.total),
        ai_provider: batch.provider.clone(),
        ai_model: batch.model.clone(),
        duration: pick(format!("{seconds}秒"), format!("{seconds}s")),
    }
}

/// The preview's message: how many batches a clear would cancel.
pub fn preview_message(preview: &ClearPreview) -> String {
    let count = preview.processing_records.count;
    if count == 0 {
        pick(
            "当前没有需要清除的任务",
            "nothing to clear: no AI batch is processing",
        )
    } else {
        pick(
            format!("发现 {count} 个任务待清除"),
            format!("found {count} task(s) to clear"),
        )
    }
}

/// Converts a stored batch to its API form.
pub fn batch_info(batch: &BatchRow) -> BatchInfo {
    let status = BatchStatus::parse(&batch.status).unwrap_or(BatchStatus::Failed);
    let percentage = if batch.total > 0 {
        (batch.processed as f64 * 1000.0 / batch.total as f64).round() / 10.0
    } else {
        100.0
    };
    BatchInfo {
        batch_id: batch.batch_id.clone(),
        status,
        is_active: status == BatchStatus::Processing,
        progress: Progress {
            total: batch.total as u64,
            processed: batch.processed as u64,
            succeeded: batch.succeeded as u64,
            failed: batch.failed as u64,
            percentage,
        },
        error: batch.error.clone(),
        cancel_reason: batch.cancel_reason.clone(),
        provider: batch.provider.clone(),
        model: batch.model.clone(),
        mode: if batch.mode == "traditional" {
            ProcessingMode::Traditional
        } else {
            ProcessingMode::Optimized
        },
        batch_size: batch.batch_size as u32,
        concurrency: batch.concurrency as u32,
        started_at: batch.started_at,
        finished_at: batch.finished_at,
        previous_batch_id: batch.previous_batch_id.clone(),
        owner_instance_id: batch.owner_instance_id.clone(),
    }
}
