//! Server-side printing: lists and objects as `meta.k8s.io/v1` `Table`s.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`
//! and prints the columns the server chooses, as a real API server chooses
//! them for the common kinds (Deployment: READY, UP-TO-DATE, AVAILABLE,
//! AGE; Service: TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S); ...). Other kinds
//! get NAME and AGE. Columns of priority 1 show with `-o wide`.

use serde_json::{Map, Value, json};

use stepbox_k8s::{ResourceInfo, object};

/// What a Table row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata, as `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter.
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        priority,
        description,
    }
}

const NAME: Column = col(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = col("Age", "string", 0, "The time since the object was created.");

fn columns(res: &ResourceInfo) -> Vec<Column> {
    let mut c = vec![NAME];
    match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => c.extend([
            col("Ready", "string", 0, "Number of the pod with ready state"),
            col("Up-to-date", "integer", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            col("Available", "integer", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            AGE,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
            col("Selector", "string", 1, "Label selector for pods."),
        ]),
        ("apps", "StatefulSet") => c.extend([
            col("Ready", "string", 0, "Number of the pod with ready state"),
            AGE,
            col("Containers", "string", 1, "Names of each container in the template."),
            col("Images", "string", 1, "Images referenced by each container in the template."),
        ]),
        ("apps", "ReplicaSet") => c.extend([
            col("Desired", "integer", 0, "Number of desired pods."),
            col("Current", "integer", 0, "Number of actual replicas."),
            col("Ready", "integer", 0, "The number of ready replicas."),
            AGE,
        ]),
        ("apps", "DaemonSet") => c.extend([
            col("Desired", "integer", 0, "The total number of nodes that should be running the daemon pod."),
            col("Current", "integer", 0, "The number of nodes running at least one daemon pod."),
            col("Ready", "integer", 0, "The number of nodes that should be running the daemon pod and have one or more ready."),
            col("Up-to-date", "integer", 0, "The total number of nodes running updated daemon pods."),
            col("Available", "integer", 0, "The number of nodes with an available daemon pod."),
            col("Node Selector", "string", 0, "The node selector of the pod template."),
            AGE,
        ]),
        ("", "Service") => c.extend([
            col("Type", "string", 0, "The type of service."),
            col("Cluster-IP", "string", 0, "The IP address of the service."),
            col("External-IP", "string", 0, "External IPs of the service."),
            col("Port(s)", "string", 0, "The ports of the service."),
            AGE,
            col("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ]),
        ("", "ConfigMap") => c.extend([col("Data", "integer", 0, "Number of data entries."), AGE]),
        ("", "Secret") => c.extend([
            col("Type", "string", 0, "The type of secret."),
            col("Data", "integer", 0, "Number of data entries."),
            AGE,
        ]),
        ("", "Namespace") => c.extend([col("Status", "string", 0, "The status of the namespace."), AGE]),
        ("", "Pod") => c.extend([
            col("Ready", "string", 0, "The number of containers that are ready."),
            col("Status", "string", 0, "The aggregate readiness state of this pod."),
            col("Restarts", "string", 0, "The number of times the containers in this pod have been restarted."),
            AGE,
        ]),
        ("batch", "Job") => c.extend([
            col("Status", "string", 0, "Status of the job."),
            col("Completions", "string", 0, "The completion status of the job."),
            AGE,
        ]),
        ("batch", "CronJob") => c.extend([
            col("Schedule", "string", 0, "The schedule for running the job."),
            col("Suspend", "boolean", 0, "Whether the cron job is suspended."),
            AGE,
        ]),
        ("", "ServiceAccount") | ("rbac.authorization.k8s.io", _) => c.push(AGE),
        ("", "PersistentVolumeClaim") => c.extend([
            col("Status", "string", 0, "The phase of the claim."),
            col("Capacity", "string", 0, "The requested storage."),
            AGE,
        ]),
        _ => c.push(AGE),
    }
    c
}

/// `2m3s`, `5h`, `3d4h`: kubectl's way of saying how long ago.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y{}d", d / 365, d % 365)
    }
}

fn age(obj: &Value) -> Value {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    match created {
        Some(t) => json!(human_duration(
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
        )),
        None => json!("<unknown>"),
    }
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn joined(obj: &Value, pointer: &str, field: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn map_selector(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".to_string(),
    }
}

fn data_count(obj: &Value) -> usize {
    ["data", "binaryData", "stringData"]
        .iter()
        .filter_map(|k| obj.get(*k).and_then(Value::as_object))
        .map(Map::len)
        .sum()
}

fn cells(res: &ResourceInfo, obj: &Value) -> Vec<Value> {
    let name = json!(object::name(obj).unwrap_or_default());
    let template = "/spec/template/spec/containers";
    let rest: Vec<Value> = match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => vec![
            json!(format!(
                "{}/{}",
                int(obj, "/status/readyReplicas"),
                obj.pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
            )),
            json!(int(obj, "/status/updatedReplicas")),
            json!(int(obj, "/status/availableReplicas")),
            age(obj),
            json!(joined(obj, template, "name")),
            json!(joined(obj, template, "image")),
            json!(map_selector(obj.pointer("/spec/selector/matchLabels"))),
        ],
        ("apps", "StatefulSet") => vec![
            json!(format!(
                "{}/{}",
                int(obj, "/status/readyReplicas"),
                obj.pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
            )),
            age(obj),
            json!(joined(obj, template, "name")),
            json!(joined(obj, template, "image")),
        ],
        ("apps", "ReplicaSet") => vec![
            json!(
                obj.pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
            ),
            json!(int(obj, "/status/replicas")),
            json!(int(obj, "/status/readyReplicas")),
            age(obj),
        ],
        ("apps", "DaemonSet") => vec![
            json!(int(obj, "/status/desiredNumberScheduled")),
            json!(int(obj, "/status/currentNumberScheduled")),
            json!(int(obj, "/status/numberReady")),
            json!(int(obj, "/status/updatedNumberScheduled")),
            json!(int(obj, "/status/numberAvailable")),
            json!(map_selector(
                obj.pointer("/spec/template/spec/nodeSelector")
            )),
            age(obj),
        ],
        ("", "Service") => {
            let spec = obj.get("spec").cloned().unwrap_or_default();
            let s = |k: &str| {
                spec.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let ty = Some(s("type"))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "ClusterIP".into());
            let ip = Some(s("clusterIP"))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "<none>".into());
            let external = match ty.as_str() {
                "ExternalName" => s("externalName"),
                "LoadBalancer" => "<pending>".to_string(),
                _ => "<none>".to_string(),
            };
            let ports = spec
                .get("ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let port = p.get("port").map(Value::to_string).unwrap_or_default();
                            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                            match p.get("nodePort") {
                                Some(n) => format!("{port}:{n}/{proto}"),
                                None => format!("{port}/{proto}"),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "<none>".into());
            vec![
                json!(ty),
                json!(ip),
                json!(external),
                json!(ports),
                age(obj),
                json!(map_selector(spec.get("selector"))),
            ]
        }
        ("", "ConfigMap") => vec![json!(data_count(obj)), age(obj)],
        ("", "Secret") => vec![
            json!(obj.get("type").and_then(Value::as_str).unwrap_or("Opaque")),
            json!(data_count(obj)),
            age(obj),
        ],
        ("", "Namespace") => vec![
            json!(
                obj.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Active")
            ),
            age(obj),
        ],
        ("", "Pod") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            let restarts: i64 = statuses.map_or(0, |s| {
                s.iter()
                    .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                    .sum()
            });
            vec![
                json!(format!("{ready}/{total}")),
                json!(
                    obj.pointer("/status/phase")
                        .and_then(Value::as_str)
                        .unwrap_or("Pending")
                ),
                json!(restarts.to_string()),
                age(obj),
            ]
        }
        ("batch", "Job") => {
            let conditions = obj.pointer("/status/conditions").and_then(Value::as_array);
            let has = |t: &str| {
                conditions
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if has("Suspended") {
                "Suspended"
            } else {
                "Running"
            };
            let completions = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            vec![
                json!(status),
                json!(format!("{}/{completions}", int(obj, "/status/succeeded"))),
                age(obj),
            ]
        }
        ("batch", "CronJob") => vec![
            json!(
                obj.pointer("/spec/schedule")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
            json!(
                obj.pointer("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            age(obj),
        ],
        ("", "PersistentVolumeClaim") => vec![
            json!(
                obj.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("Pending")
            ),
            json!(
                obj.pointer("/status/capacity/storage")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
            age(obj),
        ],
        _ => vec![age(obj)],
    };
    std::iter::once(name).chain(rest).collect()
}

/// The object's metadata as `PartialObjectMetadata` (without
/// `managedFields`).
pub fn partial_metadata(obj: &Value, meta_api_version: &str) -> Value {
    let mut meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.shift_remove("managedFields");
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": meta_api_version, "metadata": meta})
}

/// A Table of `objects` of kind `res`. `with_columns` false leaves the
/// column definitions out (later events of a watch).
pub fn table(
    res: &ResourceInfo,
    objects: &[Value],
    resource_version: Option<u64>,
    include: IncludeObject,
    api_version: &str,
    with_columns: bool,
) -> Value {
    let defs: Vec<Value> = if with_columns {
        columns(res)
            .iter()
            .map(|c| {
                let mut d = json!({
                    "name": c.name,
                    "type": c.kind,
                    "format": if c.name == "Name" { "name" } else { "" },
                    "description": c.description,
                    "priority": c.priority,
                });
                if c.name == "Name" {
                    d["format"] = json!("name");
                }
                d
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": cells(res, o)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(o, api_version),
                IncludeObject::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepbox_k8s::resources::lookup;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(4 * 3600 + 60), "4h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400), "3d");
        assert_eq!(human_duration(800 * 86400), "2y70d");
    }

    #[test]
    fn deployment_and_service_rows() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z", "managedFields": []},
                       "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
                       "status": {"readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        let t = table(
            &lookup("apps/v1", "Deployment"),
            &[d],
            Some(7),
            IncludeObject::Metadata,
            "meta.k8s.io/v1",
            true,
        );
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "2/2");
        assert_eq!(cells[5], "web");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(
            t["rows"][0]["object"]["metadata"]
                .get("managedFields")
                .is_none()
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        let s = json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}});
        let t = table(
            &lookup("v1", "Service"),
            &[s],
            None,
            IncludeObject::None,
            "meta.k8s.io/v1",
            false,
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "80/TCP",
                "<unknown>",
                "<none>"
            ])
        );
        assert!(t["rows"][0].get("object").is_none());
        assert_eq!(t["columnDefinitions"], json!([]));
    }
}
