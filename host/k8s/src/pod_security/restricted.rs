//! The restricted level's controls: volume types, privilege escalation,
//! non-root users, a seccomp profile required, and capabilities dropped.

use serde_json::Value;

use super::confinement::{added_capabilities, seccomp_explicit, seccomp_setters};
use super::host::volume_name;
use super::pod::{Pod, containers_named, is_true, items, join_quote, plural, sorted_set, text};

/// The volume sources a restricted pod may use.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The volume sources PSA names when it refuses them; any other source is
/// "unknown".
const NAMED_VOLUMES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// `restrictedVolumes`: only the allowed sources (it replaces
/// `hostPathVolumes` at this level).
pub(super) fn volumes(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut names = Vec::new();
    let mut types = Vec::new();
    for v in pod.volumes() {
        let sources: Vec<&str> = v
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| *k != "name" && !v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        let refused = sources.iter().find(|s| !ALLOWED_VOLUMES.contains(s));
        if sources.is_empty() || refused.is_some() {
            names.push(volume_name(v));
            let named = NAMED_VOLUMES
                .iter()
                .find(|n| sources.contains(n))
                .copied()
                .unwrap_or("unknown");
            types.push(named.to_string());
        }
    }
    if names.is_empty() {
        return None;
    }
    let types = sorted_set(types);
    Some((
        "restricted volume types".into(),
        format!(
            "{} {} {} {} {}",
            plural("volume", "volumes", names.len()),
            join_quote(&names),
            plural("uses", "use", names.len()),
            plural(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    ))
}

/// `allowPrivilegeEscalation`: every container sets
/// `allowPrivilegeEscalation: false` (Windows pods are exempt).
pub(super) fn privilege_escalation(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.is_windows() {
        return None;
    }
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.security(&["allowPrivilegeEscalation"]) != Some(&Value::Bool(false)))
        .map(|c| c.name)
        .collect();
    (!bad.is_empty()).then(|| {
        (
            "allowPrivilegeEscalation != false".into(),
            format!(
                "{} must set securityContext.allowPrivilegeEscalation=false",
                containers_named(&bad)
            ),
        )
    })
}

/// `runAsNonRoot`: true at the pod level, or on every container; never
/// false.
pub(super) fn run_as_non_root(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut setters = Vec::new();
    let pod_value = pod.security(&["runAsNonRoot"]);
    let pod_true = is_true(pod_value);
    if pod_value.is_some() && !pod_true {
        setters.push("pod".to_string());
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.security(&["runAsNonRoot"]) {
            Some(v) if !is_true(Some(v)) => explicit.push(c.name),
            Some(_) => {}
            None if !pod_true => implicit.push(c.name),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_named(&explicit));
    }
    let reason = "runAsNonRoot != true".to_string();
    if !setters.is_empty() {
        return Some((
            reason,
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        ));
    }
    (!implicit.is_empty()).then(|| {
        (
            reason,
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_named(&implicit)
            ),
        )
    })
}

/// True for a user id of 0 (root), as a number in any notation.
fn is_root(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64) == Some(0.0)
}

/// `runAsUser`: no pod or container sets `runAsUser: 0`.
pub(super) fn run_as_user(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut setters = Vec::new();
    if is_root(pod.security(&["runAsUser"])) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| is_root(c.security(&["runAsUser"])))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_named(&bad));
    }
    (!setters.is_empty()).then(|| {
        (
            "runAsUser=0".into(),
            format!("{} must not set runAsUser=0", setters.join(" and ")),
        )
    })
}

/// `seccompProfile_restricted`: `RuntimeDefault` or `Localhost` at the pod
/// level or on every container (Windows pods are exempt).
pub(super) fn seccomp(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.is_windows() {
        return None;
    }
    let s = seccomp_setters(pod);
    let reason = "seccompProfile".to_string();
    if let Some(detail) = seccomp_explicit(&s) {
        return Some((reason, detail));
    }
    let unset: Vec<&str> = s.unset.iter().map(String::as_str).collect();
    (!s.pod_ok && !unset.is_empty()).then(|| {
        (
            reason,
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_named(&unset)
            ),
        )
    })
}

/// `capabilities_restricted`: every container drops `ALL` and adds nothing
/// but `NET_BIND_SERVICE` (Windows pods are exempt).
pub(super) fn capabilities(pod: &Pod<'_>) -> Option<(String, String)> {
    if pod.is_windows() {
        return None;
    }
    let missing_drop: Vec<&str> = pod
        .containers()
        .filter(|c| !items(c.security(&["capabilities", "drop"])).any(|d| text(d) == "ALL"))
        .map(|c| c.name)
        .collect();
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_named(&missing_drop)
        ));
    }
    if let Some(added) = added_capabilities(pod, &["NET_BIND_SERVICE"]) {
        details.push(added);
    }
    (!details.is_empty()).then(|| ("unrestricted capabilities".into(), details.join("; ")))
}
