//! The worker's Prometheus metrics (`/metrics`): runs by result, run
//! durations, the wait from creation to claim, claims lost to other
//! workers, runs recovered from lost workers, runs in flight, and cache
//! entries evicted (and bytes freed) to keep the disk caches under
//! `--cache-max-size`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A run's result label: the `Succeeded` condition's reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `Succeeded`, `StepFailed`, `TimedOut`, ...
    pub result: String,
}

/// Which disk cache: `blob` (pulled artifacts) or `compile`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    /// `blob` or `compile`.
    pub cache: String,
}

/// The metrics of one worker.
pub struct Metrics {
    registry: Registry,
    /// Runs finished, by result.
    pub runs: Family<ResultLabel, Counter>,
    /// Seconds from claim to outcome.
    pub duration: Histogram,
    /// Seconds from the StepRun's creation to its claim.
    pub queue_wait: Histogram,
    /// Claims another worker won (409 on the claim write).
    pub claims_lost: Counter,
    /// Runs of lost workers marked WorkerLost by this one.
    pub recoveries: Counter,
    /// Runs in flight now.
    pub running: Gauge,
    /// Cache entries removed to stay under the size budget, by cache.
    pub cache_evictions: Family<CacheLabel, Counter>,
    /// Bytes those removals freed, by cache.
    pub cache_freed_bytes: Family<CacheLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("stepbox_worker");
        let runs = Family::<ResultLabel, Counter>::default();
        // 1 ms to ~9 minutes.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 20));
        let queue_wait = Histogram::new(exponential_buckets(0.001, 2.0, 20));
        let claims_lost = Counter::default();
        let recoveries = Counter::default();
        let running = Gauge::default();
        registry.register(
            "runs",
            "Runs finished, by result (the Succeeded condition's reason)",
            runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Seconds from claim to outcome",
            duration.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Seconds from a StepRun's creation to its claim",
            queue_wait.clone(),
        );
        registry.register(
            "claims_lost",
            "Claims another worker won",
            claims_lost.clone(),
        );
        registry.register(
            "recoveries",
            "Runs of lost workers marked WorkerLost by this worker",
            recoveries.clone(),
        );
        registry.register("running", "Runs in flight", running.clone());
        let cache_evictions = Family::<CacheLabel, Counter>::default();
        let cache_freed_bytes = Family::<CacheLabel, Counter>::default();
        registry.register(
            "cache_evictions",
            "Disk cache entries removed to stay under --cache-max-size, by cache",
            cache_evictions.clone(),
        );
        registry.register(
            "cache_freed_bytes",
            "Bytes freed by removing disk cache entries, by cache",
            cache_freed_bytes.clone(),
        );
        Self {
            registry,
            runs,
            duration,
            queue_wait,
            claims_lost,
            recoveries,
            running,
            cache_evictions,
            cache_freed_bytes,
        }
    }
}

impl Metrics {
    /// A finished run with `result`.
    pub fn finished(&self, result: &str, seconds: f64) {
        self.runs
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
        self.duration.observe(seconds);
    }

    /// `entries` of `cache` removed, freeing `bytes`.
    pub fn evicted(&self, cache: &str, entries: usize, bytes: u64) {
        let label = CacheLabel {
            cache: cache.to_string(),
        };
        self.cache_evictions
            .get_or_create(&label)
            .inc_by(entries as u64);
        self.cache_freed_bytes.get_or_create(&label).inc_by(bytes);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric() {
        let m = Metrics::default();
        m.finished("Succeeded", 0.004);
        m.claims_lost.inc();
        let text = m.encode();
        for name in [
            "stepbox_worker_runs_total{result=\"Succeeded\"} 1",
            "stepbox_worker_run_duration_seconds_count 1",
            "stepbox_worker_queue_wait_seconds",
            "stepbox_worker_claims_lost_total 1",
            "stepbox_worker_recoveries_total 0",
            "stepbox_worker_running 0",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }
}
