//! Server-side apply and JSON merge patch, as pure functions on JSON.
//!
//! This is the field-ownership engine behind [`MemoryCluster`]'s `apply`
//! (any other in-process store can reuse it). It follows Kubernetes'
//! structured-merge-diff closely enough for deployment steps:
//!
//! - An applied configuration owns a **field set**: every scalar, atomic
//!   list and empty map it sets, plus every item of an associative list.
//! - **Associative lists** merge item by item. Items are keyed by `name`
//!   (containers, env, volumes, ...), except `ports` (keyed by
//!   `containerPort` or `port`, plus `protocol` defaulting to `TCP`, as in
//!   Kubernetes) and `volumeMounts` (keyed by `mountPath`). A list whose
//!   items do not all carry the key, or carry it twice, is **atomic**: it is
//!   replaced as a whole and owned as one field.
//! - Maps merge recursively.
//! - A field the same manager applied before but leaves out now is removed,
//!   unless another manager owns it too.
//! - Setting a field another manager owns to a *different* value is a
//!   conflict ([`Error::Conflict`] naming the fields and managers)
//!   unless forced, which moves the ownership. Equal values are shared.
//! - Ownership is stored in the object itself, in `metadata.managedFields`,
//!   in Kubernetes' `FieldsV1` format (`f:`, `k:`, `v:`, `i:` and `.`), one
//!   entry per manager and operation, so objects exported from a real
//!   cluster keep their real owners.
//!
//! Fields never owned (stripped from the configuration before apply, like
//! the API server does): `apiVersion`, `kind`, `metadata.name`,
//! `metadata.namespace`, `metadata.uid`, `metadata.resourceVersion`,
//! `metadata.generation`, `metadata.creationTimestamp`,
//! `metadata.managedFields`, `metadata.selfLink`, `metadata.deletionTimestamp`,
//! `metadata.deletionGracePeriodSeconds`, and `status` (the main resource
//! ignores it). A `null` in the configuration means "no opinion".
//!
//! Objects created by [`SEED_MANAGER`] (seeded test fixtures, whose real
//! history is unknown) never cause conflicts: their fields pass to whoever
//! applies a different value.
//!
//! [`MemoryCluster`]: https://docs.rs/stepbox-cluster

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::{Error, Result};

mod fields;

use fields::canonical_key;
pub use fields::{
    FieldPath, FieldSet, ManagedFieldsEntry, PathElement, display_path, managed_fields,
    set_managed_fields,
};

/// The field manager recorded for objects loaded by
/// [`MemoryCluster::seed_yaml`](https://docs.rs/stepbox-cluster). It never
/// causes conflicts.
pub const SEED_MANAGER: &str = "seed";

/// `metadata` fields the server owns; stripped from applied configurations.
pub const SERVER_METADATA_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// How the items of a list are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKeys {
    Name,
    MountPath,
    Port,
}

fn item_key(keys: ListKeys, item: &Value) -> Option<String> {
    let obj = item.as_object()?;
    let mut m = Map::new();
    match keys {
        ListKeys::Name => {
            m.insert(
                "name".into(),
                Value::String(obj.get("name")?.as_str()?.to_string()),
            );
        }
        ListKeys::MountPath => {
            m.insert(
                "mountPath".into(),
                Value::String(obj.get("mountPath")?.as_str()?.to_string()),
            );
        }
        ListKeys::Port => {
            let field = if obj.get("containerPort").is_some_and(Value::is_number) {
                "containerPort"
            } else {
                "port"
            };
            let port = obj.get(field).filter(|p| p.is_number())?;
            m.insert(field.into(), port.clone());
            let protocol = obj.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            m.insert("protocol".into(), Value::String(protocol.to_string()));
        }
    }
    Some(canonical_key(m))
}

/// The keys of a list's items, when the list is associative: every item
/// carries the key and no key repeats.
fn list_keys(field: Option<&str>, items: &[Value]) -> Option<(ListKeys, Vec<String>)> {
    if items.is_empty() {
        return None;
    }
    let mut candidates = Vec::new();
    match field {
        Some("ports") => candidates.push(ListKeys::Port),
        Some("volumeMounts") => candidates.push(ListKeys::MountPath),
        _ => {}
    }
    candidates.push(ListKeys::Name);
    candidates.into_iter().find_map(|kind| {
        let keys: Vec<String> = items
            .iter()
            .map(|i| item_key(kind, i))
            .collect::<Option<_>>()?;
        let unique: BTreeSet<&String> = keys.iter().collect();
        (unique.len() == keys.len()).then_some((kind, keys))
    })
}

fn key_matches(key: &Map<String, Value>, item: &Value) -> bool {
    let Some(obj) = item.as_object() else {
        return false;
    };
    key.iter().all(|(k, want)| match obj.get(k) {
        Some(have) => have == want,
        None => k == "protocol" && want == "TCP",
    })
}

fn find_item(items: &[Value], el: &PathElement) -> Option<usize> {
    match el {
        PathElement::Key(json) => {
            let key: Map<String, Value> = serde_json::from_str(json).ok()?;
            items.iter().position(|i| key_matches(&key, i))
        }
        PathElement::Value(json) => {
            let want: Value = serde_json::from_str(json).ok()?;
            items.iter().position(|i| *i == want)
        }
        PathElement::Index(i) => (*i < items.len()).then_some(*i),
        PathElement::Field(_) => None,
    }
}

/// The value at `path`, if present.
pub fn get_path<'a>(v: &'a Value, path: &[PathElement]) -> Option<&'a Value> {
    let mut cur = v;
    for el in path {
        cur = match (el, cur) {
            (PathElement::Field(f), Value::Object(m)) => m.get(f)?,
            (_, Value::Array(items)) => &items[find_item(items, el)?],
            _ => return None,
        };
    }
    Some(cur)
}

fn get_path_mut<'a>(v: &'a mut Value, path: &[PathElement]) -> Option<&'a mut Value> {
    let mut cur = v;
    for el in path {
        cur = match cur {
            Value::Object(m) => match el {
                PathElement::Field(f) => m.get_mut(f)?,
                _ => return None,
            },
            Value::Array(items) => {
                let i = find_item(items, el)?;
                &mut items[i]
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// Removes the value at `path`; true when something was removed.
pub fn remove_path(v: &mut Value, path: &[PathElement]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = get_path_mut(v, parent_path) else {
        return false;
    };
    match (parent, last) {
        (Value::Object(m), PathElement::Field(f)) => m.shift_remove(f).is_some(),
        (Value::Array(items), el) => match find_item(items, el) {
            Some(i) => {
                items.remove(i);
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// Removes map entries whose value is `null`, at any depth ("no opinion" in
/// an applied configuration).
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Which part of an object a write addresses: the main resource (every
/// field but `status`) or its `status` subresource (only `status`), as the
/// API server splits writes of kinds with a status subresource. Ownership
/// of each part is recorded apart: entries of the status subresource carry
/// `subresource: status` in `managedFields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The object without `status`.
    #[default]
    Main,
    /// `status` alone (`.../NAME/status`).
    Status,
}

impl Scope {
    /// The subresource a `managedFields` entry of this scope names.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Self::Main => None,
            Self::Status => Some("status"),
        }
    }

    /// True when `entry` records ownership in this scope.
    pub fn covers(self, entry: &ManagedFieldsEntry) -> bool {
        match self {
            Self::Main => entry.is_main_resource(),
            Self::Status => entry.subresource.as_deref() == Some("status"),
        }
    }

    /// The part of `config` a write in this scope sets, as the server sees
    /// it: [`sanitize_config`] for the main resource; `apiVersion`, `kind`
    /// and `status` (without nulls) for the status subresource.
    pub fn config(self, config: &Value) -> Value {
        match self {
            Self::Main => sanitize_config(config),
            Self::Status => {
                let mut m = Map::new();
                for k in ["apiVersion", "kind", "status"] {
                    if let Some(v) = config.get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
                let mut cfg = Value::Object(m);
                strip_nulls(&mut cfg);
                cfg
            }
        }
    }
}

/// The configuration as the server sees it: no `status`, no server-owned
/// metadata, no nulls.
pub fn sanitize_config(config: &Value) -> Value {
    let mut cfg = config.clone();
    strip_nulls(&mut cfg);
    if let Some(m) = cfg.as_object_mut() {
        m.shift_remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_METADATA_FIELDS {
                meta.shift_remove(*f);
            }
        }
    }
    cfg
}

/// The field set an applied configuration owns (see the module docs for
/// what is left out). Expects a [sanitized](sanitize_config) configuration
/// (or one [scoped](Scope::config) to the status subresource: then the
/// fields under `status`).
pub fn field_set(config: &Value) -> FieldSet {
    field_set_and_changes(config, None).0
}

/// The field set of a configuration and, when `live` is given, the leaves of
/// that set whose live value the configuration would change (one walk, no
/// per-path lookups, so large lists stay linear).
fn field_set_and_changes(config: &Value, live: Option<&Value>) -> (FieldSet, Vec<FieldPath>) {
    struct Walk {
        set: FieldSet,
        changed: Vec<FieldPath>,
    }
    impl Walk {
        fn leaf(&mut self, v: &Value, live: Option<&Value>, field: Option<&str>, path: &FieldPath) {
            self.set.insert(path.clone());
            if differs(v, live, field) {
                self.changed.push(path.clone());
            }
        }

        fn node(
            &mut self,
            v: &Value,
            live: Option<&Value>,
            field: Option<&str>,
            path: &mut FieldPath,
        ) {
            match v {
                Value::Object(m) if !m.is_empty() => {
                    let live_map = live.and_then(Value::as_object);
                    for (k, child) in m {
                        path.push(PathElement::Field(k.clone()));
                        self.node(child, live_map.and_then(|l| l.get(k)), Some(k), path);
                        path.pop();
                    }
                }
                Value::Array(items) => match list_keys(field, items) {
                    Some((kind, keys)) => {
                        let live_items = live_index(live, field, kind);
                        for (key, item) in keys.into_iter().zip(items) {
                            let live_item = live_items
                                .as_ref()
                                .and_then(|ix| ix.get(key.as_str()).copied());
                            path.push(PathElement::Key(key));
                            self.set.insert(path.clone());
                            self.node(item, live_item, None, path);
                            path.pop();
                        }
                    }
                    None => self.leaf(v, live, field, path),
                },
                _ => self.leaf(v, live, field, path),
            }
        }
    }
    let mut walk = Walk {
        set: FieldSet::new(),
        changed: Vec::new(),
    };
    let Some(root) = config.as_object() else {
        return (walk.set, walk.changed);
    };
    let mut path = Vec::new();
    for (k, v) in root {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                let Some(meta) = v.as_object() else { continue };
                let live_meta = live
                    .and_then(|l| l.get("metadata"))
                    .and_then(Value::as_object);
                for (mk, mv) in meta {
                    if mk == "name"
                        || mk == "namespace"
                        || SERVER_METADATA_FIELDS.contains(&mk.as_str())
                    {
                        continue;
                    }
                    path.push(PathElement::Field("metadata".into()));
                    path.push(PathElement::Field(mk.clone()));
                    walk.node(mv, live_meta.and_then(|m| m.get(mk)), Some(mk), &mut path);
                    path.clear();
                }
            }
            _ => {
                path.push(PathElement::Field(k.clone()));
                walk.node(v, live.and_then(|l| l.get(k)), Some(k), &mut path);
                path.clear();
            }
        }
    }
    (walk.set, walk.changed)
}

/// The items of a live list by key, when it is associative with the same
/// kind of key as the configuration's list.
fn live_index<'a>(
    live: Option<&'a Value>,
    field: Option<&str>,
    kind: ListKeys,
) -> Option<std::collections::HashMap<String, &'a Value>> {
    let items = live?.as_array()?;
    let (live_kind, keys) = list_keys(field, items)?;
    (live_kind == kind).then(|| keys.into_iter().zip(items).collect())
}

/// Merges an applied configuration into a live value: maps recursively,
/// associative lists item by item (live order kept, new items appended in
/// configuration order), everything else replaced.
pub fn merge_config(live: &mut Value, config: &Value) {
    merge_at(live, config, None);
}

fn merge_at(live: &mut Value, cfg: &Value, field: Option<&str>) {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) => {
            for (k, cv) in c {
                match l.get_mut(k) {
                    Some(lv) => merge_at(lv, cv, Some(k)),
                    None => {
                        l.insert(k.clone(), cv.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(c)) => {
            // An empty list claims an associative list without adding items.
            if c.is_empty() && list_keys(field, l).is_some() {
                return;
            }
            let merged = match (list_keys(field, c), list_keys(field, l)) {
                (Some((ck, ckeys)), Some((lk, lkeys))) if ck == lk => {
                    let config_items: std::collections::HashMap<&str, &Value> =
                        ckeys.iter().map(String::as_str).zip(c.iter()).collect();
                    let live_keys: std::collections::HashSet<&str> =
                        lkeys.iter().map(String::as_str).collect();
                    let mut out = Vec::with_capacity(l.len().max(c.len()));
                    for (lkey, litem) in lkeys.iter().zip(l.iter()) {
                        let mut item = litem.clone();
                        if let Some(citem) = config_items.get(lkey.as_str()) {
                            merge_at(&mut item, citem, None);
                        }
                        out.push(item);
                    }
                    for (ckey, citem) in ckeys.iter().zip(c.iter()) {
                        if !live_keys.contains(ckey.as_str()) {
                            out.push(citem.clone());
                        }
                    }
                    out
                }
                _ => c.clone(),
            };
            *l = merged;
        }
        (live, cfg) => *live = cfg.clone(),
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes every path of `doomed` from `node` (found at `path`) in one walk:
/// list items as a whole, fields singly. Maps and lists the removal leaves
/// empty go too, unless someone owns them or they are top-level fields.
fn remove_fields(
    node: &mut Value,
    field: Option<&str>,
    path: &mut FieldPath,
    doomed: &FieldSet,
    owned_exactly: &dyn Fn(&[PathElement]) -> bool,
) {
    match node {
        Value::Object(m) => {
            let mut drop_keys = std::collections::HashSet::new();
            for (k, child) in m.iter_mut() {
                path.push(PathElement::Field(k.clone()));
                if doomed.contains(path) {
                    drop_keys.insert(k.clone());
                } else if doomed.has_descendant(path) {
                    let was_empty = is_empty_container(child);
                    remove_fields(child, Some(k), path, doomed, owned_exactly);
                    if !was_empty
                        && is_empty_container(child)
                        && path.len() > 1
                        && !owned_exactly(path)
                    {
                        drop_keys.insert(k.clone());
                    }
                }
                path.pop();
            }
            if !drop_keys.is_empty() {
                m.retain(|k, _| !drop_keys.contains(k));
            }
        }
        Value::Array(items) => {
            let keys: Vec<PathElement> = match list_keys(field, items) {
                Some((_, keys)) => keys.into_iter().map(PathElement::Key).collect(),
                None => items
                    .iter()
                    .map(|i| PathElement::Value(i.to_string()))
                    .collect(),
            };
            let old = std::mem::take(items);
            for (el, mut item) in keys.into_iter().zip(old) {
                path.push(el);
                let gone = doomed.contains(path);
                if !gone && doomed.has_descendant(path) {
                    remove_fields(&mut item, None, path, doomed, owned_exactly);
                }
                path.pop();
                if !gone {
                    items.push(item);
                }
            }
        }
        _ => {}
    }
}

/// One field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldConflict {
    /// The manager owning the field.
    pub manager: String,
    /// The apiVersion that manager wrote in.
    pub api_version: String,
    /// The field (rendered as in [`display_path`]).
    pub path: String,
}

/// Formats conflicts the way `kubectl apply --server-side` reports them.
pub fn conflict_message(conflicts: &[FieldConflict]) -> String {
    /// Conflicts named in full; the rest are counted.
    const SHOWN: usize = 20;
    let n = conflicts.len();
    let mut parts: Vec<String> = conflicts
        .iter()
        .take(SHOWN)
        .map(|c| {
            format!(
                "conflict with {:?} using {}: {}",
                c.manager, c.api_version, c.path
            )
        })
        .collect();
    if n > SHOWN {
        parts.push(format!("and {} more", n - SHOWN));
    }
    format!(
        "Apply failed with {n} conflict{}: {} (apply with force to take ownership, or leave the field{} out)",
        if n == 1 { "" } else { "s" },
        parts.join("; "),
        if n == 1 { "" } else { "s" },
    )
}

fn last_field(path: &[PathElement]) -> Option<&str> {
    match path.last() {
        Some(PathElement::Field(f)) => Some(f),
        _ => None,
    }
}

/// True when `v` (found at a field named `field`) is owned as a whole:
/// scalars and atomic lists, not maps or associative lists.
fn is_atomic_value(field: Option<&str>, v: &Value) -> bool {
    match v {
        Value::Object(_) => false,
        Value::Array(items) => list_keys(field, items).is_none(),
        _ => true,
    }
}

/// The path through which `fields` owns `path` in `object`: `path` itself,
/// something below it, or an ancestor owned as a whole (a scalar or atomic
/// list in `object`; an empty map or list owns only itself, not what others
/// put in it).
pub fn owner_of(fields: &FieldSet, path: &[PathElement], object: &Value) -> Option<FieldPath> {
    if fields.contains(path) || fields.has_descendant(path) {
        return Some(path.to_vec());
    }
    fields
        .atomic_ancestor(path)
        .filter(|q| get_path(object, q).is_none_or(|v| is_atomic_value(last_field(q), v)))
}

/// True when applying `cfg` at a path changes the live value there. An
/// empty map (or an empty list where the live list is associative) claims
/// the container, not its contents, so it changes nothing.
fn differs(cfg: &Value, live: Option<&Value>, field: Option<&str>) -> bool {
    match (cfg, live) {
        (_, None) => false,
        (Value::Object(c), Some(Value::Object(_))) if c.is_empty() => false,
        (Value::Array(c), Some(Value::Array(l))) if c.is_empty() => {
            list_keys(field, l).is_none() && !l.is_empty()
        }
        (c, Some(l)) => c != l,
    }
}

/// Server-side apply of `config` by `manager` onto `live` (or onto nothing,
/// for a create).
///
/// Returns the merged object with `metadata.managedFields` updated. It does
/// not touch server bookkeeping (uid, resourceVersion, generation,
/// timestamps, status): that is the store's job. `now` is the RFC 3339 time
/// recorded for a changed field set.
///
/// # Errors
/// [`Error::Conflict`] when fields owned by other managers would
/// change and `force` is false.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value> {
    apply_in(Scope::Main, live, config, manager, force, now)
}

/// [`apply`] to one part of the object: `Scope::Main` is [`apply`];
/// `Scope::Status` applies `config`'s `status` alone (server-side apply to
/// the status subresource, `PATCH .../NAME/status`), with ownership kept in
/// entries of subresource `status`; everything else in `config` is
/// ignored.
///
/// # Errors
/// [`Error::Conflict`] when fields owned by other managers of the same
/// scope would change and `force` is false.
pub fn apply_in(
    scope: Scope,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value> {
    let cfg = scope.config(config);
    let (new_set, changed) = field_set_and_changes(&cfg, live);
    let api_version = cfg
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let mut object = match live {
        Some(l) => l.clone(),
        None => {
            let mut m = Map::new();
            for k in ["apiVersion", "kind"] {
                if let Some(v) = cfg.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            m.insert("metadata".into(), Value::Object(Map::new()));
            Value::Object(m)
        }
    };
    let mut entries = if live.is_some() {
        managed_fields(&object)
    } else {
        Vec::new()
    };
    let is_own =
        |e: &ManagedFieldsEntry| e.manager == manager && e.operation == "Apply" && scope.covers(e);

    // Conflicts: leaves of the configuration whose live value differs and
    // that another manager owns.
    let mut conflicts = Vec::new();
    let mut transfers: Vec<(usize, FieldPath)> = Vec::new();
    for p in &changed {
        for (i, e) in entries.iter().enumerate() {
            if e.manager == manager || !scope.covers(e) {
                continue;
            }
            let Some(owned) = owner_of(&e.fields, p, &object) else {
                continue;
            };
            if !force && e.manager != SEED_MANAGER {
                conflicts.push(FieldConflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    path: display_path(p),
                });
            }
            transfers.push((i, owned));
        }
    }
    if !conflicts.is_empty() {
        conflicts.sort();
        conflicts.dedup();
        return Err(Error::Conflict(conflict_message(&conflicts)));
    }
    for (i, owned) in transfers {
        if let Some(e) = entries.get_mut(i) {
            e.fields.remove_subtree(&owned);
        }
    }

    // Record the manager's new set.
    let prev_set = entries
        .iter()
        .find(|e| is_own(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    match entries.iter_mut().find(|e| is_own(e)) {
        Some(e) => {
            if e.fields != new_set || e.api_version != api_version {
                e.time = Some(now.to_string());
            }
            e.fields = new_set.clone();
            e.api_version = api_version.clone();
        }
        None => entries.push(ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.clone(),
            time: Some(now.to_string()),
            subresource: scope.subresource().map(str::to_string),
            fields: new_set.clone(),
        }),
    }
    entries.retain(|e| !e.fields.is_empty());

    // Remove what the manager dropped, unless someone else still owns it.
    let mut doomed = FieldSet::new();
    for r in prev_set.difference(&new_set) {
        let owned = entries
            .iter()
            .filter(|e| scope.covers(e))
            .any(|e| owner_of(&e.fields, r, &object).is_some());
        if !owned {
            doomed.insert(r.clone());
        }
    }
    if !doomed.is_empty() {
        let owned_exactly = |p: &[PathElement]| entries.iter().any(|e| e.fields.contains(p));
        remove_fields(&mut object, None, &mut Vec::new(), &doomed, &owned_exactly);
    }

    merge_config(&mut object, &cfg);
    set_managed_fields(&mut object, &entries);
    Ok(object)
}

/// JSON merge patch (RFC 7386): objects merge recursively, `null` removes a
/// field, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.shift_remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    fn owners(obj: &Value) -> Vec<(String, FieldSet)> {
        managed_fields(obj)
            .into_iter()
            .map(|e| (e.manager, e.fields))
            .collect()
    }

    #[test]
    fn field_set_matches_kubernetes_shape() {
        let set = field_set(&sanitize_config(&deploy(2, "nginx")));
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {"f:matchLabels": {"f:app": {}}},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&v1).unwrap(), set);
        assert!(
            set.to_string()
                .contains(".spec.template.spec.containers[name=\"web\"].image")
        );
    }

    #[test]
    fn parses_real_fields_v1_with_sets_and_dots() {
        let v = json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"a\"": {}}, "f:labels": {".": {}, "f:x": {}}},
                       "f:spec": {"f:list": {"i:0": {}}}});
        let set = FieldSet::from_fields_v1(&v).unwrap();
        assert!(set.contains(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into())
        ]));
        assert!(set.contains(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("finalizers".into()),
            PathElement::Value("\"a\"".into())
        ]));
        assert_eq!(set.to_fields_v1(), v);
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
    }

    #[test]
    fn create_records_owner() {
        let obj = apply(None, &deploy(2, "nginx"), "stepbox", false, NOW).unwrap();
        assert_eq!(obj["spec"]["replicas"], 2);
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "stepbox");
        assert_eq!(mf["operation"], "Apply");
        assert_eq!(mf["apiVersion"], "apps/v1");
        assert_eq!(mf["fieldsType"], "FieldsV1");
        assert_eq!(mf["time"], NOW);
    }

    #[test]
    fn same_manager_can_change_and_drop_fields() {
        let mut cfg = deploy(2, "nginx");
        cfg["metadata"]["labels"]["extra"] = json!("1");
        let live = apply(None, &cfg, "a", false, NOW).unwrap();
        let live = apply(Some(&live), &deploy(3, "nginx:2"), "a", false, NOW).unwrap();
        assert_eq!(live["spec"]["replicas"], 3);
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        assert_eq!(live["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn other_manager_conflicts_unless_forced() {
        let live = apply(None, &deploy(2, "nginx"), "a", false, NOW).unwrap();
        let err = apply(Some(&live), &deploy(5, "nginx"), "b", false, NOW).unwrap_err();
        let Error::Conflict(msg) = err else {
            panic!("expected conflict")
        };
        assert_eq!(
            msg,
            "Apply failed with 1 conflict: conflict with \"a\" using apps/v1: .spec.replicas \
             (apply with force to take ownership, or leave the field out)"
        );
        // Same values are shared, not conflicting.
        let shared = apply(Some(&live), &deploy(2, "nginx"), "b", false, NOW).unwrap();
        let o = owners(&shared);
        assert_eq!(o.len(), 2);
        let replicas = [
            PathElement::Field("spec".into()),
            PathElement::Field("replicas".into()),
        ];
        assert!(o.iter().all(|(_, s)| s.contains(&replicas)));
        // Forced: ownership moves.
        let forced = apply(Some(&live), &deploy(5, "nginx"), "b", true, NOW).unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        let o = owners(&forced);
        let a = &o.iter().find(|(m, _)| m == "a").unwrap().1;
        let b = &o.iter().find(|(m, _)| m == "b").unwrap().1;
        assert!(!a.contains(&replicas));
        assert!(b.contains(&replicas));
        assert!(a.contains(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into()),
            PathElement::Field("app".into())
        ]));
    }

    #[test]
    fn several_conflicts_are_all_named() {
        let live = apply(None, &deploy(2, "nginx"), "a", false, NOW).unwrap();
        let err = apply(Some(&live), &deploy(5, "httpd"), "b", false, NOW).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("Apply failed with 2 conflicts:"), "{msg}");
        assert!(msg.contains(".spec.replicas"), "{msg}");
        assert!(
            msg.contains(".spec.template.spec.containers[name=\"web\"].image"),
            "{msg}"
        );
    }

    #[test]
    fn dropped_field_shared_with_other_manager_stays() {
        let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
        let live = apply(None, &cm(json!({"a": "1", "b": "2"})), "x", false, NOW).unwrap();
        let live = apply(Some(&live), &cm(json!({"b": "2"})), "y", false, NOW).unwrap();
        let live = apply(Some(&live), &cm(json!({"c": "3"})), "x", false, NOW).unwrap();
        // "a" dropped by x (sole owner) is gone, "b" dropped by x is kept for y.
        assert_eq!(live["data"], json!({"b": "2", "c": "3"}));
        // y drops "b": now nobody owns it.
        let live = apply(Some(&live), &cm(json!({})), "y", false, NOW).unwrap();
        assert_eq!(live["data"], json!({"c": "3"}));
    }

    #[test]
    fn lists_merge_by_key() {
        let pod = |containers: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                             "spec": {"containers": containers}})
        };
        let live = apply(
            None,
            &pod(json!([{"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]}])),
            "m1",
            false,
            NOW,
        )
        .unwrap();
        let live = apply(
            Some(&live),
            &pod(json!([{"name": "sidecar", "image": "s:1"}])),
            "m2",
            false,
            NOW,
        )
        .unwrap();
        let names: Vec<&str> = live["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "sidecar"]);
        // m1 adds an env var to its container: merged by name, sidecar kept.
        let live = apply(
            Some(&live),
            &pod(json!([{"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}])),
            "m1",
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(
            live["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(live["spec"]["containers"][1]["name"], "sidecar");
        // m2 drops its sidecar: the item goes.
        let live = apply(Some(&live), &pod(json!([])), "m2", false, NOW).unwrap();
        assert_eq!(live["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn ports_merge_by_port_and_protocol() {
        let svc = |ports: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": ports}});
        let live = apply(
            None,
            &svc(json!([{"port": 80}, {"port": 53, "protocol": "UDP"}])),
            "a",
            false,
            NOW,
        )
        .unwrap();
        let live = apply(
            Some(&live),
            &svc(json!([{"port": 53, "protocol": "TCP"}])),
            "b",
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(live["spec"]["ports"].as_array().unwrap().len(), 3);
        let live = apply(
            Some(&live),
            &svc(json!([{"port": 80, "targetPort": 8080}])),
            "a",
            false,
            NOW,
        )
        .unwrap();
        assert_eq!(
            live["spec"]["ports"],
            json!([{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "TCP"}])
        );
    }

    #[test]
    fn volume_mounts_key_by_mount_path() {
        let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
            "volumeMounts": [{"name": "v", "mountPath": "/a", "subPath": "a"}, {"name": "v", "mountPath": "/b", "subPath": "b"}]}]}});
        let set = field_set(&sanitize_config(&cfg));
        assert!(
            set.to_fields_v1()
                .to_string()
                .contains("k:{\\\"mountPath\\\":\\\"/a\\\"}")
        );
    }

    #[test]
    fn other_lists_are_atomic() {
        let pod = |args: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"containers": [{"name": "c", "args": args}],
                                                "tolerations": [{"key": "k"}]}})
        };
        let live = apply(None, &pod(json!(["a", "b"])), "m", false, NOW).unwrap();
        let live = apply(Some(&live), &pod(json!(["c"])), "m", false, NOW).unwrap();
        assert_eq!(live["spec"]["containers"][0]["args"], json!(["c"]));
        let err = apply(Some(&live), &pod(json!(["d"])), "other", false, NOW).unwrap_err();
        assert!(
            err.to_string()
                .contains(".spec.containers[name=\"c\"].args"),
            "{err}"
        );
        // Duplicated names make a list atomic instead of an error.
        let dup = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "items": [{"name": "a"}, {"name": "a", "v": 1}]});
        let set = field_set(&sanitize_config(&dup));
        assert!(set.contains(&[PathElement::Field("items".into())]));
    }

    #[test]
    fn type_changes_conflict_with_finer_ownership() {
        let cfg = |v: Value| json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": v}});
        let live = apply(None, &cfg(json!({"b": 1})), "m1", false, NOW).unwrap();
        let err = apply(Some(&live), &cfg(json!("flat")), "m2", false, NOW).unwrap_err();
        assert!(err.to_string().contains("conflict with \"m1\""), "{err}");
        let forced = apply(Some(&live), &cfg(json!("flat")), "m2", true, NOW).unwrap();
        assert_eq!(forced["spec"]["a"], "flat");
        assert_eq!(owners(&forced).len(), 1);
    }

    #[test]
    fn seed_manager_never_conflicts() {
        let live = apply(None, &deploy(2, "nginx"), SEED_MANAGER, false, NOW).unwrap();
        let after = apply(Some(&live), &deploy(4, "nginx"), "stepbox", false, NOW).unwrap();
        assert_eq!(after["spec"]["replicas"], 4);
    }

    #[test]
    fn status_and_server_metadata_are_not_owned() {
        let cfg = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x", "namespace": "n", "uid": "u",
                         "resourceVersion": "3", "nothing": null}, "status": {"a": 1}});
        let set = field_set(&sanitize_config(&cfg));
        assert!(set.is_empty(), "{set}");
        let live = apply(None, &cfg, "m", false, NOW).unwrap();
        assert!(live.get("status").is_none());
        assert!(live["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn status_scope_owns_status_alone() {
        let live = apply(None, &deploy(2, "nginx"), "kubectl", false, NOW).unwrap();
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                         "spec": {"replicas": 9}, "status": {"phase": "Running", "gone": null}});
        let after = apply_in(Scope::Status, Some(&live), &cfg, "ctrl", false, NOW).unwrap();
        assert_eq!(
            after["spec"]["replicas"], 2,
            "spec is not the status scope's"
        );
        assert_eq!(after["status"], json!({"phase": "Running"}));
        let entries = managed_fields(&after);
        let ctrl = entries.iter().find(|e| e.manager == "ctrl").unwrap();
        assert_eq!(ctrl.subresource.as_deref(), Some("status"));
        assert_eq!(
            ctrl.fields.to_fields_v1(),
            json!({"f:status": {"f:phase": {}}})
        );
        // Another manager of the status conflicts; the main resource's do not.
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                           "status": {"phase": "Failed"}});
        let err = apply_in(Scope::Status, Some(&after), &other, "other", false, NOW).unwrap_err();
        assert!(err.to_string().contains("\"ctrl\""), "{err}");
        assert!(apply_in(Scope::Status, Some(&after), &other, "kubectl", false, NOW).is_err());
        // Leaving a field out removes it.
        let less = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                          "status": {"ready": true}});
        let after = apply_in(Scope::Status, Some(&after), &less, "ctrl", false, NOW).unwrap();
        assert_eq!(after["status"], json!({"ready": true}));
        assert!(Scope::Main.covers(&entries[0]) && !Scope::Status.covers(&entries[0]));
    }

    #[test]
    fn unchanged_apply_keeps_time() {
        let live = apply(None, &deploy(2, "nginx"), "a", false, NOW).unwrap();
        let again = apply(
            Some(&live),
            &deploy(2, "nginx"),
            "a",
            false,
            "2030-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(again, live);
    }

    #[test]
    fn large_lists_stay_fast() {
        let obj = |n: usize, v: i64| {
            let items: Vec<Value> = (0..n)
                .map(|i| json!({"name": format!("i{i}"), "v": v}))
                .collect();
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"items": items}})
        };
        let start = std::time::Instant::now();
        let live = apply(None, &obj(5_000, 1), "a", false, NOW).unwrap();
        let live = apply(Some(&live), &obj(5_000, 2), "a", false, NOW).unwrap();
        let err = apply(Some(&live), &obj(5_000, 3), "b", false, NOW).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("Apply failed with 5000 conflicts"), "{msg}");
        assert!(msg.contains("; and 4980 more"), "{msg}");
        assert!(msg.len() < 4096);
        let live = apply(Some(&live), &obj(2_500, 2), "a", false, NOW).unwrap();
        assert_eq!(live["spec"]["items"].as_array().map(Vec::len), Some(2_500));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn merge_patch_rfc7386() {
        // Examples from RFC 7386 appendix A.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    #[test]
    fn paths_render_like_kubernetes() {
        let p = vec![
            PathElement::Field("spec".into()),
            PathElement::Key("{\"containerPort\":80,\"protocol\":\"TCP\"}".into()),
            PathElement::Value("\"x\"".into()),
            PathElement::Index(2),
        ];
        assert_eq!(
            display_path(&p),
            ".spec[containerPort=80,protocol=\"TCP\"][=\"x\"][2]"
        );
    }

    #[test]
    fn path_helpers() {
        let mut v = json!({"a": [{"name": "x", "v": 1}, {"name": "y"}], "p": [{"port": 1}]});
        let key = PathElement::Key("{\"name\":\"x\"}".into());
        assert_eq!(
            get_path(
                &v,
                &[
                    PathElement::Field("a".into()),
                    key.clone(),
                    PathElement::Field("v".into())
                ]
            ),
            Some(&json!(1))
        );
        let port = PathElement::Key("{\"port\":1,\"protocol\":\"TCP\"}".into());
        assert!(get_path(&v, &[PathElement::Field("p".into()), port]).is_some());
        assert!(remove_path(&mut v, &[PathElement::Field("a".into()), key]));
        assert_eq!(v["a"], json!([{"name": "y"}]));
        assert!(!remove_path(
            &mut v,
            &[
                PathElement::Field("zz".into()),
                PathElement::Field("q".into())
            ]
        ));
        assert!(!remove_path(&mut v, &[]));
    }
}
