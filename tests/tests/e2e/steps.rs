//! The real steps from `steps/`, end to end through the `stepbox` binary on
//! the embedded namespace, with the plan checked object by object.

use stepbox_tests::{dir_with, plan_of, repo_root, run_json, step};

fn sorted(mut v: Vec<(String, String, String, String)>) -> Vec<(String, String, String, String)> {
    v.sort();
    v
}

fn t(a: &str, v: &str, k: &str, n: &str) -> (String, String, String, String) {
    (a.into(), v.into(), k.into(), n.into())
}

#[test]
fn deploy_manifests_deploys_the_example_directory() {
    let example = repo_root().join("steps/deploy-manifests/example");
    let run = run_json(
        &step("deploy-manifests"),
        &[
            "--package",
            example.to_str().unwrap(),
            "--input",
            "image=nginx:1.27",
            "--namespace",
            "dev",
        ],
    );
    assert_eq!(
        run.code, 0,
        "stderr: {}\nstdout: {}",
        run.stderr, run.stdout
    );
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["namespace"], "dev");
    assert_eq!(report["backend"], "memory");
    assert_eq!(report["dryRun"], true);
    assert_eq!(
        sorted(plan_of(&report)),
        sorted(vec![
            t("created", "apps/v1", "Deployment", "web"),
            t("created", "v1", "Service", "web"),
            t("created", "v1", "ConfigMap", "web-config"),
            t("created", "apps/v1", "Deployment", "worker"),
            t("created", "batch/v1", "Job", "migrate"),
        ])
    );
    assert_eq!(report["outputs"]["applied"], "5");
    let objects: serde_json::Value =
        serde_json::from_str(report["outputs"]["objects"].as_str().unwrap()).unwrap();
    assert_eq!(objects.as_array().unwrap().len(), 5);
    assert!(
        objects
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["action"] == "created")
    );
    // Every write passed the policy and is in the audit trail.
    let audit = report["audit"].as_array().unwrap();
    let applies: Vec<_> = audit.iter().filter(|a| a["call"] == "kube.apply").collect();
    assert_eq!(applies.len(), 5);
    assert!(applies.iter().all(|a| a["decision"] == "allowed"));
    // Waits for the workloads happened and were audited.
    assert!(
        audit.iter().any(|a| a["call"] == "kube.wait"
            && a["target"].as_str().unwrap().contains("Deployment web"))
    );
    // The image input was substituted.
    assert!(
        report["plan"].to_string().contains("nginx:1.27")
            || report["log"].to_string().contains("created")
    );
}

const CONFIG_V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  labels:\n    app: shop\ndata:\n  mode: \"#{mode}\"\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      containers:
        - name: shop
          image: shop:1.0
";

#[test]
fn apply_reports_created_configured_and_unchanged() {
    let pkg = dir_with(&[
        ("10-config.yaml", CONFIG_V1),
        ("20-deploy.yaml", DEPLOYMENT),
    ]);
    let seed_text = format!(
        "{}---\n{}",
        CONFIG_V1.replace("\"#{mode}\"", "old"),
        DEPLOYMENT
    );
    let seed = dir_with(&[("seed.yaml", &seed_text)]);
    let run = run_json(
        &step("deploy-manifests"),
        &[
            "--package",
            pkg.path().to_str().unwrap(),
            "--seed",
            seed.path().join("seed.yaml").to_str().unwrap(),
            "--input",
            "mode=fast",
            "--input",
            "wait=false",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(
        plan_of(&report),
        vec![
            t("configured", "v1", "ConfigMap", "app-config"),
            t("unchanged", "apps/v1", "Deployment", "shop")
        ]
    );
    let changes = report["plan"][0]["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["path"] == "data.mode" && c["before"] == "old" && c["after"] == "fast"),
        "changes: {changes:?}"
    );
}

#[test]
fn a_manifest_naming_another_namespace_is_refused_and_nothing_is_applied() {
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\ndata:\n  a: b\n";
    let pkg = dir_with(&[("a.yaml", CONFIG_V1), ("b.yaml", other)]);
    let run = run_json(
        &step("deploy-manifests"),
        &[
            "--package",
            pkg.path().to_str().unwrap(),
            "--input",
            "mode=x",
            "--namespace",
            "dev",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("kube-system"),
        "error names the namespace: {error}"
    );
    assert!(error.contains("forbidden"), "{error}");
    assert_eq!(plan_of(&report), vec![], "nothing applied");
    let denied: Vec<_> = report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["decision"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0]["reason"]
            .as_str()
            .unwrap()
            .contains("kube-system")
    );
}

#[test]
fn unknown_placeholders_are_listed() {
    let pkg = dir_with(&[(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: \"#{alpha}\"\n  b: \"#{beta}\"\n",
    )]);
    let run = run_json(
        &step("deploy-manifests"),
        &["--package", pkg.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.contains("alpha") && error.contains("beta"), "{error}");
    assert_eq!(plan_of(&run.report()), vec![]);
}

#[test]
fn an_empty_package_is_a_clear_failure() {
    let pkg = dir_with(&[("README.txt", "no manifests here")]);
    let run = run_json(
        &step("deploy-manifests"),
        &["--package", pkg.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.report()["error"]
            .as_str()
            .unwrap()
            .contains("no manifests"),
        "{}",
        run.stdout
    );
}

#[test]
fn rotate_secret_writes_the_secret_and_restarts_matching_deployments() {
    let other = DEPLOYMENT.replace(
        "name: shop\nspec",
        "name: other\n  labels:\n    team: b\nspec",
    );
    let shop = DEPLOYMENT.replace(
        "name: shop\nspec",
        "name: shop\n  labels:\n    team: a\nspec",
    );
    let seed = dir_with(&[("seed.yaml", &format!("{shop}---\n{other}"))]);
    let secret_value = "hunter2-rotated-value";
    let run = run_json(
        &step("rotate-secret"),
        &[
            "--seed",
            seed.path().join("seed.yaml").to_str().unwrap(),
            "--input",
            "secret=db-password",
            "--input",
            "selector=team=a",
            "--secret",
            &format!("value={secret_value}"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        !run.all_output().contains(secret_value),
        "the secret leaked"
    );
    let report = run.report();
    assert_eq!(
        plan_of(&report),
        vec![
            t("created", "v1", "Secret", "db-password"),
            t("configured", "apps/v1", "Deployment", "shop")
        ]
    );
    assert_eq!(report["outputs"]["secret"], "db-password");
    assert_eq!(report["outputs"]["restarted"], "[\"shop\"]");
    assert_eq!(report["outputs"]["checksum"], "********");
}
