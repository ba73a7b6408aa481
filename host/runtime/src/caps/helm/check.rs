//! Checking what a helm call would do against the run's policy, object by
//! object, before helm runs.
//!
//! Each object gets the verbs the call implies:
//!
//! | what | verbs checked |
//! |---|---|
//! | an object of the chart's manifest | `create`, or `patch` when it exists |
//! | a hook (`helm.sh/hook`, tests included) | `create` and `delete` (helm deletes hooks under their delete policy, `before-hook-creation` by default) |
//! | an object the call removes (dropped from the chart, uninstall) | `delete` |
//! | helm's release records | `get`, `list` (every call), `create`, `update`, `delete` (writes) on `secrets` |
//!
//! On top of [`Policy::check`] (namespaced kinds only, no other namespace,
//! the rules): a RoleBinding may only bind ServiceAccounts of the run's
//! namespace, and CustomResourceDefinitions (a chart's `crds/` folder, or
//! CRDs among its templates) need a rule naming them
//! ([`Policy::allows_crds`]). Every decision is an audit line; one refusal
//! refuses the call, naming every refused object.

use serde_json::Value;

use super::HelmCtx;
use super::release::ObjectKey;
use crate::caps::{CapError, Result, StepError};
use crate::policy::{AccessRequest, Decision as PolicyDecision, Policy, Verb};
use crate::report::Decision;
use stepbox_cluster::ResourceInfo;

/// What a call does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Created, or patched when it exists.
    Apply,
    /// A hook: created, later deleted by helm.
    Hook,
    /// Deleted.
    Delete,
}

/// One object to check.
#[derive(Debug, Clone)]
pub(crate) struct CheckItem<'a> {
    /// The object (as rendered, or as stored in the release).
    pub object: &'a Value,
    /// The template it came from.
    pub source: Option<&'a str>,
    /// What the call does to it.
    pub intent: Intent,
}

/// An object that passed the check: what to observe before and after the
/// call for the plan.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Its kind, resolved.
    pub res: ResourceInfo,
    /// Its key.
    pub key: ObjectKey,
    /// Whether it is a hook.
    pub hook: bool,
}

use stepbox_k8s::resources::{CRD_GROUP, CRD_KIND, RBAC_GROUP};

use super::RenderedObject;

/// The reason a RoleBinding is refused: it binds a ServiceAccount of
/// another namespace. `None` when every subject is fine.
pub(crate) fn foreign_subjects(role_binding: &Value, namespace: &str) -> Option<String> {
    let subjects = role_binding.get("subjects")?.as_array()?;
    let foreign: Vec<String> = subjects
        .iter()
        .filter(|s| s.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
        .filter_map(|s| {
            let ns = s
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            (!ns.is_empty() && ns != namespace).then(|| format!("{ns}/{name}"))
        })
        .collect();
    (!foreign.is_empty()).then(|| {
        format!(
            "it binds ServiceAccount {} of another namespace; a RoleBinding may only bind subjects of namespace {namespace:?}",
            foreign.join(", ")
        )
    })
}

fn verb_list(verbs: &[Verb]) -> String {
    verbs
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `verbs` on helm's release records (Secrets); the refusal reason
/// when one is not granted.
pub(crate) fn storage_refusal(policy: &Policy, namespace: &str, verbs: &[Verb]) -> Option<String> {
    let secrets = stepbox_k8s::resources::lookup("v1", "Secret");
    let missing: Vec<Verb> = verbs
        .iter()
        .copied()
        .filter(|verb| {
            let req = AccessRequest {
                verb: *verb,
                resource: &secrets,
                run_namespace: namespace,
                object_namespace: None,
                name: None,
            };
            !policy.check(&req).is_allowed()
        })
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "helm keeps its release records as Secrets in the namespace, and the step policy does not grant {} on secrets in namespace {namespace:?} (helm needs {})",
            verb_list(&missing),
            verb_list(verbs)
        )
    })
}

impl HelmCtx {
    /// Checks every item (see the [module docs](self)); returns the
    /// objects to observe, or `forbidden` naming every refusal (each
    /// refusal, and each allowed object, is an audit line). `refusals`
    /// are reasons found before (a `crds/` folder, the release records).
    pub(crate) async fn check_objects(
        &self,
        call: &str,
        items: &[CheckItem<'_>],
        mut refusals: Vec<String>,
    ) -> Result<Vec<Candidate>, CapError> {
        let chart_refusals = refusals.len();
        for r in &refusals {
            self.scope
                .recorder
                .audit(call, "chart", Decision::Denied, r);
        }
        let mut candidates = Vec::with_capacity(items.len());
        for item in items {
            let key = ObjectKey::of(item.object);
            let res = match self
                .scope
                .backend
                .resource(&key.api_version, &key.kind)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let at = item.source.map(|s| format!(" ({s})")).unwrap_or_default();
                    let e = StepError::invalid(format!("{key}{at}: {e}"));
                    self.scope.recorder.audit(
                        call,
                        &key.to_string(),
                        Decision::Denied,
                        &e.to_string(),
                    );
                    return Err(e.into());
                }
            };
            let object_ns = stepbox_k8s::object::namespace(item.object);
            let verbs = match item.intent {
                Intent::Apply => {
                    let exists = res.namespaced
                        && object_ns.is_none_or(|ns| ns.is_empty() || ns == self.scope.namespace)
                        && matches!(
                            self.scope
                                .backend
                                .get(&res, &self.scope.namespace, &key.name)
                                .await,
                            Ok(Some(_))
                        );
                    vec![if exists { Verb::Patch } else { Verb::Create }]
                }
                Intent::Hook => vec![Verb::Create, Verb::Delete],
                Intent::Delete => vec![Verb::Delete],
            };
            let mut reason = None;
            if res.is(CRD_GROUP, CRD_KIND) {
                if let Some(missing) = verbs.iter().find(|v| !self.scope.policy.allows_crds(**v)) {
                    reason = Some(format!(
                        "CustomResourceDefinitions are cluster-scoped and the step policy does not allow them ({} is not granted by a rule naming apiGroups [{CRD_GROUP}] and resources [customresourcedefinitions])",
                        missing.as_str()
                    ));
                }
            } else {
                for verb in &verbs {
                    let req = AccessRequest {
                        verb: *verb,
                        resource: &res,
                        run_namespace: &self.scope.namespace,
                        object_namespace: object_ns,
                        name: Some(&key.name),
                    };
                    if let PolicyDecision::Deny(why) = self.scope.policy.check(&req) {
                        reason = Some(why);
                        break;
                    }
                }
                if reason.is_none() && res.is(RBAC_GROUP, "RoleBinding") {
                    reason = foreign_subjects(item.object, &self.scope.namespace);
                }
            }
            let target = key.to_string();
            match reason {
                Some(why) => {
                    let at = item.source.map(|s| format!(" ({s})")).unwrap_or_default();
                    self.scope.recorder.audit(
                        call,
                        &target,
                        Decision::Denied,
                        &format!("{why}{at}"),
                    );
                    refusals.push(format!("{} {}{at}: {why}", key.kind, key.name));
                }
                None => {
                    self.scope
                        .recorder
                        .audit(call, &target, Decision::Allowed, "");
                    candidates.push(Candidate {
                        res,
                        key,
                        hook: item.intent == Intent::Hook,
                    });
                }
            }
        }
        if refusals.is_empty() {
            return Ok(candidates);
        }
        let total = items.len();
        let objects = refusals.len() - chart_refusals;
        let what = match (chart_refusals, objects) {
            (0, n) => format!("{n} of {total} objects refused"),
            (_, 0) => "the chart is refused".to_string(),
            (_, n) => format!("the chart and {n} of its {total} objects are refused"),
        };
        let msg = format!("{what}, nothing was changed: {}", refusals.join("; "));
        Err(StepError::forbidden(msg).into())
    }
}

impl HelmCtx {
    pub(super) fn storage_check(&self, call: &str, verbs: &[Verb]) -> Result<()> {
        match storage_refusal(&self.scope.policy, &self.scope.namespace, verbs) {
            None => Ok(()),
            Some(why) => {
                self.scope
                    .recorder
                    .audit(call, "helm release records", Decision::Denied, &why);
                Err(StepError::forbidden(why).into())
            }
        }
    }

    /// Objects of a stored release (hooks) to observe, without a check:
    /// helm only deletes or recreates them under the hook rules already
    /// checked for the call.
    pub(super) async fn stored_candidates(
        &self,
        objects: &[RenderedObject],
        hook: bool,
    ) -> Vec<Candidate> {
        let mut out = Vec::new();
        for o in objects {
            let key = o.key();
            if let Ok(res) = self
                .scope
                .backend
                .resource(&key.api_version, &key.kind)
                .await
                && res.namespaced
            {
                out.push(Candidate { res, key, hook });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    pub(super) fn role_binding_subjects_must_stay_home() {
        let rb = json!({"subjects": [
            {"kind": "ServiceAccount", "name": "a", "namespace": "dev"},
            {"kind": "ServiceAccount", "name": "b"},
            {"kind": "User", "name": "alice"},
        ]});
        assert_eq!(foreign_subjects(&rb, "dev"), None);
        let rb = json!({"subjects": [{"kind": "ServiceAccount", "name": "admin", "namespace": "kube-system"}]});
        let why = foreign_subjects(&rb, "dev").unwrap();
        assert!(why.contains("kube-system/admin"), "{why}");
    }

    #[test]
    pub(super) fn release_records_need_secrets() {
        let policy = Policy::default();
        assert_eq!(
            storage_refusal(
                &policy,
                "dev",
                &[
                    Verb::Get,
                    Verb::List,
                    Verb::Create,
                    Verb::Update,
                    Verb::Delete
                ]
            ),
            None
        );
        let none = Policy {
            rules: Vec::new(),
            ..Policy::default()
        };
        let why = storage_refusal(&none, "dev", &[Verb::Get, Verb::List]).unwrap();
        assert!(
            why.contains("get, list") && why.contains("Secrets"),
            "{why}"
        );
    }
}
