//! Baseline controls that keep a container confined by the kernel:
//! privileged mode, added capabilities, AppArmor, SELinux, the `/proc`
//! mask, seccomp and sysctls.

use serde_json::Value;

use super::pod::{
    Container, Pod, containers_named, is_true, items, join_quote, plural, sorted_set, text,
};

/// The capabilities a baseline container may add (Docker's default set).
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The sysctls a pod may set: namespaced, and isolated from other pods.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// The SELinux types a pod or container may ask for.
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The annotation prefix of the deprecated per-container AppArmor profiles.
const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// `privileged`: no container with `securityContext.privileged: true`.
pub(super) fn privileged(pod: &Pod<'_>) -> Option<(String, String)> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| is_true(c.security(&["privileged"])))
        .map(|c| c.name)
        .collect();
    (!bad.is_empty()).then(|| {
        (
            "privileged".into(),
            format!(
                "{} must not set securityContext.privileged=true",
                containers_named(&bad)
            ),
        )
    })
}

/// The `capabilities.add` entries of a container that are not in `allowed`.
pub(super) fn added_beyond(c: &Container<'_>, allowed: &[&str]) -> Vec<String> {
    items(c.security(&["capabilities", "add"]))
        .map(text)
        .filter(|cap| !allowed.contains(&cap.as_str()))
        .collect()
}

/// `containers "a" must not include "X" in securityContext.capabilities.add`,
/// or `None` when no container adds a capability beyond `allowed`.
pub(super) fn added_capabilities(pod: &Pod<'_>, allowed: &[&str]) -> Option<String> {
    let mut bad = Vec::new();
    let mut caps = Vec::new();
    for c in pod.containers() {
        let extra = added_beyond(&c, allowed);
        if !extra.is_empty() {
            bad.push(c.name);
            caps.extend(extra);
        }
    }
    (!bad.is_empty()).then(|| {
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_named(&bad),
            join_quote(&sorted_set(caps))
        )
    })
}

/// `capabilities_baseline`: nothing added beyond the default set.
pub(super) fn capabilities(pod: &Pod<'_>) -> Option<(String, String)> {
    added_capabilities(pod, BASELINE_CAPABILITIES)
        .map(|detail| ("non-default capabilities".into(), detail))
}

/// `appArmorProfile`: the pod's and containers' `appArmorProfile.type`
/// `RuntimeDefault` or `Localhost` when set, and the deprecated annotations
/// `runtime/default`, `localhost/*` or empty.
pub(super) fn app_armor(pod: &Pod<'_>) -> Option<(String, String)> {
    let allowed = |v: Option<&Value>| {
        matches!(
            v.and_then(Value::as_str),
            Some("RuntimeDefault" | "Localhost")
        )
    };
    let mut setters = Vec::new();
    let mut values = Vec::new();
    if let Some(profile) = pod.security(&["appArmorProfile"])
        && !allowed(profile.get("type"))
    {
        setters.push("pod".to_string());
        values.push(profile.get("type").map(text).unwrap_or_default());
    }
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(profile) = c.security(&["appArmorProfile"])
            && !allowed(profile.get("type"))
        {
            bad.push(c.name);
            values.push(profile.get("type").map(text).unwrap_or_default());
        }
    }
    if !bad.is_empty() {
        setters.push(containers_named(&bad));
    }
    let mut values = sorted_set(values);
    let mut annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION)
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(plural("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    (!setters.is_empty()).then(|| {
        (
            plural(
                "forbidden AppArmor profile",
                "forbidden AppArmor profiles",
                values.len(),
            )
            .to_string(),
            format!(
                "{} must not set AppArmor profile type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        )
    })
}

/// `seLinuxOptions`: `type` one of the container types, no `user` or
/// `role`, for the pod and every container.
pub(super) fn se_linux(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad_types = Vec::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |opts: &Value| {
        let mut ok = true;
        let ty = opts.get("type").map(text).unwrap_or_default();
        if !SELINUX_TYPES.contains(&ty.as_str()) {
            ok = false;
            bad_types.push(ty);
        }
        for (field, flag) in [("user", &mut set_user), ("role", &mut set_role)] {
            if opts
                .get(field)
                .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
            {
                ok = false;
                *flag = true;
            }
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(opts) = pod.security(&["seLinuxOptions"])
        && !valid(opts)
    {
        setters.push("pod".to_string());
    }
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.security(&["seLinuxOptions"]).is_some_and(|o| !valid(o)))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_named(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    // The bad types first, then whether user and role were set.
    let mut data = Vec::new();
    let bad_types = sorted_set(bad_types);
    if !bad_types.is_empty() {
        data.push(format!(
            "{} {}",
            plural("type", "types", bad_types.len()),
            join_quote(&bad_types)
        ));
    }
    if set_user {
        data.push("user may not be set".to_string());
    }
    if set_role {
        data.push("role may not be set".to_string());
    }
    Some((
        "seLinuxOptions".into(),
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    ))
}

/// `procMount`: every container's `securityContext.procMount` unset or
/// `Default`.
pub(super) fn proc_mount(pod: &Pod<'_>) -> Option<(String, String)> {
    let mut bad = Vec::new();
    let mut types = Vec::new();
    for c in pod.containers() {
        if let Some(v) = c.security(&["procMount"])
            && v.as_str() != Some("Default")
        {
            bad.push(c.name);
            types.push(text(v));
        }
    }
    (!bad.is_empty()).then(|| {
        (
            "procMount".into(),
            format!(
                "{} must not set securityContext.procMount to {}",
                containers_named(&bad),
                join_quote(&sorted_set(types))
            ),
        )
    })
}

/// True for the seccomp profile types both levels allow.
pub(super) fn valid_seccomp(ty: Option<&Value>) -> bool {
    matches!(
        ty.and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    )
}

/// The setters (`pod`, `containers "a"`) of seccomp profiles of a type
/// neither level allows, the types they set, and the containers that set
/// none.
pub(super) struct SeccompSetters {
    /// `pod` and/or `containers "a", "b"`.
    pub explicit: Vec<String>,
    /// The bad types, sorted.
    pub values: Vec<String>,
    /// Whether the pod sets an allowed profile.
    pub pod_ok: bool,
    /// Containers that set no profile.
    pub unset: Vec<String>,
}

/// What the pod and its containers set as `seccompProfile.type`.
pub(super) fn seccomp_setters(pod: &Pod<'_>) -> SeccompSetters {
    let mut explicit = Vec::new();
    let mut values = Vec::new();
    let mut pod_ok = false;
    if let Some(profile) = pod.security(&["seccompProfile"]) {
        if valid_seccomp(profile.get("type")) {
            pod_ok = true;
        } else {
            explicit.push("pod".to_string());
            values.push(profile.get("type").map(text).unwrap_or_default());
        }
    }
    let mut bad = Vec::new();
    let mut unset = Vec::new();
    for c in pod.containers() {
        match c.security(&["seccompProfile"]) {
            Some(profile) if !valid_seccomp(profile.get("type")) => {
                bad.push(c.name);
                values.push(profile.get("type").map(text).unwrap_or_default());
            }
            Some(_) => {}
            None => unset.push(c.name.to_string()),
        }
    }
    if !bad.is_empty() {
        explicit.push(containers_named(&bad));
    }
    SeccompSetters {
        explicit,
        values: sorted_set(values),
        pod_ok,
        unset,
    }
}

/// The detail naming explicitly set forbidden seccomp profiles.
pub(super) fn seccomp_explicit(s: &SeccompSetters) -> Option<String> {
    (!s.explicit.is_empty()).then(|| {
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            s.explicit.join(" and "),
            join_quote(&s.values)
        )
    })
}

/// `seccompProfile_baseline`: a profile, where set, is `RuntimeDefault` or
/// `Localhost` (never `Unconfined`).
pub(super) fn seccomp(pod: &Pod<'_>) -> Option<(String, String)> {
    seccomp_explicit(&seccomp_setters(pod)).map(|d| ("seccompProfile".into(), d))
}

/// `sysctls`: only the safe sysctls in `spec.securityContext.sysctls`.
pub(super) fn sysctls(pod: &Pod<'_>) -> Option<(String, String)> {
    let bad: Vec<String> = items(pod.security(&["sysctls"]))
        .map(|s| s.get("name").map(text).unwrap_or_default())
        .filter(|name| !SAFE_SYSCTLS.contains(&name.as_str()))
        .collect();
    (!bad.is_empty()).then(|| ("forbidden sysctls".into(), bad.join(", ")))
}
