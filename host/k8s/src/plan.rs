//! The plan of a run: what each write did (or would do), in kubectl's words.
//!
//! Every apply, patch and delete of a run yields a [`PlanEntry`]: the action
//! (`created`, `configured`, `unchanged`, `deleted`, as `kubectl apply`
//! prints them), the object, and for `configured` the leaf-level
//! [`FieldChange`]s. [`unified_diff`] renders one change like `kubectl diff`.
//!
//! Comparisons ignore what the server maintains: `status`,
//! `metadata.resourceVersion`, `uid`, `generation`, `creationTimestamp`,
//! `managedFields`, `selfLink`, and the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation.
//!
//! Secret values never show. For kind `Secret`, every value under `data` and
//! `stringData` is replaced as `kubectl diff` does: `***` when both sides
//! agree (or only one side has the key), `*** (before)` / `*** (after)` when
//! they differ, so a changed secret still shows as a change.
//!
//! ```
//! use serde_json::json;
//! use stepbox_k8s::plan::{classify, field_changes, Action};
//!
//! let before = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "1"}});
//! let after = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "2"}, "data": {"k": "2"}});
//! assert_eq!(classify(Some(&before), &after), Action::Configured);
//! let changes = field_changes(&before, &after);
//! assert_eq!(changes[0].to_string(), "data.k: \"1\" → \"2\"");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::object;

/// The annotation client-side `kubectl apply` keeps; ignored in diffs.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Server-maintained metadata fields ignored in comparisons.
const IGNORED_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];

/// The mask for a Secret value that is the same on both sides (or on one).
pub const SECRET_MASK: &str = "***";
/// The mask for the old side of a changed Secret value.
pub const SECRET_MASK_BEFORE: &str = "*** (before)";
/// The mask for the new side of a changed Secret value.
pub const SECRET_MASK_AFTER: &str = "*** (after)";

/// What a write did to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The object did not exist.
    Created,
    /// The object existed and changed.
    Configured,
    /// The object existed and nothing (but server bookkeeping) changed.
    Unchanged,
    /// The object was deleted.
    Deleted,
}

impl Action {
    /// kubectl's word: `"created"`, `"configured"`, `"unchanged"`,
    /// `"deleted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One changed leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Where: `spec.replicas`, `spec.template.spec.containers[name=web].image`,
    /// `data["config.yaml"]` (keys with `.`, `[`, `]`, `"` or spaces are
    /// quoted), `spec.args[0]`.
    pub path: String,
    /// The old value; `None` when the field was added. (In JSON: absent
    /// for `None`, `null` for a field that was `null`.)
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub before: Option<Value>,
    /// The new value; `None` when the field was removed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub after: Option<Value>,
}

/// A field that is present is `Some`, even when it is `null` (serde's
/// `Option` would read `null` as `None`, turning "`null` → removed" into a
/// change of nothing to nothing); an absent one is `None` by `default`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl fmt::Display for FieldChange {
    /// `path: before → after`, with `(none)` for a missing side.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |v: &Option<Value>| {
            v.as_ref()
                .map_or_else(|| "(none)".to_string(), Value::to_string)
        };
        write!(
            f,
            "{}: {} → {}",
            self.path,
            side(&self.before),
            side(&self.after)
        )
    }
}

/// One object of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanEntry {
    /// What happened.
    pub action: Action,
    /// apiVersion of the object.
    pub api_version: String,
    /// Kind of the object.
    pub kind: String,
    /// Name of the object.
    pub name: String,
    /// Namespace of the object (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Leaf-level changes; filled for `configured` only (`diff` shows the
    /// full content of a create or delete).
    pub changes: Vec<FieldChange>,
    /// The `kubectl diff`-style text of the change, for people; not part of
    /// the JSON report (which has `changes`).
    #[serde(skip)]
    pub diff: Option<String>,
}

impl PlanEntry {
    /// The entry for a write from `before` (`None`: created) to `after`,
    /// with its field changes and (unless unchanged) its diff.
    pub fn for_change(before: Option<&Value>, after: &Value) -> Self {
        let action = classify(before, after);
        let changes = match (action, before) {
            (Action::Configured, Some(b)) => field_changes(b, after),
            _ => Vec::new(),
        };
        let diff = (action != Action::Unchanged).then(|| unified_diff(before, Some(after)));
        Self::describe(action, after, changes, diff)
    }

    /// The entry for deleting `object` (its diff shows every line removed).
    pub fn deleted(object: &Value) -> Self {
        let diff = unified_diff(Some(object), None);
        Self::describe(Action::Deleted, object, Vec::new(), Some(diff))
    }

    fn describe(
        action: Action,
        obj: &Value,
        changes: Vec<FieldChange>,
        diff: Option<String>,
    ) -> Self {
        Self {
            action,
            api_version: object::api_version(obj).unwrap_or_default().to_string(),
            kind: object::kind(obj).unwrap_or_default().to_string(),
            name: object::name(obj).unwrap_or_default().to_string(),
            namespace: object::namespace(obj).unwrap_or_default().to_string(),
            changes,
            diff,
        }
    }
}

impl fmt::Display for PlanEntry {
    /// `deployment.apps/web configured`, as `kubectl apply` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = crate::resources::split_api_version(&self.api_version).0;
        let kind = self.kind.to_lowercase();
        if group.is_empty() {
            write!(f, "{kind}/{} {}", self.name, self.action)
        } else {
            write!(f, "{kind}.{group}/{} {}", self.name, self.action)
        }
    }
}

/// A copy of `v` without the fields the server maintains (see the
/// [module docs](self)).
pub fn strip_server_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(top) = v.as_object_mut() {
        top.shift_remove("status");
        if let Some(meta) = top.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in IGNORED_METADATA {
                meta.shift_remove(*f);
            }
            let empty = match meta.get_mut("annotations").and_then(Value::as_object_mut) {
                Some(a) => {
                    a.shift_remove(LAST_APPLIED_ANNOTATION);
                    a.is_empty()
                }
                None => false,
            };
            if empty {
                meta.shift_remove("annotations");
            }
        }
    }
    v
}

/// `created`, `configured` or `unchanged`, ignoring server-maintained
/// fields.
pub fn classify(before: Option<&Value>, after: &Value) -> Action {
    match before {
        None => Action::Created,
        Some(b) if strip_server_fields(b) == strip_server_fields(after) => Action::Unchanged,
        Some(_) => Action::Configured,
    }
}

fn is_secret(v: Option<&Value>) -> bool {
    v.is_some_and(|v| {
        object::kind(v) == Some("Secret") && object::api_version(v).is_none_or(|a| a == "v1")
    })
}

/// Masks `data` and `stringData` of a Secret pair as `kubectl diff` does.
fn mask_secrets(before: Option<&mut Value>, after: Option<&mut Value>) {
    let mask = |s: &str| Value::String(s.to_string());
    let (mut before, mut after) = (before, after);
    for field in ["data", "stringData"] {
        let b = before.as_deref().and_then(|v| v.get(field)).cloned();
        let a = after.as_deref().and_then(|v| v.get(field)).cloned();
        let (mb, ma) = match (&b, &a) {
            (Some(Value::Object(bm)), Some(Value::Object(am))) => {
                let mut mb = Map::new();
                let mut ma = Map::new();
                for (k, bv) in bm {
                    match am.get(k) {
                        Some(av) if av == bv => {
                            mb.insert(k.clone(), mask(SECRET_MASK));
                        }
                        Some(_) => {
                            mb.insert(k.clone(), mask(SECRET_MASK_BEFORE));
                        }
                        None => {
                            mb.insert(k.clone(), mask(SECRET_MASK));
                        }
                    }
                }
                for (k, av) in am {
                    let m = match bm.get(k) {
                        Some(bv) if bv != av => SECRET_MASK_AFTER,
                        _ => SECRET_MASK,
                    };
                    ma.insert(k.clone(), mask(m));
                }
                (Some(Value::Object(mb)), Some(Value::Object(ma)))
            }
            _ => {
                let whole = |v: &Option<Value>, other: &Option<Value>, changed: &str| {
                    v.as_ref().map(|v| match v {
                        Value::Object(m) => Value::Object(
                            m.keys().map(|k| (k.clone(), mask(SECRET_MASK))).collect(),
                        ),
                        _ if other.is_some() && other.as_ref() != Some(v) => mask(changed),
                        _ => mask(SECRET_MASK),
                    })
                };
                (
                    whole(&b, &a, SECRET_MASK_BEFORE),
                    whole(&a, &b, SECRET_MASK_AFTER),
                )
            }
        };
        if let (Some(m), Some(Value::Object(top))) = (mb, before.as_deref_mut()) {
            top.insert(field.to_string(), m);
        }
        if let (Some(m), Some(Value::Object(top))) = (ma, after.as_deref_mut()) {
            top.insert(field.to_string(), m);
        }
    }
}

/// Both sides stripped of server fields and, for Secrets, masked.
fn prepare(before: Option<&Value>, after: Option<&Value>) -> (Option<Value>, Option<Value>) {
    let mut b = before.map(strip_server_fields);
    let mut a = after.map(strip_server_fields);
    if is_secret(before) || is_secret(after) {
        mask_secrets(b.as_mut(), a.as_mut());
    }
    (b, a)
}

fn child_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && !key.contains(['.', '[', ']', '"', ' ']);
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_string())),
    }
}

/// Item names when every item is an object with a unique string `name`.
fn names_of(items: &[Value]) -> Option<Vec<&str>> {
    let names: Vec<&str> = items
        .iter()
        .map(|i| i.get("name").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    (!items.is_empty() && unique.len() == names.len()).then_some(names)
}

fn push(out: &mut Vec<FieldChange>, path: &str, before: Option<&Value>, after: Option<&Value>) {
    out.push(FieldChange {
        path: path.to_string(),
        before: before.cloned(),
        after: after.cloned(),
    });
}

fn diff(path: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            for (k, bv) in b {
                diff(&child_path(path, k), Some(bv), a.get(k), out);
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    diff(&child_path(path, k), None, Some(av), out);
                }
            }
        }
        (Some(Value::Object(m)), None) | (None, Some(Value::Object(m))) if !m.is_empty() => {
            let removed = before.is_some();
            for (k, v) in m {
                let (b, a) = if removed {
                    (Some(v), None)
                } else {
                    (None, Some(v))
                };
                diff(&child_path(path, k), b, a, out);
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) => match (names_of(b), names_of(a)) {
            (Some(bn), Some(an)) => {
                for (name, bv) in bn.iter().zip(b) {
                    let p = format!("{path}[name={name}]");
                    match an.iter().position(|n| n == name) {
                        Some(i) => diff(&p, Some(bv), a.get(i), out),
                        None => push(out, &p, Some(bv), None),
                    }
                }
                for (name, av) in an.iter().zip(a) {
                    if !bn.contains(name) {
                        push(out, &format!("{path}[name={name}]"), None, Some(av));
                    }
                }
                // Order matters in these lists (containers start in it, the
                // first port is the default): a reordering is a change of
                // the list's names, shown in both orders.
                let kept_b: Vec<&str> = bn.iter().copied().filter(|n| an.contains(n)).collect();
                let kept_a: Vec<&str> = an.iter().copied().filter(|n| bn.contains(n)).collect();
                if kept_b != kept_a {
                    out.push(FieldChange {
                        path: format!("{path}[*].name"),
                        before: Some(Value::from(kept_b)),
                        after: Some(Value::from(kept_a)),
                    });
                }
            }
            _ => {
                for i in 0..b.len().max(a.len()) {
                    let p = format!("{path}[{i}]");
                    match (b.get(i), a.get(i)) {
                        (Some(bv), Some(av)) => diff(&p, Some(bv), Some(av), out),
                        (bv, av) => push(out, &p, bv, av),
                    }
                }
            }
        },
        (b, a) if b != a => push(out, path, b, a),
        _ => {}
    }
}

/// Leaf-level differences between two versions of an object, ignoring
/// server-maintained fields, Secret values masked. Maps are compared key by
/// key (a map present on one side only yields its leaves); lists whose items
/// all have a unique `name` are compared by name (`[name=web]`), other lists
/// by index; a list or list item present on one side only is one change.
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let (b, a) = prepare(Some(before), Some(after));
    let mut out = Vec::new();
    diff("", b.as_ref(), a.as_ref(), &mut out);
    out
}

/// The name `kubectl diff` gives an object's files:
/// `apps.v1.Deployment.dev.web`, `v1.ConfigMap.dev.settings`,
/// `v1.Namespace..team-a` (cluster-scoped).
pub fn diff_name(obj: &Value) -> String {
    let (group, version) =
        crate::resources::split_api_version(object::api_version(obj).unwrap_or_default());
    let group = if group.is_empty() {
        String::new()
    } else {
        format!("{group}.")
    };
    format!(
        "{group}{version}.{}.{}.{}",
        object::kind(obj).unwrap_or_default(),
        object::namespace(obj).unwrap_or_default(),
        object::name(obj).unwrap_or_default()
    )
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k.as_str()])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn to_yaml(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(v) => {
            let v = sorted(v);
            serde_yaml_ng::to_string(&v)
                .or_else(|_| serde_json::to_string_pretty(&v).map(|s| s + "\n"))
                .unwrap_or_default()
        }
    }
}

/// A unified diff of two versions of an object, like `kubectl diff`: both
/// sides as YAML (keys sorted, server-maintained fields stripped, Secret
/// values masked), headers `--- LIVE/<name>` and `+++ MERGED/<name>` with
/// [`diff_name`], 3 lines of context. `None` on a side means the object does
/// not exist there (a create or a delete). Empty when there is no
/// difference.
pub fn unified_diff(before: Option<&Value>, after: Option<&Value>) -> String {
    let Some(named) = after.or(before) else {
        return String::new();
    };
    let name = diff_name(named);
    let (b, a) = prepare(before, after);
    let (bt, at) = (to_yaml(b.as_ref()), to_yaml(a.as_ref()));
    if bt == at {
        return String::new();
    }
    similar::TextDiff::from_lines(&bt, &at)
        .unified_diff()
        .context_radius(3)
        .header(&format!("LIVE/{name}"), &format!("MERGED/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(replicas: i64, image: &str, rv: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "dev", "resourceVersion": rv, "generation": 1,
                         "uid": "u", "creationTimestamp": "t", "managedFields": [{"manager": rv}],
                         "annotations": {LAST_APPLIED_ANNOTATION: rv}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": image}, {"name": "log", "image": "fluent"}]}}},
            "status": {"readyReplicas": rv}
        })
    }

    #[test]
    fn actions_serialize_like_kubectl() {
        assert_eq!(
            serde_json::to_value(Action::Configured).unwrap(),
            json!("configured")
        );
        assert_eq!(Action::Unchanged.to_string(), "unchanged");
        assert_eq!(
            serde_json::from_value::<Action>(json!("deleted")).unwrap(),
            Action::Deleted
        );
    }

    #[test]
    fn classify_ignores_server_fields() {
        let a = deploy(2, "nginx", "1");
        assert_eq!(classify(None, &a), Action::Created);
        assert_eq!(
            classify(Some(&a), &deploy(2, "nginx", "2")),
            Action::Unchanged
        );
        assert_eq!(
            classify(Some(&a), &deploy(3, "nginx", "2")),
            Action::Configured
        );
        let mut labelled = a.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        assert_eq!(classify(Some(&a), &labelled), Action::Configured);
    }

    #[test]
    fn leaf_changes_with_named_lists() {
        let mut after = deploy(3, "nginx:2", "2");
        after["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "extra", "image": "x"}));
        after["metadata"]["labels"] = json!({"app.kubernetes.io/name": "web"});
        let changes = field_changes(&deploy(2, "nginx:1", "1"), &after);
        let rendered: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "metadata.labels[\"app.kubernetes.io/name\"]: (none) → \"web\"",
                "spec.replicas: 2 → 3",
                "spec.template.spec.containers[name=web].image: \"nginx:1\" → \"nginx:2\"",
                "spec.template.spec.containers[name=extra]: (none) → {\"name\":\"extra\",\"image\":\"x\"}",
            ]
        );
    }

    #[test]
    fn a_reordered_named_list_is_a_change() {
        let pod = |names: &[&str]| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": names.iter().map(|n| json!({"name": n, "image": "x"})).collect::<Vec<_>>()}})
        };
        let (before, after) = (pod(&["a", "b"]), pod(&["b", "a"]));
        assert_eq!(classify(Some(&before), &after), Action::Configured);
        let changes = field_changes(&before, &after);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].path, "spec.containers[*].name");
        assert_eq!(changes[0].before, Some(json!(["a", "b"])));
        assert_eq!(changes[0].after, Some(json!(["b", "a"])));
        // Adding one at the end keeps the others' order: no order change.
        let grown = field_changes(&before, &pod(&["a", "b", "c"]));
        assert_eq!(grown.len(), 1, "{grown:?}");
        assert_eq!(grown[0].path, "spec.containers[name=c]");
    }

    #[test]
    fn index_lists_and_removals() {
        let b = json!({"kind": "X", "spec": {"args": ["a", "b", "c"], "gone": {"x": 1, "y": {}}}, "data": {"k": "v"}});
        let a = json!({"kind": "X", "spec": {"args": ["a", "B"]}, "data": {}});
        let rendered: Vec<String> = field_changes(&b, &a)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            rendered,
            [
                "spec.args[1]: \"b\" → \"B\"",
                "spec.args[2]: \"c\" → (none)",
                "spec.gone.x: 1 → (none)",
                "spec.gone.y: {} → (none)",
                "data.k: \"v\" → (none)",
            ]
        );
        assert!(field_changes(&b, &b).is_empty());
        // Type changes are one change.
        let changes = field_changes(&json!({"a": {"b": 1}}), &json!({"a": [1]}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "a");
    }

    #[test]
    fn secrets_are_masked_but_changes_show() {
        let secret = |data: Value| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "dev"}, "data": data});
        let b = secret(json!({"same": "c2FtZQ==", "changed": "b2xk", "removed": "eA=="}));
        let a = secret(json!({"same": "c2FtZQ==", "changed": "bmV3", "added": "eQ=="}));
        let changes = field_changes(&b, &a);
        let rendered: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "data.changed: \"*** (before)\" → \"*** (after)\"",
                "data.removed: \"***\" → (none)",
                "data.added: (none) → \"***\"",
            ]
        );
        let diff = unified_diff(Some(&b), Some(&a));
        for secret_text in ["c2FtZQ==", "b2xk", "bmV3", "eA==", "eQ=="] {
            assert!(!diff.contains(secret_text), "{diff}");
        }
        assert!(diff.contains("-  changed: '*** (before)'"), "{diff}");
        assert!(diff.contains("+  changed: '*** (after)'"), "{diff}");
        // Created secret: masked too.
        let created = unified_diff(None, Some(&secret(json!({"k": "dG9w"}))));
        assert!(
            !created.contains("dG9w") && created.contains("+  k: '***'"),
            "{created}"
        );
        let with_string_data = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
        assert!(!unified_diff(None, Some(&with_string_data)).contains("hunter2"));
        // Same values: unchanged, no change listed.
        assert!(field_changes(&b, &b).is_empty());
        // A malformed data field is still masked.
        let odd = unified_diff(Some(&secret(json!("raw-b"))), Some(&secret(json!("raw-a"))));
        assert!(!odd.contains("raw-"), "{odd}");
    }

    #[test]
    fn diff_output_like_kubectl() {
        let diff = unified_diff(
            Some(&deploy(2, "nginx:1", "1")),
            Some(&deploy(3, "nginx:1", "2")),
        );
        let expected = "\
--- LIVE/apps.v1.Deployment.dev.web
+++ MERGED/apps.v1.Deployment.dev.web
@@ -4,7 +4,7 @@
   name: web
   namespace: dev
 spec:
-  replicas: 2
+  replicas: 3
   template:
     spec:
       containers:
";
        assert_eq!(diff, expected);
        assert_eq!(
            unified_diff(Some(&deploy(2, "a", "1")), Some(&deploy(2, "a", "9"))),
            ""
        );
        assert_eq!(unified_diff(None, None), "");
    }

    #[test]
    fn diff_of_create_and_delete() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "dev"}, "data": {"k": "v"}});
        let created = unified_diff(None, Some(&cm));
        assert!(
            created.starts_with(
                "--- LIVE/v1.ConfigMap.dev.c\n+++ MERGED/v1.ConfigMap.dev.c\n@@ -0,0 +1,"
            ),
            "{created}"
        );
        assert!(created.contains("+  k: v\n"));
        let deleted = unified_diff(Some(&cm), None);
        assert!(deleted.contains("-kind: ConfigMap\n"), "{deleted}");
        assert_eq!(
            diff_name(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})),
            "v1.Namespace..x"
        );
    }

    /// Fuzzing (plan_diff) found that a change from `null` to a removed
    /// field read back from JSON as a change from nothing to nothing.
    #[test]
    fn null_sides_survive_a_json_round_trip() {
        let changes = field_changes(&json!({"kind": "X", "a": null}), &json!({"kind": "X"}));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].before, Some(Value::Null));
        for change in [
            changes[0].clone(),
            FieldChange {
                path: "b".into(),
                before: None,
                after: Some(Value::Null),
            },
            FieldChange {
                path: "c".into(),
                before: Some(json!(1)),
                after: None,
            },
        ] {
            let text = serde_json::to_string(&change).unwrap();
            let back: FieldChange = serde_json::from_str(&text).unwrap();
            assert_eq!(back, change, "{text}");
        }
    }

    #[test]
    fn floats_survive_a_json_round_trip() {
        // Found by the plan_diff fuzz target: without serde_json's
        // float_roundtrip this one read back 1 ULP off.
        let change = FieldChange {
            path: "spec.x".into(),
            before: Some(json!(-4.3917601660296835e-216)),
            after: Some(json!(0.1)),
        };
        let text = serde_json::to_string(&change).unwrap();
        let back: FieldChange = serde_json::from_str(&text).unwrap();
        assert_eq!(back, change, "{text}");
    }

    #[test]
    fn plan_entries() {
        let b = deploy(2, "nginx", "1");
        let a = deploy(3, "nginx", "2");
        let e = PlanEntry::for_change(Some(&b), &a);
        assert_eq!(e.action, Action::Configured);
        assert_eq!(e.to_string(), "deployment.apps/web configured");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            json!({"action": "configured", "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "dev",
                   "changes": [{"path": "spec.replicas", "before": 2, "after": 3}]})
        );
        assert!(
            e.diff
                .as_deref()
                .is_some_and(|d| d.contains("-  replicas: 2\n+  replicas: 3\n"))
        );
        let created = PlanEntry::for_change(None, &a);
        assert_eq!(created.action, Action::Created);
        assert!(created.changes.is_empty());
        assert!(
            created
                .diff
                .as_deref()
                .is_some_and(|d| d.contains("+kind: Deployment"))
        );
        assert_eq!(PlanEntry::for_change(Some(&a), &a).diff, None);
        assert_eq!(
            PlanEntry::for_change(Some(&a), &a).action,
            Action::Unchanged
        );
        let d = PlanEntry::deleted(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        );
        assert_eq!(d.to_string(), "configmap/c deleted");
        assert_eq!(d.namespace, "");
        assert!(
            d.diff
                .as_deref()
                .is_some_and(|d| d.contains("-kind: ConfigMap"))
        );
        let added = FieldChange {
            path: "x".into(),
            before: None,
            after: Some(json!(null)),
        };
        assert_eq!(
            serde_json::to_value(&added).unwrap(),
            json!({"path": "x", "after": null})
        );
    }
}
