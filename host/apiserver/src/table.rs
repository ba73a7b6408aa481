//! Server-side printing: lists and objects as `meta.k8s.io/v1` `Table`s.
//!
//! `kubectl get` asks for `application/json;as=Table;v=v1;g=meta.k8s.io`
//! and prints the columns the server chooses, as a real API server chooses
//! them for the common kinds (Deployment: READY, UP-TO-DATE, AVAILABLE,
//! AGE; Service: TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S); ...). Custom
//! resources get NAME and the `additionalPrinterColumns` of their CRD's
//! version, each cell read by its JSONPath (see [`crd_columns`]). Other
//! kinds get NAME and AGE. Columns of priority 1 show with `-o wide`.

use serde_json::{Map, Value, json};

use stepbox_cluster::MemoryCluster;
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

/// One column of a kind's table: its definition and how to read its cell
/// from an object. A kind's columns and its cells come from one list, so
/// they cannot drift apart.
#[derive(Debug)]
pub struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
    cell: fn(&Value) -> Value,
}

const fn col(
    name: &'static str,
    kind: &'static str,
    priority: u8,
    description: &'static str,
    cell: fn(&Value) -> Value,
) -> Column {
    Column {
        name,
        kind,
        priority,
        description,
        cell,
    }
}

const NAME: Column = col(
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
    |o| json!(object::name(o).unwrap_or_default()),
);
const AGE: Column = col(
    "Age",
    "string",
    0,
    "The time since the object was created.",
    age,
);

const CONTAINERS: Column = col(
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
    |o| json!(joined(o, TEMPLATE_CONTAINERS, "name")),
);
const IMAGES: Column = col(
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
    |o| json!(joined(o, TEMPLATE_CONTAINERS, "image")),
);
const TEMPLATE_CONTAINERS: &str = "/spec/template/spec/containers";

const DEPLOYMENT: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        0,
        "Number of the pod with ready state",
        ready_of_replicas,
    ),
    col(
        "Up-to-date",
        "integer",
        0,
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
        |o| json!(int(o, "/status/updatedReplicas")),
    ),
    col(
        "Available",
        "integer",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
        |o| json!(int(o, "/status/availableReplicas")),
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, "Label selector for pods.", |o| {
        json!(map_selector(o.pointer("/spec/selector/matchLabels")))
    }),
];
const STATEFUL_SET: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        0,
        "Number of the pod with ready state",
        ready_of_replicas,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
];
const REPLICA_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, "Number of desired pods.", |o| {
        json!(replicas(o))
    }),
    col("Current", "integer", 0, "Number of actual replicas.", |o| {
        json!(int(o, "/status/replicas"))
    }),
    col(
        "Ready",
        "integer",
        0,
        "The number of ready replicas.",
        |o| json!(int(o, "/status/readyReplicas")),
    ),
    AGE,
];
const DAEMON_SET: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        0,
        "The total number of nodes that should be running the daemon pod.",
        |o| json!(int(o, "/status/desiredNumberScheduled")),
    ),
    col(
        "Current",
        "integer",
        0,
        "The number of nodes running at least one daemon pod.",
        |o| json!(int(o, "/status/currentNumberScheduled")),
    ),
    col(
        "Ready",
        "integer",
        0,
        "The number of nodes that should be running the daemon pod and have one or more ready.",
        |o| json!(int(o, "/status/numberReady")),
    ),
    col(
        "Up-to-date",
        "integer",
        0,
        "The total number of nodes running updated daemon pods.",
        |o| json!(int(o, "/status/updatedNumberScheduled")),
    ),
    col(
        "Available",
        "integer",
        0,
        "The number of nodes with an available daemon pod.",
        |o| json!(int(o, "/status/numberAvailable")),
    ),
    col(
        "Node Selector",
        "string",
        0,
        "The node selector of the pod template.",
        |o| json!(map_selector(o.pointer("/spec/template/spec/nodeSelector"))),
    ),
    AGE,
];
const SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", 0, "The type of service.", |o| {
        json!(service_type(o))
    }),
    col(
        "Cluster-IP",
        "string",
        0,
        "The IP address of the service.",
        |o| json!(spec_str(o, "clusterIP").unwrap_or("<none>")),
    ),
    col(
        "External-IP",
        "string",
        0,
        "External IPs of the service.",
        |o| {
            json!(match service_type(o) {
                "ExternalName" => spec_str(o, "externalName").unwrap_or_default(),
                "LoadBalancer" => "<pending>",
                _ => "<none>",
            })
        },
    ),
    col(
        "Port(s)",
        "string",
        0,
        "The ports of the service.",
        service_ports,
    ),
    AGE,
    col(
        "Selector",
        "string",
        1,
        "Route service traffic to pods with label keys and values matching this selector.",
        |o| json!(map_selector(o.pointer("/spec/selector"))),
    ),
];
const CONFIG_MAP: &[Column] = &[
    NAME,
    col("Data", "integer", 0, "Number of data entries.", |o| {
        json!(data_count(o))
    }),
    AGE,
];
const SECRET: &[Column] = &[
    NAME,
    col("Type", "string", 0, "The type of secret.", |o| {
        json!(o.get("type").and_then(Value::as_str).unwrap_or("Opaque"))
    }),
    col("Data", "integer", 0, "Number of data entries.", |o| {
        json!(data_count(o))
    }),
    AGE,
];
const NAMESPACE: &[Column] = &[
    NAME,
    col("Status", "string", 0, "The status of the namespace.", |o| {
        json!(str_at(o, "/status/phase").unwrap_or("Active"))
    }),
    AGE,
];
const POD: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        0,
        "The number of containers that are ready.",
        |o| {
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = container_statuses(o).filter(|c| c["ready"] == true).count();
            json!(format!("{ready}/{total}"))
        },
    ),
    col(
        "Status",
        "string",
        0,
        "The aggregate readiness state of this pod.",
        |o| json!(str_at(o, "/status/phase").unwrap_or("Pending")),
    ),
    col(
        "Restarts",
        "string",
        0,
        "The number of times the containers in this pod have been restarted.",
        |o| {
            let restarts: i64 = container_statuses(o)
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum();
            json!(restarts.to_string())
        },
    ),
    AGE,
];
const JOB: &[Column] = &[
    NAME,
    col("Status", "string", 0, "Status of the job.", |o| {
        let has = |t: &str| {
            o.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
        };
        let status = ["Complete", "Failed", "Suspended"]
            .into_iter()
            .find(|t| has(t));
        json!(status.unwrap_or("Running"))
    }),
    col(
        "Completions",
        "string",
        0,
        "The completion status of the job.",
        |o| {
            let completions = o
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            json!(format!("{}/{completions}", int(o, "/status/succeeded")))
        },
    ),
    AGE,
];
const CRON_JOB: &[Column] = &[
    NAME,
    col(
        "Schedule",
        "string",
        0,
        "The schedule for running the job.",
        |o| json!(str_at(o, "/spec/schedule").unwrap_or_default()),
    ),
    col(
        "Suspend",
        "boolean",
        0,
        "Whether the cron job is suspended.",
        |o| {
            json!(
                o.pointer("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            )
        },
    ),
    AGE,
];
const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    NAME,
    col("Status", "string", 0, "The phase of the claim.", |o| {
        json!(str_at(o, "/status/phase").unwrap_or("Pending"))
    }),
    col("Capacity", "string", 0, "The requested storage.", |o| {
        json!(str_at(o, "/status/capacity/storage").unwrap_or_default())
    }),
    AGE,
];
const EVENT: &[Column] = &[
    col(
        "Last Seen",
        "string",
        0,
        "The time at which the most recent occurrence of this event was recorded.",
        |o| {
            let seen = ["/series/lastObservedTime", "/lastTimestamp", "/eventTime"]
                .iter()
                .find_map(|p| str_at(o, p));
            json!(seen.map_or_else(|| "<unknown>".to_string(), since))
        },
    ),
    col(
        "Type",
        "string",
        0,
        "Type of this event (Normal, Warning).",
        |o| json!(str_at(o, "/type").unwrap_or_default()),
    ),
    col("Reason", "string", 0, "Why the action was taken.", |o| {
        json!(str_at(o, "/reason").unwrap_or_default())
    }),
    col(
        "Object",
        "string",
        0,
        "The object this event is about.",
        |o| {
            let kind = str_at(o, "/involvedObject/kind").unwrap_or_default();
            let name = str_at(o, "/involvedObject/name").unwrap_or_default();
            json!(format!("{}/{name}", kind.to_lowercase()))
        },
    ),
    col(
        "Message",
        "string",
        0,
        "A description of the status of this operation.",
        |o| json!(str_at(o, "/message").unwrap_or_default()),
    ),
];
const OTHER: &[Column] = &[NAME, AGE];

/// The columns of a kind's table: as a real API server prints the common
/// kinds, NAME and AGE for the others.
fn builtin_columns(res: &ResourceInfo) -> &'static [Column] {
    match (res.group.as_str(), res.kind.as_str()) {
        ("apps", "Deployment") => DEPLOYMENT,
        ("apps", "StatefulSet") => STATEFUL_SET,
        ("apps", "ReplicaSet") => REPLICA_SET,
        ("apps", "DaemonSet") => DAEMON_SET,
        ("", "Service") => SERVICE,
        ("", "ConfigMap") => CONFIG_MAP,
        ("", "Secret") => SECRET,
        ("", "Namespace") => NAMESPACE,
        ("", "Pod") => POD,
        ("batch", "Job") => JOB,
        ("batch", "CronJob") => CRON_JOB,
        ("", "Event") => EVENT,
        ("", "PersistentVolumeClaim") => PERSISTENT_VOLUME_CLAIM,
        _ => OTHER,
    }
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

/// How long ago an RFC 3339 time was, as kubectl says it; `<unknown>`
/// when it does not parse.
fn since(time: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(time) {
        Ok(t) => human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()),
        Err(_) => "<unknown>".to_string(),
    }
}

fn age(obj: &Value) -> Value {
    json!(since(
        obj.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
    ))
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

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn spec_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.pointer("/spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn ready_of_replicas(obj: &Value) -> Value {
    json!(format!(
        "{}/{}",
        int(obj, "/status/readyReplicas"),
        replicas(obj)
    ))
}

fn service_type(obj: &Value) -> &str {
    spec_str(obj, "type").unwrap_or("ClusterIP")
}

fn service_ports(obj: &Value) -> Value {
    let ports = obj
        .pointer("/spec/ports")
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
        .filter(|p| !p.is_empty());
    json!(ports.unwrap_or_else(|| "<none>".into()))
}

fn container_statuses(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// One of a CRD's `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    name: String,
    kind: String,
    format: String,
    description: String,
    priority: i64,
    /// The JSONPath of the cell, as kubectl writes it (`.status.phase`).
    path: String,
}

impl PrinterColumn {
    /// Reads one `additionalPrinterColumns` entry; `None` without a name
    /// or a JSONPath.
    fn parse(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        let path = s("jsonPath");
        if s("name").is_empty() || path.is_empty() {
            return None;
        }
        let description = match s("description") {
            "" => format!("Custom resource definition column (in JSONPath format): {path}"),
            d => d.to_string(),
        };
        Some(Self {
            name: s("name").to_string(),
            kind: s("type").to_string(),
            format: s("format").to_string(),
            description,
            priority: v.get("priority").and_then(Value::as_i64).unwrap_or(0),
            path: path.to_string(),
        })
    }

    /// The cell of `obj`, as the API server's CRD table converter makes
    /// it: the first value the JSONPath finds, shaped by the column's type
    /// (a `date` as the age kubectl prints); null when there is none or it
    /// does not fit the type.
    fn cell(&self, obj: &Value) -> Value {
        let Some(value) = jsonpath_first(obj, &self.path) else {
            return Value::Null;
        };
        match (self.kind.as_str(), &value) {
            ("string", Value::String(_)) => value,
            ("string", Value::Null) => Value::Null,
            ("string", Value::Number(_) | Value::Bool(_)) => json!(value.to_string()),
            ("string", _) => json!(value.to_string()),
            ("integer", Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, |i| json!(i)),
            ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
            ("boolean", Value::Bool(_)) => value,
            ("date", Value::String(t)) => match since(t).as_str() {
                "<unknown>" => json!("<invalid>"),
                age => json!(age),
            },
            _ => Value::Null,
        }
    }
}

/// The first value a kubectl-style JSONPath (`.status.phase`,
/// `.status.conditions[?(@.type=="Ready")].reason`, with or without the
/// surrounding `{}`) finds in `obj`.
fn jsonpath_first(obj: &Value, path: &str) -> Option<Value> {
    use jsonpath_rust::JsonPath;
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path)
        .trim();
    let path = if path.starts_with('$') {
        path.to_string()
    } else if path.starts_with('.') || path.starts_with('[') {
        format!("${path}")
    } else {
        format!("$.{path}")
    };
    obj.query(&path).ok()?.into_iter().next().cloned()
}

/// The `additionalPrinterColumns` of a CRD for `version`; empty when it
/// declares none.
pub fn crd_columns(crd: &Value, version: &str) -> Vec<PrinterColumn> {
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let entry = versions.and_then(|vs| {
        vs.iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
    });
    entry
        .and_then(|v| v.get("additionalPrinterColumns"))
        .or_else(|| crd.pointer("/spec/additionalPrinterColumns"))
        .and_then(Value::as_array)
        .map(|cols| cols.iter().filter_map(PrinterColumn::parse).collect())
        .unwrap_or_default()
}

/// The columns of one kind's tables.
#[derive(Debug, Clone)]
pub enum Columns {
    /// A built-in kind (or a custom one without printer columns).
    Builtin(&'static [Column]),
    /// NAME, then a CRD's printer columns.
    Custom(Vec<PrinterColumn>),
}

impl Columns {
    /// The columns of `res`: its CRD's printer columns, when it has a CRD
    /// that declares some; else the built-in ones.
    pub fn of(cluster: &MemoryCluster, res: &ResourceInfo) -> Self {
        let custom = cluster
            .custom_resource_definition(res)
            .map(|crd| crd_columns(&crd, &res.version))
            .unwrap_or_default();
        if custom.is_empty() {
            Self::Builtin(builtin_columns(res))
        } else {
            Self::Custom(custom)
        }
    }

    fn definitions(&self) -> Vec<Value> {
        let def = |name: &str, kind: &str, format: &str, description: &str, priority: i64| json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority});
        match self {
            Self::Builtin(cols) => cols
                .iter()
                .map(|c| {
                    let format = if c.name == "Name" { "name" } else { "" };
                    def(c.name, c.kind, format, c.description, i64::from(c.priority))
                })
                .collect(),
            Self::Custom(cols) => {
                std::iter::once(def("Name", "string", "name", NAME.description, 0))
                    .chain(
                        cols.iter()
                            .map(|c| def(&c.name, &c.kind, &c.format, &c.description, c.priority)),
                    )
                    .collect()
            }
        }
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        match self {
            Self::Builtin(cols) => cols.iter().map(|c| (c.cell)(obj)).collect(),
            Self::Custom(cols) => std::iter::once((NAME.cell)(obj))
                .chain(cols.iter().map(|c| c.cell(obj)))
                .collect(),
        }
    }
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

/// A Table of `objects` with `columns`. `with_columns` false leaves the
/// column definitions out (later events of a watch).
pub fn table(
    columns: &Columns,
    objects: &[Value],
    resource_version: Option<u64>,
    include: IncludeObject,
    api_version: &str,
    with_columns: bool,
) -> Value {
    let defs: Vec<Value> = if with_columns {
        columns.definitions()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": columns.cells(o)});
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
    fn crd_printer_columns() {
        let crd = json!({"spec": {"versions": [{"name": "v1", "additionalPrinterColumns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Reason", "type": "string", "priority": 1,
             "jsonPath": ".status.conditions[?(@.type==\"Succeeded\")].reason"},
            {"name": "Attempts", "type": "integer", "jsonPath": ".status.attempts"},
            {"name": "Done", "type": "boolean", "jsonPath": "{.status.done}"},
            {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "broken"}]}]}});
        let cols = Columns::Custom(crd_columns(&crd, "v1"));
        let defs = cols.definitions();
        let names: Vec<&str> = defs.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Name", "Phase", "Reason", "Attempts", "Done", "Started", "Age"
            ]
        );
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(defs[2]["priority"], 1);
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .status.phase"
        );
        let run = json!({"metadata": {"name": "r", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "status": {"phase": "Failed", "attempts": 2.0, "done": true, "startTime": "bad",
                       "conditions": [{"type": "Ready", "reason": "No"}, {"type": "Succeeded", "reason": "StepFailed"}]}});
        let cells = cols.cells(&run);
        assert_eq!(
            &cells[..5],
            &[
                json!("r"),
                json!("Failed"),
                json!("StepFailed"),
                json!(2),
                json!(true)
            ]
        );
        assert_eq!(cells[5], "<invalid>");
        assert!(
            cells[6].as_str().unwrap().ends_with('y') || cells[6].as_str().unwrap().ends_with('d')
        );
        let empty = cols.cells(&json!({"metadata": {"name": "e"}}));
        assert_eq!(
            empty[1..],
            [
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
        // Without printer columns: NAME and AGE.
        assert!(crd_columns(&json!({"spec": {"versions": [{"name": "v1"}]}}), "v1").is_empty());
    }

    #[test]
    fn event_rows() {
        let e = json!({"metadata": {"name": "r.1"}, "type": "Warning", "reason": "Failed",
                       "involvedObject": {"kind": "StepRun", "name": "r"}, "message": "step failed",
                       "eventTime": "2020-01-01T00:00:00.000000Z"});
        let cells = Columns::Builtin(builtin_columns(&lookup("v1", "Event"))).cells(&e);
        assert_eq!(
            &cells[1..],
            &[
                json!("Warning"),
                json!("Failed"),
                json!("steprun/r"),
                json!("step failed")
            ]
        );
        assert!(cells[0].as_str().unwrap().ends_with('d'), "{cells:?}");
    }

    #[test]
    fn deployment_and_service_rows() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z", "managedFields": []},
                       "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
                       "status": {"readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        let t = table(
            &Columns::Builtin(builtin_columns(&lookup("apps/v1", "Deployment"))),
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
            &Columns::Builtin(builtin_columns(&lookup("v1", "Service"))),
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
