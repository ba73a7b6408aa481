//! [`MemoryCluster`]: an in-process Kubernetes object store.
//!
//! It stands in for an API server in dry-runs and tests, with the semantics a
//! deployment step can observe:
//!
//! - Objects of every kind and namespace, keyed by (group, kind, namespace,
//!   name); cluster-scoped kinds use the empty namespace. Namespaces are
//!   implicit: writing into one needs no `Namespace` object (deleting a
//!   `Namespace` object does delete everything in it).
//! - Every write bumps one global `resourceVersion` counter. A create sets
//!   `metadata.uid` (UUID v4), `creationTimestamp` (RFC 3339, UTC, seconds),
//!   `generation: 1` and `namespace`; `generation` increments when anything
//!   outside `metadata` and `status` changes (outside `metadata`, for a
//!   custom kind whose CRD has no status subresource). A write that
//!   changes nothing is not a write: the resourceVersion stays.
//! - Kinds with a status subresource ([`MemoryCluster::has_status_subresource`])
//!   take `status` only through it ([`MemoryCluster::update_status`],
//!   [`MemoryCluster::patch_status`]); their main resource keeps the
//!   stored status.
//! - Deletion keeps objects with finalizers (marked with
//!   `deletionTimestamp`) until the finalizers are removed, and removes
//!   dependents named by `ownerReferences` with their owners (see
//!   [`DeleteOutcome`] and [`Propagation`]).
//! - `apply` is server-side apply with field ownership (see [`ssa`]);
//!   ownership lives in `metadata.managedFields`. A `metadata.resourceVersion`
//!   or `metadata.uid` in the applied object is a precondition, as in
//!   Kubernetes.
//! - `merge_patch` is RFC 7386; it cannot change identity (apiVersion group,
//!   kind, name, namespace) nor server-owned metadata nor `status`, and
//!   records no `managedFields` entry.
//! - After every write, workloads get a synthesized, finished status so
//!   waits complete: Deployment, StatefulSet, DaemonSet, ReplicaSet (all
//!   replicas ready), Job (complete, unless `spec.suspend`), Pod (Running and
//!   Ready), PersistentVolumeClaim (Bound), Namespace (Active). Services get a
//!   `spec.clusterIP` from 10.96.0.0/16 unless they have one, are headless
//!   (`None`) or `ExternalName`. Condition timestamps are kept while a
//!   condition does not change, so a repeated apply stays a no-op.
//! - Custom resources resolve through stored `CustomResourceDefinition`s
//!   (plural, scope, status subresource), else by
//!   [`resources::lookup`]'s guess. Stored CRDs are `Established`.
//! - Every stored write is also an event in a bounded log (see
//!   [`watch_log`]), so watches can replay from a resourceVersion.
//! - Beyond the [`ClusterBackend`](crate::ClusterBackend) trait, the API server's own verbs
//!   (create, update with resourceVersion preconditions, the four patch
//!   types, delete with preconditions, dry-run of each, lists with field
//!   selectors) are inherent methods (see [`requests`]); `stepbox
//!   dev-cluster` serves them over HTTPS.
//!
//! A `MemoryCluster` is cheap to clone (all clones share one store) and safe
//! to share between concurrent runs; every operation takes one short lock
//! and none is held across an await.
//!
//! [`ssa`]: stepbox_k8s::ssa

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::{Change, ClusterError, LabelSelector, Result};
use stepbox_k8s::names;
use stepbox_k8s::object::{self, ObjectRef};
use stepbox_k8s::resources::{self, ResourceInfo};
use stepbox_k8s::ssa::{self, SEED_MANAGER};

pub mod requests;
pub mod watch_log;

pub use requests::{DeleteOptions, ListResult, WriteOptions};
pub use watch_log::{DEFAULT_EVENT_CAPACITY, EventType, ExpiredRevision, WatchEvent};

/// (group, kind, namespace, name); namespace empty for cluster-scoped kinds.
type Key = (String, String, String, String);

#[derive(Debug, Clone)]
struct State {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    next_ip: u32,
    /// The most recent writes, oldest first, for watches.
    events: VecDeque<WatchEvent>,
    /// How many events `events` keeps.
    event_capacity: usize,
    /// The newest resourceVersion whose event was dropped (0: none).
    compacted: u64,
}

impl State {
    fn record(&mut self, event: WatchEvent) {
        while self.events.len() >= self.event_capacity.max(1) {
            match self.events.pop_front() {
                Some(old) => self.compacted = old.revision,
                None => break,
            }
        }
        self.events.push_back(event);
    }

    /// A copy of the stored object, or NotFound in the API server's words.
    fn live(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Value> {
        self.objects
            .get(&key(res, namespace, name))
            .cloned()
            .ok_or_else(|| not_found(res, name))
    }
}

/// First host number handed out as a Service clusterIP (10.96.0.10).
const FIRST_SERVICE_IP: u32 = 10;

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    revisions: watch::Sender<u64>,
}

/// An in-process, thread-safe Kubernetes object store (see the
/// [module docs](self)).
#[derive(Debug, Clone)]
pub struct MemoryCluster {
    inner: Arc<Inner>,
}

impl Default for MemoryCluster {
    fn default() -> Self {
        Self::new()
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn key(res: &ResourceInfo, namespace: &str, name: &str) -> Key {
    let ns = if res.namespaced { namespace } else { "" };
    (
        res.group.clone(),
        res.kind.clone(),
        ns.to_string(),
        name.to_string(),
    )
}

fn not_found(res: &ResourceInfo, name: &str) -> ClusterError {
    ClusterError::NotFound(format!("{} {name:?} not found", res.gr()))
}

impl MemoryCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        let (revisions, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    objects: BTreeMap::new(),
                    revision: 0,
                    next_ip: FIRST_SERVICE_IP,
                    events: VecDeque::new(),
                    event_capacity: DEFAULT_EVENT_CAPACITY,
                    compacted: 0,
                }),
                revisions,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock cannot leave the map
        // half-written (every write is one insert/remove), so keep going.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notify(&self, revision: u64) {
        // Writers announce after unlocking, so an earlier write's announce
        // may come last: the announced revision only moves forward.
        self.inner.revisions.send_if_modified(|current| {
            let newer = revision > *current;
            if newer {
                *current = revision;
            }
            newer
        });
    }

    /// Unlocks the store, then tells waits and watches about the write that
    /// made its current revision.
    fn announce(&self, st: MutexGuard<'_, State>) {
        let revision = st.revision;
        drop(st);
        self.notify(revision);
    }

    /// Stores `obj` (or with `dry_run` only shapes it: see
    /// [`finish_write_with`]) and, when that was a write, unlocks the store
    /// and announces it. Every write through the API server's verbs ends
    /// here.
    ///
    /// A write to an object being deleted may only remove finalizers; the
    /// one that removes the last removes the object (see [`finalize`]).
    ///
    /// # Errors
    /// [`ClusterError::Invalid`] for a finalizer added to an object being
    /// deleted.
    fn commit(
        &self,
        mut st: MutexGuard<'_, State>,
        res: &ResourceInfo,
        ns: &str,
        before: Option<Value>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Change> {
        let finalized = match &before {
            Some(b) => {
                finalize::check_update(res, b, &obj)?;
                finalize::is_deleting(b) && finalize::finalizers(&obj).is_empty()
            }
            None => false,
        };
        if finalized {
            let (shaped, _) = finish_write_with(&mut st, res, ns, before, obj, true);
            if dry_run {
                return Ok(shaped);
            }
            let name = object::name(&shaped.after).unwrap_or_default().to_string();
            let after = finalize::remove_finalized(&mut st, &key(res, ns, &name), shaped.after)
                .unwrap_or_default();
            self.announce(st);
            return Ok(Change {
                before: shaped.before,
                after,
            });
        }
        let (change, wrote) = finish_write_with(&mut st, res, ns, before, obj, dry_run);
        if wrote {
            self.announce(st);
        }
        Ok(change)
    }

    /// A receiver that sees the latest resourceVersion after every write:
    /// await `changed()` instead of polling (waits, watches).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.revisions.subscribe()
    }

    /// The current global resourceVersion (0 before the first write).
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// Number of stored objects.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().objects.is_empty()
    }

    /// Every stored object, ordered by group, kind, namespace and name.
    pub fn snapshot(&self) -> Vec<Value> {
        self.lock().objects.values().cloned().collect()
    }

    /// Every namespace in use: those holding objects and those with a
    /// `Namespace` object, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let st = self.lock();
        let mut out = BTreeSet::new();
        for ((group, kind, ns, name), _) in st.objects.iter() {
            if !ns.is_empty() {
                out.insert(ns.clone());
            }
            if group.is_empty() && kind == "Namespace" {
                out.insert(name.clone());
            }
        }
        out.into_iter().collect()
    }

    /// Resolves `(group, plural)` (as in API paths) to a kind: stored CRDs
    /// first, then the built-in table.
    pub fn resource_by_plural(&self, group: &str, plural: &str) -> Option<ResourceInfo> {
        let st = self.lock();
        crds(&st)
            .find(|crd| {
                crd.pointer("/spec/group").and_then(Value::as_str) == Some(group)
                    && crd.pointer("/spec/names/plural").and_then(Value::as_str) == Some(plural)
            })
            .and_then(|crd| {
                let version = crd_served_version(crd)?;
                let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str)?;
                Some(crd_info(crd, group, &version, kind))
            })
            .or_else(|| resources::by_plural(group, plural))
    }

    /// Loads multi-document YAML or JSON (see [`stepbox_k8s::manifest`]) as creates
    /// by field manager [`SEED_MANAGER`]. Namespaced objects without a
    /// namespace go to `default_namespace`. Objects keep the `status` and
    /// `metadata.managedFields` they carry (an export from a real cluster
    /// keeps its real owners); without managedFields they are owned by
    /// `seed`, which never causes conflicts. All or nothing: on an error
    /// nothing is stored. Returns the number of objects created.
    ///
    /// # Errors
    /// [`ClusterError::Invalid`] for unparseable YAML or a bad object,
    /// [`ClusterError::AlreadyExists`] when an object is already stored (or
    /// appears twice).
    pub fn seed_yaml(&self, yaml: &str, default_namespace: &str) -> Result<usize> {
        let docs = stepbox_k8s::manifest::parse_documents(yaml)
            .map_err(|e| ClusterError::Invalid(e.to_string()))?;
        let mut st = self.lock();
        let backup = st.clone();
        let result = docs
            .iter()
            .try_for_each(|doc| seed_one(&mut st, doc, default_namespace));
        match result {
            Ok(()) => {
                self.announce(st);
                Ok(docs.len())
            }
            Err(e) => {
                *st = backup;
                Err(e)
            }
        }
    }
}

fn resolve(st: &State, api_version: &str, kind: &str) -> Result<ResourceInfo> {
    let (group, version) = resources::parse_api_version(api_version)?;
    if kind.is_empty() {
        return Err(ClusterError::Invalid("kind is empty".into()));
    }
    if !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ClusterError::Invalid(format!(
            "invalid kind {kind:?}: expected letters and digits only"
        )));
    }
    Ok(match crd_of(st, group, kind) {
        Some(crd) => crd_info(crd, group, version, kind),
        None => resources::lookup(api_version, kind),
    })
}

/// The namespace an object of `res` is stored under.
fn scope_namespace(res: &ResourceInfo, namespace: &str, object_ns: Option<&str>) -> Result<String> {
    if !res.namespaced {
        return Ok(String::new());
    }
    if namespace.is_empty() {
        return Err(ClusterError::Invalid(format!(
            "{} is namespaced: a namespace is required",
            res.kind
        )));
    }
    names::dns1123_label(namespace)
        .map_err(|why| ClusterError::Invalid(format!("invalid namespace {namespace:?}: {why}")))?;
    if let Some(o) = object_ns
        && o != namespace
    {
        return Err(ClusterError::Invalid(format!(
            "the namespace of the provided object ({o:?}) does not match the namespace sent on the request ({namespace:?})"
        )));
    }
    Ok(namespace.to_string())
}

/// Checks identity and name of an object written as `res`.
fn validate_object(res: &ResourceInfo, object: &Value) -> Result<ObjectRef> {
    let r = ObjectRef::from_value(object)?;
    if r.kind != res.kind || r.group() != res.group {
        return Err(ClusterError::Invalid(format!(
            "{} {:?}: the object's apiVersion/kind {}/{} does not match the request's {}/{}",
            r.kind, r.name, r.api_version, r.kind, res.api_version, res.kind
        )));
    }
    names::object_name(res, &r.name).map_err(|why| {
        ClusterError::Invalid(format!(
            "{} {:?} is invalid: metadata.name: Invalid value: {:?}: {why}",
            r.kind, r.name, r.name
        ))
    })?;
    Ok(r)
}

/// `metadata.resourceVersion` / `metadata.uid` in a written object are
/// preconditions.
fn check_preconditions(
    res: &ResourceInfo,
    name: &str,
    object: &Value,
    live: Option<&Value>,
) -> Result<()> {
    let modified = || {
        ClusterError::Conflict(format!(
            "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
             please apply your changes to the latest version and try again",
            res.gr()
        ))
    };
    if let Some(rv) = object::resource_version(object).filter(|s| !s.is_empty()) {
        match live {
            None => {
                return Err(ClusterError::Invalid(format!(
                    "{} {name:?}: resourceVersion should not be set on objects to be created",
                    res.kind
                )));
            }
            Some(l) if object::resource_version(l) != Some(rv) => return Err(modified()),
            Some(_) => {}
        }
    }
    if let (Some(uid), Some(l)) = (
        object.pointer("/metadata/uid").and_then(Value::as_str),
        live,
    ) {
        let live_uid = l
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !uid.is_empty() && uid != live_uid {
            return Err(ClusterError::Conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {live_uid}"
            )));
        }
    }
    Ok(())
}

fn without(v: &Value, fields: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for f in fields {
            m.shift_remove(*f);
        }
    }
    v
}

/// Puts top-level and metadata fields in the order Kubernetes shows them.
fn normalize_order(obj: &mut Value) {
    const META_ORDER: &[&str] = &[
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
    ];
    let Some(top) = obj.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(meta)) = top.get_mut("metadata") {
        let mut old = std::mem::take(meta);
        for k in META_ORDER {
            if let Some(v) = old.shift_remove(*k) {
                meta.insert((*k).to_string(), v);
            }
        }
        let managed = old.shift_remove("managedFields");
        meta.extend(old);
        if let Some(m) = managed {
            meta.insert("managedFields".into(), m);
        }
    }
    let mut old = std::mem::take(top);
    for k in ["apiVersion", "kind", "metadata"] {
        if let Some(v) = old.shift_remove(k) {
            top.insert(k.into(), v);
        }
    }
    let status = old.shift_remove("status");
    top.extend(old);
    if let Some(s) = status {
        top.insert("status".into(), s);
    }
}

/// Stamps server metadata, synthesizes status and stores the object unless
/// nothing changed. Returns the change and whether a write happened.
fn finish_write(
    st: &mut State,
    res: &ResourceInfo,
    ns: &str,
    before: Option<Value>,
    obj: Value,
) -> (Change, bool) {
    finish_write_with(st, res, ns, before, obj, false)
}

/// [`finish_write`], or with `dry_run` everything but the store: the object
/// comes back as it would be stored (a create without a resourceVersion),
/// and nothing is kept, counted or announced.
fn finish_write_with(
    st: &mut State,
    res: &ResourceInfo,
    ns: &str,
    before: Option<Value>,
    mut obj: Value,
    dry_run: bool,
) -> (Change, bool) {
    let now = now();
    let next_ip = st.next_ip;
    if !obj.get("metadata").is_some_and(Value::is_object)
        && let Some(top) = obj.as_object_mut()
    {
        top.insert("metadata".into(), Value::Object(Map::new()));
    }
    let name = object::name(&obj).unwrap_or_default().to_string();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if res.namespaced {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        } else {
            meta.shift_remove("namespace");
        }
        match &before {
            None => {
                meta.insert(
                    "uid".into(),
                    Value::String(uuid::Uuid::new_v4().to_string()),
                );
                meta.insert("creationTimestamp".into(), Value::String(now.clone()));
                meta.insert("generation".into(), json!(1));
            }
            Some(b) => {
                for f in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
                    match b.pointer(&format!("/metadata/{f}")) {
                        Some(v) => meta.insert(f.into(), v.clone()),
                        None => meta.shift_remove(f),
                    };
                }
            }
        }
    }
    // Writes of status alone leave the generation, unless status is an
    // ordinary field of the kind (a CRD without a status subresource).
    let spec_changed = |b: &Value| {
        if crd::main_resource_writes_status(st, res) {
            without(b, &["metadata"]) != without(&obj, &["metadata"])
        } else {
            without(b, &["metadata", "status"]) != without(&obj, &["metadata", "status"])
        }
    };
    if let Some(b) = &before
        && spec_changed(b)
    {
        let generation = object::generation(b).unwrap_or(0) + 1;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("generation".into(), json!(generation));
        }
    }
    synthesize(st, res, &mut obj, &now);
    normalize_order(&mut obj);
    if let Some(b) = &before
        && *b == obj
    {
        st.next_ip = next_ip;
        return (
            Change {
                before: Some(b.clone()),
                after: obj,
            },
            false,
        );
    }
    if dry_run {
        st.next_ip = next_ip;
        return (Change { before, after: obj }, false);
    }
    st.revision += 1;
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(st.revision.to_string()),
        );
    }
    normalize_order(&mut obj);
    st.objects.insert(key(res, ns, &name), obj.clone());
    let event_type = if before.is_some() {
        EventType::Modified
    } else {
        EventType::Added
    };
    let revision = st.revision;
    st.record(WatchEvent::new(revision, event_type, res, ns, obj.clone()));
    if let Some(event) = events::rollout_event(res, ns, before.as_ref(), &obj, revision, &now) {
        let events = resources::lookup("v1", "Event");
        finish_write(st, &events, ns, None, event);
    }
    (Change { before, after: obj }, true)
}

fn seed_one(st: &mut State, doc: &Value, default_namespace: &str) -> Result<()> {
    let r = ObjectRef::from_value(doc)?;
    let res = resolve(st, &r.api_version, &r.kind)?;
    validate_object(&res, doc)?;
    let ns = if res.namespaced {
        scope_namespace(
            &res,
            r.namespace.as_deref().unwrap_or(default_namespace),
            None,
        )?
    } else {
        String::new()
    };
    if st.objects.contains_key(&key(&res, &ns, &r.name)) {
        let where_ = if ns.is_empty() {
            String::new()
        } else {
            format!(" in namespace {ns:?}")
        };
        return Err(ClusterError::AlreadyExists(format!(
            "{} {:?} already exists{where_}",
            res.gr(),
            r.name
        )));
    }
    let time = now();
    let mut obj = ssa::apply(None, doc, SEED_MANAGER, true, &time)?;
    let carried = ssa::managed_fields(doc);
    if carried.is_empty() {
        let mut entries = ssa::managed_fields(&obj);
        for e in &mut entries {
            e.operation = "Update".into();
        }
        ssa::set_managed_fields(&mut obj, &entries);
    } else {
        ssa::set_managed_fields(&mut obj, &carried);
    }
    if let (Some(status), Some(top)) = (doc.get("status"), obj.as_object_mut()) {
        top.insert("status".into(), status.clone());
    }
    finish_write(st, &res, &ns, None, obj);
    Ok(())
}

mod backend;
mod crd;
mod events;
mod finalize;
mod logs;
mod status;
mod status_writes;

use crd::{crd_info, crd_of, crd_served_version, crds};
pub use finalize::{DeleteOutcome, Propagation};
pub use logs::LOG_ANNOTATION_PREFIX;
use status::synthesize;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterBackend;
    use stepbox_k8s::readiness::{self, Readiness};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn cm(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
    }

    fn deploy(replicas: Option<i64>, image: &str) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": image}]}}
            }
        });
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn waiting_for_a_change_wakes_on_a_write_not_a_poll() {
        use crate::WatchOutcome;
        use std::time::Duration;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = Arc::new(MemoryCluster::new());
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            let first = c
                .apply(&res, "dev", &cm("a", json!({"k": "1"})), "stepbox", false)
                .await
                .unwrap();
            let rv = first.after["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string();

            // Nothing written: the time given passes.
            let quiet = c
                .wait_for_change(&res, "dev", "a", Some(&rv), Duration::from_millis(50))
                .await
                .unwrap();
            assert_eq!(quiet, WatchOutcome::Elapsed);

            // A write while waiting ends the wait long before its hour.
            let waiter = {
                let (c, res, rv) = (c.clone(), res.clone(), rv.clone());
                tokio::spawn(async move {
                    c.wait_for_change(&res, "dev", "a", Some(&rv), Duration::from_secs(3600))
                        .await
                })
            };
            tokio::task::yield_now().await;
            c.apply(&res, "dev", &cm("a", json!({"k": "2"})), "stepbox", false)
                .await
                .unwrap();
            assert_eq!(waiter.await.unwrap().unwrap(), WatchOutcome::Event);

            // Written since the caller's read: a change already.
            let stale = c
                .wait_for_change(&res, "dev", "a", Some(&rv), Duration::from_secs(3600))
                .await
                .unwrap();
            assert_eq!(stale, WatchOutcome::Event);
        });
    }

    #[test]
    fn create_sets_server_fields() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            let ch = c
                .apply(&res, "dev", &cm("a", json!({"k": "v"})), "stepbox", false)
                .await
                .unwrap();
            assert!(ch.before.is_none());
            let m = &ch.after["metadata"];
            assert_eq!(m["namespace"], "dev");
            assert_eq!(m["resourceVersion"], "1");
            assert_eq!(m["generation"], 1);
            assert_eq!(m["uid"].as_str().unwrap().len(), 36);
            let ts = m["creationTimestamp"].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok()
                    && ts.ends_with('Z')
                    && !ts.contains('.'),
                "{ts}"
            );
            assert_eq!(m["managedFields"][0]["manager"], "stepbox");
            let keys: Vec<&String> = ch.after.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["apiVersion", "kind", "metadata", "data"]);
            let mkeys: Vec<&String> = m.as_object().unwrap().keys().collect();
            assert_eq!(
                mkeys,
                [
                    "name",
                    "namespace",
                    "uid",
                    "resourceVersion",
                    "generation",
                    "creationTimestamp",
                    "managedFields"
                ]
            );
            assert_eq!(
                c.get(&res, "dev", "a").await.unwrap(),
                Some(ch.after.clone())
            );
            assert_eq!(c.get(&res, "other", "a").await.unwrap(), None);
        });
    }

    #[test]
    fn unchanged_configured_and_generation() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("apps/v1", "Deployment").await.unwrap();
            let first = c
                .apply(&res, "dev", &deploy(Some(2), "nginx:1"), "stepbox", false)
                .await
                .unwrap();
            assert_eq!(first.after["metadata"]["generation"], 1);
            // (The stand-in deployment controller's ScalingReplicaSet Event is a write too.)
            let revision = c.revision();
            // Same config: no write at all.
            let again = c
                .apply(&res, "dev", &deploy(Some(2), "nginx:1"), "stepbox", false)
                .await
                .unwrap();
            assert_eq!(again.before.as_ref(), Some(&again.after));
            assert_eq!(again.after, first.after);
            assert_eq!(c.revision(), revision);
            // Label change: metadata only, generation stays.
            let mut relabel = deploy(Some(2), "nginx:1");
            relabel["metadata"]["labels"]["team"] = json!("a");
            let ch = c
                .apply(&res, "dev", &relabel, "stepbox", false)
                .await
                .unwrap();
            assert_eq!(ch.after["metadata"]["generation"], 1);
            assert_eq!(
                ch.after["metadata"]["resourceVersion"],
                (revision + 1).to_string()
            );
            // Spec change: generation bumps, status follows.
            let mut new_image = relabel.clone();
            new_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
            let ch = c
                .apply(&res, "dev", &new_image, "stepbox", false)
                .await
                .unwrap();
            assert_eq!(ch.after["metadata"]["generation"], 2);
            assert_eq!(ch.after["status"]["observedGeneration"], 2);
            assert_eq!(ch.after["metadata"]["uid"], first.after["metadata"]["uid"]);
            assert_eq!(
                ch.after["metadata"]["creationTimestamp"],
                first.after["metadata"]["creationTimestamp"]
            );
            assert_eq!(
                stepbox_k8s::plan::classify(ch.before.as_ref(), &ch.after),
                stepbox_k8s::plan::Action::Configured
            );
        });
    }

    #[test]
    fn workload_status_is_synthesized() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let apply = |v: Value| {
                let c = c.clone();
                async move {
                    let r = object::ObjectRef::from_value(&v).unwrap();
                    let res = c.resource(&r.api_version, &r.kind).await.unwrap();
                    c.apply(&res, "dev", &v, "t", false).await.unwrap().after
                }
            };
            let d = apply(deploy(None, "nginx")).await;
            assert_eq!(d["status"]["availableReplicas"], 1);
            assert!(readiness::has_condition(&d, "Available"));
            assert!(readiness::has_condition(&d, "Progressing"));
            assert_eq!(readiness::condition(&d, "Available").unwrap()["reason"], "MinimumReplicasAvailable");
            assert_eq!(readiness::condition(&d, "Progressing").unwrap()["reason"], "NewReplicaSetAvailable");
            assert_eq!(readiness::rollout_complete("Deployment", &d), Readiness::Ready);

            let sts = apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                                   "spec": {"replicas": 3, "template": {"spec": {}}}}))
            .await;
            assert_eq!(sts["status"]["readyReplicas"], 3);
            assert_eq!(sts["status"]["currentRevision"], sts["status"]["updateRevision"]);
            assert!(readiness::rollout_complete("StatefulSet", &sts).is_ready());

            let ds = apply(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {}})).await;
            assert_eq!(ds["status"]["numberMisscheduled"], 0);
            assert!(readiness::rollout_complete("DaemonSet", &ds).is_ready());

            let job = apply(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
                                   "spec": {"completions": 2, "template": {"spec": {}}}}))
            .await;
            assert_eq!(job["status"]["succeeded"], 2);
            assert!(readiness::has_condition(&job, "Complete"));
            assert!(readiness::has_condition(&job, "SuccessCriteriaMet"));
            assert!(job["status"]["completionTime"].is_string());
            assert!(readiness::rollout_complete("Job", &job).is_ready());

            let suspended = apply(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "later"},
                                         "spec": {"suspend": true}}))
            .await;
            assert!(!readiness::rollout_complete("Job", &suspended).is_ready());

            let pod = apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
            .await;
            assert_eq!(pod["status"]["phase"], "Running");
            assert!(readiness::has_condition(&pod, "Ready"));
            assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);

            let pvc = apply(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
            .await;
            assert_eq!(pvc["status"]["phase"], "Bound");
            assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
        });
    }

    #[test]
    fn services_get_cluster_ips() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "Service").await.unwrap();
            let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
            let a = c.apply(&res, "dev", &svc("a", json!({"ports": [{"port": 80}]})), "t", false).await.unwrap().after;
            let b = c.apply(&res, "dev", &svc("b", json!({"ports": [{"port": 80}]})), "t", false).await.unwrap().after;
            assert_eq!(a["spec"]["clusterIP"], "10.96.0.10");
            assert_eq!(b["spec"]["clusterIP"], "10.96.0.11");
            assert_eq!(a["spec"]["clusterIPs"], json!(["10.96.0.10"]));
            let h = c.apply(&res, "dev", &svc("h", json!({"clusterIP": "None"})), "t", false).await.unwrap().after;
            assert_eq!(h["spec"]["clusterIP"], "None");
            let e = c.apply(&res, "dev", &svc("e", json!({"type": "ExternalName", "externalName": "x.example"})), "t", false).await.unwrap();
            assert!(e.after["spec"].get("clusterIP").is_none());
            // Re-applying keeps the address and changes nothing.
            let again = c.apply(&res, "dev", &svc("a", json!({"ports": [{"port": 80}]})), "t", false).await.unwrap();
            assert_eq!(again.before.as_ref(), Some(&again.after));
            assert_eq!(again.after["spec"]["clusterIP"], "10.96.0.10");
        });
    }

    #[test]
    fn conflicts_between_managers() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            c.apply(&res, "dev", &cm("a", json!({"k": "1"})), "alice", false).await.unwrap();
            let err = c.apply(&res, "dev", &cm("a", json!({"k": "2"})), "bob", false).await.unwrap_err();
            assert!(matches!(&err, ClusterError::Conflict(m) if m.contains("\"alice\"") && m.contains(".data.k")), "{err}");
            let ch = c.apply(&res, "dev", &cm("a", json!({"k": "2"})), "bob", true).await.unwrap();
            assert_eq!(ch.after["data"]["k"], "2");
            let managers: Vec<&str> = ch.after["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["manager"].as_str().unwrap())
                .collect();
            assert_eq!(managers, ["bob"]);
        });
    }

    #[test]
    fn rejects_bad_objects() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            let cases = [
                (json!({"kind": "ConfigMap", "metadata": {"name": "a"}}), "apiVersion"),
                (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}), "metadata.name"),
                (cm("Bad_Name", json!({})), "\"Bad_Name\""),
                (json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}), "does not match"),
                (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "prod"}}), "\"prod\""),
                (json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "5"}}), "resourceVersion"),
            ];
            for (obj, want) in cases {
                let err = c.apply(&res, "dev", &obj, "t", false).await.unwrap_err();
                assert!(matches!(err, ClusterError::Invalid(_)), "{err}");
                assert!(err.to_string().contains(want), "{err} !~ {want}");
            }
            assert!(c.apply(&res, "", &cm("a", json!({})), "t", false).await.is_err());
            assert!(c.apply(&res, "dev", &cm("a", json!({})), "", false).await.is_err());
            let svc = c.resource("v1", "Service").await.unwrap();
            let err = c
                .apply(&svc, "dev", &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1svc"}}), "t", false)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("DNS-1035"), "{err}");
            assert!(c.is_empty());
        });
    }

    #[test]
    fn resource_version_precondition() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            c.apply(&res, "dev", &cm("a", json!({"k": "1"})), "t", false)
                .await
                .unwrap();
            let mut stale = cm("a", json!({"k": "2"}));
            stale["metadata"]["resourceVersion"] = json!("99");
            let err = c.apply(&res, "dev", &stale, "t", false).await.unwrap_err();
            assert!(matches!(err, ClusterError::Conflict(m) if m.contains("has been modified")));
            stale["metadata"]["resourceVersion"] = json!("1");
            assert_eq!(
                c.apply(&res, "dev", &stale, "t", false)
                    .await
                    .unwrap()
                    .after["data"]["k"],
                "2"
            );
        });
    }

    #[test]
    fn merge_patch_semantics() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("apps/v1", "Deployment").await.unwrap();
            let err = c
                .merge_patch(&res, "dev", "web", &json!({}))
                .await
                .unwrap_err();
            assert_eq!(
                err,
                ClusterError::NotFound("deployments.apps \"web\" not found".into())
            );
            c.apply(&res, "dev", &deploy(Some(1), "nginx"), "t", false)
                .await
                .unwrap();
            let ch = c
                .merge_patch(
                    &res,
                    "dev",
                    "web",
                    &json!({"spec": {"replicas": 4}, "status": {"replicas": 99}}),
                )
                .await
                .unwrap();
            assert_eq!(ch.after["spec"]["replicas"], 4);
            assert_eq!(ch.after["status"]["replicas"], 4);
            assert_eq!(ch.after["metadata"]["generation"], 2);
            let ch = c
                .merge_patch(
                    &res,
                    "dev",
                    "web",
                    &json!({"metadata": {"labels": {"app": null, "x": "y"}}}),
                )
                .await
                .unwrap();
            assert_eq!(ch.after["metadata"]["labels"], json!({"x": "y"}));
            assert_eq!(ch.after["metadata"]["generation"], 2);
            // No-op patch: no write.
            let rv = c.revision();
            let ch = c
                .merge_patch(&res, "dev", "web", &json!({"spec": {"replicas": 4}}))
                .await
                .unwrap();
            assert_eq!(ch.before.as_ref(), Some(&ch.after));
            assert_eq!(c.revision(), rv);
            // Server fields and identity are protected.
            let ch = c
                .merge_patch(
                    &res,
                    "dev",
                    "web",
                    &json!({"metadata": {"generation": 50, "creationTimestamp": "x"}}),
                )
                .await
                .unwrap();
            assert_eq!(ch.after["metadata"]["generation"], 2);
            assert_ne!(ch.after["metadata"]["creationTimestamp"], "x");
            assert_eq!(ch.before.as_ref(), Some(&ch.after));
            // A uid in the patch is a precondition, as in Kubernetes.
            let err = c
                .merge_patch(&res, "dev", "web", &json!({"metadata": {"uid": "x"}}))
                .await
                .unwrap_err();
            assert!(
                matches!(err, ClusterError::Conflict(ref m) if m.contains("UID")),
                "{err}"
            );
            for bad in [
                json!({"metadata": {"name": "other"}}),
                json!({"kind": "Pod"}),
                json!({"metadata": null}),
            ] {
                let err = c.merge_patch(&res, "dev", "web", &bad).await.unwrap_err();
                assert!(matches!(err, ClusterError::Invalid(_)), "{bad}: {err}");
            }
            assert!(
                c.merge_patch(&res, "dev", "web", &json!([1]))
                    .await
                    .is_err()
            );
            let err = c
                .merge_patch(
                    &res,
                    "dev",
                    "web",
                    &json!({"metadata": {"resourceVersion": "1"}}),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, ClusterError::Conflict(_)));
        });
    }

    #[test]
    fn delete_and_list() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            for (ns, name, app) in [
                ("dev", "b", "web"),
                ("dev", "a", "web"),
                ("dev", "c", "db"),
                ("prod", "a", "web"),
            ] {
                let mut o = cm(name, json!({}));
                o["metadata"]["labels"] = json!({"app": app});
                c.apply(&res, ns, &o, "t", false).await.unwrap();
            }
            let names = |items: Vec<Value>| {
                items
                    .iter()
                    .map(|i| {
                        format!(
                            "{}/{}",
                            i["metadata"]["namespace"].as_str().unwrap(),
                            object::name(i).unwrap()
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                names(c.list(&res, "dev", None).await.unwrap()),
                ["dev/a", "dev/b", "dev/c"]
            );
            let sel = LabelSelector::parse("app=web").unwrap();
            assert_eq!(
                names(c.list(&res, "dev", Some(&sel)).await.unwrap()),
                ["dev/a", "dev/b"]
            );
            assert_eq!(
                names(c.list(&res, "", Some(&sel)).await.unwrap()),
                ["dev/a", "dev/b", "prod/a"]
            );
            let secrets = c.resource("v1", "Secret").await.unwrap();
            assert!(c.list(&secrets, "dev", None).await.unwrap().is_empty());
            assert_eq!(c.namespaces(), ["dev", "prod"]);

            let gone = c.delete(&res, "dev", "a").await.unwrap().unwrap();
            assert_eq!(object::name(&gone), Some("a"));
            assert_eq!(c.delete(&res, "dev", "a").await.unwrap(), None);
            assert_eq!(c.get(&res, "dev", "a").await.unwrap(), None);

            let ns_res = c.resource("v1", "Namespace").await.unwrap();
            c.apply(
                &ns_res,
                "ignored",
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}),
                "t",
                false,
            )
            .await
            .unwrap();
            c.delete(&ns_res, "", "prod").await.unwrap();
            assert_eq!(c.namespaces(), ["dev"]);
        });
    }

    #[test]
    fn cluster_scoped_objects_have_no_namespace() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let res = c.resource("v1", "Namespace").await.unwrap();
            let ch = c
                .apply(&res, "dev", &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}), "t", false)
                .await
                .unwrap();
            assert!(ch.after["metadata"].get("namespace").is_none());
            assert_eq!(ch.after["status"]["phase"], "Active");
            assert!(c.get(&res, "whatever", "team-a").await.unwrap().is_some());
        });
    }

    #[test]
    fn seeding() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let yaml = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: slow}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: other}
spec: {replicas: 2, template: {spec: {containers: [{name: web, image: "nginx:1"}]}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
  managedFields:
  - manager: helm
    operation: Update
    apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1: {"f:data": {"f:k": {}}}
data: {k: v}
"#;
            assert_eq!(c.seed_yaml(yaml, "dev").unwrap(), 3);
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            let settings = c.get(&res, "dev", "settings").await.unwrap().unwrap();
            assert_eq!(settings["metadata"]["managedFields"][0]["manager"], "seed");
            assert_eq!(settings["metadata"]["managedFields"][0]["operation"], "Update");
            // Seeded fields never conflict.
            let ch = c.apply(&res, "dev", &cm("settings", json!({"mode": "fast"})), "stepbox", false).await.unwrap();
            assert_eq!(ch.after["data"]["mode"], "fast");
            // Carried managedFields are real owners.
            let err = c.apply(&res, "dev", &cm("owned", json!({"k": "changed"})), "stepbox", false).await.unwrap_err();
            assert!(err.to_string().contains("\"helm\""), "{err}");
            let d = c.get(&c.resource("apps/v1", "Deployment").await.unwrap(), "other", "web").await.unwrap().unwrap();
            assert_eq!(d["status"]["readyReplicas"], 2);
            // All or nothing.
            let before = c.len();
            let err = c.seed_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n", "dev").unwrap_err();
            assert!(matches!(err, ClusterError::AlreadyExists(ref m) if m.contains("\"settings\"")), "{err}");
            assert_eq!(c.len(), before);
            assert!(matches!(c.seed_yaml("kind: [", "dev"), Err(ClusterError::Invalid(_))));
        });
    }

    #[test]
    fn crds_drive_discovery() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let guessed = c.resource("example.com/v1", "Gadget").await.unwrap();
            assert_eq!(guessed.plural, "gadgets");
            assert!(guessed.namespaced);
            c.seed_yaml(
                r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmoz.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Gadget, plural: gizmoz}
  versions: [{name: v1, served: true, storage: true}]
"#,
                "dev",
            )
            .unwrap();
            let res = c.resource("example.com/v1", "Gadget").await.unwrap();
            assert_eq!(res.plural, "gizmoz");
            assert!(!res.namespaced);
            assert_eq!(
                c.resource_by_plural("example.com", "gizmoz")
                    .map(|r| r.kind),
                Some("Gadget".into())
            );
            assert_eq!(
                c.resource_by_plural("apps", "deployments").map(|r| r.kind),
                Some("Deployment".into())
            );
            assert!(matches!(
                c.resource("a/b/c", "X").await,
                Err(ClusterError::Invalid(_))
            ));
            assert!(matches!(
                c.resource("v1", "").await,
                Err(ClusterError::Invalid(_))
            ));
            assert!(matches!(
                c.resource("v1", "Con fig").await,
                Err(ClusterError::Invalid(_))
            ));
        });
    }

    #[test]
    fn get_answers_in_requested_version() {
        rt().block_on(async {
            let c = MemoryCluster::new();
            let v2 = c.resource("autoscaling/v2", "HorizontalPodAutoscaler").await.unwrap();
            let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}, "spec": {}});
            c.apply(&v2, "dev", &hpa, "t", false).await.unwrap();
            let v1 = c.resource("autoscaling/v1", "HorizontalPodAutoscaler").await.unwrap();
            assert_eq!(c.get(&v1, "dev", "h").await.unwrap().unwrap()["apiVersion"], "autoscaling/v1");
        });
    }

    #[test]
    fn concurrent_writers_share_one_store() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let c = MemoryCluster::new();
            let mut rx = c.subscribe();
            let res = c.resource("v1", "ConfigMap").await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..20 {
                let c = c.clone();
                let res = res.clone();
                tasks.push(tokio::spawn(async move {
                    c.apply(
                        &res,
                        "dev",
                        &cm(&format!("cm-{i}"), json!({"i": i.to_string()})),
                        "t",
                        false,
                    )
                    .await
                    .unwrap()
                }));
            }
            let mut versions = BTreeSet::new();
            for t in tasks {
                versions.insert(
                    t.await.unwrap().after["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            assert_eq!(versions.len(), 20);
            assert_eq!(c.revision(), 20);
            assert_eq!(c.list(&res, "dev", None).await.unwrap().len(), 20);
            assert!(rx.has_changed().unwrap());
            assert_eq!(*rx.borrow_and_update(), 20);
            assert_eq!(c.snapshot().len(), 20);
        });
    }
}
