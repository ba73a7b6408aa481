//! Is a workload rolled out? `kubectl rollout status` logic on plain JSON.
//!
//! These are pure functions over an object as any backend returns it, so the
//! kube capability's `wait` can poll either backend with the same rules:
//!
//! - **Deployment**: `status.observedGeneration >= metadata.generation`, then
//!   `updatedReplicas == spec.replicas`, no old replicas left
//!   (`status.replicas == updatedReplicas`), `availableReplicas ==
//!   updatedReplicas`; a `Progressing` condition with reason
//!   `ProgressDeadlineExceeded` is a failure.
//! - **StatefulSet**: observed generation, `readyReplicas == spec.replicas`,
//!   for rolling updates with a partition `updatedReplicas >= replicas -
//!   partition`, otherwise `currentRevision == updateRevision`.
//! - **DaemonSet**: observed generation, `updatedNumberScheduled` and
//!   `numberAvailable` reach `desiredNumberScheduled`.
//! - **ReplicaSet / ReplicationController**: observed generation,
//!   `availableReplicas >= spec.replicas`.
//! - **Job**: condition `Complete` (or `SuccessCriteriaMet`) is ready,
//!   `Failed` (or `FailureTarget`) is a failure.
//! - **Pod**: condition `Ready`; phase `Succeeded` is ready, `Failed` a failure.
//! - **PersistentVolumeClaim**: phase `Bound`.
//! - anything else: ready when it has a `Ready` condition that is `True`, or
//!   has no `Ready` condition at all (nothing to roll out).
//!
//! ```
//! use stepbox_k8s::readiness::{rollout_complete, Readiness};
//!
//! let d = serde_json::json!({
//!     "metadata": {"generation": 2},
//!     "spec": {"replicas": 3},
//!     "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2},
//! });
//! assert!(matches!(rollout_complete("Deployment", &d), Readiness::NotReady(_)));
//! ```

use std::fmt;

use serde_json::Value;

/// The outcome of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Rolled out / complete / ready.
    Ready,
    /// Not yet; the reason says what is still missing (kubectl's wording).
    NotReady(String),
    /// Will not become ready without a change: a Job failed, a Deployment
    /// exceeded its progress deadline, a Pod failed. Waiting longer is
    /// pointless.
    Failed(String),
}

impl Readiness {
    /// True for [`Readiness::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready => f.write_str("ready"),
            Self::NotReady(r) => write!(f, "not ready: {r}"),
            Self::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn name(v: &Value) -> &str {
    crate::object::name(v).unwrap_or("")
}

/// The condition of `type` in `status.conditions`, if present.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// True when `status.conditions` holds `cond` with status `"True"`.
pub fn has_condition(object: &Value, cond: &str) -> bool {
    condition(object, cond)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

fn condition_text(c: &Value) -> String {
    let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
    match (field("reason"), field("message")) {
        ("", "") => String::new(),
        (r, "") => r.to_string(),
        ("", m) => m.to_string(),
        (r, m) => format!("{r}: {m}"),
    }
}

/// Whether the object of `kind` has finished rolling out (see the
/// [module docs](self) for the rules per kind).
pub fn rollout_complete(kind: &str, object: &Value) -> Readiness {
    match kind {
        "Deployment" => deployment(object),
        "StatefulSet" => statefulset(object),
        "DaemonSet" => daemonset(object),
        "ReplicaSet" | "ReplicationController" => replicaset(object),
        "Job" => job(object),
        "Pod" => pod(object),
        "PersistentVolumeClaim" => match object.pointer("/status/phase").and_then(Value::as_str) {
            Some("Bound") => Readiness::Ready,
            Some("Lost") => Readiness::Failed(format!(
                "persistentvolumeclaim {:?} lost its volume",
                name(object)
            )),
            phase => Readiness::NotReady(format!(
                "persistentvolumeclaim {:?} is {}",
                name(object),
                phase.unwrap_or("not bound yet")
            )),
        },
        _ => match condition(object, "Ready") {
            None => Readiness::Ready,
            Some(_) if has_condition(object, "Ready") => Readiness::Ready,
            Some(c) => Readiness::NotReady(format!(
                "{kind} {:?} is not Ready: {}",
                name(object),
                condition_text(c)
            )),
        },
    }
}

/// `None` when the controller has seen the latest spec, else the waiting
/// message.
fn observed(object: &Value, what: &str) -> Option<Readiness> {
    let generation = int(object, "/metadata/generation").unwrap_or(0);
    match int(object, "/status/observedGeneration") {
        Some(observed) if observed >= generation => None,
        _ => Some(Readiness::NotReady(format!(
            "Waiting for {what} spec update to be observed..."
        ))),
    }
}

fn deployment(d: &Value) -> Readiness {
    let n = name(d);
    if let Some(waiting) = observed(d, "deployment") {
        return waiting;
    }
    if let Some(c) = condition(d, "Progressing")
        && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    {
        return Readiness::Failed(format!("deployment {n:?} exceeded its progress deadline"));
    }
    let desired = int(d, "/spec/replicas").unwrap_or(1);
    let updated = int(d, "/status/updatedReplicas").unwrap_or(0);
    let replicas = int(d, "/status/replicas").unwrap_or(0);
    let available = int(d, "/status/availableReplicas").unwrap_or(0);
    if updated < desired {
        return Readiness::NotReady(format!(
            "Waiting for deployment {n:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Readiness::NotReady(format!(
            "Waiting for deployment {n:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Readiness::NotReady(format!(
            "Waiting for deployment {n:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Readiness::Ready
}

fn statefulset(s: &Value) -> Readiness {
    if int(s, "/status/observedGeneration").is_none() {
        return Readiness::NotReady("Waiting for statefulset spec update to be observed...".into());
    }
    if let Some(waiting) = observed(s, "statefulset") {
        return waiting;
    }
    let desired = int(s, "/spec/replicas").unwrap_or(1);
    let ready = int(s, "/status/readyReplicas").unwrap_or(0);
    if ready < desired {
        return Readiness::NotReady(format!(
            "Waiting for {} pods to be ready...",
            desired - ready
        ));
    }
    let strategy = s
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        .unwrap_or("RollingUpdate");
    if strategy == "OnDelete" {
        return Readiness::Ready;
    }
    if let Some(partition) =
        int(s, "/spec/updateStrategy/rollingUpdate/partition").filter(|p| *p > 0)
    {
        let updated = int(s, "/status/updatedReplicas").unwrap_or(0);
        let want = desired - partition;
        if updated < want {
            return Readiness::NotReady(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {want} new pods have been updated..."
            ));
        }
        return Readiness::Ready;
    }
    let current = s
        .pointer("/status/currentRevision")
        .and_then(Value::as_str)
        .unwrap_or("");
    let update = s
        .pointer("/status/updateRevision")
        .and_then(Value::as_str)
        .unwrap_or("");
    if current != update {
        let updated = int(s, "/status/updatedReplicas").unwrap_or(0);
        return Readiness::NotReady(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update}..."
        ));
    }
    Readiness::Ready
}

fn daemonset(d: &Value) -> Readiness {
    let n = name(d);
    if let Some(waiting) = observed(d, "daemon set") {
        return waiting;
    }
    let desired = int(d, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(d, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(d, "/status/numberAvailable").unwrap_or(0);
    if updated < desired {
        return Readiness::NotReady(format!(
            "Waiting for daemon set {n:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return Readiness::NotReady(format!(
            "Waiting for daemon set {n:?} rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    Readiness::Ready
}

fn replicaset(r: &Value) -> Readiness {
    if let Some(waiting) = observed(r, "replica set") {
        return waiting;
    }
    let desired = int(r, "/spec/replicas").unwrap_or(1);
    let available = int(r, "/status/availableReplicas").unwrap_or(0);
    if available < desired {
        return Readiness::NotReady(format!(
            "{available} of {desired} replicas are available..."
        ));
    }
    Readiness::Ready
}

fn job(j: &Value) -> Readiness {
    let n = name(j);
    for failed in ["Failed", "FailureTarget"] {
        if has_condition(j, failed) {
            let why = condition(j, failed).map(condition_text).unwrap_or_default();
            return Readiness::Failed(format!("job {n:?} failed: {why}"));
        }
    }
    if has_condition(j, "Complete") || has_condition(j, "SuccessCriteriaMet") {
        return Readiness::Ready;
    }
    if has_condition(j, "Suspended") {
        return Readiness::NotReady(format!("job {n:?} is suspended"));
    }
    let active = int(j, "/status/active").unwrap_or(0);
    let succeeded = int(j, "/status/succeeded").unwrap_or(0);
    let failed = int(j, "/status/failed").unwrap_or(0);
    Readiness::NotReady(format!(
        "job {n:?} has not completed: {active} active, {succeeded} succeeded, {failed} failed"
    ))
}

fn pod(p: &Value) -> Readiness {
    let n = name(p);
    match p.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => return Readiness::Ready,
        Some("Failed") => {
            let reason = p
                .pointer("/status/reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Readiness::Failed(format!("pod {n:?} failed {reason}").trim_end().to_string());
        }
        _ => {}
    }
    if has_condition(p, "Ready") {
        return Readiness::Ready;
    }
    let phase = p
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    Readiness::NotReady(format!("pod {n:?} is {phase} and not Ready"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(generation: i64, status: Value) -> Value {
        json!({"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn deployment_rules() {
        let r = rollout_complete("Deployment", &deploy(2, json!({"observedGeneration": 1})));
        assert_eq!(
            r,
            Readiness::NotReady("Waiting for deployment spec update to be observed...".into())
        );
        let r = rollout_complete(
            "Deployment",
            &deploy(2, json!({"observedGeneration": 2, "updatedReplicas": 1})),
        );
        assert!(r.to_string().contains("1 out of 3 new replicas"), "{r}");
        let r = rollout_complete(
            "Deployment",
            &deploy(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4}),
            ),
        );
        assert!(
            r.to_string()
                .contains("1 old replicas are pending termination"),
            "{r}"
        );
        let r = rollout_complete(
            "Deployment",
            &deploy(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2}),
            ),
        );
        assert!(
            r.to_string()
                .contains("2 of 3 updated replicas are available"),
            "{r}"
        );
        let ok = deploy(
            2,
            json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}),
        );
        assert!(rollout_complete("Deployment", &ok).is_ready());
        let stuck = deploy(
            2,
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert!(matches!(
            rollout_complete("Deployment", &stuck),
            Readiness::Failed(_)
        ));
        // No status at all.
        assert!(!rollout_complete("Deployment", &json!({})).is_ready());
    }

    #[test]
    fn statefulset_rules() {
        let base = |status: Value| json!({"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": status});
        assert!(!rollout_complete("StatefulSet", &base(json!({}))).is_ready());
        assert!(
            rollout_complete(
                "StatefulSet",
                &base(json!({"observedGeneration": 1, "readyReplicas": 1}))
            )
            .to_string()
            .contains("Waiting for 1 pods to be ready")
        );
        let diff = base(
            json!({"observedGeneration": 1, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}),
        );
        assert!(
            rollout_complete("StatefulSet", &diff)
                .to_string()
                .contains("revision b")
        );
        let ok = base(
            json!({"observedGeneration": 1, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "a"}),
        );
        assert!(rollout_complete("StatefulSet", &ok).is_ready());
        let mut part = diff.clone();
        part["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
        part["status"]["updatedReplicas"] = json!(1);
        assert!(rollout_complete("StatefulSet", &part).is_ready());
    }

    #[test]
    fn daemonset_and_replicaset_rules() {
        let ds = |u: i64, a: i64| {
            json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "desiredNumberScheduled": 2,
                   "updatedNumberScheduled": u, "numberAvailable": a}})
        };
        assert!(
            rollout_complete("DaemonSet", &ds(1, 1))
                .to_string()
                .contains("1 out of 2 new pods")
        );
        assert!(
            rollout_complete("DaemonSet", &ds(2, 1))
                .to_string()
                .contains("1 of 2 updated pods")
        );
        assert!(rollout_complete("DaemonSet", &ds(2, 2)).is_ready());
        let rs = json!({"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "availableReplicas": 2}});
        assert!(rollout_complete("ReplicaSet", &rs).is_ready());
    }

    #[test]
    fn job_rules() {
        let job = |conds: Value| json!({"metadata": {"name": "j"}, "status": {"conditions": conds, "active": 1}});
        assert!(
            rollout_complete("Job", &job(json!([{"type": "Complete", "status": "True"}])))
                .is_ready()
        );
        let failed = rollout_complete(
            "Job",
            &job(
                json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}]),
            ),
        );
        assert_eq!(
            failed,
            Readiness::Failed("job \"j\" failed: BackoffLimitExceeded: too many".into())
        );
        let running = rollout_complete("Job", &job(json!([])));
        assert!(running.to_string().contains("1 active"), "{running}");
        assert!(
            !rollout_complete(
                "Job",
                &job(json!([{"type": "Complete", "status": "False"}]))
            )
            .is_ready()
        );
    }

    #[test]
    fn pods_pvcs_and_others() {
        let pod = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(rollout_complete("Pod", &pod).is_ready());
        assert!(matches!(
            rollout_complete("Pod", &json!({"status": {"phase": "Failed"}})),
            Readiness::Failed(_)
        ));
        assert!(!rollout_complete("Pod", &json!({"status": {"phase": "Pending"}})).is_ready());
        assert!(
            rollout_complete(
                "PersistentVolumeClaim",
                &json!({"status": {"phase": "Bound"}})
            )
            .is_ready()
        );
        assert!(!rollout_complete("PersistentVolumeClaim", &json!({})).is_ready());
        assert!(rollout_complete("ConfigMap", &json!({})).is_ready());
        let cr = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]}});
        assert!(!rollout_complete("Certificate", &cr).is_ready());
    }

    #[test]
    fn conditions() {
        let obj = json!({"status": {"conditions": [{"type": "Available", "status": "True"}, {"type": "X", "status": "False"}]}});
        assert!(has_condition(&obj, "Available"));
        assert!(!has_condition(&obj, "X"));
        assert!(!has_condition(&obj, "Missing"));
        assert!(!has_condition(
            &json!({"status": {"conditions": "bad"}}),
            "X"
        ));
    }
}
