//! Prometheus metrics of this process.

use std::sync::LazyLock;

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The process's metrics; counters only grow for the life of the process.
pub struct Metrics {
    registry: Registry,
    /// Batches started by this instance.
    pub batches_started: IntCounter,
    /// Item results written, by outcome (`succeeded`, `failed`).
    pub item_results: IntCounterVec,
    /// Control actions served, by action (`clear`, `reset_force`, ...).
    pub control_actions: IntCounterVec,
    /// Batches this instance works right now.
    pub local_workers: IntGauge,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("batch".into()), None)?;
        let batches_started =
            IntCounter::new("batches_started_total", "Batches started by this instance")?;
        let item_results = IntCounterVec::new(
            Opts::new("item_results_total", "Item results written, by outcome"),
            &["outcome"],
        )?;
        let control_actions = IntCounterVec::new(
            Opts::new(
                "control_actions_total",
                "Clears, resets and cancels served, by action",
            ),
            &["action"],
        )?;
        let local_workers = IntGauge::new("local_workers", "Batches this instance works")?;
        registry.register(Box::new(batches_started.clone()))?;
        registry.register(Box::new(item_results.clone()))?;
        registry.register(Box::new(control_actions.clone()))?;
        registry.register(Box::new(local_workers.clone()))?;
        Ok(Self {
            registry,
            batches_started,
            item_results,
            control_actions,
            local_workers,
        })
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            log::warn!("encoding metrics failed: {error}");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| Metrics::new().expect("metric names are valid and registered once"));
