//! Patches as pure functions on JSON: JSON patch (RFC 6902) and Kubernetes'
//! strategic merge patch.
//!
//! JSON merge patch (RFC 7386) lives in [`ssa::merge_patch`]; server-side
//! apply in [`ssa::apply`]. Together they are the four patch types an API
//! server accepts ([`PatchType`]).
//!
//! # Strategic merge patch
//!
//! What `kubectl apply` (client-side), `kubectl edit` and `kubectl patch`
//! send for built-in kinds. It is a JSON merge patch in which:
//!
//! - lists with a *merge strategy* merge item by item: lists of objects by a
//!   merge key (`containers` by `name`, container `ports` by
//!   `containerPort`, Service `ports` by `port`, `volumeMounts` by
//!   `mountPath`, ...: see [`list_strategy`]), lists of scalars
//!   (`metadata.finalizers`) as a set union. Every other list is replaced
//!   whole, as in a merge patch.
//! - directives steer the merge:
//!   - `"$patch": "replace"` in a map replaces the map instead of merging
//!     it; as an item of a merging list it replaces the whole list with the
//!     other items;
//!   - `"$patch": "delete"` in a map deletes it; as an item of a merging
//!     list it deletes the item with that merge key;
//!   - `"$retainKeys": [..]` drops every key of the map not listed;
//!   - `"$setElementOrder/<list>": [..]` gives the order of the merged list
//!     (items only the server has keep their place relative to the others);
//!   - `"$deleteFromPrimitiveList/<list>": [..]` removes values from a
//!     merging list of scalars.
//!
//! Kinds without merge strategies (custom resources) merge every list
//! atomically, which is what a JSON merge patch does.
//!
//! ```
//! use serde_json::json;
//! use stepbox_k8s::{patch, resources};
//!
//! let deploy = resources::lookup("apps/v1", "Deployment");
//! let live = json!({"spec": {"template": {"spec": {"containers": [
//!     {"name": "web", "image": "nginx:1"},
//!     {"name": "sidecar", "image": "envoy:1"},
//! ]}}}});
//! let p = json!({"spec": {"template": {"spec": {"containers": [
//!     {"name": "web", "image": "nginx:2"},
//! ]}}}});
//! let out = patch::strategic_merge(&live, &p, &deploy)?;
//! assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
//! assert_eq!(out["spec"]["template"]["spec"]["containers"][1]["name"], "sidecar");
//! # Ok::<(), stepbox_k8s::Error>(())
//! ```
//!
//! [`ssa::merge_patch`]: super::ssa::merge_patch
//! [`ssa::apply`]: super::ssa::apply

use serde_json::{Map, Value};

use crate::resources::ResourceInfo;
use crate::{Error, Result};

/// The media type of a `Content-Type` value: lowercase, without parameters
/// (`application/json; charset=utf-8` is `application/json`).
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The patch types of the Kubernetes API, by request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902.
    Json,
    /// `application/merge-patch+json`: RFC 7386.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchType {
    /// The patch type of a request `Content-Type` (parameters such as
    /// `; charset=utf-8` ignored); `None` for anything else.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match media_type(content_type).as_str() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }

    /// The `Content-Type` of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::StrategicMerge => "application/strategic-merge-patch+json",
            Self::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Applies an RFC 6902 JSON patch (a JSON array of operations) to `target`.
///
/// # Errors
/// [`Error::Invalid`] when the patch is not a list of operations, or
/// an operation fails (a `test` that does not hold, a path that is not
/// there).
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| Error::Invalid(format!("the JSON patch is not a list of operations: {e}")))?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &ops)
        .map_err(|e| Error::Invalid(format!("the JSON patch does not apply: {e}")))?;
    Ok(out)
}

/// How a list merges in a strategic merge patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced as a whole (no merge strategy).
    Atomic,
    /// A set of scalars: the patch's values are added (`finalizers`).
    MergeScalars,
    /// Objects merged item by item, matched by this field.
    MergeByKey(&'static str),
}

/// Where the pod spec sits in objects of a kind (`spec.template.spec` in a
/// Deployment), if the kind holds one.
fn pod_spec_path(res: &ResourceInfo) -> Option<&'static [&'static str]> {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Pod") => Some(&["spec"]),
        ("", "PodTemplate") => Some(&["template", "spec"]),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job") => Some(&["spec", "template", "spec"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// The merge strategy of the list at `path` (map keys from the object root)
/// in objects of kind `res`, as the built-in Kubernetes types declare it
/// (`patchStrategy:"merge"` and `patchMergeKey`).
pub fn list_strategy(res: &ResourceInfo, path: &[&str]) -> ListStrategy {
    use ListStrategy::{Atomic, MergeByKey, MergeScalars};
    if !is_builtin(res) {
        return Atomic;
    }
    match path {
        ["metadata", "finalizers"] => return MergeScalars,
        ["metadata", "ownerReferences"] => return MergeByKey("uid"),
        _ => {}
    }
    if let Some(prefix) = pod_spec_path(res)
        && let Some(rel) = path.strip_prefix(prefix)
    {
        return match rel {
            ["volumes" | "containers" | "initContainers" | "ephemeralContainers"] => {
                MergeByKey("name")
            }
            ["imagePullSecrets" | "schedulingGates" | "resourceClaims"] => MergeByKey("name"),
            ["hostAliases"] => MergeByKey("ip"),
            ["topologySpreadConstraints"] => MergeByKey("topologyKey"),
            [
                "containers" | "initContainers" | "ephemeralContainers",
                field,
            ] => match *field {
                "ports" => MergeByKey("containerPort"),
                "env" => MergeByKey("name"),
                "volumeMounts" => MergeByKey("mountPath"),
                "volumeDevices" => MergeByKey("devicePath"),
                _ => Atomic,
            },
            _ => Atomic,
        };
    }
    match (res.group.as_str(), res.kind.as_str(), path) {
        ("", "Service", ["spec", "ports"]) => MergeByKey("port"),
        ("", "ServiceAccount", ["secrets"]) => MergeByKey("name"),
        (_, _, ["status", "conditions"]) => MergeByKey("type"),
        _ => Atomic,
    }
}

fn is_builtin(res: &ResourceInfo) -> bool {
    super::resources::builtin()
        .iter()
        .any(|r| r.group == res.group && r.kind == res.kind)
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `target`, an object of kind `res`.
///
/// # Errors
/// [`Error::Invalid`] when the patch is not an object or carries an
/// unknown `$patch` directive.
pub fn strategic_merge(target: &Value, patch: &Value, res: &ResourceInfo) -> Result<Value> {
    let Value::Object(p) = patch else {
        return Err(Error::Invalid(format!(
            "a strategic merge patch must be a JSON object, found {}",
            super::object::type_name(patch)
        )));
    };
    let ctx = Ctx { res };
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match p.get(DIRECTIVE).and_then(Value::as_str) {
        Some("replace") => return Ok(clean(&Value::Object(without_directive(p)))),
        Some("delete") => return Ok(Value::Object(Map::new())),
        _ => {}
    }
    ctx.merge_map(&mut out, p, &mut Vec::new())?;
    Ok(Value::Object(out))
}

struct Ctx<'a> {
    res: &'a ResourceInfo,
}

fn without_directive(m: &Map<String, Value>) -> Map<String, Value> {
    let mut m = m.clone();
    m.shift_remove(DIRECTIVE);
    m
}

fn directive(v: &Value) -> Option<&str> {
    v.get(DIRECTIVE).and_then(Value::as_str)
}

/// A patch value as plain data: directives removed, deletion items dropped.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| !matches!(directive(i), Some("delete" | "replace")) || !i.is_object())
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Ctx<'_> {
    fn strategy(&self, path: &[String]) -> ListStrategy {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        list_strategy(self.res, &p)
    }

    fn merge_map(
        &self,
        orig: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        if let Some(keys) = patch.get(RETAIN_KEYS) {
            let keys: Vec<&str> = keys
                .as_array()
                .ok_or_else(|| Error::Invalid("$retainKeys must be a list".into()))?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            orig.retain(|k, _| keys.contains(&k.as_str()));
        }
        for (k, pv) in patch {
            if k.starts_with('$') {
                continue;
            }
            path.push(k.clone());
            self.merge_field(orig, k, pv, patch.get(&format!("{SET_ORDER}{k}")), path)?;
            path.pop();
        }
        // Directives about lists the patch itself leaves alone.
        for (k, pv) in patch {
            if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
                let doomed = pv.as_array().cloned().unwrap_or_default();
                if let Some(Value::Array(items)) = orig.get_mut(field) {
                    items.retain(|i| !doomed.contains(i));
                }
            } else if let Some(field) = k.strip_prefix(SET_ORDER)
                && !patch.contains_key(field)
            {
                path.push(field.to_string());
                let strategy = self.strategy(path);
                path.pop();
                if let (Some(Value::Array(items)), Some(order)) =
                    (orig.get_mut(field), pv.as_array())
                {
                    let server = std::mem::take(items);
                    *items = reorder(server.clone(), &server, order, &strategy);
                }
            }
        }
        Ok(())
    }

    fn merge_field(
        &self,
        orig: &mut Map<String, Value>,
        k: &str,
        pv: &Value,
        order: Option<&Value>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        if pv.is_null() {
            orig.shift_remove(k);
            return Ok(());
        }
        match (orig.get_mut(k), pv) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                match p.get(DIRECTIVE).and_then(Value::as_str) {
                    Some("replace") => {
                        orig.insert(k.to_string(), clean(&Value::Object(without_directive(p))));
                    }
                    Some("delete") => {
                        orig.shift_remove(k);
                    }
                    Some(other) => return Err(bad_directive(other)),
                    None => self.merge_map(o, p, path)?,
                }
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                let strategy = self.strategy(path);
                let merged = self.merge_list(std::mem::take(o), p, order, &strategy, path)?;
                orig.insert(k.to_string(), Value::Array(merged));
            }
            (_, Value::Object(p)) if directive(pv) == Some("delete") => {
                let _ = p;
                orig.shift_remove(k);
            }
            (_, Value::Array(p)) => {
                // No list to merge into: the patch's items, in its order.
                let strategy = self.strategy(path);
                let merged = self.merge_list(Vec::new(), p, order, &strategy, path)?;
                orig.insert(k.to_string(), Value::Array(merged));
            }
            _ => {
                orig.insert(k.to_string(), clean(pv));
            }
        }
        Ok(())
    }

    fn merge_list(
        &self,
        orig: Vec<Value>,
        patch: &[Value],
        order: Option<&Value>,
        strategy: &ListStrategy,
        path: &mut Vec<String>,
    ) -> Result<Vec<Value>> {
        let order = order.and_then(Value::as_array);
        match strategy {
            ListStrategy::Atomic => Ok(patch.iter().map(clean).collect()),
            ListStrategy::MergeScalars => {
                let mut merged = orig.clone();
                for p in patch {
                    if !merged.contains(p) {
                        merged.push(p.clone());
                    }
                }
                let order: Vec<Value> = order.cloned().unwrap_or_else(|| patch.to_vec());
                Ok(reorder(merged, &orig, &order, strategy))
            }
            ListStrategy::MergeByKey(key) => {
                if patch.iter().any(|i| directive(i) == Some("replace")) {
                    return Ok(patch
                        .iter()
                        .filter(|i| directive(i) != Some("replace"))
                        .map(clean)
                        .collect());
                }
                let mut merged = orig.clone();
                for item in patch {
                    let Some(pm) = item.as_object() else {
                        merged.push(item.clone());
                        continue;
                    };
                    let at = pm
                        .get(*key)
                        .and_then(|kv| merged.iter().position(|o| o.get(*key) == Some(kv)));
                    match (directive(item), at) {
                        (Some("delete"), Some(i)) => {
                            merged.remove(i);
                        }
                        (Some("delete"), None) => {}
                        (Some("replace" | "merge") | None, Some(i)) => {
                            if let Value::Object(o) = &mut merged[i] {
                                self.merge_map(o, &without_directive(pm), path)?;
                            }
                        }
                        (Some("replace" | "merge") | None, None) => merged.push(clean(item)),
                        (Some(other), _) => return Err(bad_directive(other)),
                    }
                }
                let default_order: Vec<Value> = patch
                    .iter()
                    .filter(|i| directive(i) != Some("delete"))
                    .cloned()
                    .collect();
                let order = order.cloned().unwrap_or(default_order);
                Ok(reorder(merged, &orig, &order, strategy))
            }
        }
    }
}

fn bad_directive(d: &str) -> Error {
    Error::Invalid(format!("unknown $patch directive {d:?}"))
}

/// The identity of a list item for ordering: its merge key value, or the
/// value itself for scalars.
fn identity<'a>(item: &'a Value, strategy: &ListStrategy) -> Option<&'a Value> {
    match strategy {
        ListStrategy::MergeByKey(key) => item.get(*key),
        _ => Some(item),
    }
}

/// Orders a merged list: the items named in `order` in that order, and the
/// items only the server has (in `server` order) slotted in where they stood
/// relative to the others, as Kubernetes does.
fn reorder(
    merged: Vec<Value>,
    server: &[Value],
    order: &[Value],
    strategy: &ListStrategy,
) -> Vec<Value> {
    let pos_in = |list: &[Value], item: &Value| -> Option<usize> {
        let id = identity(item, strategy)?;
        list.iter().position(|o| identity(o, strategy) == Some(id))
    };
    let (mut patched, server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|i| pos_in(order, i).is_some());
    patched.sort_by_key(|i| pos_in(order, i));
    // Merge the two sorted runs by server position where both are known.
    let mut out = Vec::with_capacity(patched.len() + server_only.len());
    let (mut l, mut r) = (
        server_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    loop {
        match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => {
                let before = match (pos_in(server, a), pos_in(server, b)) {
                    (Some(x), Some(y)) => x < y,
                    _ => false,
                };
                let next = if before { l.next() } else { r.next() };
                out.extend(next);
            }
            (Some(_), None) => out.extend(l.next()),
            (None, Some(_)) => out.extend(r.next()),
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;
    use serde_json::json;

    fn deploy() -> ResourceInfo {
        lookup("apps/v1", "Deployment")
    }

    fn containers(v: &Value) -> &Value {
        &v["spec"]["template"]["spec"]["containers"]
    }

    fn pod_spec(containers: Value) -> Value {
        json!({"spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml; charset=utf-8"),
            Some(PatchType::Apply)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(
            PatchType::Json.content_type(),
            "application/json-patch+json"
        );
    }

    #[test]
    fn json_patch_ops() {
        let v = json!({"metadata": {"resourceVersion": "3", "labels": {"a": "1"}}});
        let out = json_patch(
            &v,
            &json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "3"},
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/a"},
            ]),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        let err = json_patch(
            &v,
            &json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}]),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert!(json_patch(&v, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn merges_containers_by_name_and_keeps_server_items() {
        let live = pod_spec(json!([
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "b", "image": "b:1"},
        ]));
        let patch = pod_spec(json!([
            {"name": "a", "image": "a:2", "ports": [{"containerPort": 81}]},
            {"name": "c", "image": "c:1"},
        ]));
        let out = strategic_merge(&live, &patch, &deploy()).unwrap();
        let cs = containers(&out);
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(
            cs[0]["ports"],
            json!([{"containerPort": 81}, {"containerPort": 80, "name": "http"}])
        );
        // As in Kubernetes: patched items in patch order, the server-only
        // "b" after them (its server neighbour "a" comes first).
        let names: Vec<&str> = cs
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "c", "b"]);
    }

    #[test]
    fn deletes_items_and_orders_them() {
        // What kubectl apply sends after a container "b" is dropped and the
        // rest reordered.
        let live = pod_spec(json!([
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:1"},
            {"name": "c", "image": "c:1"},
        ]));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
            "containers": [{"$patch": "delete", "name": "b"}],
        }}}});
        let out = strategic_merge(&live, &patch, &deploy()).unwrap();
        assert_eq!(
            containers(&out),
            &json!([{"name": "c", "image": "c:1"}, {"name": "a", "image": "a:1"}])
        );
    }

    #[test]
    fn env_by_name_and_null_deletes() {
        let live = pod_spec(
            json!([{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                                     "args": ["x", "y"]}]),
        );
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "args": ["z"],
                            "$setElementOrder/env": [{"name": "Y"}],
                            "env": [{"$patch": "delete", "name": "X"}, {"name": "Y", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}],
        }}}});
        let out = strategic_merge(&live, &patch, &deploy()).unwrap();
        let c = &containers(&out)[0];
        assert_eq!(c["args"], json!(["z"]));
        assert_eq!(
            c["env"],
            json!([{"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}])
        );
    }

    #[test]
    fn retain_keys_and_replace() {
        let live = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "selector": {"a": "b"}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
                                    "selector": {"$patch": "replace", "c": "d"}}});
        let out = strategic_merge(&live, &patch, &deploy()).unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(out["spec"]["selector"], json!({"c": "d"}));
        let out =
            strategic_merge(&live, &json!({"spec": {"$patch": "delete"}}), &deploy()).unwrap();
        assert_eq!(out, json!({}));
        let out =
            strategic_merge(&live, &json!({"$patch": "replace", "spec": {}}), &deploy()).unwrap();
        assert_eq!(out, json!({"spec": {}}));
        assert!(
            strategic_merge(
                &live,
                &json!({"spec": {"strategy": {"$patch": "bogus"}}}),
                &deploy()
            )
            .is_err()
        );
        assert!(strategic_merge(&live, &json!([]), &deploy()).is_err());
    }

    #[test]
    fn list_replace_directive() {
        let live = pod_spec(json!([{"name": "a"}, {"name": "b"}]));
        let patch = pod_spec(json!([{"$patch": "replace"}, {"name": "z"}]));
        let out = strategic_merge(&live, &patch, &deploy()).unwrap();
        assert_eq!(containers(&out), &json!([{"name": "z"}]));
    }

    #[test]
    fn primitive_lists() {
        let res = lookup("v1", "ConfigMap");
        let live = json!({"metadata": {"finalizers": ["a", "b"]}, "x": [1, 2]});
        let patch = json!({"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"],
                                        "$setElementOrder/finalizers": ["c", "b"]},
                           "x": [3]});
        let out = strategic_merge(&live, &patch, &res).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "b"]));
        assert_eq!(out["x"], json!([3]), "lists without strategy are atomic");
    }

    #[test]
    fn service_ports_by_port_and_custom_resources_atomic() {
        let svc = lookup("v1", "Service");
        let live = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let out = strategic_merge(
            &live,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            &svc,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
        let cr = lookup("example.com/v1", "Widget");
        let live = pod_spec(json!([{"name": "a"}, {"name": "b"}]));
        let out = strategic_merge(&live, &pod_spec(json!([{"name": "c"}])), &cr).unwrap();
        assert_eq!(containers(&out), &json!([{"name": "c"}]));
    }

    #[test]
    fn new_lists_drop_directives() {
        let live = json!({"spec": {"template": {"spec": {}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/volumes": [{"name": "v"}],
            "volumes": [{"name": "v", "$retainKeys": ["name", "emptyDir"], "emptyDir": {}}],
        }}}});
        let out = strategic_merge(&live, &patch, &deploy()).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "v", "emptyDir": {}}])
        );
    }

    #[test]
    fn strategies() {
        let d = deploy();
        assert_eq!(
            list_strategy(
                &d,
                &["spec", "template", "spec", "containers", "volumeMounts"]
            ),
            ListStrategy::MergeByKey("mountPath")
        );
        assert_eq!(
            list_strategy(&d, &["spec", "template", "spec", "tolerations"]),
            ListStrategy::Atomic
        );
        let cj = lookup("batch/v1", "CronJob");
        assert_eq!(
            list_strategy(
                &cj,
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers"
                ]
            ),
            ListStrategy::MergeByKey("name")
        );
        assert_eq!(
            list_strategy(&lookup("v1", "Pod"), &["spec", "containers", "ports"]),
            ListStrategy::MergeByKey("containerPort")
        );
    }
}
