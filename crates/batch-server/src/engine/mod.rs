//! The batch engine: starting batches, working them through a provider, and
//! the control actions (cancel, clear, reset) on them.

pub mod control;
pub mod manager;
pub mod runner;
pub mod start;

use std::sync::Arc;
use std::time::Duration;

use diesel::PgConnection;
use diesel::QueryResult;

use crate::db::{self, DbPool};
use crate::errors::DbError;
pub use manager::ProcessManager;

/// How often an instance checks whether the batches it works were stopped
/// elsewhere (a clear sent to another instance). A quarter second keeps
/// that stop well inside one second for the price of one primary-key query.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long a clear, reset or shutdown waits for local workers to stop.
/// Workers abort in-flight requests at once, so this bounds only a slow
/// database commit.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// Timing and provider settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Interval between heartbeats.
    pub heartbeat: Duration,
    /// Time without a heartbeat after which a batch's lease expires.
    pub lease: Duration,
    /// Time one provider request may take.
    pub provider_timeout: Duration,
    /// Retries of a provider request.
    pub provider_retries: u32,
    /// First retry delay.
    pub provider_retry_delay: Duration,
}

/// Everything the handlers and workers share; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DbPool,
    instance_id: String,
    settings: EngineSettings,
    manager: ProcessManager,
    http: reqwest::Client,
    /// The runtime that runs batch workers. Handlers run on the HTTP
    /// server's per-thread runtimes, which stop with the server; workers
    /// must outlive a request and stop only through their tokens.
    runtime: tokio::runtime::Handle,
}

impl Engine {
    /// Creates the engine of this instance; call it inside the runtime that
    /// should run the batch workers.
    pub fn new(pool: DbPool, settings: EngineSettings) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            inner: Arc::new(Inner {
                pool,
                instance_id: new_instance_id(),
                settings,
                manager: ProcessManager::default(),
                http,
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// This instance's id, written as the owner of the batches it works.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The engine's settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// The registry of local workers.
    pub fn manager(&self) -> &ProcessManager {
        &self.inner.manager
    }

    /// Runs a diesel closure on a blocking thread with a pooled connection,
    /// so the async workers never wait on the database.
    pub async fn db<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut PgConnection) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.inner.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = pool.get()?;
            work(&mut connection).map_err(DbError::Query)
        })
        .await
        .map_err(|error| DbError::Unavailable(format!("database task failed: {error}")))?
    }

    /// Lease length in whole seconds.
    pub fn lease_secs(&self) -> i64 {
        self.inner.settings.lease.as_secs() as i64
    }

    /// Runs the instance's background loop until `shutdown` is cancelled:
    /// it stops local workers whose batch was stopped elsewhere, heartbeats
    /// the batches this instance works, and fails batches whose owner's
    /// lease expired.
    pub async fn run_background(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut poll = tokio::time::interval(STOP_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat = tokio::time::interval(self.inner.settings.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watchdog = tokio::time::interval(self.inner.settings.lease / 2);
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = poll.tick() => self.stop_workers_stopped_elsewhere().await,
                _ = heartbeat.tick() => self.heartbeat_local_batches().await,
                _ = watchdog.tick() => {
                    self.fail_expired_batches().await;
                }
            }
        }
    }

    async fn stop_workers_stopped_elsewhere(&self) {
        let local = self.manager().batch_ids();
        if local.is_empty() {
            return;
        }
        match self
            .db(move |connection| db::batches::stopped_among(connection, &local))
            .await
        {
            Ok(stopped) if !stopped.is_empty() => {
                for batch_id in &stopped {
                    log::info!("batch {batch_id}: stopped elsewhere; cancelling local workers");
                }
                self.manager().cancel(&stopped);
            }
            Ok(_) => {}
            Err(error) => log::warn!("checking local batches for a stop failed: {error}"),
        }
    }

    async fn heartbeat_local_batches(&self) {
        for batch_id in self.manager().batch_ids() {
            let instance = self.inner.instance_id.clone();
            let id = batch_id.clone();
            match self
                .db(move |connection| db::batches::heartbeat(connection, &id, &instance))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    log::info!(
                        "batch {batch_id}: no longer processing here; cancelling local workers"
                    );
                    self.manager().cancel(&[batch_id]);
                }
                Err(error) => log::warn!("batch {batch_id}: heartbeat failed: {error}"),
            }
        }
    }

    /// Fails every processing batch whose owner stopped heartbeating, and
    /// releases its items. Returns the batches changed and items released.
    ///
    /// Batches this instance works are skipped: their owner is alive, and a
    /// stale heartbeat only means the database was unreachable for a while.
    pub async fn fail_expired_batches(&self) -> (Vec<String>, usize) {
        let lease_secs = self.lease_secs();
        let local = self.manager().batch_ids();
        let result = self
            .db(move |connection| {
                let expired = db::batches::expired_batches(connection, lease_secs)?;
                let mut changed = Vec::new();
                let mut released = 0;
                for batch in expired.into_iter().filter(|batch| !local.contains(&batch.batch_id)) {
                    let reason = format!(
                        "the lease expired: owner instance {} sent no heartbeat for {lease_secs} s; \
                         its claimed items were released. Continue the batch to process the rest",
                        batch.owner_instance_id.as_deref().unwrap_or("unknown"),
                    );
                    let (ids, count) =
                        db::batches::finish_batches(connection, &[batch.batch_id], "failed", &reason)?;
                    changed.extend(ids);
                    released += count;
                }
                Ok((changed, released))
            })
            .await;
        match result {
            Ok((changed, released)) => {
                for batch_id in &changed {
                    log::warn!(
                        "batch {batch_id}: lease expired; marked failed, {released} items released"
                    );
                }
                (changed, released)
            }
            Err(error) => {
                log::warn!("lease watchdog failed: {error}");
                (Vec::new(), 0)
            }
        }
    }

    /// Stops every local worker and fails the batches this instance worked,
    /// so nothing is left claimed when the process exits.
    pub async fn shutdown(&self) {
        let local = self.manager().batch_ids();
        if local.is_empty() {
            return;
        }
        self.manager().cancel_all_and_wait(STOP_WAIT).await;
        let reason = format!(
            "the server instance {} shut down before the batch finished; continue the batch \
             to process the rest",
            self.inner.instance_id
        );
        let ids = local.clone();
        match self
            .db(move |connection| db::batches::finish_batches(connection, &ids, "failed", &reason))
            .await
        {
            Ok((changed, released)) => log::info!(
                "shutdown: {} batches marked failed, {released} items released",
                changed.len()
            ),
            Err(error) => log::error!(
                "shutdown: marking batches {local:?} failed did not work ({error}); the lease \
                 watchdog of another instance or the next start will release them"
            ),
        }
    }
}

fn new_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}-{}", std::process::id(), start::random_suffix())
}
