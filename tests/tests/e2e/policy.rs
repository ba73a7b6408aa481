//! Every policy denial reaches the step as a `forbidden` error value (never a
//! trap), changes nothing, and leaves an audit line.

use stepbox_tests::{dir_with, guest, plan_of, run_json};

fn probe(case: &str, extra: &[&str]) -> serde_json::Value {
    let case_arg = format!("case={case}");
    let mut args = vec!["--input", case_arg.as_str(), "--namespace", "dev"];
    args.extend_from_slice(extra);
    let run = run_json(&guest("policy-probe"), &args);
    assert_eq!(
        run.code,
        0,
        "the probe handles the error itself: {}",
        run.all_output()
    );
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    report
}

fn assert_forbidden(report: &serde_json::Value, needles: &[&str]) {
    assert_eq!(report["outputs"]["outcome"], "forbidden", "{report:#}");
    let message = report["outputs"]["message"].as_str().unwrap();
    for n in needles {
        assert!(
            message.contains(n),
            "message {message:?} should mention {n:?}"
        );
    }
    assert_eq!(plan_of(report), vec![], "nothing changed");
    let denied = report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["decision"] == "denied")
        .count();
    assert!(denied >= 1, "a denial is audited");
}

#[test]
fn another_namespace_in_metadata() {
    assert_forbidden(&probe("other-namespace", &[]), &["kube-system", "dev"]);
}

#[test]
fn cluster_scoped_namespace() {
    assert_forbidden(
        &probe("cluster-scoped", &[]),
        &["Namespace", "cluster-scoped"],
    );
}

#[test]
fn cluster_role() {
    assert_forbidden(&probe("cluster-role", &[]), &["ClusterRole"]);
}

#[test]
fn custom_resource_definition() {
    assert_forbidden(&probe("crd", &[]), &["CustomResourceDefinition"]);
}

#[test]
fn kind_not_granted_by_the_default_policy() {
    assert_forbidden(
        &probe("kind-not-allowed", &[]),
        &["roles.rbac.authorization.k8s.io"],
    );
}

#[test]
fn delete_of_a_cluster_scoped_object() {
    assert_forbidden(&probe("delete-forbidden", &[]), &["ClusterRole"]);
}

#[test]
fn one_bad_document_means_nothing_is_applied() {
    let report = probe("multi-doc-one-bad", &[]);
    assert_forbidden(&report, &["other"]);
    assert_eq!(report["outputs"]["a-exists"], "false");
}

#[test]
fn a_policy_file_can_grant_roles() {
    let policy = dir_with(&[(
        "policy.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n  - apiGroups: [\"rbac.authorization.k8s.io\"]\n    resources: [\"roles\"]\n    verbs: [\"get\", \"create\", \"patch\"]\n\
         \x20 # A Role may only grant what the policy grants itself (see tests/tests/hostile/kube.rs).\n\
         \x20 - apiGroups: [\"\"]\n    resources: [\"configmaps\"]\n    verbs: [\"get\", \"list\"]\n",
    )]);
    let path = policy.path().join("policy.yaml");
    let report = probe("kind-not-allowed", &["--policy", path.to_str().unwrap()]);
    assert_eq!(report["outputs"]["outcome"], "ok", "{report:#}");
    assert_eq!(plan_of(&report).len(), 1);
}

#[test]
fn a_policy_without_configmaps_refuses_them() {
    let policy = dir_with(&[(
        "policy.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n  - apiGroups: [\"apps\"]\n    resources: [\"deployments\"]\n    verbs: [\"*\"]\n",
    )]);
    let path = policy.path().join("policy.yaml");
    let report = probe("multi-doc-one-bad", &["--policy", path.to_str().unwrap()]);
    assert_forbidden(&report, &["configmaps"]);
}

#[test]
fn not_found_and_invalid_are_error_values_too() {
    let report = probe("get-missing", &[]);
    assert_eq!(report["outputs"]["outcome"], "not-found");
    let report = probe("bad-yaml", &[]);
    assert_eq!(report["outputs"]["outcome"], "invalid");
}

#[test]
fn a_broken_policy_file_is_invalid_input() {
    let policy = dir_with(&[(
        "policy.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrulez: []\n",
    )]);
    let run = run_json(
        &guest("hello"),
        &[
            "--policy",
            policy.path().join("policy.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "invalid");
    assert!(
        report["error"].as_str().unwrap().contains("rulez"),
        "{report:#}"
    );
}
