//! The Events the embedded namespace's stand-in controllers record, as a
//! cluster's would: a Deployment whose pod template changed (or that was
//! created) scales up a new ReplicaSet, and says so with a
//! `ScalingReplicaSet` Event, so `kubectl get events` and a step's
//! `kube.events` show a rollout here as on a cluster.

use serde_json::{Value, json};
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::object;

use super::status::{replica_set_name, status_owned_by_a_controller};

/// The Event a write of `after` (over `before`) makes a controller record,
/// if any.
pub(super) fn rollout_event(
    res: &ResourceInfo,
    ns: &str,
    before: Option<&Value>,
    after: &Value,
    revision: u64,
    now: &str,
) -> Option<Value> {
    if !res.is("apps", "Deployment") || status_owned_by_a_controller(after) {
        return None;
    }
    let name = object::name(after)?;
    let rs = replica_set_name(after);
    if before.is_some_and(|b| replica_set_name(b) == rs) {
        return None;
    }
    let replicas = after
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    Some(json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{revision:016x}"), "namespace": ns},
        "involvedObject": {
            "apiVersion": res.api_version,
            "kind": res.kind,
            "name": name,
            "namespace": ns,
            "uid": object::str_field(after, &["metadata", "uid"]).unwrap_or(""),
        },
        "reason": "ScalingReplicaSet",
        "message": format!("Scaled up replica set {rs} from 0 to {replicas}"),
        "type": "Normal",
        "source": {"component": "deployment-controller"},
        "reportingComponent": "deployment-controller",
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }))
}
