//! Where a run's objects live and where its helm calls go: the embedded
//! namespace, or a real cluster from a kubeconfig or a pod's service
//! account.
//!
//! The `stepbox` command, the benches, the tests and the worker all choose
//! a target the same way:
//!
//! ```text
//! ClusterChoice::Embedded               -> a fresh MemoryCluster (optionally seeded), helm served on loopback
//! ClusterChoice::Live(LiveConfig)       -> kube Config -> LiveCluster -> GET /version (preflight)
//!                                          helm: the run's gateway in front of the same client
//! ```
//!
//! A local run never touches a cluster by surprise: without a kubeconfig,
//! context or `--in-cluster` the target is the embedded namespace.
//!
//! ```no_run
//! use stepbox::target::{ClusterChoice, Target, TargetOptions};
//!
//! # async fn demo() -> Result<(), stepbox::target::TargetError> {
//! let target = Target::connect(&ClusterChoice::Embedded, &TargetOptions::default()).await?;
//! assert!(target.dry_run);
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stepbox_cluster::live::{LiveCluster, LiveConfig};
use stepbox_cluster::{ClusterBackend, MemoryCluster};

use crate::caps::helm::{HelmCluster, HelmConfig};

/// Where a run's objects live.
#[derive(Debug, Clone, Default)]
pub enum ClusterChoice {
    /// The embedded, in-memory namespace: a dry run by nature.
    #[default]
    Embedded,
    /// A real cluster.
    Live(LiveConfig),
}

/// How to set up a [`Target`].
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// Send every write with `dryRun=All` (live targets only).
    pub server_dry_run: bool,
    /// The time limit of each request to a live cluster; `None`: the
    /// backend's default.
    pub request_timeout: Option<Duration>,
    /// YAML or JSON objects to preload into the embedded namespace (into
    /// `seed_namespace` where they name none).
    pub seed: Option<String>,
    /// The namespace seeded objects without one go to.
    pub seed_namespace: String,
    /// The helm binary ([`HelmConfig::binary_from_env`] when `None`).
    pub helm_binary: Option<PathBuf>,
}

/// Why a target could not be set up. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The options do not fit together, or the configuration is unusable
    /// (a broken kubeconfig, a missing service account).
    #[error("{0}")]
    Invalid(String),
    /// The seed objects could not be loaded into the embedded namespace.
    #[error("{0}")]
    Seed(String),
    /// The cluster did not answer the pre-flight check: nothing ran.
    #[error("{0}")]
    Unreachable(String),
}

/// A run's backend, its helm configuration and what the target says about
/// the namespace.
pub struct Target {
    /// Where objects live.
    pub backend: Arc<dyn ClusterBackend>,
    /// The helm binary and the cluster behind helm's gateway; `None`: the
    /// step's helm calls fail with `unavailable`.
    pub helm: Option<HelmConfig>,
    /// True when nothing real changes: the embedded namespace, or a
    /// server-side dry run.
    pub dry_run: bool,
    /// The kubeconfig context's (or pod's) namespace, for live targets: the
    /// last choice after an explicit namespace and the policy's.
    pub default_namespace: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("backend", &self.backend.name())
            .field("helm", &self.helm)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl Target {
    /// Sets up the target: loads the configuration, builds the backend
    /// and, for a live cluster, checks that the API server answers.
    ///
    /// # Errors
    /// [`TargetError::Invalid`] for options that do not fit the choice or a
    /// configuration that cannot be used; [`TargetError::Unreachable`] when
    /// the API server does not answer (naming it).
    pub async fn connect(
        choice: &ClusterChoice,
        opts: &TargetOptions,
    ) -> Result<Self, TargetError> {
        let helm_binary = HelmConfig::binary_from_env(opts.helm_binary.clone());
        match choice {
            ClusterChoice::Embedded => {
                if opts.server_dry_run {
                    return Err(TargetError::Invalid(
                        "--dry-run=server needs a cluster: pass --kubeconfig, --context or --in-cluster \
                         (without them the run uses the embedded namespace and is a dry run already)"
                            .into(),
                    ));
                }
                let cluster = MemoryCluster::new();
                if let Some(seed) = &opts.seed {
                    cluster
                        .seed_yaml(seed, &opts.seed_namespace)
                        .map_err(|e| TargetError::Seed(e.to_string()))?;
                }
                Ok(Self::embedded(cluster, helm_binary))
            }
            ClusterChoice::Live(live) => {
                if opts.seed.is_some() {
                    return Err(TargetError::Invalid(
                        "--seed preloads the embedded namespace; it cannot be used against a cluster"
                            .into(),
                    ));
                }
                let config = live
                    .load()
                    .await
                    .map_err(|e| TargetError::Invalid(e.to_string()))?;
                let default_namespace = config.default_namespace.clone();
                let mut backend = LiveCluster::from_config(config, opts.server_dry_run)
                    .map_err(|e| TargetError::Invalid(e.to_string()))?;
                if let Some(t) = opts.request_timeout {
                    backend = backend.request_timeout(t);
                }
                // A server that is down fails the run now, naming the
                // server, rather than in the middle of the step.
                backend
                    .preflight()
                    .await
                    .map_err(|e| TargetError::Unreachable(e.to_string()))?;
                let mut target = Self::live(backend, opts.server_dry_run, helm_binary);
                target.default_namespace = Some(default_namespace);
                Ok(target)
            }
        }
    }

    /// A real cluster through `backend` (built with `server_dry_run` as
    /// its dry-run mode), with helm (`helm_binary`) talking to the run's
    /// gateway, which forwards what the policy admits with the backend's
    /// client and credentials. No pre-flight check: the caller's (a worker
    /// checks its cluster once, not per run).
    pub fn live(backend: LiveCluster, server_dry_run: bool, helm_binary: PathBuf) -> Self {
        let helm = Some(HelmConfig {
            binary: helm_binary,
            cluster: HelmCluster::Live(backend.client().clone()),
        });
        Self {
            backend: Arc::new(backend),
            helm,
            dry_run: server_dry_run,
            default_namespace: None,
        }
    }

    /// Any backend, without helm; `dry_run` says whether its writes are
    /// real (the embedded namespace and server-side dry runs are not).
    pub fn backend(backend: Arc<dyn ClusterBackend>, dry_run: bool) -> Self {
        Self {
            backend,
            helm: None,
            dry_run,
            default_namespace: None,
        }
    }

    /// The same target with helm as `helm` says (`None`: the step's helm
    /// calls fail with `unavailable`).
    pub fn with_helm(mut self, helm: Option<HelmConfig>) -> Self {
        self.helm = helm;
        self
    }

    /// The embedded namespace `cluster`, with helm (`helm_binary`) served
    /// it on loopback.
    pub fn embedded(cluster: MemoryCluster, helm_binary: PathBuf) -> Self {
        Self {
            helm: Some(HelmConfig::embedded(helm_binary, cluster.clone())),
            backend: Arc::new(cluster),
            dry_run: true,
            default_namespace: None,
        }
    }
}
