//! Every kube call against the embedded namespace, as a step sees it.

use stepbox_tests::{guest, plan_of, run_json};

#[test]
fn kube_calls_behave_like_a_cluster() {
    let run = run_json(&guest("kube-ops"), &["--namespace", "ops"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    let out = &report["outputs"];
    assert_eq!(out["second-action"], "unchanged");
    assert_eq!(out["third-action"], "configured");
    assert_eq!(out["listed"], "1");
    assert_eq!(out["patched-b"], "3");
    assert_eq!(out["rollout"], "ok");
    assert_eq!(out["available"], "ok");
    assert_eq!(out["deleted"], "true");
    assert_eq!(out["deleted-again"], "false");
    assert_eq!(out["after-delete"], "not-found");
    let actions: Vec<String> = plan_of(&report)
        .into_iter()
        .map(|(a, _, k, n)| format!("{a} {k} {n}"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "created ConfigMap ops",
            "unchanged ConfigMap ops",
            "configured ConfigMap ops",
            "configured ConfigMap ops",
            "created Deployment ops-web",
            "deleted ConfigMap ops",
        ]
    );
}
