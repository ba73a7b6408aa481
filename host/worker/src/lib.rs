//! `stepbox worker`: the runtime that replaces script pods.
//!
//! A worker runs inside a cluster (or against a kubeconfig) for one
//! namespace. It watches [`StepRun`](crd::StepRun) objects, claims each with
//! one optimistic status write (a resourceVersion precondition, so replicas
//! need no leader and each run starts once), pulls the step by digest, runs
//! it in-process with the policy the StepRun names from the worker's own
//! configuration, heartbeats while it runs, and writes the outcome: status,
//! the full report and log in a ConfigMap the StepRun owns, and Events.
//!
//! ```text
//! watch StepRuns ──> Pending ──claim (PUT /status, resourceVersion)──> Running
//!                                   │ 409: another worker has it
//!                                   v
//!         pull (stepbox-oci) -> Runtime::run (policy, limits, cancel token)
//!         heartbeat every --heartbeat (JSON patch, tested on our incarnation)
//!                                   v
//!         report ConfigMap, status (Succeeded/Failed + reason), Events
//! ```
//!
//! A run whose worker stopped heartbeating for `--lost-after` (or whose pod
//! restarted) is `WorkerLost` and pending again while `spec.retries`
//! allows. `spec.cancel` and deletion stop the guest at its next epoch tick.
//! SIGTERM stops claiming and drains.
//!
//! The library is what `stepbox worker` runs: build a [`WorkerConfig`],
//! then [`Worker::run`].
#![deny(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

mod caches;
pub mod crd;
mod events;
mod execute;
mod health;
mod metrics;
mod policies;
mod recover;
mod report_store;
pub mod role;
mod run_task;
mod status;
mod worker;

pub use policies::PolicySet;
pub use report_store::{log_of, report_name, report_of};
pub use status::exit_code;
pub use worker::Worker;

/// The finalizer a worker holds on a StepRun while it runs it, so a
/// deletion waits for the guest to stop and the outcome to be written.
pub const FINALIZER: &str = "stepbox.dev/run";

/// The field manager of the worker's writes.
pub const FIELD_MANAGER: &str = "stepbox-worker";

/// Errors setting a worker up. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable: a policies directory that cannot be
    /// read, a policy file that does not parse, a default policy that does
    /// not exist.
    #[error("{0}")]
    Config(String),
    /// The runtime could not be created.
    #[error("cannot create the step runtime: {0:#}")]
    Runtime(anyhow::Error),
    /// The API server refused or failed a request the worker cannot do
    /// without.
    #[error("{what}: {source}")]
    Kube {
        /// What the worker was doing.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The health and metrics listener could not be served.
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How a worker runs.
#[derive(Debug)]
pub struct WorkerConfig {
    /// The namespace it serves (its StepRuns, and every run's namespace).
    pub namespace: String,
    /// Its identity in `status.worker.name`: the pod name.
    pub name: String,
    /// The policies StepRuns may name.
    pub policies: PolicySet,
    /// Runs at once; more wait for a slot (and stay claimable by others).
    pub max_concurrent_runs: usize,
    /// How often a running run's heartbeat is written.
    pub heartbeat: Duration,
    /// A Running StepRun whose heartbeat is older than this has lost its
    /// worker.
    pub lost_after: Duration,
    /// On shutdown, how long running runs may take before they are stopped
    /// and handed back (pending again, where retries allow).
    pub drain_timeout: Duration,
    /// Accept step and package references by tag (default: digests only).
    pub allow_tags: bool,
    /// Registries and the blob cache.
    pub distribution: stepbox_oci::Distribution,
    /// Verify each step's (and package's) cosign signature with this key.
    pub verify_key: Option<stepbox_oci::sign::PublicKey>,
    /// The compile cache directory (`None`: none).
    pub cache_dir: Option<PathBuf>,
    /// The helm binary for the steps' helm calls.
    pub helm_binary: PathBuf,
    /// The kubectl whose kustomize renders the steps' kustomizations.
    pub kubectl_binary: PathBuf,
    /// Keep the blob and compile caches together under this many bytes,
    /// least recently used removed first, after runs and every few
    /// minutes (`None`: unbounded).
    pub cache_max_bytes: Option<u64>,
}

/// The default of [`WorkerConfig::cache_max_bytes`]: 2 GiB.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 2 << 30;

impl WorkerConfig {
    /// The defaults of `stepbox worker` for `namespace` and `policies`:
    /// 16 runs at once, a 5 s heartbeat, lost after 30 s, a 60 s drain,
    /// digests only, the default blob cache, no compile cache, caches kept
    /// under [`DEFAULT_CACHE_MAX_BYTES`].
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, policies: PolicySet) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            policies,
            max_concurrent_runs: 16,
            heartbeat: Duration::from_secs(5),
            lost_after: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(60),
            allow_tags: false,
            distribution: stepbox_oci::Distribution::new(
                stepbox_oci::RegistryOptions::default(),
                stepbox_oci::BlobCache::new(stepbox_oci::BlobCache::default_dir()),
            ),
            verify_key: None,
            cache_dir: None,
            helm_binary: stepbox::caps::helm::HelmConfig::binary_from_env(None),
            kubectl_binary: stepbox::caps::kustomize::kubectl_from_env(None),
            cache_max_bytes: Some(DEFAULT_CACHE_MAX_BYTES),
        }
    }
}

/// The current time as Kubernetes writes it (RFC 3339, UTC, seconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The current time with milliseconds (heartbeats).
pub(crate) fn now_precise() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How long ago an RFC 3339 time was (`None` when it does not parse).
pub(crate) fn age(time: &str) -> Option<Duration> {
    let t = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    let elapsed = chrono::Utc::now().signed_duration_since(t);
    Some(elapsed.to_std().unwrap_or_default())
}
