//! Checking what a helm call would do, object by object, before helm
//! runs: each object `helm template` renders passes the run's admission
//! (the same function the gateway applies to every request helm then
//! sends), so a chart the policy refuses changes nothing at all.
//!
//! Each object gets the verbs the call implies:
//!
//! | what | verbs checked |
//! |---|---|
//! | an object of the chart's manifest | `create` and `patch` (helm 4 writes with server-side apply) |
//! | a hook (`helm.sh/hook`, tests included) | `create` and `delete` (helm deletes hooks under their delete policy, `before-hook-creation` by default) |
//! | an object the call removes (dropped from the chart, uninstall) | `delete` |
//! | helm's release records | `get`, `list` (every call), `create`, `update`, `delete` (writes) on `secrets` |
//!
//! The objects are decided together ([`Batch`]), so a RoleBinding is held
//! to the Role of the same chart it binds. Every refusal is an audit line;
//! one refusal refuses the call, naming every refused object. What the
//! chart renders differently at install time (`lookup`) is caught by the
//! gateway, request by request.

use serde_json::Value;
use stepbox_k8s::request::Attributes;

use super::HelmCtx;
use super::release::ObjectKey;
use crate::admission::Batch;
use crate::caps::{Result, StepError};
use crate::policy::Verb;

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

fn verb_list(verbs: &[Verb]) -> String {
    verbs
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl HelmCtx {
    /// Admits every item (see the [module docs](self)), or returns
    /// `forbidden` naming every refusal. `refusals` are reasons found
    /// before (a `crds/` folder).
    pub(super) async fn precheck(
        &self,
        call: &str,
        items: &[CheckItem<'_>],
        mut refusals: Vec<String>,
    ) -> Result<()> {
        let chart_refusals = refusals.len();
        for r in &refusals {
            self.scope
                .recorder
                .audit(call, "chart", crate::report::Decision::Denied, r);
        }
        let ns = self.scope.namespace.as_str();
        let mut batch = Batch::default();
        for item in items {
            let key = ObjectKey::of(item.object);
            let at = item.source.map(|s| format!(" ({s})")).unwrap_or_default();
            let res = match self
                .scope
                .backend
                .resource(&key.api_version, &key.kind)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let e = StepError::invalid(format!("{key}{at}: {e}"));
                    self.scope.recorder.audit(
                        call,
                        &key.to_string(),
                        crate::report::Decision::Denied,
                        &e.to_string(),
                    );
                    return Err(e.into());
                }
            };
            let object_ns = stepbox_k8s::object::namespace(item.object)
                .filter(|n| !n.is_empty())
                .unwrap_or(ns);
            let verbs = match item.intent {
                // helm 4 creates and updates with server-side apply (a
                // patch), helm 3 with a create or a patch: both are checked.
                Intent::Apply => vec![Verb::Create, Verb::Patch],
                Intent::Hook => vec![Verb::Create, Verb::Delete],
                Intent::Delete => vec![Verb::Delete],
            };
            let mut refused = false;
            for verb in verbs {
                let request = Attributes {
                    verb,
                    resource: &res,
                    namespace: Some(object_ns),
                    name: Some(&key.name),
                    object: (verb != Verb::Delete).then_some(item.object),
                };
                if let Err(why) = self.admission.admit(call, &request, &mut batch).await {
                    refusals.push(format!("{} {}{at}: {why}", key.kind, key.name));
                    refused = true;
                    break;
                }
            }
            if !refused {
                self.scope.recorder.audit(
                    call,
                    &key.to_string(),
                    crate::report::Decision::Allowed,
                    "checked before helm runs",
                );
            }
        }
        if refusals.is_empty() {
            return Ok(());
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

    /// helm keeps its release records as Secrets in the namespace: the
    /// call needs `verbs` on them, or it is refused before helm runs.
    pub(super) async fn storage_check(&self, call: &str, verbs: &[Verb]) -> Result<()> {
        let secrets = stepbox_k8s::resources::lookup("v1", "Secret");
        let mut missing = Vec::new();
        for verb in verbs {
            let request = Attributes {
                verb: *verb,
                resource: &secrets,
                namespace: Some(&self.scope.namespace),
                name: None,
                object: None,
            };
            if self
                .admission
                .admit(call, &request, &mut Batch::default())
                .await
                .is_err()
            {
                missing.push(*verb);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(StepError::forbidden(format!(
            "helm keeps its release records as Secrets in the namespace, and the step policy does not grant {} on secrets in namespace {:?} (helm needs {})",
            verb_list(&missing),
            self.scope.namespace,
            verb_list(verbs)
        ))
        .into())
    }
}
