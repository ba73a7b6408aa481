//! The Pod Security Standards case by case, from
//! `tests/pod_security_cases.yaml`: every control refused once and allowed
//! once, at every level, and through every kind that carries a pod.

use serde::Deserialize;
use serde_json::{Value, json};
use stepbox_k8s::pod_security::{self, Level, Pod};

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    check: String,
    level: Level,
    refused: PodDoc,
    message: String,
    allowed: PodDoc,
}

#[derive(Deserialize)]
struct PodDoc {
    #[serde(default)]
    metadata: Value,
    spec: Value,
}

impl PodDoc {
    fn pod(&self) -> Pod<'_> {
        Pod::new(&self.metadata, &self.spec)
    }

    fn template(&self) -> Value {
        json!({"metadata": self.metadata, "spec": self.spec})
    }
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pod_security_cases.yaml");
    let text = std::fs::read_to_string(path).expect("the cases file");
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    doc.apply_merge().expect("merge keys");
    let file: File = serde_yaml_ng::from_value(doc).expect("the cases' shape");
    file.cases
}

/// The failures as PSA lists them after `violates PodSecurity "...":`.
fn failures(v: &pod_security::Violation) -> String {
    v.failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn each_refused_pod_is_refused_at_its_level_in_psa_words() {
    for case in cases() {
        let v = pod_security::check_pod(case.level, &case.refused.pod())
            .expect_err(&format!("{}: refused at {}", case.name, case.level));
        assert_eq!(failures(&v), case.message, "{}", case.name);
        assert!(
            v.failures.iter().any(|f| f.check == case.check),
            "{}: fails {}",
            case.name,
            case.check
        );
        assert_eq!(
            v.to_string(),
            format!(
                "violates PodSecurity \"{}:latest\": {}",
                case.level, case.message
            )
        );
        assert!(
            pod_security::check_pod(Level::Privileged, &case.refused.pod()).is_ok(),
            "{}: privileged checks nothing",
            case.name
        );
    }
}

#[test]
fn each_allowed_pod_passes_its_level_and_the_ones_below() {
    for case in cases() {
        for level in Level::ALL.into_iter().filter(|l| *l <= case.level) {
            if let Err(v) = pod_security::check_pod(level, &case.allowed.pod()) {
                panic!("{}: allowed at {level}, but {v}", case.name);
            }
        }
    }
}

#[test]
fn baseline_refusals_hold_at_restricted() {
    for case in cases().iter().filter(|c| c.level == Level::Baseline) {
        let v =
            pod_security::check_pod(Level::Restricted, &case.refused.pod()).expect_err(&case.name);
        // Restricted replaces three baseline checks by stricter ones.
        let replaced = match case.check.as_str() {
            "hostPathVolumes" => "restrictedVolumes",
            "capabilities_baseline" => "capabilities_restricted",
            "seccompProfile_baseline" => "seccompProfile_restricted",
            same => same,
        };
        assert!(
            v.failures.iter().any(|f| f.check == replaced),
            "{}: {v}",
            case.name
        );
        assert!(
            v.failures.iter().all(|f| f.check != case.check) || replaced == case.check,
            "{}: an overridden check still ran: {v}",
            case.name
        );
    }
}

#[test]
fn every_control_has_a_case() {
    let covered: Vec<String> = cases().into_iter().map(|c| c.check).collect();
    for check in [
        "appArmorProfile",
        "capabilities_baseline",
        "hostNamespaces",
        "hostPathVolumes",
        "hostPorts",
        "hostProbesAndHostLifecycle",
        "privileged",
        "procMount",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "sysctls",
        "windowsHostProcess",
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
    ] {
        assert!(covered.iter().any(|c| c == check), "no case for {check}");
    }
    let mut names: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names are unique");
}

/// The pod of `case` as each kind carries it.
fn wrapped(group: &str, kind: &str, pod: &PodDoc) -> Value {
    let t = pod.template();
    match (group, kind) {
        ("", "Pod") => t,
        ("", "PodTemplate") => json!({"template": t}),
        ("batch", "CronJob") => json!({"spec": {"jobTemplate": {"spec": {"template": t}}}}),
        _ => json!({"spec": {"template": t}}),
    }
}

#[test]
fn every_kind_that_carries_a_pod_is_checked() {
    let all = cases();
    let case = all
        .iter()
        .find(|c| c.name == "privileged-container")
        .unwrap();
    for (group, kind) in [
        ("", "Pod"),
        ("", "PodTemplate"),
        ("", "ReplicationController"),
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
    ] {
        assert!(pod_security::carries_pod(group, kind), "{kind}");
        let v = pod_security::check(
            Level::Baseline,
            group,
            kind,
            &wrapped(group, kind, &case.refused),
        )
        .expect_err(kind);
        assert_eq!(failures(&v), case.message, "{kind}");
        assert!(
            pod_security::check(
                Level::Baseline,
                group,
                kind,
                &wrapped(group, kind, &case.allowed)
            )
            .is_ok(),
            "{kind}"
        );
    }
    // Other kinds carry no pod, whatever their fields say.
    let cm = wrapped("apps", "Deployment", &case.refused);
    assert!(pod_security::check(Level::Restricted, "", "ConfigMap", &cm).is_ok());
}

#[test]
fn malformed_pods_are_read_without_panicking() {
    for spec in [
        json!(null),
        json!("spec"),
        json!({"containers": "x"}),
        json!({"containers": [1, null, {"name": 3, "securityContext": "x"}]}),
        json!({"volumes": [{}, {"name": "v"}, 7], "securityContext": {"sysctls": [{}, "x"]}}),
        json!({"containers": [{"name": "a", "ports": [{"hostPort": "80"}], "securityContext": {"capabilities": {"add": [1]}}}]}),
    ] {
        for level in Level::ALL {
            let _ = pod_security::check_pod(level, &Pod::new(&Value::Null, &spec));
        }
    }
    // A port written as text is still a host port.
    let spec = json!({"containers": [{"name": "a", "ports": [{"hostPort": "80"}]}]});
    let v = pod_security::check_pod(Level::Baseline, &Pod::new(&Value::Null, &spec)).unwrap_err();
    assert_eq!(failures(&v), "hostPort (container \"a\" uses hostPort 80)");
}
