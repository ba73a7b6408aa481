//! Synthesized status: after every write, workloads get a finished, ready
//! status (Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, Pods,
//! PersistentVolumeClaims, Namespaces), so waits and `kubectl rollout
//! status` finish; CustomResourceDefinitions are `NamesAccepted` and
//! `Established`; Services get a cluster IP. Condition timestamps are kept
//! while a condition does not change, so a repeated apply stays a no-op.

use serde_json::{Map, Value, json};
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::object;
use stepbox_k8s::resources::{CRD_GROUP, CRD_KIND};

use super::{FIRST_SERVICE_IP, State};

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

/// A condition, keeping the timestamps of the existing one of the same type
/// while its status (and, for `lastUpdateTime`, reason and message) stay.
fn condition(
    existing: &Value,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    times: &[&str],
) -> Value {
    let prev = existing
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        });
    let same_status = prev.is_some_and(|p| p.get("status").and_then(Value::as_str) == Some(status));
    let same_text = same_status
        && prev.is_some_and(|p| {
            p.get("reason").and_then(Value::as_str) == Some(reason)
                && p.get("message").and_then(Value::as_str) == Some(message)
        });
    let mut c = Map::new();
    c.insert("type".into(), json!(type_));
    c.insert("status".into(), json!(status));
    for t in times {
        let keep = if *t == "lastTransitionTime" {
            same_status
        } else {
            same_text
        };
        let value = prev
            .filter(|_| keep)
            .and_then(|p| p.get(*t))
            .cloned()
            .unwrap_or_else(|| json!(now));
        c.insert((*t).to_string(), value);
    }
    c.insert("reason".into(), json!(reason));
    c.insert("message".into(), json!(message));
    Value::Object(c)
}

/// A short stable hash of a value, spelled like Kubernetes' pod-template-hash.
fn template_hash(v: Option<&Value>) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = v.map(Value::to_string).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn kept_time(obj: &Value, pointer: &str, now: &str) -> Value {
    obj.pointer(pointer).cloned().unwrap_or_else(|| json!(now))
}

/// The ReplicaSet a Deployment's current pod template runs in
/// (`web-5d8f7c9b4k`).
pub(super) fn replica_set_name(deployment: &Value) -> String {
    format!(
        "{}-{}",
        object::name(deployment).unwrap_or_default(),
        template_hash(deployment.pointer("/spec/template"))
    )
}

/// True when a client has written the object's status through the status
/// subresource: a controller (a test acting as one) manages it, and the
/// store keeps what it wrote instead of synthesizing one. That is how a
/// rollout that does not finish (a Deployment past its progress deadline,
/// a Pod in CrashLoopBackOff) is shown on the dev cluster.
pub(super) fn status_owned_by_a_controller(obj: &Value) -> bool {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.get("subresource").and_then(Value::as_str) == Some("status"))
        })
}

pub(super) fn synthesize(st: &mut State, res: &ResourceInfo, obj: &mut Value, now: &str) {
    if !res.is("", "Service") && status_owned_by_a_controller(obj) {
        return;
    }
    let generation = object::generation(obj).unwrap_or(1);
    let name = object::name(obj).unwrap_or_default().to_string();
    let status = match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => {
            let n = replicas(obj);
            let rs = replica_set_name(obj);
            let times = ["lastUpdateTime", "lastTransitionTime"];
            json!({
                "observedGeneration": generation,
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
                "conditions": [
                    condition(obj, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now, &times),
                    condition(obj, "Progressing", "True", "NewReplicaSetAvailable",
                              &format!("ReplicaSet \"{rs}\" has successfully progressed."), now, &times),
                ],
            })
        }
        ("apps", "StatefulSet") => {
            let n = replicas(obj);
            let revision = format!("{name}-{}", template_hash(obj.pointer("/spec/template")));
            json!({
                "observedGeneration": generation,
                "replicas": n,
                "readyReplicas": n,
                "currentReplicas": n,
                "updatedReplicas": n,
                "availableReplicas": n,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            })
        }
        ("apps", "DaemonSet") => json!({
            "observedGeneration": generation,
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "updatedNumberScheduled": 1,
            "numberMisscheduled": 0,
        }),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            let n = replicas(obj);
            json!({
                "observedGeneration": generation,
                "replicas": n,
                "fullyLabeledReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
            })
        }
        ("batch", "Job") => job_status(obj, now),
        ("", "Pod") => pod_status(obj, now),
        ("", "PersistentVolumeClaim") => {
            let mut s = Map::new();
            s.insert("phase".into(), json!("Bound"));
            if let Some(modes) = obj.pointer("/spec/accessModes") {
                s.insert("accessModes".into(), modes.clone());
            }
            if let Some(req) = obj.pointer("/spec/resources/requests") {
                s.insert("capacity".into(), req.clone());
            }
            Value::Object(s)
        }
        ("", "Namespace") => json!({"phase": "Active"}),
        (CRD_GROUP, CRD_KIND) => crd_status(obj, now),
        ("", "Service") => {
            assign_cluster_ip(st, obj);
            return;
        }
        _ => return,
    };
    if let Some(top) = obj.as_object_mut() {
        top.insert("status".into(), status);
    }
}

/// A CRD's names are accepted and it is established at once (there is no
/// other CRD to conflict with that the store would not have refused), so
/// `kubectl wait --for condition=established` finishes.
fn crd_status(obj: &Value, now: &str) -> Value {
    let times = ["lastTransitionTime"];
    let mut names = obj
        .pointer("/spec/names")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    names
        .entry("singular")
        .or_insert_with(|| json!(kind.to_lowercase()));
    names
        .entry("listKind")
        .or_insert_with(|| json!(format!("{kind}List")));
    let mut stored: Vec<Value> = obj
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        .cloned();
    if let Some(v) = storage
        && !stored.contains(&v)
    {
        stored.push(v);
    }
    json!({
        "conditions": [
            condition(obj, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now, &times),
            condition(obj, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted", now, &times),
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    })
}

fn job_status(obj: &Value, now: &str) -> Value {
    let times = ["lastProbeTime", "lastTransitionTime"];
    if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return json!({
            "active": 0,
            "conditions": [condition(obj, "Suspended", "True", "JobSuspended", "Job suspended", now, &times)],
        });
    }
    let completions = obj
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let message = "Reached expected number of succeeded pods";
    json!({
        "startTime": kept_time(obj, "/status/startTime", now),
        "completionTime": kept_time(obj, "/status/completionTime", now),
        "active": 0,
        "ready": 0,
        "terminating": 0,
        "succeeded": completions,
        "uncountedTerminatedPods": {},
        "conditions": [
            condition(obj, "SuccessCriteriaMet", "True", "CompletionsReached", message, now, &times),
            condition(obj, "Complete", "True", "CompletionsReached", message, now, &times),
        ],
    })
}

fn pod_status(obj: &Value, now: &str) -> Value {
    let times = ["lastProbeTime", "lastTransitionTime"];
    let started = kept_time(obj, "/status/startTime", now);
    let containers: Vec<Value> = obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let cname = c.get("name").and_then(Value::as_str).unwrap_or("");
                    json!({
                        "name": cname,
                        "image": c.get("image").cloned().unwrap_or(Value::Null),
                        "imageID": "",
                        "containerID": format!("memory://{cname}"),
                        "ready": true,
                        "started": true,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": started.clone()}},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let conds: Vec<Value> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(|t| {
        let mut c = condition(obj, t, "True", "", "", now, &times);
        if let Some(m) = c.as_object_mut() {
            m.shift_remove("reason");
            m.shift_remove("message");
        }
        c
    })
    .collect();
    json!({
        "phase": "Running",
        "conditions": conds,
        "startTime": started,
        "containerStatuses": containers,
    })
}

fn assign_cluster_ip(st: &mut State, obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    let has_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if has_ip {
        return;
    }
    let n = st.next_ip;
    st.next_ip = if n >= 0xfffe { FIRST_SERVICE_IP } else { n + 1 };
    let ip = format!("10.96.{}.{}", n >> 8, n & 0xff);
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
}
