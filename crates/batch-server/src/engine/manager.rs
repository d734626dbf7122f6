//! The in-memory registry of the batches this instance works.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One batch this instance works.
#[derive(Debug)]
struct Entry {
    token: CancellationToken,
    stopped: watch::Receiver<bool>,
}

/// The handle a runner keeps: its token, and the sender it flips when it
/// has stopped.
#[derive(Debug)]
pub struct RunnerHandle {
    /// Cancelled when the batch must stop.
    pub token: CancellationToken,
    stopped: watch::Sender<bool>,
}

impl RunnerHandle {
    /// Tells waiters the runner has stopped.
    pub fn mark_stopped(&self) {
        let _ = self.stopped.send(true);
    }
}

/// One entry per batch this instance works, each with a cancellation token.
///
/// Cancelling a token aborts the batch's in-flight provider requests, since
/// every request runs inside a `select!` with it.
#[derive(Debug, Default)]
pub struct ProcessManager {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ProcessManager {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock leaves the map itself intact.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a batch and returns the runner's handle.
    pub fn register(&self, batch_id: &str) -> RunnerHandle {
        let token = CancellationToken::new();
        let (sender, receiver) = watch::channel(false);
        self.entries().insert(
            batch_id.to_owned(),
            Entry {
                token: token.clone(),
                stopped: receiver,
            },
        );
        RunnerHandle {
            token,
            stopped: sender,
        }
    }

    /// Removes a batch whose runner has stopped.
    pub fn remove(&self, batch_id: &str) {
        self.entries().remove(batch_id);
    }

    /// Ids of the batches this instance works.
    pub fn batch_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.entries().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Number of batches this instance works.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether this instance works no batch.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// Cancels the named batches' runners and waits up to `timeout` for
    /// them to stop. Returns how many of them were running here.
    pub async fn cancel_and_wait(&self, batch_ids: &[String], timeout: Duration) -> usize {
        let receivers: Vec<(String, watch::Receiver<bool>)> = {
            let entries = self.entries();
            batch_ids
                .iter()
                .filter_map(|id| entries.get(id).map(|entry| (id, entry)))
                .map(|(id, entry)| {
                    entry.token.cancel();
                    (id.clone(), entry.stopped.clone())
                })
                .collect()
        };
        let count = receivers.len();
        let waits = receivers.into_iter().map(|(id, mut stopped)| async move {
            if tokio::time::timeout(timeout, stopped.wait_for(|done| *done))
                .await
                .is_err()
            {
                log::warn!("batch {id}: workers did not stop within {timeout:?} after cancel");
            }
        });
        futures_util::future::join_all(waits).await;
        count
    }

    /// Cancels the named batches' runners without waiting for them.
    pub fn cancel(&self, batch_ids: &[String]) {
        let entries = self.entries();
        for id in batch_ids {
            if let Some(entry) = entries.get(id) {
                entry.token.cancel();
            }
        }
    }

    /// Cancels and waits for every runner of this instance.
    pub async fn cancel_all_and_wait(&self, timeout: Duration) -> usize {
        let ids = self.batch_ids();
        self.cancel_and_wait(&ids, timeout).await
    }
}
