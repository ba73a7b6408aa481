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
//! This crate is the library a host embeds (the `stepbox` command, the
//! benches and the tests all use it):
//! - [`Runtime`] ([`engine`]): the engine, compile cache, limits, one
//!   `Store` per run.
//! - [`caps`]: one module per capability (`kube`, `helm`, `run`, `fs`), each
//!   call going policy check → backend → audit.
//! - [`policy`]: what a run may do (RBAC-shaped rules) and its limits.
//! - [`needs`]: what a step declares it needs; a run gets the policy
//!   intersected with it.
//! - [`target`]: where a run's objects live (the embedded namespace or a
//!   cluster from a kubeconfig or the pod's service account) and where its
//!   helm calls go.
//! - [`report`], [`mask`]: what a run did and said, and keeping secrets out
//!   of both.
//!
//! The layers below are crates of their own, re-exported here:
//! [`k8s`] (pure object machinery: kinds, selectors, server-side apply,
//! manifests, plans), [`cluster`] (the `ClusterBackend` trait, the embedded
//! `MemoryCluster` and the live backend) and [`apiserver`] (a Kubernetes API
//! front end over a backend: `stepbox dev-cluster`).
//!
//! ## Example
//! ```no_run
//! use stepbox::cluster::MemoryCluster;
//! use stepbox::target::Target;
//! use stepbox::{RunOptions, Runtime, RuntimeConfig};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let step = runtime.load_file("deploy_manifests.wasm".as_ref())?;
//! let target = Target::embedded(MemoryCluster::new(), "helm".into());
//! let options = RunOptions::new("dev", target)
//!     .input("image", "nginx:1.27")
//!     .packages("manifests/");
//! let report = runtime.run(&step, options).await;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admission;
mod bindings;
mod cache;
pub mod caps;
pub mod check;
pub mod engine;
pub mod inspect;
mod limits;
pub mod mask;
pub mod needs;
pub mod policy;
pub mod report;
mod run;
mod state;
pub mod target;

pub use engine::{Allocator, LoadError, LoadedStep, Runtime, RuntimeConfig};
pub use run::RunOptions;
pub use stepbox_apiserver as apiserver;
pub use stepbox_cluster as cluster;
pub use stepbox_k8s as k8s;
pub use stepbox_k8s::{manifest, plan};
