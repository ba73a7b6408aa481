//! # stepbox
//!
//! Runs deployment steps compiled to WASI components, with capability-limited
//! `kube`, `helm` and filesystem interfaces confined to one Kubernetes
//! namespace.
//! It replaces the "script pod" (a fresh pod with kubectl, helm and a shell
//! per task) with a component that starts in microseconds and can only do
//! what its imports and the run's policy allow.
//!
//! ## Shape
//! - [`runtime`]: the engine, compile cache, limits, one `Store` per run.
//! - [`caps`]: one module per capability (`kube`, `helm`, `run`, `fs`), each call
//!   going policy check → backend → audit.
//! - [`policy`]: what a run may do (RBAC-shaped rules) and its limits.
//! - [`cluster`]: where objects live: the embedded [`cluster::memory::MemoryCluster`].
//! - [`devcluster`]: the embedded namespace served as a Kubernetes API on
//!   localhost (`stepbox dev-cluster`), for kubectl, helm and kube-rs.
//! - [`plan`], [`report`], [`mask`]: what a run changed, what it said, and
//!   keeping secrets out of both.
//! - [`cli`]: the `stepbox` command, thin over the rest.
//!
//! ## Example
//! ```no_run
//! use std::sync::Arc;
//! use stepbox::{cluster::memory::MemoryCluster, policy::Policy, runtime::{Runtime, RuntimeConfig, RunOptions}};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let step = runtime.load_file("deploy_manifests.wasm".as_ref())?;
//! let policy = Policy::default();
//! let report = runtime
//!     .run(&step, RunOptions {
//!         name: None,
//!         namespace: "dev".into(),
//!         inputs: [("image".to_string(), "nginx:1.27".to_string())].into(),
//!         secrets: Default::default(),
//!         packages: Some("manifests/".into()),
//!         workspace: None,
//!         limits: policy.limits,
//!         policy: Arc::new(policy),
//!         backend: Arc::new(MemoryCluster::new()),
//!         dry_run: true,
//!         log_sink: None,
//!         helm: None,
//!     })
//!     .await;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bindings;
pub mod caps;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod devcluster;
pub mod manifest;
pub mod mask;
pub mod plan;
pub mod policy;
pub mod report;
pub mod runtime;
