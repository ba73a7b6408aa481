//! The plan/diff builder ([`stepbox::plan`]) on two sets of objects: what a
//! namespace held before a run and after it.
//!
//! Objects are built from structured input ([`arbitrary`]): Kubernetes-ish
//! shapes (kinds including `Secret`, server-maintained metadata, named
//! lists) with arbitrary values in between. Objects of the two sets are
//! paired by (apiVersion, kind, namespace, name), as a run's plan pairs the
//! live object with the applied one. Invariants:
//!
//! - an object against itself is `unchanged`, with no field changes and an
//!   empty diff;
//! - `configured` has at least one field change and a non-empty diff;
//!   `unchanged` has neither; `created` has no changes;
//! - every field change changes something (`before != after`), and the
//!   changes of (b, a) are those of (a, b) with the sides swapped (objects
//!   other than Secrets);
//! - no Secret value (under `data` or `stringData`) shows in a diff, a
//!   field change or the JSON plan entry;
//! - a plan entry survives a JSON round trip (floats compared as serde_json
//!   reads them back).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use stepbox::plan::{self, Action, FieldChange, PlanEntry};

/// Keys that steer the plan code, plus arbitrary ones.
const KEYS: &[&str] = &[
    "name",
    "data",
    "stringData",
    "spec",
    "status",
    "metadata",
    "labels",
    "annotations",
    "resourceVersion",
    "uid",
    "generation",
    "managedFields",
    "creationTimestamp",
    "selfLink",
    "kubectl.kubernetes.io/last-applied-configuration",
    "containers",
    "image",
    "replicas",
    "a.b",
    "x y",
    "[0]",
    "",
    "kind",
    "apiVersion",
    "items",
    "type",
];
const KINDS: &[&str] = &["Secret", "ConfigMap", "Deployment", "Widget", "Role"];
const API_VERSIONS: &[&str] = &["v1", "apps/v1", "example.com/v1", ""];

/// A JSON value, bounded in depth by the input's length.
#[derive(Debug, Arbitrary)]
enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Known(u8),
    Array(Vec<Tree>),
    /// A list whose items are objects with a `name` (merged by name).
    Named(Vec<(u8, Tree)>),
    Object(Vec<(Key, Tree)>),
}

#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Any(String),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Known(i) => KEYS[usize::from(*i) % KEYS.len()].to_string(),
            Key::Any(s) => s.clone(),
        }
    }
}

impl Tree {
    fn value(&self, depth: usize) -> Value {
        if depth > 24 {
            return Value::Null;
        }
        match self {
            Tree::Null => Value::Null,
            Tree::Bool(b) => json!(b),
            Tree::Int(i) => json!(i),
            Tree::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Tree::Str(s) => json!(s),
            Tree::Known(i) => json!(KEYS[usize::from(*i) % KEYS.len()]),
            Tree::Array(items) => Value::Array(items.iter().map(|t| t.value(depth + 1)).collect()),
            Tree::Named(items) => Value::Array(
                items
                    .iter()
                    .map(|(n, t)| {
                        let mut v = t.value(depth + 1);
                        if !v.is_object() {
                            v = json!({});
                        }
                        v["name"] = json!(format!("n{}", n % 4));
                        v
                    })
                    .collect(),
            ),
            Tree::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, t)| (k.text(), t.value(depth + 1)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

/// One object of a set.
#[derive(Debug, Arbitrary)]
struct Object {
    api_version: u8,
    kind: u8,
    namespace: u8,
    name: u8,
    resource_version: u8,
    /// Secret values, as `(key, token)`: rendered as unique strings that
    /// must never show.
    secret_data: Vec<(u8, u16)>,
    secret_data_as_string: bool,
    string_data: Vec<(u8, u16)>,
    rest: Tree,
}

fn secret_token(n: u16) -> String {
    format!("zz-secret-{n:05}-zz")
}

impl Object {
    fn value(&self, namespaces: &[String]) -> Value {
        let mut v = self.rest.value(0);
        if !v.is_object() {
            v = json!({});
        }
        let kind = KINDS[usize::from(self.kind) % KINDS.len()];
        let api_version = API_VERSIONS[usize::from(self.api_version) % API_VERSIONS.len()];
        v["apiVersion"] = json!(api_version);
        v["kind"] = json!(kind);
        if !v["metadata"].is_object() {
            v["metadata"] = json!({});
        }
        let ns = &namespaces[usize::from(self.namespace) % namespaces.len()];
        v["metadata"]["namespace"] = json!(ns);
        v["metadata"]["name"] = json!(format!("o{}", self.name % 8));
        v["metadata"]["resourceVersion"] = json!(self.resource_version.to_string());
        let secret_map = |entries: &[(u8, u16)]| -> Value {
            Value::Object(
                entries
                    .iter()
                    .map(|(k, n)| (format!("k{}", k % 6), json!(secret_token(*n))))
                    .collect(),
            )
        };
        if !self.secret_data.is_empty() {
            v["data"] = if self.secret_data_as_string {
                json!(secret_token(self.secret_data[0].1))
            } else {
                secret_map(&self.secret_data)
            };
        }
        if !self.string_data.is_empty() {
            v["stringData"] = secret_map(&self.string_data);
        }
        v
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    namespaces: Vec<String>,
    before: Vec<Object>,
    after: Vec<Object>,
}

fn identity(v: &Value) -> (String, String, String, String) {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name"),
    )
}

fn is_core_secret(v: &Value) -> bool {
    v["kind"] == "Secret" && (v["apiVersion"] == "v1" || v.get("apiVersion").is_none())
}

/// Secret tokens of `v` that do not also appear outside its secret values
/// (where showing them is fine).
fn hidden_tokens(v: &Value) -> Vec<String> {
    if !is_core_secret(v) {
        return Vec::new();
    }
    let mut rest = v.clone();
    let mut tokens = Vec::new();
    for field in ["data", "stringData"] {
        if let Some(d) = rest.as_object_mut().and_then(|m| m.shift_remove(field)) {
            collect_strings(&d, &mut tokens);
        }
    }
    let visible = rest.to_string();
    tokens.retain(|t| t.starts_with("zz-secret-") && !visible.contains(t.as_str()));
    tokens
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

fn assert_hidden(tokens: &[String], what: &str, text: &str) {
    for t in tokens {
        assert!(
            !text.contains(t.as_str()),
            "secret value {t} shows in {what}:\n{text}"
        );
    }
}

fn change_key(c: &FieldChange) -> String {
    format!("{} {:?} {:?}", c.path, c.before, c.after)
}

fn check_pair(before: Option<&Value>, after: &Value) {
    let mut tokens = hidden_tokens(after);
    if let Some(b) = before {
        tokens.extend(hidden_tokens(b));
        // A token the other side shows outside its Secret values may show.
        let shown = |v: &Value| {
            let mut v = v.clone();
            if is_core_secret(&v) {
                if let Some(m) = v.as_object_mut() {
                    m.shift_remove("data");
                    m.shift_remove("stringData");
                }
            }
            v.to_string()
        };
        let (sb, sa) = (shown(b), shown(after));
        tokens.retain(|t| !sb.contains(t.as_str()) && !sa.contains(t.as_str()));
    }
    let entry = PlanEntry::for_change(before, after);
    let _ = entry.to_string();
    let action = plan::classify(before, after);
    assert_eq!(entry.action, action);
    let diff = plan::unified_diff(before, Some(after));
    match action {
        Action::Created => {
            assert!(before.is_none());
            assert!(entry.changes.is_empty());
            assert!(!diff.is_empty(), "a create without a diff");
        }
        Action::Unchanged => {
            assert!(
                entry.changes.is_empty(),
                "unchanged with changes: {:?}",
                entry.changes
            );
            assert!(diff.is_empty(), "unchanged with a diff:\n{diff}");
            assert!(entry.diff.is_none());
        }
        Action::Configured => {
            assert!(
                !entry.changes.is_empty(),
                "configured without field changes:\n{diff}\nbefore: {before:?}\nafter: {after}"
            );
            assert!(!diff.is_empty(), "configured without a diff");
        }
        Action::Deleted => unreachable!("for_change never deletes"),
    }
    for c in &entry.changes {
        assert_ne!(
            c.before, c.after,
            "a change that changes nothing at {}",
            c.path
        );
        assert_hidden(&tokens, "a field change", &c.to_string());
    }
    assert_hidden(&tokens, "a diff", &diff);
    let json = serde_json::to_string(&entry).expect("a plan entry serializes");
    assert_hidden(&tokens, "a JSON plan entry", &json);
    let back: PlanEntry = serde_json::from_str(&json).expect("a plan entry deserializes");
    // Compared as JSON parsed the same way on both sides: serde_json's
    // default float parser (without its `float_roundtrip` feature) may read
    // a float back 1 ULP off, which is not the plan's doing.
    let reparsed: Value = serde_json::from_str(&json).expect("JSON parses");
    assert_eq!(
        serde_json::to_value(&back).expect("a plan entry serializes"),
        reparsed,
        "JSON round trip"
    );

    if let Some(b) = before {
        if !is_core_secret(b) && !is_core_secret(after) {
            let mut forward: Vec<String> = plan::field_changes(b, after)
                .iter()
                .map(change_key)
                .collect();
            let mut backward: Vec<String> = plan::field_changes(after, b)
                .into_iter()
                .map(|c| {
                    change_key(&FieldChange {
                        path: c.path,
                        before: c.after,
                        after: c.before,
                    })
                })
                .collect();
            forward.sort();
            backward.sort();
            assert_eq!(forward, backward, "field changes are not symmetric");
        }
    }
}

fn check_self(v: &Value) {
    assert_eq!(plan::classify(Some(v), v), Action::Unchanged);
    assert!(plan::field_changes(v, v).is_empty());
    assert_eq!(plan::unified_diff(Some(v), Some(v)), "");
    assert_eq!(PlanEntry::for_change(Some(v), v).diff, None);
    let tokens = hidden_tokens(v);
    let deleted = PlanEntry::deleted(v);
    assert_eq!(deleted.action, Action::Deleted);
    assert!(deleted.diff.as_deref().is_some_and(|d| !d.is_empty()));
    assert_hidden(
        &tokens,
        "a delete diff",
        deleted.diff.as_deref().unwrap_or(""),
    );
    let _ = plan::diff_name(v);
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mut namespaces = input.namespaces;
    namespaces.truncate(3);
    if namespaces.is_empty() {
        namespaces.push("dev".into());
    }
    let before: Vec<Value> = input
        .before
        .iter()
        .take(8)
        .map(|o| o.value(&namespaces))
        .collect();
    let after: Vec<Value> = input
        .after
        .iter()
        .take(8)
        .map(|o| o.value(&namespaces))
        .collect();
    for v in before.iter().chain(&after) {
        check_self(v);
    }
    for a in &after {
        let live = before.iter().find(|b| identity(b) == identity(a));
        check_pair(live, a);
    }
});
