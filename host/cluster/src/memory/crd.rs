//! What stored `CustomResourceDefinition`s say about their kinds: the
//! resource (plural, scope), the served version, and whether the kind has
//! a status subresource. Built-in kinds answer from a table.

use serde_json::Value;
use stepbox_k8s::resources::{self, CRD_GROUP, CRD_KIND, ResourceInfo};

use super::{Key, MemoryCluster, State};

/// The built-in kinds with a `status` subresource (`PUT`/`PATCH
/// .../NAME/status`), as a Kubernetes API server serves them.
const BUILTIN_STATUS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "Service"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("policy", "PodDisruptionBudget"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("storage.k8s.io", "VolumeAttachment"),
    (CRD_GROUP, CRD_KIND),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("apiregistration.k8s.io", "APIService"),
];

/// The stored CustomResourceDefinitions (a range scan, not a full scan).
pub(super) fn crds(st: &State) -> impl Iterator<Item = &Value> {
    let start: Key = (
        CRD_GROUP.into(),
        CRD_KIND.into(),
        String::new(),
        String::new(),
    );
    st.objects
        .range(start..)
        .take_while(|((g, k, _, _), _)| g == CRD_GROUP && k == CRD_KIND)
        .map(|(_, v)| v)
}

/// The stored CRD of custom kind `(group, kind)`.
pub(super) fn crd_of<'a>(st: &'a State, group: &str, kind: &str) -> Option<&'a Value> {
    crds(st).find(|crd| {
        crd.pointer("/spec/group").and_then(Value::as_str) == Some(group)
            && crd.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind)
    })
}

/// The served version a CRD's kind is addressed by when a path does not
/// say (the storage version, else the first served).
pub(super) fn crd_served_version(crd: &Value) -> Option<String> {
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array)?;
    let served = |v: &&Value| v.get("served").and_then(Value::as_bool).unwrap_or(true);
    let storage = versions
        .iter()
        .filter(served)
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true));
    storage
        .or_else(|| versions.iter().find(served))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_string)
}

/// The kind a CRD defines, at `version`.
pub(super) fn crd_info(crd: &Value, group: &str, version: &str, kind: &str) -> ResourceInfo {
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .map_or_else(|| resources::guess_plural(kind), str::to_string);
    let namespaced = crd.pointer("/spec/scope").and_then(Value::as_str) != Some("Cluster");
    ResourceInfo::new(group, version, kind, &plural, namespaced)
}

/// The entry of `spec.versions` named `version` (else the storage
/// version's).
pub(super) fn crd_version<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array)?;
    versions
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .or_else(|| {
            versions
                .iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
}

/// True when objects of `res` have a status subresource: built-in kinds
/// from the table, custom kinds when their CRD version declares
/// `subresources.status`.
pub(super) fn has_status_subresource(st: &State, res: &ResourceInfo) -> bool {
    if let Some(crd) = crd_of(st, &res.group, &res.kind) {
        return crd_version(crd, &res.version)
            .and_then(|v| v.pointer("/subresources/status"))
            .is_some_and(|s| !s.is_null());
    }
    BUILTIN_STATUS.contains(&(res.group.as_str(), res.kind.as_str()))
}

/// True when writes to the main resource set `status`: custom kinds whose
/// CRD declares no status subresource (for them `status` is a field like
/// any other). Everywhere else the main resource keeps the stored status.
pub(super) fn main_resource_writes_status(st: &State, res: &ResourceInfo) -> bool {
    crd_of(st, &res.group, &res.kind).is_some() && !has_status_subresource(st, res)
}

impl MemoryCluster {
    /// The stored `CustomResourceDefinition` of a custom kind; `None` for
    /// built-in kinds and custom kinds without one.
    pub fn custom_resource_definition(&self, res: &ResourceInfo) -> Option<Value> {
        crd_of(&self.lock(), &res.group, &res.kind).cloned()
    }

    /// True when objects of `res` have a `status` subresource (see
    /// [`update_status`](Self::update_status)): the built-in kinds that
    /// have one in Kubernetes, and custom kinds whose CRD declares
    /// `subresources.status` for the version.
    pub fn has_status_subresource(&self, res: &ResourceInfo) -> bool {
        has_status_subresource(&self.lock(), res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_are_established_and_describe_their_kinds() {
        let c = MemoryCluster::new();
        c.seed_yaml(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: stepruns.stepbox.dev}
spec:
  group: stepbox.dev
  scope: Namespaced
  names: {kind: StepRun, plural: stepruns}
  versions:
  - {name: v1alpha1, served: true, storage: false}
  - {name: v1, served: true, storage: true, subresources: {status: {}}}
"#,
            "dev",
        )
        .unwrap();
        let crd_res = resources::lookup("apiextensions.k8s.io/v1", CRD_KIND);
        let crd = c.get_object(&crd_res, "", "stepruns.stepbox.dev").unwrap();
        let conditions = crd["status"]["conditions"].as_array().unwrap();
        for (t, reason) in [
            ("NamesAccepted", "NoConflicts"),
            ("Established", "InitialNamesAccepted"),
        ] {
            let cond = conditions.iter().find(|c| c["type"] == t).unwrap();
            assert_eq!(
                (cond["status"].as_str(), cond["reason"].as_str()),
                (Some("True"), Some(reason))
            );
            assert!(cond["lastTransitionTime"].is_string());
        }
        assert_eq!(crd["status"]["acceptedNames"]["listKind"], "StepRunList");
        assert_eq!(crd["status"]["acceptedNames"]["singular"], "steprun");
        assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));

        let v1 = c.resolve_kind("stepbox.dev/v1", "StepRun").unwrap();
        let alpha = c.resolve_kind("stepbox.dev/v1alpha1", "StepRun").unwrap();
        assert!(c.has_status_subresource(&v1));
        assert!(!c.has_status_subresource(&alpha));
        assert!(c.custom_resource_definition(&v1).is_some());
        assert!(
            c.custom_resource_definition(&resources::lookup("v1", "Pod"))
                .is_none()
        );
    }
}
