//! The `kube` capability: Kubernetes objects in the run's namespace.
//!
//! Every call goes the same way: resolve the kind (discovery), check the
//! run's [`Policy`](crate::policy::Policy) (namespace, cluster scope, RBAC-shaped rules), call the
//! [`ClusterBackend`](stepbox_cluster::ClusterBackend), then write an audit line and, for writes, a plan
//! entry. A refused call returns a `forbidden` [`StepError`] and changes
//! nothing; an apply of several documents checks them all before it applies
//! any.
//!
//! The namespace is never the step's to choose: it is the [`RunScope`]'s.
//!
//! Objects that grant permissions (Roles, RoleBindings, service account
//! token Secrets) are also checked for what they grant
//! ([`Policy::check_object`](crate::policy::Policy::check_object)), on apply and on patch (the patched result), so
//! a step allowed to manage RBAC objects cannot grant more than its policy.

mod host;
mod observe;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::admission::{Admission, Batch};
use crate::caps::{CapError, Result, RunScope, StepError};
use crate::policy::Verb;
use crate::report::Decision;
use stepbox_cluster::notes::{self, Note, NoteSink};
use stepbox_cluster::{ResourceInfo, WatchOutcome};
use stepbox_k8s::object;
use stepbox_k8s::plan::{self, Action, PlanEntry};
use stepbox_k8s::readiness::{self, Readiness};
use stepbox_k8s::request::Attributes;
use stepbox_k8s::selector::LabelSelector;

pub(crate) use host::add_to_linker;

/// The field manager stepbox applies as.
pub const FIELD_MANAGER: &str = "stepbox";

/// How many interruptions of its watch one `wait` records in the audit
/// (a server that cuts every watch would otherwise fill it).
const MAX_NOTED_INTERRUPTIONS: u32 = 5;

/// What the kube capability of one run may use.
#[derive(Clone, Debug)]
pub struct KubeCtx {
    scope: RunScope,
    admission: Admission,
}

/// The result for one object of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedObject {
    /// apiVersion.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// What happened.
    pub action: Action,
    /// resourceVersion after the apply.
    pub resource_version: String,
}

/// What `wait` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// Rolled out / completed.
    Rollout,
    /// A status condition is True.
    Condition(String),
    /// The object exists.
    Exists,
    /// The object is gone.
    Deleted,
}

fn target(res: &ResourceInfo, name: &str) -> String {
    format!("{} {} {}", res.api_version, res.kind, name)
}

impl KubeCtx {
    /// The kube capability of a run in `scope`.
    pub fn new(scope: RunScope) -> Self {
        Self {
            admission: Admission::for_run(&scope),
            scope,
        }
    }

    /// Runs `call` with the backend's [notes]
    /// (retries, re-established watches) going to the audit as they
    /// happen, so the report says what happened inside the call.
    pub async fn noted<F: std::future::Future>(&self, call: F) -> F::Output {
        let recorder = self.scope.recorder.clone();
        let sink: NoteSink = Arc::new(move |n: &Note| {
            recorder.audit(n.call, &n.target, Decision::Allowed, &n.message);
        });
        notes::scope(sink, call).await
    }

    async fn resource(
        &self,
        call: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<ResourceInfo> {
        match self.scope.backend.resource(api_version, kind).await {
            Ok(r) => Ok(r),
            Err(e) => {
                let e: StepError = e.into();
                self.scope.recorder.audit(
                    call,
                    &format!("{api_version} {kind} {name}"),
                    Decision::Denied,
                    &e.to_string(),
                );
                Err(e.into())
            }
        }
    }

    /// Admission of a call without an object (a read or a delete); a
    /// denial is audited and returned as `forbidden`.
    async fn check(
        &self,
        call: &str,
        verb: Verb,
        res: &ResourceInfo,
        object_ns: Option<&str>,
        name: Option<&str>,
    ) -> Result<()> {
        let request = Attributes {
            verb,
            resource: res,
            namespace: Some(object_ns.unwrap_or(&self.scope.namespace)),
            name,
            object: None,
        };
        self.admission
            .admit(call, &request, &mut Batch::default())
            .await
            .map_err(|reason| {
                crate::caps::masked(StepError::forbidden(reason).into(), &self.scope.recorder)
            })
    }

    /// Audits the outcome of an allowed call and passes the result through.
    fn audited<T>(&self, call: &str, target: &str, result: Result<T>) -> Result<T> {
        let reason = match &result {
            Ok(_) => String::new(),
            Err(CapError::Step(e)) => e.to_string(),
            Err(CapError::Limit(l)) => l.to_string(),
            Err(CapError::Trap(e)) => format!("{e:#}"),
        };
        self.scope
            .recorder
            .audit(call, target, Decision::Allowed, &reason);
        result.map_err(|e| crate::caps::masked(e, &self.scope.recorder))
    }

    /// Reads one object.
    pub async fn get(&self, api_version: &str, kind: &str, name: &str) -> Result<Value> {
        let res = self.resource("kube.get", api_version, kind, name).await?;
        self.check("kube.get", Verb::Get, &res, None, Some(name))
            .await?;
        let result = match self
            .scope
            .backend
            .get(&res, &self.scope.namespace, name)
            .await
        {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(not_found(&res, name, &self.scope.namespace)),
            Err(e) => Err(e.into()),
        };
        self.audited("kube.get", &target(&res, name), result)
    }

    /// Lists objects of a kind, optionally by label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        selector: Option<&str>,
    ) -> Result<Vec<Value>> {
        let res = self.resource("kube.list", api_version, kind, "*").await?;
        self.check("kube.list", Verb::List, &res, None, None)
            .await?;
        let what = match selector {
            Some(s) => format!("{} {} -l {s}", res.api_version, res.kind),
            None => format!("{} {}", res.api_version, res.kind),
        };
        let result = async {
            let selector = match selector.map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => Some(
                    LabelSelector::parse(s)
                        .map_err(|e| StepError::invalid(format!("label selector {s:?}: {e}")))?,
                ),
                None => None,
            };
            Ok(self
                .scope
                .backend
                .list(&res, &self.scope.namespace, selector.as_ref())
                .await?)
        }
        .await;
        self.audited("kube.list", &what, result)
    }

    /// Server-side apply of every document in `manifests`, all checked first.
    pub async fn apply(&self, manifests: &str) -> Result<Vec<AppliedObject>> {
        let docs = match stepbox_k8s::manifest::parse_documents(manifests) {
            Ok(d) if d.is_empty() => Err(StepError::invalid("the manifests hold no documents")),
            Ok(d) => Ok(d),
            Err(e) => Err(StepError::invalid(e.to_string())),
        };
        let docs = match docs {
            Ok(d) => d,
            Err(e) => {
                let e = crate::caps::masked(e.into(), &self.scope.recorder);
                let reason = match &e {
                    CapError::Step(s) => s.to_string(),
                    _ => String::new(),
                };
                self.scope
                    .recorder
                    .audit("kube.apply", "manifests", Decision::Denied, &reason);
                return Err(e);
            }
        };

        // Phase 1: resolve and check every document; apply nothing if any
        // is refused.
        let mut checked = Vec::with_capacity(docs.len());
        let mut denials = Vec::new();
        let mut batch = Batch::default();
        for doc in docs {
            let api_version = object::str_field(&doc, &["apiVersion"])
                .unwrap_or("")
                .to_string();
            let kind = object::str_field(&doc, &["kind"]).unwrap_or("").to_string();
            let name = object::str_field(&doc, &["metadata", "name"])
                .unwrap_or("")
                .to_string();
            let res = self
                .resource("kube.apply", &api_version, &kind, &name)
                .await?;
            let object_ns = object::namespace(&doc).map(str::to_string);
            let exists = res.namespaced
                && object_ns
                    .as_deref()
                    .is_none_or(|ns| ns == self.scope.namespace)
                && matches!(
                    self.scope
                        .backend
                        .get(&res, &self.scope.namespace, &name)
                        .await,
                    Ok(Some(_))
                );
            let verb = if exists { Verb::Patch } else { Verb::Create };
            let request = Attributes {
                verb,
                resource: &res,
                namespace: Some(object_ns.as_deref().unwrap_or(&self.scope.namespace)),
                name: Some(&name),
                object: Some(&doc),
            };
            match self
                .admission
                .admit("kube.apply", &request, &mut batch)
                .await
            {
                Ok(()) => checked.push((res, doc, name)),
                Err(reason) => denials.push(reason),
            }
        }
        if !denials.is_empty() {
            let total = checked.len() + denials.len();
            let msg = if total == 1 {
                denials.remove(0)
            } else {
                format!(
                    "{} of {total} documents refused, nothing was applied: {}",
                    denials.len(),
                    denials.join("; ")
                )
            };
            return Err(crate::caps::masked(
                StepError::forbidden(msg).into(),
                &self.scope.recorder,
            ));
        }

        // Phase 2: apply, in document order.
        let mut applied = Vec::with_capacity(checked.len());
        for (res, mut doc, name) in checked {
            if res.namespaced
                && let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert(
                    "namespace".into(),
                    Value::String(self.scope.namespace.clone()),
                );
            }
            let result = self
                .scope
                .backend
                .apply(&res, &self.scope.namespace, &doc, FIELD_MANAGER, true)
                .await
                .map_err(CapError::from)
                .map(|change| {
                    let action = plan::classify(change.before.as_ref(), &change.after);
                    self.record_plan(
                        &res,
                        &name,
                        action,
                        change.before.as_ref(),
                        Some(&change.after),
                    );
                    AppliedObject {
                        api_version: res.api_version.clone(),
                        kind: res.kind.clone(),
                        name: name.clone(),
                        action,
                        resource_version: object::str_field(
                            &change.after,
                            &["metadata", "resourceVersion"],
                        )
                        .unwrap_or("")
                        .to_string(),
                    }
                });
            applied.push(self.audited("kube.apply", &target(&res, &name), result)?);
        }
        Ok(applied)
    }

    /// JSON merge patch of one object.
    pub async fn patch(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        merge_patch: &str,
    ) -> Result<Value> {
        let res = self.resource("kube.patch", api_version, kind, name).await?;
        let patch: Value = match serde_json::from_str(merge_patch) {
            Ok(p @ Value::Object(_)) => p,
            Ok(_) => {
                return Err(self.invalid(
                    "kube.patch",
                    &res,
                    name,
                    "a merge patch must be a JSON object",
                ));
            }
            Err(e) => {
                return Err(self.invalid(
                    "kube.patch",
                    &res,
                    name,
                    &format!("the merge patch is not JSON: {e}"),
                ));
            }
        };
        let patch_ns = object::namespace(&patch);
        if let Some(new_name) = object::name(&patch)
            && new_name != name
        {
            return Err(self.invalid("kube.patch", &res, name, "a patch cannot rename an object"));
        }
        // What the object would be after the patch is what is admitted.
        let patched = match self
            .scope
            .backend
            .get(&res, &self.scope.namespace, name)
            .await
        {
            Ok(Some(mut current)) => {
                stepbox_k8s::ssa::merge_patch(&mut current, &patch);
                Some(current)
            }
            _ => None,
        };
        let request = Attributes {
            verb: Verb::Patch,
            resource: &res,
            namespace: Some(patch_ns.unwrap_or(&self.scope.namespace)),
            name: Some(name),
            object: patched.as_ref(),
        };
        if let Err(reason) = self
            .admission
            .admit("kube.patch", &request, &mut Batch::default())
            .await
        {
            return Err(crate::caps::masked(
                StepError::forbidden(reason).into(),
                &self.scope.recorder,
            ));
        }
        let result = match self
            .scope
            .backend
            .merge_patch(&res, &self.scope.namespace, name, &patch)
            .await
        {
            Ok(change) => {
                let action = plan::classify(change.before.as_ref(), &change.after);
                self.record_plan(
                    &res,
                    name,
                    action,
                    change.before.as_ref(),
                    Some(&change.after),
                );
                Ok(change.after)
            }
            Err(e) => Err(e.into()),
        };
        self.audited("kube.patch", &target(&res, name), result)
    }

    /// Deletes one object; `false` if it did not exist.
    pub async fn delete(&self, api_version: &str, kind: &str, name: &str) -> Result<bool> {
        let res = self
            .resource("kube.delete", api_version, kind, name)
            .await?;
        self.check("kube.delete", Verb::Delete, &res, None, Some(name))
            .await?;
        let result = match self
            .scope
            .backend
            .delete(&res, &self.scope.namespace, name)
            .await
        {
            Ok(Some(before)) => {
                self.record_plan(&res, name, Action::Deleted, Some(&before), None);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e.into()),
        };
        self.audited("kube.delete", &target(&res, name), result)
    }

    /// Waits until `what` holds for the object or `timeout` passes.
    pub async fn wait(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        what: &WaitFor,
        timeout: Duration,
    ) -> Result<()> {
        let res = self.resource("kube.wait", api_version, kind, name).await?;
        self.check("kube.wait", Verb::Get, &res, None, Some(name))
            .await?;
        if self.scope.backend.dry_run() {
            // Server-side dry-run persists nothing: there is nothing to wait for.
            self.scope.recorder.audit(
                "kube.wait",
                &target(&res, name),
                Decision::Allowed,
                "dry run: not waited",
            );
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interruptions = 0u32;
        let result = loop {
            let obj = match self
                .scope
                .backend
                .get(&res, &self.scope.namespace, name)
                .await
            {
                Ok(obj) => obj,
                Err(e) => break Err(e.into()),
            };
            let why = match wait_state(&res.kind, obj.as_ref(), what) {
                WaitState::Done => break Ok(()),
                WaitState::Failed(why) => break Err(StepError::conflict(why).into()),
                WaitState::Pending(why) => why,
            };
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                break Err(StepError::timeout(format!(
                    "{} {name} not ready after {}: {why}",
                    res.kind,
                    humantime::format_duration(timeout)
                ))
                .into());
            }
            let resource_version = obj.as_ref().and_then(object::resource_version);
            match self
                .scope
                .backend
                .wait_for_change(
                    &res,
                    &self.scope.namespace,
                    name,
                    resource_version,
                    remaining,
                )
                .await
            {
                Ok(WatchOutcome::Interrupted(how)) => {
                    interruptions += 1;
                    let note = match interruptions {
                        n if n <= MAX_NOTED_INTERRUPTIONS => how,
                        n if n == MAX_NOTED_INTERRUPTIONS + 1 => {
                            "the watch keeps being interrupted; further interruptions are not recorded".into()
                        }
                        _ => continue,
                    };
                    self.scope.recorder.audit(
                        "kube.watch",
                        &target(&res, name),
                        Decision::Allowed,
                        &note,
                    );
                }
                Ok(WatchOutcome::Event | WatchOutcome::Polled | WatchOutcome::Elapsed) => {}
                Err(e) => break Err(e.into()),
            }
        };
        self.audited("kube.wait", &target(&res, name), result)
    }

    fn invalid(&self, call: &str, res: &ResourceInfo, name: &str, msg: &str) -> CapError {
        let e = StepError::invalid(msg.to_string());
        self.scope
            .recorder
            .audit(call, &target(res, name), Decision::Denied, &e.to_string());
        crate::caps::masked(e.into(), &self.scope.recorder)
    }

    fn record_plan(
        &self,
        res: &ResourceInfo,
        name: &str,
        action: Action,
        before: Option<&Value>,
        after: Option<&Value>,
    ) {
        let changes = match (before, after) {
            (Some(b), Some(a)) if action == Action::Configured => plan::field_changes(b, a),
            _ => Vec::new(),
        };
        let diff = match action {
            Action::Unchanged => None,
            _ => Some(plan::unified_diff(before, after)),
        };
        self.scope.recorder.plan(PlanEntry {
            action,
            api_version: res.api_version.clone(),
            kind: res.kind.clone(),
            name: name.to_string(),
            namespace: self.scope.namespace.clone(),
            changes,
            diff,
        });
    }
}

enum WaitState {
    Done,
    Pending(String),
    Failed(String),
}

fn wait_state(kind: &str, obj: Option<&Value>, what: &WaitFor) -> WaitState {
    match (what, obj) {
        (WaitFor::Deleted, None) => WaitState::Done,
        (WaitFor::Deleted, Some(_)) => WaitState::Pending("the object still exists".into()),
        (_, None) => WaitState::Pending("the object does not exist".into()),
        (WaitFor::Exists, Some(_)) => WaitState::Done,
        (WaitFor::Condition(c), Some(o)) => {
            if readiness::has_condition(o, c) {
                WaitState::Done
            } else {
                WaitState::Pending(format!("condition {c} is not True"))
            }
        }
        (WaitFor::Rollout, Some(o)) => match readiness::rollout_complete(kind, o) {
            Readiness::Ready => WaitState::Done,
            Readiness::NotReady(why) => WaitState::Pending(why),
            Readiness::Failed(why) => WaitState::Failed(why),
        },
    }
}

fn not_found(res: &ResourceInfo, name: &str, ns: &str) -> CapError {
    StepError::not_found(format!(
        "{} {name:?} not found in namespace {ns:?}",
        res.kind
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::ErrorKind;
    use crate::mask::SecretMasker;
    use crate::policy::Policy;
    use crate::report::RunRecorder;
    use std::time::Instant;
    use stepbox_cluster::memory::MemoryCluster;

    fn kube(backend: Arc<MemoryCluster>) -> KubeCtx {
        let policy = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n\
             - {apiGroups: ['*'], resources: ['*'], verbs: [get, list]}\n\
             - {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: ['*']}\n",
        )
        .unwrap();
        KubeCtx::new(RunScope {
            namespace: "dev".into(),
            policy: Arc::new(policy),
            needs: None,
            backend,
            recorder: RunRecorder::new(SecretMasker::default(), 1 << 20, 1 << 20, None),
            dry_run: true,
        })
    }

    fn bindings(role: &str, n: usize) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: b{i}}}\n\
                     roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {role}}}\n"
                )
            })
            .collect()
    }

    /// Found while fuzzing manifest_policy: each RoleBinding of an apply
    /// re-checked the Role it binds (up to `MAX_ROLE_GRANTS` lookups) and
    /// scanned every earlier document for it, so a few MiB of bindings to
    /// one large Role cost minutes of host CPU in one call.
    #[tokio::test]
    async fn many_bindings_of_one_role_check_it_once() {
        let groups: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
        let resources: Vec<String> = (0..50).map(|i| format!("r{i}")).collect();
        let role = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: big}}\n\
             rules: [{{apiGroups: {groups:?}, resources: {resources:?}, verbs: [get, list]}}]\n"
        );
        // A refused document last: every document is checked, none applied.
        let text = format!(
            "{role}{}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: c}}
",
            bindings("big", 10_000)
        );
        let start = Instant::now();
        let err = kube(Arc::new(MemoryCluster::new()))
            .apply(&text)
            .await
            .unwrap_err();
        let elapsed = start.elapsed();
        assert!(
            format!("{err:?}").contains("1 of 10002 documents refused"),
            "{err:?}"
        );
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    }

    /// A Role's verdict is shared by the bindings of one apply, but each
    /// refusal still names its own binding; a Role of the same apply is
    /// preferred to one of the namespace.
    #[tokio::test]
    async fn cached_role_verdicts_name_each_binding() {
        let backend = Arc::new(MemoryCluster::new());
        backend
            .seed_yaml(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n\
                 rules: [{apiGroups: [''], resources: [secrets], verbs: [delete]}]\n",
                "dev",
            )
            .unwrap();
        let k = kube(backend);
        let err = k.apply(&bindings("r", 2)).await.unwrap_err();
        let CapError::Step(StepError {
            kind: ErrorKind::Forbidden,
            message: why,
        }) = err
        else {
            panic!("{err:?}")
        };
        for b in ["b0", "b1"] {
            assert!(
                why.contains(&format!(
                    "Role \"r\" (bound by RoleBinding \"{b}\") rules[0] grants \"delete\" on secrets"
                )),
                "{why}"
            );
        }
        let fixed = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n\
                     rules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]\n";
        let applied = k.apply(&format!("{}{fixed}", bindings("r", 2))).await;
        assert!(
            applied.is_err(),
            "bindings before the Role see the namespace's Role"
        );
        let applied = k
            .apply(&format!("{fixed}{}", bindings("r", 2)))
            .await
            .unwrap();
        assert_eq!(applied.len(), 3);
    }
}
