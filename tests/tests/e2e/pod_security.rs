//! Pod Security for the workloads a step writes, through every path: the
//! cases of `host/k8s/tests/pod_security_cases.yaml` (each control of the
//! baseline and restricted levels, one refused and one allowed pod) sent
//! through `kube.apply` at their level, and a privileged pod refused with
//! the built-in policy by `kube`, by helm (a chart rendering it) and by
//! `stepbox gateway` (kubectl through it).

use serde_json::{Value, json};
use stepbox::policy::Policy;
use stepbox_tests::{
    DevClusterProcess, Invocation, dir_with, guest, helm_bin, repo_root, run_json, step,
};

/// A case of the shared case file.
struct Case {
    name: String,
    level: String,
    message: String,
    refused: Value,
    allowed: Value,
}

fn cases() -> Vec<Case> {
    let path = repo_root().join("host/k8s/tests/pod_security_cases.yaml");
    let text = std::fs::read_to_string(&path).expect("the cases file");
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    doc.apply_merge().expect("merge keys");
    let doc: Value = serde_json::to_value(doc).expect("JSON");
    doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            level: c["level"].as_str().unwrap().to_string(),
            message: c["message"].as_str().unwrap().to_string(),
            refused: c["refused"].clone(),
            allowed: c["allowed"].clone(),
        })
        .collect()
}

/// A Pod named `name` of a case's pod (metadata, spec).
fn pod(name: &str, doc: &Value) -> String {
    let mut metadata = doc.get("metadata").cloned().unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["name"] = json!(name);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": doc["spec"]})
        .to_string()
}

/// The built-in policy at Pod Security `level`.
fn policy_at(level: &str) -> tempfile::TempDir {
    let default = Policy::default_yaml();
    assert!(default.contains("podSecurity: baseline\n"), "{default}");
    dir_with(&[(
        "policy.yaml",
        &default.replace(
            "podSecurity: baseline\n",
            &format!("podSecurity: {level}\n"),
        ),
    )])
}

/// Runs apply-probe with `manifests` under `policy` (the built-in one when
/// `None`) and returns each manifest's (outcome, message).
fn apply_each(manifests: &[String], policy: Option<&std::path::Path>) -> Vec<(String, String)> {
    let inputs: Vec<String> = manifests
        .iter()
        .enumerate()
        .map(|(i, m)| format!("manifest-{i}={m}"))
        .collect();
    let mut args: Vec<&str> = vec!["--namespace", "dev"];
    for input in &inputs {
        args.extend(["--input", input]);
    }
    let policy_arg;
    if let Some(p) = policy {
        policy_arg = p.to_str().unwrap().to_string();
        args.extend(["--policy", &policy_arg]);
    }
    let run = run_json(&guest("apply-probe"), &args);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    (0..manifests.len())
        .map(|i| {
            let out = |k: &str| {
                report["outputs"][format!("{k}-{i}")]
                    .as_str()
                    .unwrap_or_else(|| panic!("no {k}-{i}: {report:#}"))
                    .to_string()
            };
            (out("outcome"), out("message"))
        })
        .collect()
}

#[test]
fn each_control_refuses_one_pod_and_allows_another_through_kube_at_its_level() {
    let cases = cases();
    assert!(cases.len() >= 20, "the case file lists every control");
    for level in ["baseline", "restricted"] {
        let policy = policy_at(level);
        let at_level: Vec<&Case> = cases.iter().filter(|c| c.level == level).collect();
        assert!(!at_level.is_empty(), "cases at {level}");
        let mut manifests = Vec::new();
        for case in &at_level {
            manifests.push(pod(&format!("{}-refused", case.name), &case.refused));
            manifests.push(pod(&format!("{}-allowed", case.name), &case.allowed));
        }
        let results = apply_each(&manifests, Some(&policy.path().join("policy.yaml")));
        for (case, pair) in at_level.iter().zip(results.chunks(2)) {
            let (refused, allowed) = (&pair[0], &pair[1]);
            assert_eq!(
                refused.0, "forbidden",
                "{} ({level}): refused: {refused:?}",
                case.name
            );
            assert!(
                refused.1.contains(&case.message),
                "{} ({level}): {:?} names the field as PSA does ({:?})",
                case.name,
                refused.1,
                case.message
            );
            assert!(
                refused
                    .1
                    .contains(&format!("the step policy's podSecurity \"{level}\"")),
                "{}: {:?} names the level",
                case.name,
                refused.1
            );
            assert_eq!(
                allowed,
                &("ok".to_string(), String::new()),
                "{} ({level}): allowed",
                case.name
            );
        }
    }
}

#[test]
fn baseline_allows_what_only_restricted_refuses() {
    // restricted-volume-types' pod also mounts a hostPath, which baseline
    // refuses as well (hostPathVolumes, its own case).
    let restricted_only: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.level == "restricted" && c.name != "restricted-volume-types")
        .collect();
    assert!(restricted_only.len() >= 4, "restricted cases");
    let manifests: Vec<String> = restricted_only
        .iter()
        .map(|c| pod(&format!("{}-refused", c.name), &c.refused))
        .collect();
    let wrong: Vec<String> = apply_each(&manifests, None)
        .iter()
        .zip(&restricted_only)
        .filter(|((outcome, _), _)| outcome != "ok")
        .map(|((_, message), case)| format!("{}: {message}", case.name))
        .collect();
    assert!(
        wrong.is_empty(),
        "refused at the built-in baseline: {wrong:#?}"
    );
}

const PRIVILEGED_DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "root-shell"},
 "spec": {"selector": {"matchLabels": {"app": "root-shell"}},
  "template": {"metadata": {"labels": {"app": "root-shell"}},
   "spec": {"containers": [{"name": "shell", "image": "busybox",
     "securityContext": {"privileged": true}}]}}}}"#;

#[test]
fn a_privileged_workload_is_refused_through_kube_with_the_built_in_policy() {
    let results = apply_each(&[PRIVILEGED_DEPLOYMENT.to_string()], None);
    let (outcome, message) = &results[0];
    assert_eq!(outcome, "forbidden", "{message}");
    assert!(
        message.contains(
            "Deployment \"root-shell\": violates PodSecurity \"baseline:latest\": privileged \
             (container \"shell\" must not set securityContext.privileged=true)"
        ),
        "{message}"
    );
}

#[test]
fn a_privileged_workload_is_refused_through_helm_with_the_built_in_policy() {
    let helm = helm_bin();
    let charts = repo_root().join("tests/charts");
    let run = run_json(
        &step("helm-upgrade"),
        &[
            "--helm",
            helm.to_str().unwrap(),
            "--package",
            charts.to_str().unwrap(),
            "--namespace",
            "dev",
            "--input",
            "release=root",
            "--input",
            "chart=privileged",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("forbidden")
            && error.contains("Deployment root-shell")
            && error.contains(
                "privileged (container \"shell\" must not set securityContext.privileged=true)"
            ),
        "{error}"
    );
    assert_eq!(stepbox_tests::plan_of(&report), vec![], "nothing applied");
}

#[test]
fn a_privileged_pod_is_refused_through_the_gateway_with_the_built_in_policy() {
    let cluster = DevClusterProcess::start(&["--namespace", "shop"]);
    let gateway = DevClusterProcess::gateway(&[
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--namespace",
        "shop",
    ]);
    let manifests = dir_with(&[
        ("privileged.json", PRIVILEGED_DEPLOYMENT),
        (
            "host-pid.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: peek}\nspec:\n  hostPID: true\n  containers: [{name: c, image: busybox}]\n",
        ),
    ]);
    for (file, want) in [
        (
            "privileged.json",
            "privileged (container \"shell\" must not set securityContext.privileged=true)",
        ),
        ("host-pid.yaml", "host namespaces (hostPID=true)"),
    ] {
        let run: Invocation =
            gateway.kubectl_run(["apply", "-f", manifests.path().join(file).to_str().unwrap()]);
        assert_eq!(run.code, 1, "{file}: {}", run.all_output());
        assert!(
            run.stderr.contains("Forbidden") && run.stderr.contains(want),
            "{file}: {}",
            run.stderr
        );
    }
    // Nothing reached the cluster behind it.
    let get = cluster.kubectl_run(["get", "deployments,pods", "-n", "shop", "-o", "name"]);
    assert_eq!(get.code, 0, "{}", get.all_output());
    assert!(
        !get.stdout.contains("root-shell") && !get.stdout.contains("peek"),
        "{}",
        get.stdout
    );
    // An unprivileged pod goes through.
    let ok = dir_with(&[(
        "ok.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: fine}\nspec:\n  containers: [{name: c, image: busybox}]\n",
    )]);
    let run = gateway.kubectl_run(["apply", "-f", ok.path().join("ok.yaml").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
}
