//! Field paths, field sets and `managedFields` entries in Kubernetes'
//! `FieldsV1` encoding (`f:`, `k:`, `v:`, `i:` and `.`).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;

use serde_json::{Map, Value};

/// A list item's key fields as one canonical string (sorted keys), as
/// FieldsV1 `k:` elements write them.
pub(super) fn canonical_key(m: Map<String, Value>) -> String {
    let mut pairs: Vec<(String, Value)> = m.into_iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(pairs.into_iter().collect()).to_string()
}

/// One step of a field path, as in `FieldsV1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// `f:<name>`: a field of a map.
    Field(String),
    /// `k:<json>`: the item of an associative list with these key fields
    /// (canonical JSON object, keys sorted).
    Key(String),
    /// `v:<json>`: the item of a set (list of scalars) with this value. Only
    /// ever read from objects exported from a real cluster.
    Value(String),
    /// `i:<n>`: the item at an index. Only ever read, as for `Value`.
    Index(usize),
}

/// A path from the object root to one field.
pub type FieldPath = Vec<PathElement>;

/// Renders a path the way Kubernetes conflict messages do:
/// `.spec.template.spec.containers[name="web"].image`.
pub fn display_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for el in path {
        match el {
            PathElement::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            PathElement::Key(json) => {
                let parts: Vec<String> = match serde_json::from_str::<Map<String, Value>>(json) {
                    Ok(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    Err(_) => vec![json.clone()],
                };
                out.push('[');
                out.push_str(&parts.join(","));
                out.push(']');
            }
            PathElement::Value(json) => {
                out.push_str("[=");
                out.push_str(json);
                out.push(']');
            }
            PathElement::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
    out
}

/// A set of field paths one manager owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<FieldPath>);

impl FieldSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of paths.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: FieldPath) -> bool {
        self.0.insert(path)
    }

    /// True when the set holds exactly `path`.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.0.contains(path)
    }

    /// The paths, in order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldPath> {
        self.0.iter()
    }

    /// True when the set holds a path strictly below `path`.
    pub fn has_descendant(&self, path: &[PathElement]) -> bool {
        self.0
            .range::<[PathElement], _>((Bound::Excluded(path), Bound::Unbounded))
            .next()
            .is_some_and(|q| q.len() > path.len() && q.starts_with(path))
    }

    /// The nearest strict ancestor of `path` that the set holds with nothing
    /// below it (a candidate for a field owned as a whole), if any. Whether
    /// it really is atomic depends on the value there: see [`owner_of`](super::owner_of).
    pub fn atomic_ancestor(&self, path: &[PathElement]) -> Option<FieldPath> {
        (1..path.len()).rev().map(|i| &path[..i]).find_map(|q| {
            let item = matches!(
                q.last(),
                Some(PathElement::Key(_) | PathElement::Value(_) | PathElement::Index(_))
            );
            (!item && self.contains(q) && !self.has_descendant(q)).then(|| q.to_vec())
        })
    }

    /// Removes `path` and every path below it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        let doomed: Vec<FieldPath> = self
            .0
            .range::<[PathElement], _>((Bound::Included(path), Bound::Unbounded))
            .take_while(|q| q.starts_with(path))
            .cloned()
            .collect();
        for q in doomed {
            self.0.remove(&q);
        }
    }

    /// Removes exactly `path`.
    pub fn remove(&mut self, path: &[PathElement]) -> bool {
        self.0.remove(path)
    }

    /// Paths in `self` but not in `other`.
    pub fn difference<'a>(&'a self, other: &'a FieldSet) -> impl Iterator<Item = &'a FieldPath> {
        self.0.difference(&other.0)
    }

    /// The set in Kubernetes' `FieldsV1` JSON form.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            present: bool,
            children: std::collections::BTreeMap<String, Node>,
        }
        fn render(node: &Node) -> Value {
            let mut m = Map::new();
            if node.present && !node.children.is_empty() {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            for (k, child) in &node.children {
                m.insert(k.clone(), render(child));
            }
            Value::Object(m)
        }
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for el in path {
                let key = match el {
                    PathElement::Field(f) => format!("f:{f}"),
                    PathElement::Key(j) => format!("k:{j}"),
                    PathElement::Value(j) => format!("v:{j}"),
                    PathElement::Index(i) => format!("i:{i}"),
                };
                node = node.children.entry(key).or_default();
            }
            node.present = true;
        }
        render(&root)
    }

    /// Parses Kubernetes' `FieldsV1` JSON form.
    ///
    /// # Errors
    /// A message when the JSON is not a `FieldsV1` tree.
    pub fn from_fields_v1(v: &Value) -> std::result::Result<Self, String> {
        fn walk(
            v: &Value,
            path: &mut FieldPath,
            out: &mut FieldSet,
            depth: usize,
        ) -> std::result::Result<(), String> {
            if depth > 128 {
                return Err("fieldsV1 is nested too deeply".into());
            }
            let m = v.as_object().ok_or("fieldsV1 nodes must be objects")?;
            if m.is_empty() && !path.is_empty() {
                out.insert(path.clone());
                return Ok(());
            }
            for (k, child) in m {
                if k == "." {
                    if !path.is_empty() {
                        out.insert(path.clone());
                    }
                    continue;
                }
                let el = if let Some(f) = k.strip_prefix("f:") {
                    PathElement::Field(f.to_string())
                } else if let Some(j) = k.strip_prefix("k:") {
                    let parsed: Map<String, Value> =
                        serde_json::from_str(j).map_err(|e| format!("bad key {k:?}: {e}"))?;
                    PathElement::Key(canonical_key(parsed))
                } else if let Some(j) = k.strip_prefix("v:") {
                    let parsed: Value =
                        serde_json::from_str(j).map_err(|e| format!("bad value {k:?}: {e}"))?;
                    PathElement::Value(parsed.to_string())
                } else if let Some(i) = k.strip_prefix("i:") {
                    PathElement::Index(i.parse().map_err(|_| format!("bad index {k:?}"))?)
                } else {
                    return Err(format!("unknown fieldsV1 element {k:?}"));
                };
                path.push(el);
                walk(child, path, out, depth + 1)?;
                path.pop();
            }
            Ok(())
        }
        let mut out = FieldSet::new();
        walk(v, &mut Vec::new(), &mut out, 0)?;
        Ok(out)
    }
}

impl fmt::Display for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paths: Vec<String> = self.0.iter().map(|p| display_path(p)).collect();
        f.write_str(&paths.join(", "))
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`"stepbox"`, `"kubectl"`).
    pub manager: String,
    /// `"Apply"` or `"Update"`.
    pub operation: String,
    /// The apiVersion the fields were written in.
    pub api_version: String,
    /// When the set last changed (RFC 3339), if known.
    pub time: Option<String>,
    /// The subresource written (`"status"`), if any.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// True for entries of the main resource (not `status` etc.).
    pub fn is_main_resource(&self) -> bool {
        self.subresource.as_deref().is_none_or(str::is_empty)
    }

    /// The entry as Kubernetes stores it.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), Value::String(self.operation.clone()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m)
    }

    /// Parses one stored entry; `None` when it is not a `FieldsV1` entry.
    pub fn from_value(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if v.get("fieldsType")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "FieldsV1")
        {
            return None;
        }
        let fields = match v.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f).ok()?,
            None => FieldSet::new(),
        };
        Some(Self {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation").unwrap_or_else(|| "Update".into()),
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").filter(|s| !s.is_empty()),
            fields,
        })
    }
}

/// Reads `metadata.managedFields` of an object (unparseable entries are
/// skipped).
pub fn managed_fields(object: &Value) -> Vec<ManagedFieldsEntry> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(ManagedFieldsEntry::from_value)
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `metadata.managedFields` (removing it when `entries` is empty).
pub fn set_managed_fields(object: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect()),
        );
    }
}
