//! The one admission function: whether a Kubernetes request made on a
//! step's behalf may proceed, by whatever path it comes.
//!
//! ```text
//! kube capability (each call) ─┐
//! helm: each rendered object ──┼─> Admission::admit(call, attributes, batch) ─> allowed, or
//! gateway: each API request ───┘        policy.check      (verb, kind, scope,    forbidden + an
//!   (helm, kubectl, any client)         namespace, name)                         audit line
//!                                       policy.check_object (what a write grants)
//!                                       the Role a RoleBinding binds
//! ```
//!
//! Nothing else decides: the kube capability, the helm capability (before
//! it runs helm, on what `helm template` renders) and the gateway (on
//! every request helm or any other client sends, at the moment it is sent)
//! all call [`Admission::admit`], so a rule lives in exactly one place
//! ([`crate::policy`]) and holds on every path.
//!
//! A refusal is written to the audit here, once, with the reason; what an
//! allowed request did is audited by its caller, who knows the outcome.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use stepbox_apiserver::Admit;
use stepbox_cluster::ClusterBackend;
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::object;
use stepbox_k8s::plan::PlanEntry;
use stepbox_k8s::request::Attributes;
use stepbox_k8s::resources::RBAC_GROUP;

use crate::caps::RunScope;
use crate::policy::{AccessRequest, Decision as PolicyDecision, Policy};
use crate::report::{AuditSink, Decision};

/// Decides the requests of one run (or one `stepbox gateway`): its
/// namespace, policy, backend (to read the Role a RoleBinding binds) and
/// where refusals are audited.
#[derive(Clone)]
pub struct Admission {
    namespace: String,
    policy: Arc<Policy>,
    backend: Arc<dyn ClusterBackend>,
    audit: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("namespace", &self.namespace)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

/// The requests decided together, as one apply of several documents: a
/// RoleBinding is checked against a Role of the same batch before that Role
/// exists, and each Role is checked once however many bindings bind it.
#[derive(Debug, Default)]
pub struct Batch {
    /// The Roles admitted so far in the batch, by name.
    roles: HashMap<String, Value>,
    /// By Role name and whether it came from the batch: `None` if its
    /// rules are allowed, else the denial without its leading "Role ...
    /// (bound by RoleBinding ...)".
    verdicts: HashMap<(String, bool), Option<String>>,
}

impl Admission {
    /// The admission of a run.
    pub fn for_run(scope: &RunScope) -> Self {
        Self::new(
            scope.namespace.clone(),
            scope.policy.clone(),
            scope.backend.clone(),
            Arc::new(scope.recorder.clone()),
        )
    }

    /// Admission to `namespace` under `policy`, reading Roles from
    /// `backend` and auditing refusals to `audit`.
    pub fn new(
        namespace: String,
        policy: Arc<Policy>,
        backend: Arc<dyn ClusterBackend>,
        audit: Arc<dyn AuditSink>,
    ) -> Self {
        Self {
            namespace,
            policy,
            backend,
            audit,
        }
    }

    /// The namespace requests are confined to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Decides one request. `call` names the path it came by in the audit
    /// (`kube.apply`, `helm.create`, `gateway.get`). A refusal is audited
    /// and returned as its reason; `batch` carries what requests decided
    /// together need from each other ([`Batch::default`] for one alone).
    pub async fn admit(
        &self,
        call: &str,
        request: &Attributes<'_>,
        batch: &mut Batch,
    ) -> Result<(), String> {
        match self.decide(request, batch).await {
            PolicyDecision::Allow => {
                if let Some(obj) = request.object
                    && request.resource.is(RBAC_GROUP, "Role")
                    && let Some(name) = request.name
                {
                    batch.roles.entry(name.to_string()).or_insert(obj.clone());
                }
                Ok(())
            }
            PolicyDecision::Deny(reason) => {
                self.audit
                    .audit(call, &target(request), Decision::Denied, &reason);
                Err(reason)
            }
        }
    }

    async fn decide(&self, request: &Attributes<'_>, batch: &mut Batch) -> PolicyDecision {
        let access = AccessRequest {
            verb: request.verb,
            resource: request.resource,
            run_namespace: &self.namespace,
            object_namespace: request.namespace,
            name: request.name,
        };
        if request.resource.namespaced && request.namespace.is_none() {
            return PolicyDecision::Deny(format!(
                "{} of {} across all namespaces: steps may only touch namespace {:?}",
                request.verb, request.resource.plural, self.namespace
            ));
        }
        let decision = self.policy.check(&access);
        let (PolicyDecision::Allow, Some(obj)) = (&decision, request.object) else {
            return decision;
        };
        let decision = self
            .policy
            .check_object(request.resource, obj, &self.namespace);
        if decision != PolicyDecision::Allow || !request.resource.is(RBAC_GROUP, "RoleBinding") {
            return decision;
        }
        self.check_bound_role(obj, batch).await
    }

    /// The Role a RoleBinding binds, from the batch or read from the
    /// namespace, may grant only what the policy grants. (A Role that does
    /// not exist yet is checked when it is created.)
    async fn check_bound_role(&self, binding: &Value, batch: &mut Batch) -> PolicyDecision {
        let role_name = object::str_field(binding, &["roleRef", "name"]).unwrap_or("");
        let what = format!(
            "Role {role_name:?} (bound by RoleBinding {:?})",
            object::name(binding).unwrap_or("")
        );
        let in_batch = batch.roles.get(role_name).cloned();
        let key = (role_name.to_string(), in_batch.is_some());
        if let Some(verdict) = batch.verdicts.get(&key) {
            return match verdict {
                None => PolicyDecision::Allow,
                Some(why) => PolicyDecision::Deny(format!("{what}{why}")),
            };
        }
        let role = match in_batch {
            Some(role) => Some(role),
            None => self.read_role(role_name).await,
        };
        let decision = match role {
            Some(role) => self
                .policy
                .check_role_rules(&what, role.get("rules").unwrap_or(&Value::Null)),
            None => PolicyDecision::Allow,
        };
        // Denials start with `what`; kept without it, to name each binding.
        let verdict = match &decision {
            PolicyDecision::Allow => None,
            PolicyDecision::Deny(why) => Some(why.strip_prefix(&what).unwrap_or(why).to_string()),
        };
        batch.verdicts.insert(key, verdict);
        decision
    }

    async fn read_role(&self, name: &str) -> Option<Value> {
        let res = self
            .backend
            .resource(&format!("{RBAC_GROUP}/v1"), "Role")
            .await
            .ok()?;
        self.backend
            .get(&res, &self.namespace, name)
            .await
            .ok()
            .flatten()
    }
}

#[async_trait::async_trait]
impl Admit for Admission {
    async fn admit(&self, call: &str, request: &Attributes<'_>) -> Result<(), String> {
        Admission::admit(self, call, request, &mut Batch::default()).await
    }

    fn forwarded(&self, call: &str, request: &Attributes<'_>, status: u16) {
        let outcome = if (200..300).contains(&status) {
            String::new()
        } else {
            format!("{status} from the cluster")
        };
        self.audit
            .audit(call, &target(request), Decision::Allowed, &outcome);
    }

    fn rejected(&self, call: &str, what: &str, reason: &str) {
        self.audit.audit(call, what, Decision::Denied, reason);
    }

    fn wrote(&self, _resource: &ResourceInfo, before: Option<&Value>, after: Option<&Value>) {
        let entry = match (before, after) {
            (_, Some(after)) => PlanEntry::for_change(before, after),
            (Some(before), None) => PlanEntry::deleted(before),
            (None, None) => return,
        };
        self.audit.plan(entry);
    }
}

/// `apps/v1 Deployment web`, as audit lines name what a request is about.
pub fn target(request: &Attributes<'_>) -> String {
    let res = request.resource;
    format!(
        "{} {} {}",
        res.api_version,
        res.kind,
        request.name.unwrap_or("*")
    )
}
