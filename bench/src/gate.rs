//! [`GatedCluster`]: the embedded namespace with workloads that stay "not
//! ready" until a gate opens, so many runs can be held mid-run, each parked
//! in `kube.wait`, to measure what they cost together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use stepbox::cluster::{Change, ClusterBackend, LabelSelector, ResourceInfo, Result};
use tokio::sync::watch;

/// Kinds whose reads wait for the gate once the object exists.
const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job"];

/// Wraps a backend: a `get` of an existing workload waits until
/// [`Gate::open`], and counts itself as waiting meanwhile. Everything else
/// passes straight through.
pub struct GatedCluster {
    inner: Arc<dyn ClusterBackend>,
    gate: Gate,
}

/// The gate of a [`GatedCluster`]; cheap to clone.
#[derive(Clone)]
pub struct Gate {
    open: watch::Sender<bool>,
    waiting: Arc<AtomicUsize>,
}

impl Gate {
    /// Lets every held and future read through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    /// How many reads are held at the gate now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

impl GatedCluster {
    /// A closed gate in front of `inner`.
    pub fn new(inner: Arc<dyn ClusterBackend>) -> (Self, Gate) {
        let gate = Gate {
            open: watch::channel(false).0,
            waiting: Arc::default(),
        };
        (
            Self {
                inner,
                gate: gate.clone(),
            },
            gate,
        )
    }
}

#[async_trait::async_trait]
impl ClusterBackend for GatedCluster {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ResourceInfo> {
        self.inner.resource(api_version, kind).await
    }

    async fn resource_by_plural(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<ResourceInfo> {
        self.inner.resource_by_plural(group, version, plural).await
    }

    async fn get(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Option<Value>> {
        let object = self.inner.get(res, namespace, name).await?;
        if object.is_some() && WORKLOADS.contains(&res.kind.as_str()) {
            let mut open = self.gate.open.subscribe();
            if !*open.borrow() {
                self.gate.waiting.fetch_add(1, Ordering::SeqCst);
                let _ = open.wait_for(|o| *o).await;
                self.gate.waiting.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Ok(object)
    }

    async fn list(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Value>> {
        self.inner.list(res, namespace, selector).await
    }

    async fn apply(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        object: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Change> {
        self.inner
            .apply(res, namespace, object, field_manager, force)
            .await
    }

    async fn merge_patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Change> {
        self.inner.merge_patch(res, namespace, name, patch).await
    }

    async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        self.inner.delete(res, namespace, name).await
    }
}
