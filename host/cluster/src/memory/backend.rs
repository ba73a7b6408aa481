//! [`MemoryCluster`] as a [`ClusterBackend`].

use serde_json::Value;
use stepbox_k8s::object::{self, ObjectRef};
use stepbox_k8s::ssa;

use super::{
    MemoryCluster, Propagation, check_preconditions, finalize, key, now, resolve, scope_namespace,
    validate_object,
};
use crate::{
    Change, ClusterBackend, ClusterError, LabelSelector, LogOptions, PodLog, ResourceInfo, Result,
    WatchOutcome,
};

impl MemoryCluster {
    pub(super) fn with_api_version(res: &ResourceInfo, mut obj: Value) -> Value {
        if !res.api_version.is_empty()
            && let Some(m) = obj.as_object_mut()
        {
            m.insert("apiVersion".into(), Value::String(res.api_version.clone()));
        }
        obj
    }
}

#[async_trait::async_trait]
impl ClusterBackend for MemoryCluster {
    fn name(&self) -> &str {
        "memory"
    }

    async fn logs(&self, namespace: &str, pod: &str, options: &LogOptions) -> Result<PodLog> {
        self.pod_log(namespace, pod, options)
    }

    /// Wakes on the next write to the store instead of polling: readiness
    /// here is synthesized at write time, so nothing becomes ready without
    /// a write. (Any write wakes it; the caller reads its object again and
    /// waits again if that object did not change.)
    async fn wait_for_change(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
        timeout: std::time::Duration,
    ) -> Result<WatchOutcome> {
        let mut revisions = self.subscribe();
        revisions.borrow_and_update();
        // A write between the caller's read and the subscription is a
        // change already.
        let now = self.get(res, namespace, name).await?;
        let current = now
            .as_ref()
            .and_then(|o| o["metadata"]["resourceVersion"].as_str());
        if current != resource_version {
            return Ok(WatchOutcome::Event);
        }
        match tokio::time::timeout(timeout, revisions.changed()).await {
            Ok(_) => Ok(WatchOutcome::Event),
            Err(_) => Ok(WatchOutcome::Elapsed),
        }
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ResourceInfo> {
        resolve(&self.lock(), api_version, kind)
    }

    async fn resource_by_plural(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<ResourceInfo> {
        self.resource_by_plural(group, plural)
            .filter(|r| r.version == version || version.is_empty())
            .ok_or_else(|| {
                let gv = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                ClusterError::NotFound(format!(
                    "the server does not serve resource {plural:?} in {gv}"
                ))
            })
    }

    async fn get(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Option<Value>> {
        let found = self.lock().objects.get(&key(res, namespace, name)).cloned();
        Ok(found.map(|o| Self::with_api_version(res, o)))
    }

    /// Lists one namespace; for a namespaced kind, an empty `namespace`
    /// lists every namespace (sorted by namespace, then name).
    async fn list(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Value>> {
        Ok(self.list_with(res, namespace, selector, None).items)
    }

    async fn apply(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        object: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Change> {
        let r = validate_object(res, object)?;
        if field_manager.is_empty() {
            return Err(ClusterError::Invalid(
                "a field manager is required for server-side apply".into(),
            ));
        }
        let ns = scope_namespace(res, namespace, r.namespace.as_deref())?;
        let st = self.lock();
        let live = st.objects.get(&key(res, &ns, &r.name)).cloned();
        check_preconditions(res, &r.name, object, live.as_ref())?;
        let merged = ssa::apply(live.as_ref(), object, field_manager, force, &now())?;
        self.commit(st, res, &ns, live, merged, false)
    }

    async fn merge_patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Change> {
        if !patch.is_object() {
            return Err(ClusterError::Invalid(format!(
                "a merge patch must be a JSON object, found {}",
                object::type_name(patch)
            )));
        }
        let ns = scope_namespace(res, namespace, None)?;
        let st = self.lock();
        let live = st.live(res, &ns, name)?;
        check_preconditions(res, name, patch, Some(&live))?;
        let mut obj = live.clone();
        ssa::merge_patch(&mut obj, patch);
        let r = ObjectRef::from_value(&obj).map_err(|e| {
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
        // Server-owned parts cannot be patched through the main resource.
        for f in ssa::SERVER_METADATA_FIELDS {
            let meta = obj.get_mut("metadata").and_then(Value::as_object_mut);
            if let Some(meta) = meta {
                match live.pointer(&format!("/metadata/{f}")) {
                    Some(v) => meta.insert((*f).to_string(), v.clone()),
                    None => meta.shift_remove(*f),
                };
            }
        }
        if let Some(top) = obj.as_object_mut() {
            match live.get("status") {
                Some(s) => top.insert("status".into(), s.clone()),
                None => top.shift_remove("status"),
            };
        }
        self.commit(st, res, &ns, Some(live), obj, false)
    }

    async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let mut st = self.lock();
        let Some(outcome) = finalize::delete(&mut st, res, namespace, name, Propagation::default())
        else {
            return Ok(None);
        };
        self.announce(st);
        Ok(Some(Self::with_api_version(res, outcome.into_object())))
    }
}
