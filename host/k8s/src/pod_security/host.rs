//! Baseline controls that keep a pod off its node: host namespaces,
//! hostPath volumes, host ports, probes and lifecycle hooks aimed at other
//! hosts, Windows HostProcess containers.

use serde_json::Value;

use super::pod::{Pod, containers_named, is_true, items, join_quote, plural, sorted_set, text};

/// `hostNamespaces`: `spec.hostNetwork`, `hostPID`, `hostIPC` unset or false.
pub(super) fn namespaces(pod: &Pod<'_>) -> Option<(String, String)> {
    let set: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| is_true(pod.spec(&[f])))
        .map(|f| format!("{f}=true"))
        .collect();
    (!set.is_empty()).then(|| ("host namespaces".into(), set.join(", ")))
}

/// `hostPathVolumes`: no `spec.volumes[*].hostPath`.
pub(super) fn path_volumes(pod: &Pod<'_>) -> Option<(String, String)> {
    let names: Vec<String> = pod
        .volumes()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(volume_name)
        .collect();
    (!names.is_empty()).then(|| {
        (
            "hostPath volumes".into(),
            format!(
                "{} {}",
                plural("volume", "volumes", names.len()),
                join_quote(&names)
            ),
        )
    })
}

/// A volume's name, for messages.
pub(super) fn volume_name(v: &Value) -> String {
    v.get("name").map(text).unwrap_or_default()
}

/// `hostPorts`: every container's `ports[*].hostPort` unset or 0.
pub(super) fn ports(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for c in pod.containers() {
        let used: Vec<String> = items(c.get(&["ports"]))
            .filter_map(|p| p.get("hostPort"))
            .filter(|p| is_nonzero(p))
            .map(text)
            .collect();
        if !used.is_empty() {
            bad.push(c.name);
            ports.extend(used);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports = sorted_set(ports);
    Some((
        "hostPort".into(),
        format!(
            "{} {} {} {}",
            containers_named(&bad),
            plural("uses", "use", bad.len()),
            plural("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    ))
}

/// True for any value but null, `0`, `0.0` and `false`: a port the API
/// server would store as non-zero (or refuse to decode).
fn is_nonzero(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    }
}

/// `hostProbesAndHostLifecycle`: no `host` in the probes' and lifecycle
/// hooks' `httpGet` and `tcpSocket`, which would make the kubelet connect
/// to another host on the pod's behalf.
pub(super) fn probes_and_lifecycle(pod: &Pod<'_>) -> Option<(String, String)> {
    const HANDLERS: [&[&str]; 5] = [
        &["livenessProbe"],
        &["readinessProbe"],
        &["startupProbe"],
        &["lifecycle", "postStart"],
        &["lifecycle", "preStop"],
    ];
    let mut bad = Vec::new();
    let mut hosts = Vec::new();
    for c in pod.containers() {
        let found: Vec<String> = HANDLERS
            .iter()
            .filter_map(|path| c.get(path))
            .flat_map(|h| ["httpGet", "tcpSocket"].map(|kind| h.get(kind)?.get("host")))
            .flatten()
            .filter(|host| !host.is_null() && host.as_str() != Some(""))
            .map(text)
            .collect();
        if !found.is_empty() {
            if !bad.contains(&c.name) {
                bad.push(c.name);
            }
            hosts.extend(found);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let mut bad: Vec<String> = bad.into_iter().map(str::to_string).collect();
    bad.sort();
    let hosts = sorted_set(hosts);
    Some((
        "probe or lifecycle host".into(),
        format!(
            "{} {} {} {} {}",
            plural("container", "containers", bad.len()),
            join_quote(&bad),
            plural("uses", "use", bad.len()),
            plural(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
    ))
}

/// `windowsHostProcess`: `windowsOptions.hostProcess` unset or false, for
/// the pod and every container.
pub(super) fn windows_host_process(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut setters = Vec::new();
    if is_true(pod.security(&["windowsOptions", "hostProcess"])) {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| is_true(c.security(&["windowsOptions", "hostProcess"])))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_named(&bad));
    }
    (!setters.is_empty()).then(|| {
        (
            "hostProcess".into(),
            format!(
                "{} must not set securityContext.windowsOptions.hostProcess=true",
                setters.join(" and ")
            ),
        )
    })
}
