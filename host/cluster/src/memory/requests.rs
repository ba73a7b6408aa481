//! The requests of a Kubernetes API server, on a [`MemoryCluster`].
//!
//! The [`ClusterBackend`](crate::ClusterBackend) trait is what a step needs
//! (apply, merge patch, delete). Serving the embedded namespace to real
//! clients (`stepbox dev-cluster`) needs the rest of the API's verbs, with
//! the API server's rules:
//!
//! - [`create`](MemoryCluster::create): `AlreadyExists` when the object is
//!   there; `metadata.generateName` picks a free name.
//! - [`update`](MemoryCluster::update) (PUT): replaces the object; a
//!   `metadata.resourceVersion` in it must match the stored one, else
//!   `Conflict` (409). Status is kept (it is a subresource).
//! - [`patch`](MemoryCluster::patch): JSON patch, JSON merge patch,
//!   strategic merge patch, or server-side apply (which creates the object
//!   when absent). A resourceVersion or uid the patch sets is a
//!   precondition.
//! - [`delete_with`](MemoryCluster::delete_with): with uid /
//!   resourceVersion preconditions.
//! - [`list_with`](MemoryCluster::list_with): label and field selectors, and
//!   the list's resourceVersion (where a watch starts).
//!
//! Every write takes [`WriteOptions`]: `dry_run` computes and returns the
//! result without storing anything (the API's `dryRun=All`), and
//! `field_manager` records who changed which fields in
//! `metadata.managedFields` as an `Update` operation, as the API server
//! does for everything but server-side apply. `managedFields` the request
//! itself sets (as `kubectl apply --server-side` does when it migrates
//! client-side-apply ownership) replace the stored ones.
//!
//! Namespaces stay implicit here, as everywhere in `MemoryCluster`; a server
//! that wants Kubernetes' "namespace not found" checks
//! [`namespace_exists`](MemoryCluster::namespace_exists) first.

use std::sync::MutexGuard;

use serde_json::{Map, Value};

use super::{
    Change, ClusterError, DeleteOutcome, LabelSelector, MemoryCluster, Propagation, ResourceInfo,
    Result, State, check_preconditions, crd, finalize, key, not_found, now, object, resolve,
    scope_namespace, validate_object,
};
use stepbox_k8s::patch::{self as patches, PatchType};
use stepbox_k8s::selector::FieldSelector;
use stepbox_k8s::ssa::{self, FieldPath, FieldSet, ManagedFieldsEntry, PathElement, Scope};

/// The annotation `kubectl apply` keeps its last applied configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Options of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compute and return the result, store nothing (`dryRun=All`).
    pub dry_run: bool,
    /// Who writes, for `metadata.managedFields` (`fieldManager`). `None`
    /// records no ownership (server-side apply requires one).
    pub field_manager: Option<String>,
    /// Server-side apply only: take over fields other managers own
    /// instead of failing with a conflict (`force=true`).
    pub force: bool,
}

impl WriteOptions {
    /// A stored write by `manager`.
    pub fn by(manager: &str) -> Self {
        Self {
            field_manager: Some(manager.to_string()),
            ..Self::default()
        }
    }
}

/// Options of [`MemoryCluster::delete_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Return what would be deleted, delete nothing (`dryRun=All`).
    pub dry_run: bool,
    /// Precondition: the object's uid.
    pub uid: Option<String>,
    /// Precondition: the object's resourceVersion.
    pub resource_version: Option<String>,
    /// What happens to the object's dependents (`propagationPolicy`).
    pub propagation: Propagation,
}

/// The answer to a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    /// The matching objects, sorted by namespace and name.
    pub items: Vec<Value>,
    /// The store's resourceVersion when the list was taken: a watch from it
    /// sees every later change.
    pub resource_version: u64,
}

/// Letters Kubernetes uses for random name suffixes (no vowels, no
/// look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn random_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| SUFFIX_ALPHABET[usize::from(*b) % SUFFIX_ALPHABET.len()] as char)
        .collect()
}

impl MemoryCluster {
    /// True when a `Namespace` object named `name` is stored.
    pub fn namespace_exists(&self, name: &str) -> bool {
        let st = self.lock();
        st.objects.contains_key(&(
            String::new(),
            "Namespace".to_string(),
            String::new(),
            name.to_string(),
        ))
    }

    /// Creates the `Namespace` object `name` (as field manager `manager`)
    /// unless it exists. Returns true when it was created.
    ///
    /// # Errors
    /// [`ClusterError::Invalid`] for a name that is not a DNS label.
    pub fn ensure_namespace(&self, name: &str, manager: &str) -> Result<bool> {
        if self.namespace_exists(name) {
            return Ok(false);
        }
        let res = ResourceInfo::new("", "v1", "Namespace", "namespaces", false);
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match self.create(&res, "", &ns, &WriteOptions::by(manager)) {
            Ok(_) => Ok(true),
            Err(ClusterError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Resolves a kind (stored CRDs first, then the built-in table), as
    /// [`ClusterBackend::resource`](crate::ClusterBackend::resource) does,
    /// without awaiting.
    ///
    /// # Errors
    /// [`ClusterError::Invalid`] for a malformed apiVersion or kind.
    pub fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<ResourceInfo> {
        resolve(&self.lock(), api_version, kind)
    }

    /// Reads one object (in `res`'s apiVersion); `None` when absent.
    pub fn get_object(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Option<Value> {
        let found = self.lock().objects.get(&key(res, namespace, name)).cloned();
        found.map(|o| Self::with_api_version(res, o))
    }

    /// Lists the objects of `res` in `namespace` (`""`: every namespace)
    /// matching both selectors, with the list's resourceVersion.
    pub fn list_with(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        labels: Option<&LabelSelector>,
        fields: Option<&FieldSelector>,
    ) -> ListResult {
        let st = self.lock();
        let all_namespaces = !res.namespaced || namespace.is_empty();
        let start = (
            res.group.clone(),
            res.kind.clone(),
            if all_namespaces {
                String::new()
            } else {
                namespace.to_string()
            },
            String::new(),
        );
        let items = st
            .objects
            .range(start..)
            .take_while(|((g, k, ns, _), _)| {
                g == &res.group && k == &res.kind && (all_namespaces || ns == namespace)
            })
            .filter(|(_, obj)| labels.is_none_or(|s| s.matches_value(obj)))
            .filter(|(_, obj)| fields.is_none_or(|s| s.matches_value(obj)))
            .map(|(_, obj)| Self::with_api_version(res, obj.clone()))
            .collect();
        ListResult {
            items,
            resource_version: st.revision,
        }
    }

    /// Creates an object (a POST). A missing `metadata.name` with a
    /// `metadata.generateName` gets a generated name. Status in the object
    /// is ignored (workloads get their synthesized one).
    ///
    /// # Errors
    /// [`ClusterError::AlreadyExists`] when the object exists;
    /// [`ClusterError::Invalid`] for a bad object, name or namespace, or a
    /// resourceVersion set on it.
    pub fn create(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        object: &Value,
        opts: &WriteOptions,
    ) -> Result<Value> {
        let mut obj = object.clone();
        let generate = obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_string);
        let unnamed = object::name(&obj).is_none_or(str::is_empty);
        if let (Some(prefix), true) = (generate, unnamed)
            && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert(
                "name".into(),
                Value::String(format!("{prefix}{}", random_suffix())),
            );
        }
        let r = validate_object(res, &obj)?;
        let ns = scope_namespace(res, namespace, r.namespace.as_deref())?;
        let st = self.lock();
        if st.objects.contains_key(&key(res, &ns, &r.name)) {
            return Err(ClusterError::AlreadyExists(format!(
                "{} {:?} already exists",
                res.gr(),
                r.name
            )));
        }
        check_preconditions(res, &r.name, &obj, None)?;
        let change = self.write_main(st, res, &ns, None, obj, opts)?;
        Ok(Self::with_api_version(res, change.after))
    }

    /// Replaces an object (a PUT). A `metadata.resourceVersion` (or uid) in
    /// `object` must match the stored one; without one the update is
    /// unconditional. Status and server-owned metadata are kept.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] when absent; [`ClusterError::Conflict`]
    /// when the resourceVersion is stale; [`ClusterError::Invalid`] for a
    /// bad object or a name that is not `name`.
    pub fn update(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        object: &Value,
        opts: &WriteOptions,
    ) -> Result<Change> {
        let r = validate_object(res, object)?;
        if r.name != name {
            return Err(ClusterError::Invalid(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                r.name
            )));
        }
        let ns = scope_namespace(res, namespace, r.namespace.as_deref())?;
        let st = self.lock();
        let live = st.live(res, &ns, name)?;
        check_preconditions(res, name, object, Some(&live))?;
        let obj = object.clone();
        let change = self.write_main(st, res, &ns, Some(live), obj, opts)?;
        Ok(versioned(res, change))
    }

    /// The end of a create, update or patch of an object's main resource:
    /// the server's fields come from `live` (none for a new object), the
    /// field manager's update is recorded, and the object is committed.
    fn write_main(
        &self,
        st: MutexGuard<'_, State>,
        res: &ResourceInfo,
        ns: &str,
        live: Option<Value>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Change> {
        strip_server_fields(
            &mut obj,
            live.as_ref(),
            crd::main_resource_writes_status(&st, res),
        );
        if let Some(m) = &opts.field_manager {
            record_update(Scope::Main, live.as_ref(), &mut obj, m, &now());
        }
        self.commit(st, res, ns, live, obj, opts.dry_run)
    }

    /// Patches an object. `patch` is the parsed body: a list of operations
    /// for [`PatchType::Json`], an object otherwise. [`PatchType::Apply`] is
    /// server-side apply by `opts.field_manager` (required), `opts.force`
    /// taking over conflicting fields; it creates the object when absent. When
    /// field manager `kubectl` applies to an object with kubectl's
    /// last-applied annotation, the annotation follows the applied
    /// configuration, as in Kubernetes.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] when absent (except for apply);
    /// [`ClusterError::Conflict`] for a failed precondition or, for apply,
    /// fields owned by other managers; [`ClusterError::Invalid`] for a patch
    /// that does not apply or would change the object's identity.
    pub fn patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        opts: &WriteOptions,
    ) -> Result<Change> {
        if patch_type == PatchType::Apply {
            return self.apply_patch(res, namespace, name, patch, opts);
        }
        let ns = scope_namespace(res, namespace, None)?;
        let st = self.lock();
        let live = st.live(res, &ns, name)?;
        let obj = patched(res, &live, patch_type, patch)?;
        check_identity(res, &ns, name, &obj)?;
        check_preconditions(res, name, &obj, Some(&live))?;
        let change = self.write_main(st, res, &ns, Some(live), obj, opts)?;
        Ok(versioned(res, change))
    }

    fn apply_patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        config: &Value,
        opts: &WriteOptions,
    ) -> Result<Change> {
        let force = opts.force;
        let r = validate_object(res, config)?;
        if r.name != name {
            return Err(ClusterError::Invalid(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                r.name
            )));
        }
        let manager = opts
            .field_manager
            .as_deref()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ClusterError::Invalid(
                    "PATCH requests with apply-patch content type require fieldManager".into(),
                )
            })?;
        let ns = scope_namespace(res, namespace, r.namespace.as_deref())?;
        let st = self.lock();
        let live = st.objects.get(&key(res, &ns, name)).cloned();
        check_preconditions(res, name, config, live.as_ref())?;
        let base = match &live {
            Some(l) if manager == "kubectl" && !force => csa_upgrade_base(l, config),
            _ => None,
        };
        let mut merged = ssa::apply(
            base.as_ref().or(live.as_ref()),
            config,
            manager,
            force,
            &now(),
        )?;
        if manager == "kubectl"
            && live
                .as_ref()
                .is_some_and(|l| object::annotations(l).contains_key(LAST_APPLIED_ANNOTATION))
        {
            set_last_applied(&mut merged, config);
        }
        let change = self.commit(st, res, &ns, live, merged, opts.dry_run)?;
        Ok(versioned(res, change))
    }

    /// Deletes one object (a DELETE), returning it as of its deletion.
    /// Deleting a `Namespace` deletes everything in it.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] when absent; [`ClusterError::Conflict`]
    /// when a precondition fails.
    pub fn delete_with(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome> {
        let mut st = self.lock();
        let live = st
            .objects
            .get(&key(res, namespace, name))
            .cloned()
            .ok_or_else(|| not_found(res, name))?;
        if let Some(uid) = opts.uid.as_deref().filter(|u| !u.is_empty()) {
            let have = live
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if uid != have {
                return Err(ClusterError::Conflict(format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                )));
            }
        }
        if let Some(rv) = opts.resource_version.as_deref().filter(|r| !r.is_empty()) {
            let have = object::resource_version(&live).unwrap_or("");
            if rv != have {
                return Err(ClusterError::Conflict(format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {have}"
                )));
            }
        }
        if opts.dry_run {
            let pending = !finalize::finalizers(&live).is_empty();
            let live = Self::with_api_version(res, live);
            return Ok(if pending {
                DeleteOutcome::Finalizing(live)
            } else {
                DeleteOutcome::Deleted(live)
            });
        }
        let outcome = finalize::delete(&mut st, res, namespace, name, opts.propagation)
            .unwrap_or(DeleteOutcome::Deleted(live));
        self.announce(st);
        Ok(match outcome {
            DeleteOutcome::Deleted(o) => DeleteOutcome::Deleted(Self::with_api_version(res, o)),
            DeleteOutcome::Finalizing(o) => {
                DeleteOutcome::Finalizing(Self::with_api_version(res, o))
            }
        })
    }
}

pub(super) fn versioned(res: &ResourceInfo, change: Change) -> Change {
    Change {
        before: change
            .before
            .map(|b| MemoryCluster::with_api_version(res, b)),
        after: MemoryCluster::with_api_version(res, change.after),
    }
}

/// A patched object must keep the identity of the one patched.
fn check_identity(res: &ResourceInfo, ns: &str, name: &str, obj: &Value) -> Result<()> {
    let r = object::ObjectRef::from_value(obj).map_err(|e| {
        ClusterError::Invalid(format!(
            "the patch breaks {} {name:?}: {}",
            res.kind,
            e.message()
        ))
    })?;
    let same_ns = !res.namespaced || r.namespace.as_deref().is_none_or(|o| o == ns);
    if r.kind != res.kind || r.group() != res.group || r.name != name || !same_ns {
        return Err(ClusterError::Invalid(format!(
            "a patch may not change the apiVersion group, kind, name or namespace of {} {name:?}",
            res.kind
        )));
    }
    Ok(())
}

/// `live` with a JSON, strategic merge or merge `patch` applied (an apply
/// patch is merged here; server-side apply is the caller's).
///
/// # Errors
/// [`ClusterError::Invalid`] for a patch that does not apply, or a merge
/// patch that is not an object.
pub(super) fn patched(
    res: &ResourceInfo,
    live: &Value,
    patch_type: PatchType,
    patch: &Value,
) -> Result<Value> {
    Ok(match patch_type {
        PatchType::Json => patches::json_patch(live, patch)?,
        PatchType::StrategicMerge => patches::strategic_merge(live, patch, res)?,
        PatchType::Merge | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ClusterError::Invalid(format!(
                    "a merge patch must be a JSON object, found {}",
                    object::type_name(patch)
                )));
            }
            let mut obj = live.clone();
            ssa::merge_patch(&mut obj, patch);
            obj
        }
    })
}

/// Server-owned metadata comes from the stored object (none for a create),
/// and so does status unless `writes_status` (see
/// [`crd::main_resource_writes_status`]); `managedFields` stay as the
/// request has them, or as stored when the request has none.
pub(super) fn strip_server_fields(obj: &mut Value, live: Option<&Value>, writes_status: bool) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ssa::SERVER_METADATA_FIELDS {
            if *f == "managedFields" {
                continue;
            }
            match live.and_then(|l| l.pointer(&format!("/metadata/{f}"))) {
                Some(v) => meta.insert((*f).to_string(), v.clone()),
                None => meta.shift_remove(*f),
            };
        }
        // An empty list resets ownership, as in Kubernetes.
        if meta
            .get("managedFields")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            meta.shift_remove("managedFields");
        } else if !meta.contains_key("managedFields")
            && let Some(m) = live.and_then(|l| l.pointer("/metadata/managedFields"))
        {
            meta.insert("managedFields".into(), m.clone());
        }
    }
    if let Some(top) = obj.as_object_mut()
        && !writes_status
    {
        match live.and_then(|l| l.get("status")) {
            Some(s) => top.insert("status".into(), s.clone()),
            None => top.shift_remove("status"),
        };
    }
}

/// Records an `Update` by `manager` in `after`'s managedFields, in `scope`
/// (the main resource, or the status subresource): the manager owns the
/// fields it changed (every field, for a create), other managers lose
/// them, and fields the write removed are owned by no one.
pub(super) fn record_update(
    scope: Scope,
    before: Option<&Value>,
    after: &mut Value,
    manager: &str,
    now: &str,
) {
    let requested = after.pointer("/metadata/managedFields").cloned();
    let stored = before
        .and_then(|b| b.pointer("/metadata/managedFields"))
        .cloned();
    // managedFields the request changed are taken as given.
    let mut entries = if requested != stored {
        ssa::managed_fields(after)
    } else {
        before.map(ssa::managed_fields).unwrap_or_default()
    };
    let api_version = object::api_version(after).unwrap_or_default().to_string();
    let cfg_after = scope.config(after);
    let cfg_before = before.map(|b| scope.config(b));
    let changed: Vec<FieldPath> = ssa::field_set(&cfg_after)
        .iter()
        .filter(|p| {
            let was = cfg_before.as_ref().and_then(|b| ssa::get_path(b, p));
            match p.last() {
                // A list item is the manager's when it added the item; a
                // changed item only hands over the changed fields in it.
                Some(PathElement::Key(_)) => was.is_none(),
                _ => was != ssa::get_path(&cfg_after, p),
            }
        })
        .cloned()
        .collect();
    let present = |p: &FieldPath| ssa::get_path(&cfg_after, p).is_some();
    let own =
        |e: &ManagedFieldsEntry| e.manager == manager && e.operation == "Update" && scope.covers(e);
    for e in entries.iter_mut().filter(|e| scope.covers(e) && !own(e)) {
        let kept: Vec<FieldPath> = e
            .fields
            .iter()
            .filter(|p| present(p) && !changed.contains(p))
            .cloned()
            .collect();
        if kept.len() != e.fields.len() {
            e.fields = kept.into_iter().fold(FieldSet::new(), |mut s, p| {
                s.insert(p);
                s
            });
        }
    }
    let mut mine = entries
        .iter()
        .find(|e| own(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let before_mine = mine.clone();
    for p in changed {
        mine.insert(p);
    }
    let mine: FieldSet =
        mine.iter()
            .filter(|p| present(p))
            .cloned()
            .fold(FieldSet::new(), |mut s, p| {
                s.insert(p);
                s
            });
    match entries.iter_mut().find(|e| own(e)) {
        Some(e) => {
            if mine != before_mine || e.api_version != api_version {
                e.time = Some(now.to_string());
            }
            e.fields = mine;
            e.api_version = api_version;
        }
        None if !mine.is_empty() => entries.push(ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version,
            time: Some(now.to_string()),
            subresource: scope.subresource().map(str::to_string),
            fields: mine,
        }),
        None => {}
    }
    entries.retain(|e| !e.fields.is_empty());
    ssa::set_managed_fields(after, &entries);
}

/// Kubernetes lets `kubectl apply --server-side` (field manager `kubectl`)
/// take over fields from client-side apply without conflicts while the
/// object still is what `kubectl apply` last applied: the fields of
/// kubectl's last-applied annotation, when every one of them has its
/// last-applied value live. Returns `live` with those fields, where
/// `config` changes them, owned by no one else; `None` when nothing is
/// allowed.
fn csa_upgrade_base(live: &Value, config: &Value) -> Option<Value> {
    let text = object::annotations(live).remove(LAST_APPLIED_ANNOTATION)?;
    let last: Value = serde_json::from_str(&text).ok()?;
    let last = ssa::sanitize_config(&last);
    let last_fields = ssa::field_set(&last);
    let matches_live = last_fields.iter().all(|p| {
        match (ssa::get_path(&last, p), ssa::get_path(live, p)) {
            // An empty map claims the map, not what is in it.
            (Some(Value::Object(m)), Some(Value::Object(_))) if m.is_empty() => true,
            (a, b) => a == b,
        }
    });
    if !matches_live {
        return None;
    }
    let cfg = ssa::sanitize_config(config);
    let allowed: Vec<&FieldPath> = last_fields
        .iter()
        .filter(|p| ssa::get_path(&cfg, p).is_some_and(|v| Some(v) != ssa::get_path(live, p)))
        .collect();
    if allowed.is_empty() {
        return None;
    }
    let mut entries = ssa::managed_fields(live);
    for e in entries.iter_mut().filter(|e| e.manager != "kubectl") {
        for p in &allowed {
            e.fields.remove_subtree(p);
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    let mut base = live.clone();
    ssa::set_managed_fields(&mut base, &entries);
    Some(base)
}

/// Sets kubectl's last-applied annotation to `config` (itself without that
/// annotation), encoded as kubectl does: keys sorted, a trailing newline.
fn set_last_applied(obj: &mut Value, config: &Value) {
    let mut cfg = config.clone();
    if let Some(annotations) = cfg
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.shift_remove(LAST_APPLIED_ANNOTATION);
    }
    let text = format!("{}\n", sorted(&cfg));
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
        }
    }
}

/// A value with every map's keys sorted, as Go's encoding/json writes maps.
pub(crate) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
    }

    fn cms() -> ResourceInfo {
        stepbox_k8s::resources::lookup("v1", "ConfigMap")
    }

    fn managers(v: &Value) -> Vec<(String, String)> {
        ssa::managed_fields(v)
            .into_iter()
            .map(|e| (e.manager, e.operation))
            .collect()
    }

    #[test]
    fn create_update_conflicts() {
        let c = MemoryCluster::new();
        let res = cms();
        let created = c
            .create(
                &res,
                "dev",
                &cm("a", json!({"k": "1"})),
                &WriteOptions::by("kubectl-create"),
            )
            .unwrap();
        assert_eq!(created["metadata"]["resourceVersion"], "1");
        assert_eq!(
            managers(&created),
            [("kubectl-create".into(), "Update".into())]
        );
        let err = c
            .create(&res, "dev", &cm("a", json!({})), &WriteOptions::default())
            .unwrap_err();
        assert_eq!(
            err,
            ClusterError::AlreadyExists("configmaps \"a\" already exists".into())
        );

        let mut stale = created.clone();
        stale["data"]["k"] = json!("2");
        let ch = c
            .update(&res, "dev", "a", &stale, &WriteOptions::by("editor"))
            .unwrap();
        assert_eq!(ch.after["data"]["k"], "2");
        assert_eq!(ch.after["metadata"]["resourceVersion"], "2");
        // data.k moved to the editor.
        let entries = ssa::managed_fields(&ch.after);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "editor");
        // The same body again is stale now.
        let err = c
            .update(&res, "dev", "a", &stale, &WriteOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::Conflict(ref m) if m.contains("has been modified")),
            "{err}"
        );
        // Without a resourceVersion it is unconditional.
        let mut blind = cm("a", json!({"k": "3"}));
        blind["metadata"]["labels"] = json!({"x": "y"});
        let ch = c
            .update(&res, "dev", "a", &blind, &WriteOptions::default())
            .unwrap();
        assert_eq!(ch.after["data"]["k"], "3");
        assert!(
            c.update(
                &res,
                "dev",
                "nope",
                &cm("nope", json!({})),
                &WriteOptions::default()
            )
            .is_err()
        );
        let err = c
            .update(
                &res,
                "dev",
                "a",
                &cm("b", json!({})),
                &WriteOptions::default(),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("does not match the name on the URL"),
            "{err}"
        );
    }

    #[test]
    fn generate_name() {
        let c = MemoryCluster::new();
        let obj =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}});
        let a = c
            .create(&cms(), "dev", &obj, &WriteOptions::default())
            .unwrap();
        let name = object::name(&a).unwrap();
        assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    }

    #[test]
    fn dry_run_writes_nothing() {
        let c = MemoryCluster::new();
        let res = cms();
        let dry = WriteOptions {
            dry_run: true,
            field_manager: Some("m".into()),
            force: false,
        };
        let out = c
            .create(&res, "dev", &cm("a", json!({"k": "1"})), &dry)
            .unwrap();
        assert_eq!(out["data"]["k"], "1");
        assert!(out["metadata"].get("resourceVersion").is_none());
        assert!(c.is_empty());
        assert_eq!(c.revision(), 0);
        c.create(
            &res,
            "dev",
            &cm("a", json!({"k": "1"})),
            &WriteOptions::default(),
        )
        .unwrap();
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Merge,
                &json!({"data": {"k": "2"}}),
                &dry,
            )
            .unwrap();
        assert_eq!(ch.after["data"]["k"], "2");
        let ch2 = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({"k": "9"})),
                &WriteOptions {
                    force: true,
                    ..dry.clone()
                },
            )
            .unwrap();
        assert_eq!(ch2.after["data"]["k"], "9");
        let ch3 = c
            .update(&res, "dev", "a", &cm("a", json!({"k": "3"})), &dry)
            .unwrap();
        assert_eq!(ch3.after["data"]["k"], "3");
        c.delete_with(
            &res,
            "dev",
            "a",
            &DeleteOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.get_object(&res, "dev", "a").unwrap()["data"]["k"], "1");
        assert_eq!(c.revision(), 1);
        assert_eq!(c.events_since(0).unwrap().len(), 1);
    }

    #[test]
    fn patch_types_and_preconditions() {
        let c = MemoryCluster::new();
        let res = stepbox_k8s::resources::lookup("apps/v1", "Deployment");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "side", "image": "envoy"}]}}}});
        c.create(
            &res,
            "dev",
            &d,
            &WriteOptions::by("kubectl-client-side-apply"),
        )
        .unwrap();
        let none = WriteOptions::by("kubectl-patch");
        let ch = c
            .patch(&res, "dev", "web", PatchType::StrategicMerge,
                   &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}), &none)
            .unwrap();
        let cs = &ch.after["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["image"], "nginx:2");
        assert_eq!(cs[1]["name"], "side");
        assert_eq!(ch.after["metadata"]["generation"], 2);
        assert_eq!(
            managers(&ch.after),
            [
                ("kubectl-client-side-apply".into(), "Update".into()),
                ("kubectl-patch".into(), "Update".into()),
            ]
        );
        let rv = object::resource_version(&ch.after).unwrap().to_string();
        let ch = c
            .patch(
                &res,
                "dev",
                "web",
                PatchType::Json,
                &json!([{"op": "replace", "path": "/spec/replicas", "value": 3},
                           {"op": "replace", "path": "/metadata/resourceVersion", "value": rv}]),
                &none,
            )
            .unwrap();
        assert_eq!(ch.after["spec"]["replicas"], 3);
        assert_eq!(ch.after["status"]["readyReplicas"], 3);
        let err = c
            .patch(
                &res,
                "dev",
                "web",
                PatchType::Json,
                &json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": rv}]),
                &none,
            )
            .unwrap_err();
        assert!(matches!(err, ClusterError::Conflict(_)), "{err}");
        let err = c
            .patch(
                &res,
                "dev",
                "web",
                PatchType::Merge,
                &json!({"metadata": {"name": "x"}}),
                &none,
            )
            .unwrap_err();
        assert!(matches!(err, ClusterError::Invalid(_)), "{err}");
        assert!(matches!(
            c.patch(&res, "dev", "nope", PatchType::Merge, &json!({}), &none),
            Err(ClusterError::NotFound(_))
        ));
        // managedFields set by a patch are taken as given.
        let ch = c
            .patch(
                &res,
                "dev",
                "web",
                PatchType::Json,
                &json!([{"op": "replace", "path": "/metadata/managedFields", "value": []}]),
                &WriteOptions::default(),
            )
            .unwrap();
        assert!(ch.after["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn server_side_apply_via_patch() {
        let c = MemoryCluster::new();
        let res = cms();
        let by = |m: &str| WriteOptions::by(m);
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({"k": "1"})),
                &by("kubectl"),
            )
            .unwrap();
        assert!(ch.before.is_none());
        let err = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({"k": "2"})),
                &by("other"),
            )
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::Conflict(ref m) if m.contains("conflict with \"kubectl\"")),
            "{err}"
        );
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({"k": "2"})),
                &WriteOptions {
                    force: true,
                    ..by("other")
                },
            )
            .unwrap();
        assert_eq!(ch.after["data"]["k"], "2");
        let err = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({})),
                &WriteOptions::default(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("fieldManager"), "{err}");
        let err = c
            .patch(
                &res,
                "dev",
                "b",
                PatchType::Apply,
                &cm("a", json!({})),
                &by("x"),
            )
            .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn kubectl_apply_keeps_last_applied_in_step() {
        let c = MemoryCluster::new();
        let res = cms();
        let mut first = cm("a", json!({"k": "1"}));
        first["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: "{}"});
        c.create(
            &res,
            "dev",
            &first,
            &WriteOptions::by("kubectl-client-side-apply"),
        )
        .unwrap();
        // Same values: shared with the client-side manager, no conflict.
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({"k": "1", "n": "2"})),
                &WriteOptions::by("kubectl"),
            )
            .unwrap();
        let last = &ch.after["metadata"]["annotations"][LAST_APPLIED_ANNOTATION];
        assert_eq!(
            last.as_str().unwrap(),
            "{\"apiVersion\":\"v1\",\"data\":{\"k\":\"1\",\"n\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n"
        );
    }

    #[test]
    fn kubectl_server_side_apply_takes_over_from_client_side_apply() {
        let c = MemoryCluster::new();
        let res = cms();
        let mut first = cm("a", json!({"k": "1"}));
        let last = "{\"apiVersion\":\"v1\",\"data\":{\"k\":\"1\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"a\"}}\n";
        first["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last});
        c.create(
            &res,
            "dev",
            &first,
            &WriteOptions::by("kubectl-client-side-apply"),
        )
        .unwrap();
        let changed = cm("a", json!({"k": "2"}));
        // Another manager conflicts; kubectl may take over.
        assert!(
            c.patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &changed,
                &WriteOptions::by("other")
            )
            .is_err()
        );
        let ch = c
            .patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &changed,
                &WriteOptions::by("kubectl"),
            )
            .unwrap();
        assert_eq!(ch.after["data"]["k"], "2");
        // Once live and last-applied differ, conflicts are conflicts again.
        c.patch(
            &res,
            "dev",
            "a",
            PatchType::Merge,
            &json!({"data": {"k": "3"}}),
            &WriteOptions::by("editor"),
        )
        .unwrap();
        assert!(
            c.patch(
                &res,
                "dev",
                "a",
                PatchType::Apply,
                &cm("a", json!({"k": "4"})),
                &WriteOptions::by("kubectl")
            )
            .is_err()
        );
    }

    #[test]
    fn delete_preconditions_and_lists() {
        let c = MemoryCluster::new();
        let res = cms();
        for (ns, n) in [("dev", "a"), ("dev", "b"), ("prod", "a")] {
            c.create(&res, ns, &cm(n, json!({})), &WriteOptions::default())
                .unwrap();
        }
        let fields = FieldSelector::parse("metadata.name=a").unwrap();
        let l = c.list_with(&res, "", None, Some(&fields));
        assert_eq!(l.items.len(), 2);
        assert_eq!(l.resource_version, 3);
        assert_eq!(c.list_with(&res, "dev", None, None).items.len(), 2);
        let err = c
            .delete_with(
                &res,
                "dev",
                "a",
                &DeleteOptions {
                    uid: Some("x".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(err.to_string().contains("UID in precondition"), "{err}");
        let err = c
            .delete_with(
                &res,
                "dev",
                "a",
                &DeleteOptions {
                    resource_version: Some("9".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, ClusterError::Conflict(_)));
        let gone = c
            .delete_with(&res, "dev", "a", &DeleteOptions::default())
            .unwrap();
        assert!(matches!(gone, DeleteOutcome::Deleted(_)));
        assert_eq!(gone.object()["metadata"]["resourceVersion"], "4");
        assert!(matches!(
            c.delete_with(&res, "dev", "a", &DeleteOptions::default()),
            Err(ClusterError::NotFound(_))
        ));
    }

    #[test]
    fn namespaces_as_objects() {
        let c = MemoryCluster::new();
        assert!(!c.namespace_exists("dev"));
        assert!(c.ensure_namespace("dev", "stepbox").unwrap());
        assert!(!c.ensure_namespace("dev", "stepbox").unwrap());
        assert!(c.namespace_exists("dev"));
        assert!(c.ensure_namespace("Bad_Name", "stepbox").is_err());
    }
}
