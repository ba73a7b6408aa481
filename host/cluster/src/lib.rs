//! Cluster backends: where a step's kube calls end up.
//!
//! A run never talks to Kubernetes directly. The kube capability checks each
//! call against the run's policy, then hands it to a
//! [`ClusterBackend`]. Two backends exist:
//!
//! - [`MemoryCluster`] (this module): an in-process object store with API
//!   server semantics (resourceVersion, generation, server-side apply with field
//!   ownership, JSON merge patch, synthesized workload status). It is the
//!   embedded default for dry-runs and tests.
//! - [`live::LiveCluster`]: a real cluster over `kube::Client` (a kubeconfig
//!   or the pod's service account), implementing the same trait.
//!
//! The object machinery both backends share (kinds, names, selectors,
//! server-side apply, patches, readiness) is pure and lives below, in
//! [`stepbox_k8s`]; this crate adds the stores and the I/O. It knows
//! nothing of wasmtime, policies or runs: confinement to a namespace is the
//! caller's job.
//!
//! # Examples
//!
//! ```
//! use stepbox_cluster::{ClusterBackend, MemoryCluster};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cluster = MemoryCluster::new();
//! let cm = serde_json::json!({
//!     "apiVersion": "v1",
//!     "kind": "ConfigMap",
//!     "metadata": {"name": "settings"},
//!     "data": {"mode": "fast"},
//! });
//! let res = cluster.resource("v1", "ConfigMap").await?;
//! let change = cluster.apply(&res, "dev", &cm, "stepbox", false).await?;
//! assert!(change.before.is_none());
//! assert_eq!(change.after["metadata"]["resourceVersion"], "1");
//! # Ok::<(), stepbox_cluster::ClusterError>(())
//! # }).unwrap();
//! ```

#![deny(missing_docs)]

pub mod live;
pub mod memory;
pub mod notes;

use std::time::Duration;

use serde_json::Value;

pub use memory::MemoryCluster;
pub use stepbox_k8s::{Error as ClusterError, LabelSelector, ObjectRef, ResourceInfo, Result};

/// Before and after of one write. `before` is `None` when the write created
/// the object. After a no-op write both sides are equal.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The object before the write; `None` when it was created.
    pub before: Option<Value>,
    /// The object after the write, as stored (with status).
    pub after: Value,
}

/// What `kubectl logs` asks of one container's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The container; `None` for a pod's only container.
    pub container: Option<String>,
    /// Only the last lines.
    pub tail_lines: Option<u32>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<u32>,
    /// The previous instance of the container (after a restart).
    pub previous: bool,
}

/// One container's log, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLog {
    /// The lines.
    pub text: String,
    /// What the caller should know about where the text came from (the
    /// embedded namespace runs no containers, so it has no real logs).
    pub note: Option<String>,
}

/// Largest log text a backend returns; longer logs keep their last bytes.
pub const MAX_LOG_BYTES: usize = 1024 * 1024;

/// How often waits look again on a backend that cannot watch.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How a [`ClusterBackend::wait_for_change`] ended. Whatever it says, the
/// caller reads the object again; only the audit differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutcome {
    /// A watch event arrived: the object changed.
    Event,
    /// The backend does not watch; it waited [`POLL_INTERVAL`].
    Polled,
    /// The watch could not start, or was cut before any change arrived;
    /// the text says how (for the audit).
    Interrupted(String),
    /// The time given passed without a change.
    Elapsed,
}

/// A place where Kubernetes objects live: the in-memory namespace or a real
/// cluster.
///
/// Every method takes the namespace explicitly; confinement to the run's
/// namespace is the caller's job (the policy check), not the backend's. For
/// cluster-scoped kinds the namespace argument is ignored.
#[async_trait::async_trait]
pub trait ClusterBackend: Send + Sync {
    /// "memory" / "live" etc, for reports.
    fn name(&self) -> &str;

    /// True when writes are only simulated (server-side dry-run): nothing
    /// is persisted, so waiting for an applied object to roll out would
    /// never finish. The embedded namespace is not dry-run in this sense:
    /// its writes are real, within it.
    fn dry_run(&self) -> bool {
        false
    }

    /// The URL of the API server behind this backend
    /// (`https://10.96.0.1:443`), when there is one: a run's outbound HTTP
    /// must not reach it unless its policy names it.
    fn server_url(&self) -> Option<&str> {
        None
    }

    /// Resolves a kind (discovery). `Err(Invalid)` for an unknown apiVersion
    /// format; unknown kinds of a well-formed apiVersion resolve by the
    /// backend's best knowledge (see [`stepbox_k8s::resources::lookup`]).
    async fn resource(&self, api_version: &str, kind: &str) -> Result<ResourceInfo>;

    /// Resolves a resource path (`group`, `version`, `plural`, as an API
    /// request names it) to its kind and scope, as discovery does.
    /// `Err(NotFound)` when the server does not serve it.
    async fn resource_by_plural(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<ResourceInfo>;

    /// Reads one object; `Ok(None)` when it does not exist.
    async fn get(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Option<Value>>;

    /// Lists the objects of a kind in a namespace, optionally filtered by a
    /// label selector, sorted by name.
    async fn list(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Value>>;

    /// Server-side apply of one object (already validated, namespace set) as
    /// `field_manager`. `force` takes over fields owned by other managers
    /// instead of failing with [`ClusterError::Conflict`].
    async fn apply(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        object: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Change>;

    /// JSON merge patch (RFC 7386) of an existing object
    /// ([`ClusterError::NotFound`] when absent).
    async fn merge_patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Change>;

    /// Deletes one object and returns it. `Ok(None)` when it did not exist.
    /// As with an API server, an object with finalizers may be kept,
    /// marked with `deletionTimestamp` (then returned as marked), until
    /// whoever owns the finalizers removes them.
    async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>>;

    /// The log of a container of pod `pod` (`GET pods/NAME/log`).
    /// `Err(NotFound)` for a pod (or container) that does not exist. The
    /// default says the backend serves no logs.
    async fn logs(&self, namespace: &str, pod: &str, options: &LogOptions) -> Result<PodLog> {
        let _ = (namespace, options);
        Err(ClusterError::Unavailable(format!(
            "the {} backend serves no pod logs (pod {pod:?})",
            self.name()
        )))
    }

    /// Waits (at most `timeout`) until the object may have changed since
    /// `resource_version` (`None`: it did not exist when last read). The
    /// caller then reads it again. The default polls: it sleeps
    /// [`POLL_INTERVAL`] and returns [`WatchOutcome::Polled`].
    async fn wait_for_change(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
        timeout: Duration,
    ) -> Result<WatchOutcome> {
        let _ = (res, namespace, name, resource_version);
        tokio::time::sleep(POLL_INTERVAL.min(timeout)).await;
        Ok(WatchOutcome::Polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_object_safe() {
        let cluster: std::sync::Arc<dyn ClusterBackend> = std::sync::Arc::new(MemoryCluster::new());
        assert_eq!(cluster.name(), "memory");
    }
}
