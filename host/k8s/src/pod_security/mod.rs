//! The Kubernetes [Pod Security Standards], checked on the pods (and pod
//! templates) a step writes, before they reach a cluster.
//!
//! Three levels: [`Level::Privileged`] checks nothing, [`Level::Baseline`]
//! prevents the known privilege escalations, [`Level::Restricted`] adds the
//! hardening best practices. Each control is one check, named and worded
//! as the API server's Pod Security Admission (PSA) names and words it, so
//! a refusal reads as a cluster's would:
//!
//! ```text
//! violates PodSecurity "baseline:latest": privileged (container "app" must not set securityContext.privileged=true)
//! ```
//!
//! | level | checks (PSA's ids) | module |
//! |---|---|---|
//! | baseline | `hostNamespaces`, `hostPathVolumes`, `hostPorts`, `hostProbesAndHostLifecycle`, `windowsHostProcess` | `host` |
//! | baseline | `appArmorProfile`, `capabilities_baseline`, `privileged`, `procMount`, `seLinuxOptions`, `seccompProfile_baseline`, `sysctls` | `confinement` |
//! | restricted | `allowPrivilegeEscalation`, `capabilities_restricted`, `restrictedVolumes`, `runAsNonRoot`, `runAsUser`, `seccompProfile_restricted` | `restricted` |
//!
//! The rules are the standard's `latest` version as Kubernetes 1.36
//! defines it (the sysctls of 1.32, `container_engine_t`, `image`
//! volumes, host probes of 1.34), with one difference: the relaxations
//! PSA grants pods in a user namespace (`hostUsers: false`: `runAsNonRoot`,
//! `runAsUser` and baseline `procMount` skipped) are not granted, so a pod
//! is never allowed here that an older cluster would refuse. As in PSA,
//! restricted replaces three baseline checks by stricter ones
//! (`hostPathVolumes` by `restrictedVolumes`, `capabilities_baseline` and
//! `seccompProfile_baseline` by their restricted forms), and from the
//! restricted level exempts pods with `spec.os.name: windows` from the
//! Linux-only controls (privilege escalation, seccomp, capabilities).
//!
//! Objects carry a pod when they are a Pod or hold a pod template
//! ([`carries_pod`]): PodTemplate, ReplicationController, Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Job and CronJob. Init and ephemeral
//! containers count like the others.
//!
//! ```
//! use serde_json::json;
//! use stepbox_k8s::pod_security::{self, Level};
//!
//! let deploy = json!({"spec": {"template": {"spec": {"containers": [
//!     {"name": "app", "image": "nginx", "securityContext": {"privileged": true}},
//! ]}}}});
//! let refused = pod_security::check(Level::Baseline, "apps", "Deployment", &deploy).unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)"
//! );
//! assert!(pod_security::check(Level::Privileged, "apps", "Deployment", &deploy).is_ok());
//! ```
//!
//! [Pod Security Standards]: https://kubernetes.io/docs/concepts/security/pod-security-standards/

mod confinement;
mod host;
mod pod;
mod restricted;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use pod::{Pod, carries_pod};

/// A level of the Pod Security Standards.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Unrestricted: nothing is checked.
    Privileged,
    /// Minimally restrictive: the known privilege escalations are refused.
    #[default]
    Baseline,
    /// Heavily restricted: the current pod hardening best practices.
    Restricted,
}

impl Level {
    /// Every level, least strict first.
    pub const ALL: [Level; 3] = [Level::Privileged, Level::Baseline, Level::Restricted];

    /// The level's name, as PSA's labels write it (`baseline`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Parses a level's name (`privileged`, `baseline`, `restricted`).
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One control a pod fails: PSA's reason and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check's id in PSA (`privileged`, `hostNamespaces`, ...).
    pub check: &'static str,
    /// The short reason (`privileged`, `host namespaces`).
    pub reason: String,
    /// What is wrong, naming the fields (`container "app" must not set
    /// securityContext.privileged=true`).
    pub detail: String,
}

impl fmt::Display for Failure {
    /// `privileged (container "app" must not set securityContext.privileged=true)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.detail)
    }
}

/// A pod that fails one or more controls of a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The level checked.
    pub level: Level,
    /// Every control it fails, in PSA's order (baseline checks first, each
    /// level's sorted by id).
    pub failures: Vec<Failure>,
}

impl fmt::Display for Violation {
    /// `violates PodSecurity "baseline:latest": reason (detail), ...`, as
    /// the API server words a refusal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures: Vec<String> = self.failures.iter().map(Failure::to_string).collect();
        write!(
            f,
            "violates PodSecurity \"{}:latest\": {}",
            self.level,
            failures.join(", ")
        )
    }
}

impl std::error::Error for Violation {}

/// One control: its id, level, the baseline checks it replaces at the
/// restricted level, and the check itself.
struct Check {
    id: &'static str,
    level: Level,
    overrides: &'static [&'static str],
    run: fn(&Pod<'_>) -> Option<(String, String)>,
}

const fn control(
    id: &'static str,
    level: Level,
    overrides: &'static [&'static str],
    run: fn(&Pod<'_>) -> Option<(String, String)>,
) -> Check {
    Check {
        id,
        level,
        overrides,
        run,
    }
}

use Level::{Baseline, Restricted};

/// Every check in PSA's order: baseline first, then restricted, each sorted
/// by id (bytewise, as Go sorts strings).
const CHECKS: &[Check] = &[
    control("appArmorProfile", Baseline, &[], confinement::app_armor),
    control(
        "capabilities_baseline",
        Baseline,
        &[],
        confinement::capabilities,
    ),
    control("hostNamespaces", Baseline, &[], host::namespaces),
    control("hostPathVolumes", Baseline, &[], host::path_volumes),
    control("hostPorts", Baseline, &[], host::ports),
    control(
        "hostProbesAndHostLifecycle",
        Baseline,
        &[],
        host::probes_and_lifecycle,
    ),
    control("privileged", Baseline, &[], confinement::privileged),
    control("procMount", Baseline, &[], confinement::proc_mount),
    control("seLinuxOptions", Baseline, &[], confinement::se_linux),
    control(
        "seccompProfile_baseline",
        Baseline,
        &[],
        confinement::seccomp,
    ),
    control("sysctls", Baseline, &[], confinement::sysctls),
    control(
        "windowsHostProcess",
        Baseline,
        &[],
        host::windows_host_process,
    ),
    control(
        "allowPrivilegeEscalation",
        Restricted,
        &[],
        restricted::privilege_escalation,
    ),
    control(
        "capabilities_restricted",
        Restricted,
        &["capabilities_baseline"],
        restricted::capabilities,
    ),
    control(
        "restrictedVolumes",
        Restricted,
        &["hostPathVolumes"],
        restricted::volumes,
    ),
    control("runAsNonRoot", Restricted, &[], restricted::run_as_non_root),
    control("runAsUser", Restricted, &[], restricted::run_as_user),
    control(
        "seccompProfile_restricted",
        Restricted,
        &["seccompProfile_baseline"],
        restricted::seccomp,
    ),
];

/// Checks a pod against `level`: every control the level holds it to.
///
/// # Errors
/// A [`Violation`] listing every failed control.
pub fn check_pod(level: Level, pod: &Pod<'_>) -> Result<(), Violation> {
    if level == Level::Privileged {
        return Ok(());
    }
    let overridden: Vec<&str> = CHECKS
        .iter()
        .filter(|c| c.level <= level)
        .flat_map(|c| c.overrides.iter().copied())
        .collect();
    let failures: Vec<Failure> = CHECKS
        .iter()
        .filter(|c| c.level <= level && !overridden.contains(&c.id))
        .filter_map(|c| {
            (c.run)(pod).map(|(reason, detail)| Failure {
                check: c.id,
                reason,
                detail,
            })
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Violation { level, failures })
    }
}

/// Checks the pod an object of `(group, kind)` carries (see
/// [`carries_pod`]) against `level`. Objects of other kinds pass.
///
/// # Errors
/// A [`Violation`] listing every failed control.
pub fn check(
    level: Level,
    group: &str,
    kind: &str,
    object: &serde_json::Value,
) -> Result<(), Violation> {
    match Pod::of(group, kind, object) {
        Some(pod) => check_pod(level, &pod),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_in_psa_order() {
        for level in [Baseline, Restricted] {
            let ids: Vec<&str> = CHECKS
                .iter()
                .filter(|c| c.level == level)
                .map(|c| c.id)
                .collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(ids, sorted, "{level} checks sorted by id");
        }
        let last_baseline = CHECKS.iter().rposition(|c| c.level == Baseline).unwrap();
        let first_restricted = CHECKS.iter().position(|c| c.level == Restricted).unwrap();
        assert!(last_baseline < first_restricted, "baseline first");
        for c in CHECKS {
            for o in c.overrides {
                assert!(
                    CHECKS.iter().any(|b| b.id == *o && b.level == Baseline),
                    "{} overrides an unknown baseline check {o}",
                    c.id
                );
            }
        }
    }

    #[test]
    fn levels_parse_and_order() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("Baseline"), None);
        assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
        assert_eq!(Level::default(), Level::Baseline);
    }

    #[test]
    fn kinds_without_pods_pass() {
        let cm = serde_json::json!({"spec": {"hostNetwork": true}});
        assert!(check(Restricted, "", "ConfigMap", &cm).is_ok());
        assert!(carries_pod("batch", "CronJob"));
        assert!(!carries_pod("", "ConfigMap"));
    }
}
