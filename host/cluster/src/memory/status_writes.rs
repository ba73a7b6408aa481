//! Writes to the `status` subresource (`PUT` and `PATCH .../NAME/status`),
//! for the kinds that have one ([`MemoryCluster::has_status_subresource`]).
//!
//! As in Kubernetes, such a write changes `status` alone: everything else
//! in the request (spec, labels, annotations, finalizers) is ignored, as
//! the API server's status strategy for custom resources ignores it; the
//! main resource, in turn, ignores `status`. A `metadata.resourceVersion`
//! (or `uid`) in the request is a precondition (`Conflict` with the API
//! server's message), `generation` stays, and ownership is recorded in
//! `managedFields` entries of subresource `status`.

use serde_json::Value;
use stepbox_k8s::patch::PatchType;
use stepbox_k8s::ssa::{self, Scope};

use super::requests::{WriteOptions, patched, record_update, versioned};
use super::{
    Change, ClusterError, MemoryCluster, ResourceInfo, Result, check_preconditions, now, object,
    scope_namespace,
};

/// `live` with `status` taken from `written` (removed when it has none).
fn with_status_of(live: &Value, written: &Value) -> Value {
    let mut obj = live.clone();
    if let Some(top) = obj.as_object_mut() {
        match written.get("status") {
            Some(s) if !s.is_null() => top.insert("status".into(), s.clone()),
            _ => top.shift_remove("status"),
        };
    }
    obj
}

impl MemoryCluster {
    fn require_status_subresource(&self, res: &ResourceInfo) -> Result<()> {
        if self.has_status_subresource(res) {
            return Ok(());
        }
        Err(ClusterError::NotFound(format!(
            "{} has no status subresource (its CustomResourceDefinition would declare subresources.status)",
            res.gr()
        )))
    }

    /// Replaces an object's `status` (a `PUT .../NAME/status`): the rest of
    /// `object` is ignored, its resourceVersion (or uid) is a precondition.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] when the object is absent or its kind
    /// has no status subresource; [`ClusterError::Conflict`] when the
    /// resourceVersion is stale; [`ClusterError::Invalid`] for a name that
    /// is not `name`.
    pub fn update_status(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        object: &Value,
        opts: &WriteOptions,
    ) -> Result<Change> {
        self.require_status_subresource(res)?;
        if let Some(other) = object::name(object).filter(|n| *n != name) {
            return Err(ClusterError::Invalid(format!(
                "the name of the object ({other}) does not match the name on the URL ({name})"
            )));
        }
        let ns = scope_namespace(res, namespace, None)?;
        let st = self.lock();
        let live = st.live(res, &ns, name)?;
        check_preconditions(res, name, object, Some(&live))?;
        let mut obj = with_status_of(&live, object);
        if let Some(m) = &opts.field_manager {
            record_update(Scope::Status, Some(&live), &mut obj, m, &now());
        }
        let change = self.commit(st, res, &ns, Some(live), obj, opts.dry_run)?;
        Ok(versioned(res, change))
    }

    /// Patches an object's `status` (a `PATCH .../NAME/status`): the patch
    /// applies to the whole object (so JSON patch paths and `test`
    /// operations read as in Kubernetes), then only the resulting `status`
    /// is kept. [`PatchType::Apply`] is server-side apply of the
    /// configuration's `status` by `opts.field_manager`.
    ///
    /// # Errors
    /// As [`update_status`](Self::update_status); a JSON patch whose
    /// operations fail (a `test` among them) is [`ClusterError::Invalid`];
    /// an apply that changes fields other status managers own is
    /// [`ClusterError::Conflict`] unless `opts.force`.
    pub fn patch_status(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        opts: &WriteOptions,
    ) -> Result<Change> {
        self.require_status_subresource(res)?;
        let ns = scope_namespace(res, namespace, None)?;
        let st = self.lock();
        let live = st.live(res, &ns, name)?;
        let now = now();
        let obj = match patch_type {
            PatchType::Apply => {
                let manager = opts
                    .field_manager
                    .as_deref()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| {
                        ClusterError::Invalid(
                            "PATCH requests with apply-patch content type require fieldManager"
                                .into(),
                        )
                    })?;
                check_preconditions(res, name, patch, Some(&live))?;
                let applied =
                    ssa::apply_in(Scope::Status, Some(&live), patch, manager, opts.force, &now)?;
                let mut obj = with_status_of(&live, &applied);
                if let (Some(meta), Some(fields)) = (
                    obj.get_mut("metadata").and_then(Value::as_object_mut),
                    applied.pointer("/metadata/managedFields"),
                ) {
                    meta.insert("managedFields".into(), fields.clone());
                }
                obj
            }
            other => {
                let patched = patched(res, &live, other, patch)?;
                check_preconditions(res, name, &patched, Some(&live))?;
                let mut obj = with_status_of(&live, &patched);
                if let Some(m) = &opts.field_manager {
                    record_update(Scope::Status, Some(&live), &mut obj, m, &now);
                }
                obj
            }
        };
        let change = self.commit(st, res, &ns, Some(live), obj, opts.dry_run)?;
        Ok(versioned(res, change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: stepruns.stepbox.dev}
spec:
  group: stepbox.dev
  scope: Namespaced
  names: {kind: StepRun, plural: stepruns}
  versions:
  - {name: v1, served: true, storage: true, subresources: {status: {}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: plains.stepbox.dev}
spec:
  group: stepbox.dev
  scope: Namespaced
  names: {kind: Plain, plural: plains}
  versions: [{name: v1, served: true, storage: true}]
"#;

    fn run(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "stepbox.dev/v1", "kind": "StepRun", "metadata": {"name": "r"},
               "spec": spec, "status": status})
    }

    #[test]
    fn status_and_main_resource_write_apart() {
        let c = MemoryCluster::new();
        c.seed_yaml(CRD, "dev").unwrap();
        let res = c.resolve_kind("stepbox.dev/v1", "StepRun").unwrap();
        assert!(c.has_status_subresource(&res));
        let by = WriteOptions::by;
        // A create ignores status; generation starts at 1.
        let created = c
            .create(
                &res,
                "dev",
                &run(json!({"step": "a"}), json!({"phase": "x"})),
                &by("kubectl"),
            )
            .unwrap();
        assert!(created.get("status").is_none());
        assert_eq!(created["metadata"]["generation"], 1);
        // Status alone: spec and labels in the request are ignored.
        let mut body = run(json!({"step": "changed"}), json!({"phase": "Running"}));
        body["metadata"]["labels"] = json!({"x": "y"});
        body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
        let ch = c
            .update_status(&res, "dev", "r", &body, &by("worker"))
            .unwrap();
        assert_eq!(ch.after["status"]["phase"], "Running");
        assert_eq!(ch.after["spec"]["step"], "a");
        assert!(ch.after["metadata"].get("labels").is_none());
        assert_eq!(ch.after["metadata"]["generation"], 1);
        let worker = ssa::managed_fields(&ch.after)
            .into_iter()
            .find(|e| e.manager == "worker")
            .unwrap();
        assert_eq!(worker.subresource.as_deref(), Some("status"));
        // The same body again is stale.
        let err = c
            .update_status(&res, "dev", "r", &body, &by("worker"))
            .unwrap_err();
        assert!(
            matches!(&err, ClusterError::Conflict(m) if m == "Operation cannot be fulfilled on stepruns.stepbox.dev \"r\": \
                the object has been modified; please apply your changes to the latest version and try again"),
            "{err}"
        );
        // The main resource ignores status, and bumps generation on spec.
        let ch = c
            .patch(
                &res,
                "dev",
                "r",
                PatchType::Merge,
                &json!({"spec": {"step": "b"}, "status": {"phase": "No"}}),
                &by("kubectl"),
            )
            .unwrap();
        assert_eq!(ch.after["status"]["phase"], "Running");
        assert_eq!(ch.after["metadata"]["generation"], 2);
        // JSON patch with a test: applies only when the test holds.
        let test = |phase: &str| {
            json!([{"op": "test", "path": "/status/phase", "value": phase},
                   {"op": "replace", "path": "/status/phase", "value": "Succeeded"}])
        };
        let err = c
            .patch_status(
                &res,
                "dev",
                "r",
                PatchType::Json,
                &test("Pending"),
                &by("worker"),
            )
            .unwrap_err();
        assert!(matches!(err, ClusterError::Invalid(_)), "{err}");
        let ch = c
            .patch_status(
                &res,
                "dev",
                "r",
                PatchType::Json,
                &test("Running"),
                &by("worker"),
            )
            .unwrap();
        assert_eq!(ch.after["status"]["phase"], "Succeeded");
        assert_eq!(ch.after["metadata"]["generation"], 2);
        // Server-side apply of the status.
        let cfg = run(
            json!({"ignored": true}),
            json!({"phase": "Failed", "reason": "x"}),
        );
        let err = c
            .patch_status(&res, "dev", "r", PatchType::Apply, &cfg, &by("ctrl"))
            .unwrap_err();
        assert!(
            err.to_string().contains("conflict with \"worker\""),
            "{err}"
        );
        let force = WriteOptions {
            force: true,
            ..by("ctrl")
        };
        let ch = c
            .patch_status(&res, "dev", "r", PatchType::Apply, &cfg, &force)
            .unwrap();
        assert_eq!(
            ch.after["status"],
            json!({"phase": "Failed", "reason": "x"})
        );
        assert!(ch.after["spec"].get("ignored").is_none());
        let err = c
            .patch_status(
                &res,
                "dev",
                "r",
                PatchType::Apply,
                &run(json!({}), json!({"phase": "Ok"})),
                &by("other"),
            )
            .unwrap_err();
        assert!(matches!(err, ClusterError::Conflict(_)), "{err}");
        assert!(matches!(
            c.update_status(&res, "dev", "nope", &body, &by("w")),
            Err(ClusterError::Invalid(_))
        ));
        body["metadata"]["name"] = json!("nope");
        assert!(matches!(
            c.update_status(&res, "dev", "nope", &body, &by("w")),
            Err(ClusterError::NotFound(_))
        ));
    }

    #[test]
    fn kinds_without_the_subresource() {
        let c = MemoryCluster::new();
        c.seed_yaml(CRD, "dev").unwrap();
        let plain = c.resolve_kind("stepbox.dev/v1", "Plain").unwrap();
        assert!(!c.has_status_subresource(&plain));
        let obj = json!({"apiVersion": "stepbox.dev/v1", "kind": "Plain", "metadata": {"name": "p"},
                         "spec": {"a": 1}, "status": {"ok": true}});
        let created = c
            .create(&plain, "dev", &obj, &WriteOptions::default())
            .unwrap();
        assert_eq!(created["status"]["ok"], true, "status is an ordinary field");
        let ch = c
            .patch(
                &plain,
                "dev",
                "p",
                PatchType::Merge,
                &json!({"status": {"ok": false}}),
                &WriteOptions::default(),
            )
            .unwrap();
        assert_eq!(ch.after["status"]["ok"], false);
        assert_eq!(ch.after["metadata"]["generation"], 2);
        let err = c
            .update_status(&plain, "dev", "p", &obj, &WriteOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("no status subresource"), "{err}");
        let cms = stepbox_k8s::resources::lookup("v1", "ConfigMap");
        assert!(!c.has_status_subresource(&cms));
        assert!(c.has_status_subresource(&stepbox_k8s::resources::lookup("apps/v1", "Deployment")));
    }
}
