//! Deletion as a Kubernetes API server and its garbage collector do it.
//!
//! - **Finalizers**: deleting an object with `metadata.finalizers` does not
//!   remove it. It gets `deletionTimestamp` (and
//!   `deletionGracePeriodSeconds: 0`, and its `generation` bumps): a
//!   `MODIFIED` event. Writes may then only remove finalizers (a new one is
//!   `Invalid`, 422, in the API server's words); the write that removes the
//!   last one removes the object instead of storing it: a `DELETED` event.
//!   Deleting it again changes nothing.
//! - **Garbage collection**: when an object is removed, objects whose
//!   `metadata.ownerReferences` name its uid go too (background
//!   propagation, the default), each by the same rules (finalizers keep
//!   them, their own dependents follow). A dependent that still has another
//!   owner only loses the reference to the one removed.
//!   `propagationPolicy: Orphan` strips the references to the deleted
//!   object instead; `Foreground` removes the dependents before the owner
//!   (Kubernetes keeps the owner with a `foregroundDeletion` finalizer
//!   until then; here that happens within the one request).
//!
//! Namespaces are simpler than in Kubernetes: deleting one removes it and
//! everything in it at once, finalizers or not.

use std::collections::HashSet;

use serde_json::{Value, json};
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::object;

use super::{ClusterError, EventType, Key, Result, State, WatchEvent, key, normalize_order, now};

/// How the dependents of a deleted object are treated (the delete's
/// `propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents are deleted after the owner (the default).
    #[default]
    Background,
    /// Dependents are deleted before the owner.
    Foreground,
    /// Dependents stay, without their reference to the owner.
    Orphan,
}

impl Propagation {
    /// Parses `propagationPolicy` (`Background`, `Foreground`, `Orphan`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            "Orphan" => Some(Self::Orphan),
            _ => None,
        }
    }
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// The object is gone; as it was at its removal.
    Deleted(Value),
    /// The object has finalizers: it is kept, marked with
    /// `deletionTimestamp`, until they are removed.
    Finalizing(Value),
}

impl DeleteOutcome {
    /// The object, removed or kept.
    pub fn object(&self) -> &Value {
        match self {
            Self::Deleted(o) | Self::Finalizing(o) => o,
        }
    }

    /// The object, removed or kept.
    pub fn into_object(self) -> Value {
        match self {
            Self::Deleted(o) | Self::Finalizing(o) => o,
        }
    }
}

/// True when the object has a `deletionTimestamp`.
pub(super) fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// The object's `metadata.finalizers`.
pub(super) fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A write to an object being deleted may not add finalizers.
///
/// # Errors
/// [`ClusterError::Invalid`] naming the new finalizers, as the API server
/// words it.
pub(super) fn check_update(res: &ResourceInfo, before: &Value, after: &Value) -> Result<()> {
    if !is_deleting(before) {
        return Ok(());
    }
    let old = finalizers(before);
    let new: Vec<&str> = finalizers(after)
        .into_iter()
        .filter(|f| !old.contains(f))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let kind = if res.group.is_empty() {
        res.kind.clone()
    } else {
        format!("{}.{}", res.kind, res.group)
    };
    let listed: Vec<String> = new.iter().map(|f| format!("{f:?}")).collect();
    Err(ClusterError::Invalid(format!(
        "{kind} {:?} is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is \
         being deleted, found new finalizers []string{{{}}}",
        object::name(before).unwrap_or_default(),
        listed.join(", ")
    )))
}

fn uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/uid").and_then(Value::as_str)
}

fn owner_uids(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// One stored write: the next resourceVersion, the object stored (or
/// removed) under `k`, and its event.
fn record(st: &mut State, k: &Key, mut obj: Value, event_type: EventType) -> Value {
    st.revision += 1;
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(st.revision.to_string()));
    }
    normalize_order(&mut obj);
    if event_type != EventType::Deleted {
        st.objects.insert(k.clone(), obj.clone());
    }
    let (group, kind, ns, _) = k;
    let revision = st.revision;
    st.record(WatchEvent::from_parts(
        revision,
        event_type,
        group,
        kind,
        ns,
        obj.clone(),
    ));
    obj
}

/// A deletion in progress: the uids of objects gone (or going), whose
/// dependents are still to be collected.
struct Collector {
    queue: Vec<String>,
    gone: HashSet<String>,
    orphan: Option<String>,
}

impl Collector {
    fn owner_exists(&self, st: &State, owner: &str) -> bool {
        !self.gone.contains(owner) && st.objects.values().any(|o| uid(o) == Some(owner))
    }

    /// Deletes the object under `k`: marks it when it has finalizers,
    /// else removes it (`last` as its final state, when given) and queues
    /// its dependents.
    fn delete(&mut self, st: &mut State, k: &Key, last: Option<Value>) -> Option<DeleteOutcome> {
        let live = st.objects.get(k)?.clone();
        if last.is_none() && !finalizers(&live).is_empty() {
            if is_deleting(&live) {
                return Some(DeleteOutcome::Finalizing(live));
            }
            let mut obj = live;
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("deletionTimestamp".into(), json!(now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(g) = meta.get("generation").and_then(Value::as_i64) {
                    meta.insert("generation".into(), json!(g + 1));
                }
            }
            return Some(DeleteOutcome::Finalizing(record(
                st,
                k,
                obj,
                EventType::Modified,
            )));
        }
        let removed = st.objects.remove(k)?;
        let (group, kind, _, name) = k;
        if group.is_empty() && kind == "Namespace" {
            let contents: Vec<Key> = st
                .objects
                .keys()
                .filter(|(_, _, ns, _)| ns == name)
                .cloned()
                .collect();
            for c in contents {
                if let Some(obj) = st.objects.remove(&c) {
                    self.gone(&obj);
                    record(st, &c, obj, EventType::Deleted);
                }
            }
        }
        self.gone(&removed);
        Some(DeleteOutcome::Deleted(record(
            st,
            k,
            last.unwrap_or(removed),
            EventType::Deleted,
        )))
    }

    fn gone(&mut self, obj: &Value) {
        if let Some(u) = uid(obj) {
            self.gone.insert(u.to_string());
            self.queue.push(u.to_string());
        }
    }

    /// Deletes (or orphans) the dependents of everything queued, and
    /// theirs, until nothing is left to collect.
    fn collect(&mut self, st: &mut State) {
        while let Some(owner) = self.queue.pop() {
            let dependents: Vec<Key> = st
                .objects
                .iter()
                .filter(|(_, o)| owner_uids(o).contains(&owner.as_str()))
                .map(|(k, _)| k.clone())
                .collect();
            for k in dependents {
                let Some(obj) = st.objects.get(&k) else {
                    continue;
                };
                let orphaned = self.orphan.as_deref() == Some(owner.as_str());
                let others_live = owner_uids(obj)
                    .into_iter()
                    .any(|u| u != owner && self.owner_exists(st, u));
                if orphaned || others_live {
                    let mut obj = obj.clone();
                    let keep: Vec<Value> = obj
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .map(|refs| {
                            refs.iter()
                                .filter(|r| {
                                    r.get("uid")
                                        .and_then(Value::as_str)
                                        .is_some_and(|u| u != owner && self.owner_exists(st, u))
                                })
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        if keep.is_empty() {
                            meta.shift_remove("ownerReferences");
                        } else {
                            meta.insert("ownerReferences".into(), Value::Array(keep));
                        }
                    }
                    record(st, &k, obj, EventType::Modified);
                } else {
                    self.delete(st, &k, None);
                }
            }
        }
    }
}

/// Deletes one object as the API server does (see the
/// [module docs](self)); `None` when it is not stored.
pub(super) fn delete(
    st: &mut State,
    res: &ResourceInfo,
    ns: &str,
    name: &str,
    propagation: Propagation,
) -> Option<DeleteOutcome> {
    let k = key(res, ns, name);
    let owner = uid(st.objects.get(&k)?)?.to_string();
    let mut gc = Collector {
        queue: Vec::new(),
        gone: HashSet::new(),
        orphan: None,
    };
    match propagation {
        Propagation::Background => {}
        Propagation::Orphan => {
            gc.orphan = Some(owner.clone());
            gc.queue.push(owner);
            gc.collect(st);
        }
        Propagation::Foreground => {
            gc.gone.insert(owner.clone());
            gc.queue.push(owner.clone());
            gc.collect(st);
            gc.gone.remove(&owner);
        }
    }
    let outcome = gc.delete(st, &k, None);
    gc.collect(st);
    outcome
}

/// Removes the object under `k` whose last finalizer a write removed,
/// `last` being that write's result, and collects its dependents.
pub(super) fn remove_finalized(st: &mut State, k: &Key, last: Value) -> Option<Value> {
    let mut gc = Collector {
        queue: Vec::new(),
        gone: HashSet::new(),
        orphan: None,
    };
    let outcome = gc.delete(st, k, Some(last));
    gc.collect(st);
    outcome.map(DeleteOutcome::into_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{DeleteOptions, MemoryCluster, WriteOptions};
    use serde_json::json;
    use stepbox_k8s::patch::PatchType;
    use stepbox_k8s::resources::lookup;

    fn cm(name: &str, extra: Value) -> Value {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        if let (Some(meta), Some(more)) = (o["metadata"].as_object_mut(), extra.as_object()) {
            meta.extend(more.clone());
        }
        o
    }

    fn events_since(c: &MemoryCluster, rv: u64) -> Vec<(String, String)> {
        c.events_since(rv)
            .unwrap()
            .into_iter()
            .map(|e| {
                let name = object::name(&e.object).unwrap_or_default().to_string();
                (e.event_type.as_str().to_string(), name)
            })
            .collect()
    }

    #[test]
    fn finalizers_keep_an_object_until_they_are_removed() {
        let c = MemoryCluster::new();
        let res = lookup("v1", "ConfigMap");
        let by = WriteOptions::by("t");
        c.create(
            &res,
            "dev",
            &cm("a", json!({"finalizers": ["x.dev/a", "x.dev/b"]})),
            &by,
        )
        .unwrap();
        let rv = c.revision();
        let first = c
            .delete_with(&res, "dev", "a", &DeleteOptions::default())
            .unwrap();
        let DeleteOutcome::Finalizing(marked) = first else {
            panic!("{first:?}")
        };
        assert!(marked["metadata"]["deletionTimestamp"].is_string());
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        assert_eq!(marked["metadata"]["generation"], 2);
        // Again: nothing changes.
        let again = c
            .delete_with(&res, "dev", "a", &DeleteOptions::default())
            .unwrap();
        assert_eq!(again.object(), &marked);
        // No new finalizer while deleting, in the API server's words.
        let err = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Merge,
                &json!({"metadata": {"finalizers": ["x.dev/a", "x.dev/b", "x.dev/c"]}}),
                &by,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap \"a\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the \
             object is being deleted, found new finalizers []string{\"x.dev/c\"}"
        );
        // Server fields stay; removing one finalizer keeps it, the last removes it.
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Merge,
                &json!({"metadata": {"finalizers": ["x.dev/b"], "deletionTimestamp": null}}),
                &by,
            )
            .unwrap();
        assert_eq!(
            ch.after["metadata"]["deletionTimestamp"],
            marked["metadata"]["deletionTimestamp"]
        );
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Json,
                &json!([{"op": "remove", "path": "/metadata/finalizers"}]),
                &by,
            )
            .unwrap();
        assert!(ch.after["metadata"].get("finalizers").is_none());
        assert!(c.get_object(&res, "dev", "a").is_none());
        assert_eq!(
            events_since(&c, rv),
            [
                ("MODIFIED".into(), "a".into()),
                ("MODIFIED".into(), "a".into()),
                ("DELETED".into(), "a".into())
            ]
        );
    }

    #[test]
    fn dependents_follow_their_owners() {
        let c = MemoryCluster::new();
        let res = lookup("v1", "ConfigMap");
        let by = WriteOptions::by("t");
        let owner = c.create(&res, "dev", &cm("owner", json!({})), &by).unwrap();
        let other = c.create(&res, "dev", &cm("other", json!({})), &by).unwrap();
        let owned_by = |objs: &[&Value]| {
            let refs: Vec<Value> = objs
                .iter()
                .map(|o| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}))
                .collect();
            json!({"ownerReferences": refs})
        };
        let report = c
            .create(&res, "dev", &cm("report", owned_by(&[&owner])), &by)
            .unwrap();
        c.create(&res, "dev", &cm("nested", owned_by(&[&report])), &by)
            .unwrap();
        c.create(&res, "dev", &cm("shared", owned_by(&[&owner, &other])), &by)
            .unwrap();
        let mut kept = owned_by(&[&owner]);
        kept["finalizers"] = json!(["x.dev/keep"]);
        c.create(&res, "dev", &cm("kept", kept), &by).unwrap();
        c.create(&res, "dev", &cm("stranger", json!({})), &by)
            .unwrap();

        c.delete_with(&res, "dev", "owner", &DeleteOptions::default())
            .unwrap();
        let names: Vec<String> = c
            .list_with(&res, "dev", None, None)
            .items
            .iter()
            .map(|o| object::name(o).unwrap().to_string())
            .collect();
        assert_eq!(names, ["kept", "other", "shared", "stranger"]);
        let shared = c.get_object(&res, "dev", "shared").unwrap();
        assert_eq!(shared["metadata"]["ownerReferences"][0]["name"], "other");
        assert_eq!(
            shared["metadata"]["ownerReferences"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(is_deleting(&c.get_object(&res, "dev", "kept").unwrap()));

        // Orphan: the dependent stays, without the reference.
        let owner = c
            .create(&res, "dev", &cm("owner2", json!({})), &by)
            .unwrap();
        c.create(&res, "dev", &cm("child", owned_by(&[&owner])), &by)
            .unwrap();
        let orphan = DeleteOptions {
            propagation: Propagation::Orphan,
            ..DeleteOptions::default()
        };
        c.delete_with(&res, "dev", "owner2", &orphan).unwrap();
        let child = c.get_object(&res, "dev", "child").unwrap();
        assert!(child["metadata"].get("ownerReferences").is_none());

        // Foreground: the dependents go first.
        let owner = c
            .create(&res, "dev", &cm("owner3", json!({})), &by)
            .unwrap();
        c.create(&res, "dev", &cm("child3", owned_by(&[&owner])), &by)
            .unwrap();
        let rv = c.revision();
        let fg = DeleteOptions {
            propagation: Propagation::Foreground,
            ..DeleteOptions::default()
        };
        c.delete_with(&res, "dev", "owner3", &fg).unwrap();
        assert_eq!(
            events_since(&c, rv),
            [
                ("DELETED".into(), "child3".into()),
                ("DELETED".into(), "owner3".into())
            ]
        );
        assert_eq!(Propagation::parse("Orphan"), Some(Propagation::Orphan));
        assert_eq!(Propagation::parse("orphan"), None);
    }
}
