//! The one admission function: whether a Kubernetes request made on a
//! step's behalf may proceed, by whatever path it comes.
//!
//! ```text
//! kube capability (each call) ─┐
//! helm: each rendered object ──┼─> Admission::admit(call, attributes, batch) ─> allowed, or
//! gateway: each API request ───┘        policy.check      (verb, kind, scope,    forbidden + an
//!   (helm, kubectl, any client)         namespace, name)                         audit line
//!                                       needs.check       (the step's declaration)
//!                                       policy.check_object (what a write grants)
//!                                       pod security      (a pod or pod template)
//!                                       the Role a RoleBinding binds
//! ```
//!
//! A run's grant is its policy intersected with the step's declared needs
//! ([`crate::needs`]): each request must pass both, a Role may grant only
//! what both allow, and pods are held to the stricter of their Pod Security
//! levels ([`stepbox_k8s::pod_security`]).
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
use stepbox_k8s::pod_security;
use stepbox_k8s::request::Attributes;
use stepbox_k8s::resources::RBAC_GROUP;

use crate::caps::RunScope;
use crate::needs::StepNeeds;
use crate::policy::{AccessRequest, Decision as PolicyDecision, PodSecurityLevel, Policy};
use crate::report::{AuditSink, Decision};

/// Decides the requests of one run (or one `stepbox gateway`): its
/// namespace, policy, backend (to read the Role a RoleBinding binds) and
/// where refusals are audited.
#[derive(Clone)]
pub struct Admission {
    namespace: String,
    policy: Arc<Policy>,
    needs: Option<Arc<StepNeeds>>,
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
        Self::for_scope(scope, Arc::new(scope.recorder.clone()))
    }

    /// The admission of a run in `scope` (its policy and the step's
    /// declared needs), auditing refusals to `audit`.
    pub fn for_scope(scope: &RunScope, audit: Arc<dyn AuditSink>) -> Self {
        Self {
            needs: scope.needs.clone(),
            ..Self::new(
                scope.namespace.clone(),
                scope.policy.clone(),
                scope.backend.clone(),
                audit,
            )
        }
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
            needs: None,
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
        let decision = match (self.policy.check(&access), &self.needs) {
            (PolicyDecision::Allow, Some(needs)) => needs.check(&access),
            (decision, _) => decision,
        };
        let (PolicyDecision::Allow, Some(obj)) = (&decision, request.object) else {
            return decision;
        };
        let decision = self
            .policy
            .check_object(request.resource, obj, &self.namespace);
        if decision != PolicyDecision::Allow {
            return decision;
        }
        if let Some(refused) = self.pod_security(request, obj) {
            return refused;
        }
        if let Some(needs) = &self.needs
            && request.resource.is(RBAC_GROUP, "Role")
        {
            let what = format!("Role {:?}", object::name(obj).unwrap_or(""));
            return needs.check_role_rules(&what, obj.get("rules").unwrap_or(&Value::Null));
        }
        if !request.resource.is(RBAC_GROUP, "RoleBinding") {
            return decision;
        }
        self.check_bound_role(obj, batch).await
    }

    /// The Pod Security level pods of this admission are held to: the
    /// policy's, or the step's declared one when it is stricter.
    pub fn pod_security_level(&self) -> PodSecurityLevel {
        let declared = self.needs.as_ref().and_then(|n| n.pod_security());
        let policy = self.policy.pod_security;
        declared.map_or(policy, |d| policy.max(d))
    }

    /// The refusal of a write whose object carries a pod that breaks the
    /// Pod Security level (the object itself, or its ephemeral containers;
    /// other subresources carry no pod spec).
    fn pod_security(&self, request: &Attributes<'_>, obj: &Value) -> Option<PolicyDecision> {
        let res = request.resource;
        if let Some((_, sub)) = res.plural.split_once('/')
            && sub != "ephemeralcontainers"
        {
            return None;
        }
        let level = self.pod_security_level();
        let violation = pod_security::check(level, &res.group, &res.kind, obj).err()?;
        let name = request.name.or(object::name(obj)).unwrap_or("");
        let by = if self.policy.pod_security == level {
            "the step policy's"
        } else {
            "the step's declared"
        };
        Some(PolicyDecision::Deny(format!(
            "{} {name:?}: {violation}; pods are held to {by} podSecurity {level:?}: change the pod to meet it",
            res.kind,
            level = level.as_str()
        )))
    }

    /// Whether the step may call helm at all: it declares `helm: true`, or
    /// declares nothing. The caller audits a refusal with the call's outcome.
    pub fn admit_helm(&self) -> Result<(), String> {
        match self.needs.as_ref().map(|n| n.check_helm()) {
            Some(PolicyDecision::Deny(reason)) => Err(reason),
            _ => Ok(()),
        }
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
        let rules = role
            .as_ref()
            .map(|r| r.get("rules").unwrap_or(&Value::Null));
        let decision = match (rules, &self.needs) {
            (None, _) => PolicyDecision::Allow,
            (Some(rules), needs) => match self.policy.check_role_rules(&what, rules) {
                PolicyDecision::Allow => needs
                    .as_ref()
                    .map_or(PolicyDecision::Allow, |n| n.check_role_rules(&what, rules)),
                denied => denied,
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::SecretMasker;
    use crate::policy::Verb;
    use crate::report::RunRecorder;
    use serde_json::json;
    use stepbox_cluster::memory::MemoryCluster;
    use stepbox_k8s::resources::lookup;

    fn admission(policy: &str, needs: Option<&str>) -> (Admission, RunRecorder) {
        let recorder = RunRecorder::new(SecretMasker::default(), 1 << 20, 1 << 20, None);
        let policy = Policy::from_yaml(&format!(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\n{policy}"
        ))
        .unwrap();
        let needs = needs.map(|n| {
            Arc::new(
                StepNeeds::from_text(&format!(
                    "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\n{n}"
                ))
                .unwrap(),
            )
        });
        let a = Admission {
            needs,
            ..Admission::new(
                "dev".into(),
                Arc::new(policy),
                Arc::new(MemoryCluster::new()),
                Arc::new(recorder.clone()),
            )
        };
        (a, recorder)
    }

    async fn admit(
        a: &Admission,
        verb: Verb,
        res: &ResourceInfo,
        obj: &Value,
    ) -> Result<(), String> {
        let request = Attributes {
            verb,
            resource: res,
            namespace: Some("dev"),
            name: object::name(obj),
            object: Some(obj),
        };
        a.admit("test.apply", &request, &mut Batch::default()).await
    }

    fn deployment(security: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "nginx", "securityContext": security},
        ]}}}})
    }

    const ALL: &str = "rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n";

    #[tokio::test]
    async fn pods_are_held_to_the_stricter_pod_security_level() {
        let deploy = lookup("apps/v1", "Deployment");
        let privileged = deployment(json!({"privileged": true}));
        let (a, recorder) = admission(ALL, None);
        let why = admit(&a, Verb::Create, &deploy, &privileged)
            .await
            .unwrap_err();
        assert_eq!(
            why,
            "Deployment \"web\": violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not \
             set securityContext.privileged=true); pods are held to the step policy's podSecurity \"baseline\": \
             change the pod to meet it"
        );
        let report = recorder.finish(
            crate::report::Status::Succeeded,
            None,
            crate::report::RunMeta::default(),
        );
        assert!(
            report
                .audit
                .iter()
                .any(|e| e.decision == Decision::Denied && e.reason == why)
        );
        let plain = deployment(json!({}));
        admit(&a, Verb::Patch, &deploy, &plain).await.unwrap();

        let (a, _) = admission(&format!("{ALL}podSecurity: privileged\n"), None);
        admit(&a, Verb::Create, &deploy, &privileged).await.unwrap();
        // A step may ask for a stricter level than its policy's, never a laxer one.
        let (a, _) = admission(
            ALL,
            Some(
                "rules: [{apiGroups: [apps], resources: [deployments], verbs: [create]}]\npodSecurity: restricted\n",
            ),
        );
        let why = admit(&a, Verb::Create, &deploy, &plain).await.unwrap_err();
        assert!(
            why.contains("violates PodSecurity \"restricted:latest\""),
            "{why}"
        );
        assert!(
            why.contains("the step's declared podSecurity \"restricted\""),
            "{why}"
        );
        let (a, _) = admission(
            &format!("{ALL}podSecurity: restricted\n"),
            Some(
                "rules: [{apiGroups: [apps], resources: [deployments], verbs: [create]}]\npodSecurity: privileged\n",
            ),
        );
        assert_eq!(a.pod_security_level(), PodSecurityLevel::Restricted);
    }

    #[tokio::test]
    async fn pod_subresources_other_than_ephemeral_containers_are_not_pods() {
        let (a, _) = admission(ALL, None);
        let pod =
            json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": []}});
        let pods = lookup("v1", "Pod");
        assert!(
            admit(&a, Verb::Update, &pods.subresource("status"), &pod)
                .await
                .is_ok()
        );
        let why = admit(
            &a,
            Verb::Update,
            &pods.subresource("ephemeralcontainers"),
            &pod,
        )
        .await
        .unwrap_err();
        assert!(why.contains("host namespaces (hostNetwork=true)"), "{why}");
    }

    #[tokio::test]
    async fn a_declaration_narrows_requests_roles_and_helm() {
        let needs = "rules: [{apiGroups: ['', rbac.authorization.k8s.io], resources: [configmaps, roles, rolebindings], \
                     verbs: [get, create]}]\n";
        let (a, _) = admission(ALL, Some(needs));
        let cm = json!({"metadata": {"name": "c"}});
        admit(&a, Verb::Create, &lookup("v1", "ConfigMap"), &cm)
            .await
            .unwrap();
        let why = admit(&a, Verb::Create, &lookup("v1", "Secret"), &cm)
            .await
            .unwrap_err();
        assert!(
            why.starts_with("\"create\" on secrets \"c\" is not among the needs the step declares (stepbox:needs: "),
            "{why}"
        );
        let role = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]});
        let why = admit(
            &a,
            Verb::Create,
            &lookup("rbac.authorization.k8s.io/v1", "Role"),
            &role,
        )
        .await
        .unwrap_err();
        assert!(
            why.contains(
                "Role \"r\" rules[0] grants \"get\" on secrets, which is not among the needs"
            ),
            "{why}"
        );
        assert!(a.admit_helm().unwrap_err().contains("declare `helm: true`"));
        let (undeclared, _) = admission(ALL, None);
        admit(
            &undeclared,
            Verb::Create,
            &lookup("rbac.authorization.k8s.io/v1", "Role"),
            &role,
        )
        .await
        .unwrap();
        assert!(undeclared.admit_helm().is_ok());
    }
}
