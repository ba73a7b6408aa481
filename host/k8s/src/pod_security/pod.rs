//! The pod a check looks at: the pod metadata and spec of any object that
//! carries a pod template, read from JSON without trusting its shape, and
//! the words PSA's messages are made of.

use serde_json::Value;

/// The kinds whose objects carry a pod (or a pod template), by API group,
/// and where the template is: `[]` for the object itself (a Pod), else the
/// path to the template (which holds `metadata` and `spec`).
const TEMPLATES: &[(&str, &str, &[&str])] = &[
    ("", "Pod", &[]),
    ("", "PodTemplate", &["template"]),
    ("", "ReplicationController", &["spec", "template"]),
    ("apps", "Deployment", &["spec", "template"]),
    ("apps", "StatefulSet", &["spec", "template"]),
    ("apps", "DaemonSet", &["spec", "template"]),
    ("apps", "ReplicaSet", &["spec", "template"]),
    ("batch", "Job", &["spec", "template"]),
    (
        "batch",
        "CronJob",
        &["spec", "jobTemplate", "spec", "template"],
    ),
    // Served by no current cluster, but a step must not slip past by naming them.
    ("extensions", "Deployment", &["spec", "template"]),
    ("extensions", "DaemonSet", &["spec", "template"]),
    ("extensions", "ReplicaSet", &["spec", "template"]),
];

/// True when objects of `(group, kind)` carry a pod template.
pub fn carries_pod(group: &str, kind: &str) -> bool {
    TEMPLATES.iter().any(|(g, k, _)| *g == group && *k == kind)
}

/// One container of a pod (init, regular or ephemeral).
#[derive(Debug, Clone, Copy)]
pub(super) struct Container<'a> {
    /// Its name.
    pub name: &'a str,
    /// The container object.
    pub value: &'a Value,
}

impl<'a> Container<'a> {
    /// The value at `path` under the container's `securityContext`.
    pub fn security(&self, path: &[&str]) -> Option<&'a Value> {
        field(self.value, &["securityContext"]).and_then(|sc| field(sc, path))
    }

    /// The value at `path` under the container.
    pub fn get(&self, path: &[&str]) -> Option<&'a Value> {
        field(self.value, path)
    }
}

/// A pod's metadata and spec, as Pod Security Admission reads them.
#[derive(Debug, Clone, Copy)]
pub struct Pod<'a> {
    metadata: &'a Value,
    spec: &'a Value,
}

static NULL: Value = Value::Null;

impl<'a> Pod<'a> {
    /// The pod of an object of `(group, kind)`: the object itself for a
    /// Pod, its template for the workload kinds. `None` for kinds that
    /// carry no pod; a missing template reads as an empty pod.
    pub fn of(group: &str, kind: &str, object: &'a Value) -> Option<Self> {
        let (_, _, path) = TEMPLATES
            .iter()
            .find(|(g, k, _)| *g == group && *k == kind)?;
        let template = field(object, path).unwrap_or(&NULL);
        Some(Self::new(
            field(template, &["metadata"]).unwrap_or(&NULL),
            field(template, &["spec"]).unwrap_or(&NULL),
        ))
    }

    /// A pod of this metadata and spec.
    pub fn new(metadata: &'a Value, spec: &'a Value) -> Self {
        Self { metadata, spec }
    }

    /// The value at `path` under the pod's spec.
    pub(super) fn spec(&self, path: &[&str]) -> Option<&'a Value> {
        field(self.spec, path)
    }

    /// The value at `path` under the pod-level `securityContext`.
    pub(super) fn security(&self, path: &[&str]) -> Option<&'a Value> {
        self.spec(&["securityContext"])
            .and_then(|sc| field(sc, path))
    }

    /// The pod's annotations, as (key, value) pairs of strings.
    pub(super) fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        field(self.metadata, &["annotations"])
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// Every container, in PSA's order: init containers, containers,
    /// ephemeral containers.
    pub(super) fn containers(&self) -> impl Iterator<Item = Container<'a>> {
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(|list| items(self.spec(&[list])))
            .map(|value| Container {
                name: value.get("name").and_then(Value::as_str).unwrap_or(""),
                value,
            })
    }

    /// The volumes of the pod.
    pub(super) fn volumes(&self) -> impl Iterator<Item = &'a Value> {
        items(self.spec(&["volumes"]))
    }

    /// True for a pod that names Windows as its OS (`spec.os.name`), which
    /// the restricted level exempts from the Linux-only controls.
    pub(super) fn is_windows(&self) -> bool {
        self.spec(&["os", "name"]).and_then(Value::as_str) == Some("windows")
    }
}

/// The value at `path` through objects only.
fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.get(*key))
        .filter(|v| !v.is_null())
}

/// The elements of a list (nothing for anything else).
pub(super) fn items(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten()
}

/// True only for JSON `true`: what the API server would decode as `true`.
pub(super) fn is_true(v: Option<&Value>) -> bool {
    v == Some(&Value::Bool(true))
}

/// A string value, or the JSON text of anything else (a list entry of the
/// wrong type is still named in the message).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `"a", "b"`: each quoted, as PSA's `joinQuote` writes lists.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `one` for a single item, else `many`.
pub(super) fn plural<'s>(one: &'s str, many: &'s str, n: usize) -> &'s str {
    if n == 1 { one } else { many }
}

/// `container "a"` or `containers "a", "b"`.
pub(super) fn containers_named(names: &[&str]) -> String {
    format!(
        "{} {}",
        plural("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Sorted and without repeats, as Go's `sets.NewString(...).List()`.
pub(super) fn sorted_set(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}
