//! What the kube and helm capabilities of one run act on.

use std::sync::Arc;

use stepbox_cluster::ClusterBackend;

use crate::needs::StepNeeds;
use crate::policy::Policy;
use crate::report::RunRecorder;

/// The run's namespace, policy and needs, backend and recorder, shared by every
/// capability that reaches Kubernetes.
#[derive(Clone)]
pub struct RunScope {
    /// The namespace every call is confined to (never the step's choice).
    pub namespace: String,
    /// What the run may do.
    pub policy: Arc<Policy>,
    /// What the step declares it needs: the run may do only what both
    /// allow. `None` for a step without a declaration (the policy's grant).
    pub needs: Option<Arc<StepNeeds>>,
    /// Where objects live.
    pub backend: Arc<dyn ClusterBackend>,
    /// Audit, plan, log and masking.
    pub recorder: RunRecorder,
    /// True when nothing real changes (the embedded namespace, or a
    /// server-side dry run).
    pub dry_run: bool,
}

impl std::fmt::Debug for RunScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunScope")
            .field("namespace", &self.namespace)
            .field("backend", &self.backend.name())
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}
