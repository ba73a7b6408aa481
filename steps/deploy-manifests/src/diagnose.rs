//! Why a rollout failed, for the run's log: what `kubectl describe` and a
//! look at the pods would tell. For a workload that did not roll out:
//!
//! - its conditions (type, status, reason, message);
//! - its Events, and those of its ReplicaSets and Pods;
//! - each Pod's containers that are not ready (waiting, terminated,
//!   restarted) and the last lines of their logs (the previous instance's
//!   too, after a restart).
//!
//! Every read is a kube call the policy decides; one refused or failing is
//! noted in the log and the rest goes on: a diagnosis never hides the
//! failure it explains.

use stepbox_sdk::kube::LogOptions;
use stepbox_sdk::prelude::*;
use stepbox_sdk::serde_json::Value;

/// Log lines shown per failing container.
const TAIL_LINES: u32 = 20;

/// Pods looked at per workload.
const MAX_PODS: usize = 5;

/// Logs what explains why `workload` did not roll out; returns a one-line
/// summary for the run's error: its first condition that is `False` and
/// the first failing container found, when there are such.
pub(crate) fn rollout(workload: &Applied) -> Option<String> {
    let name = workload.kubectl_name();
    warn!("{name} did not roll out; what the cluster says:");
    let object: Value = match kube::raw::get(&workload.kind_ref(), &workload.name) {
        Ok(json) => serde_json::from_str(&json).ok()?,
        Err(e) => {
            warn!("  cannot read {name}: {e}");
            return None;
        }
    };
    let mut summary = None;
    for c in items(&object, "/status/conditions") {
        let field = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("");
        warn!(
            "  condition {}={} {}: {}",
            field("type"),
            field("status"),
            field("reason"),
            field("message")
        );
        if field("status") == "False" && summary.is_none() {
            summary = Some(format!(
                "{} {}: {}",
                field("type"),
                field("reason"),
                field("message")
            ));
        }
    }
    events(&workload.kind_ref(), &workload.name, &name);
    let Some(selector) = selector(&object) else {
        return summary;
    };
    let mut container = None;
    if workload.kind == "Deployment" {
        for rs in list(&KindRef::new("apps/v1", "ReplicaSet"), &selector) {
            let rs_name = name_of(&rs);
            if owned_by(&rs, &workload.name) {
                events(
                    &KindRef::new("apps/v1", "ReplicaSet"),
                    rs_name,
                    &format!("replicaset.apps/{rs_name}"),
                );
            }
        }
    }
    for pod in list(&KindRef::new("v1", "Pod"), &selector)
        .iter()
        .take(MAX_PODS)
    {
        if let Some(why) = self::pod(pod) {
            container.get_or_insert(why);
        }
    }
    match (summary, container) {
        (Some(s), Some(c)) => Some(format!("{s}; {c}")),
        (s, c) => s.or(c),
    }
}

/// Logs a pod's Events and its failing containers with their last lines;
/// returns why its first failing container fails.
fn pod(pod: &Value) -> Option<String> {
    let pod_name = name_of(pod);
    let shown = format!("pod/{pod_name}");
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("?");
    warn!("  {shown} is {phase}");
    events(&KindRef::new("v1", "Pod"), pod_name, &shown);
    let mut first = None;
    for status in items(pod, "/status/containerStatuses") {
        let container = status.get("name").and_then(Value::as_str).unwrap_or("");
        let ready = status
            .get("ready")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let restarts = status
            .get("restartCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if ready && restarts == 0 {
            continue;
        }
        let state = status
            .get("state")
            .and_then(Value::as_object)
            .and_then(|s| s.iter().next())
            .map(|(state, detail)| {
                let reason = detail.get("reason").and_then(Value::as_str).unwrap_or("");
                let message = detail.get("message").and_then(Value::as_str).unwrap_or("");
                format!("{state} {reason} {message}").trim().to_string()
            })
            .unwrap_or_default();
        warn!("  {shown} container {container}: {state}, {restarts} restarts");
        first.get_or_insert(format!("container {container} of {shown}: {state}"));
        let mut options = LogOptions::new().container(container).tail(TAIL_LINES);
        if restarts > 0 {
            options = options.previous();
        }
        match kube::logs(pod_name, &options) {
            Ok(text) if text.trim().is_empty() => {
                warn!("  {shown} container {container}: no log lines");
            }
            Ok(text) => {
                warn!("  last lines of {shown} container {container}:");
                for line in text.lines() {
                    warn!("    {line}");
                }
            }
            Err(e) => warn!("  cannot read the log of {shown} container {container}: {e}"),
        }
    }
    first
}

/// Logs the Events about one object.
fn events(kind: &KindRef, name: &str, shown: &str) {
    match kube::raw::events(kind, name) {
        Ok(events) => {
            for e in events
                .iter()
                .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            {
                let field = |f: &str| e.get(f).and_then(Value::as_str).unwrap_or("");
                let count = e.get("count").and_then(Value::as_u64).unwrap_or(1);
                warn!(
                    "  event {shown}: {} {} (x{count}): {}",
                    field("type"),
                    field("reason"),
                    field("message")
                );
            }
        }
        Err(e) => warn!("  cannot read the events of {shown}: {e}"),
    }
}

/// The workload's pod selector as a label selector string.
fn selector(object: &Value) -> Option<String> {
    let labels = object.pointer("/spec/selector/matchLabels")?.as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

fn list(kind: &KindRef, selector: &str) -> Vec<Value> {
    match kube::raw::list(kind, Some(selector)) {
        Ok(items) => items
            .iter()
            .filter_map(|i| serde_json::from_str(i).ok())
            .collect(),
        Err(e) => {
            warn!("  cannot list {kind} with {selector}: {e}");
            Vec::new()
        }
    }
}

fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn owned_by(v: &Value, owner: &str) -> bool {
    items(v, "/metadata/ownerReferences")
        .any(|o| o.get("name").and_then(Value::as_str) == Some(owner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepbox_sdk::serde_json::json;

    #[test]
    fn selectors_and_owners() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "fe"}}}});
        assert_eq!(selector(&d).unwrap(), "app=web,tier=fe");
        assert_eq!(selector(&json!({})), None);
        let rs = json!({"metadata": {"ownerReferences": [{"name": "web"}]}});
        assert!(owned_by(&rs, "web"));
        assert!(!owned_by(&rs, "api"));
    }
}
