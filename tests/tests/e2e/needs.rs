//! What a step declares it needs (`stepbox:needs`): a run may do only what
//! both its policy and the declaration allow, undeclared steps keep their
//! policy with a warning, `stepbox build` and `inspect` write and show the
//! declaration, and the Role `stepbox rbac` prints lets a step run on
//! `stepbox dev-cluster` (which enforces RBAC for service-account tokens)
//! and nothing more, as `stepbox check --step` reports.

use std::path::{Path, PathBuf};

use serde_json::Value;
use stepbox_tests::{
    DevClusterProcess, Invocation, guest, plan_of, repo_root, run_json, script_step, step, stepbox,
    stepbox_run, wasm_target_dir, without_test_build_env,
};

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: \"1\"}\n";
const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2}\n";

const UNDECLARED_WARNING: &str = "the step declares no needs (no stepbox:needs section)";

/// `manifest-N=...` inputs for the probes.
fn inputs(manifests: &[&str]) -> Vec<String> {
    manifests
        .iter()
        .enumerate()
        .map(|(i, m)| format!("manifest-{i}={m}"))
        .collect()
}

/// Runs a probe guest (or any component) applying `manifests` with `extra`
/// flags; the report.
fn probe(component: &Path, manifests: &[&str], extra: &[&str]) -> Value {
    let inputs = inputs(manifests);
    let mut args: Vec<&str> = extra.to_vec();
    for i in &inputs {
        args.extend(["--input", i.as_str()]);
    }
    let run = run_json(component, &args);
    assert_eq!(run.code, 0, "{}", run.all_output());
    run.report()
}

fn outcome(report: &Value, n: usize) -> (String, String) {
    let out = |k: &str| {
        report["outputs"][format!("{k}-{n}")]
            .as_str()
            .unwrap_or_else(|| panic!("no {k}-{n}: {report:#}"))
            .to_string()
    };
    (out("outcome"), out("message"))
}

fn log_text(report: &Value) -> String {
    report["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_declaration_narrower_than_the_policy_refuses_what_it_does_not_name() {
    // The built-in policy grants Secrets; the probe declares ConfigMaps only.
    let report = probe(
        &guest("needs-probe"),
        &[CONFIG_MAP, SECRET],
        &["--namespace", "dev"],
    );
    assert_eq!(outcome(&report, 0), ("ok".into(), String::new()));
    let (kind, message) = outcome(&report, 1);
    assert_eq!(kind, "forbidden", "{message}");
    assert!(
        message.contains(
            "\"create\" on secrets \"db\" is not among the needs the step declares \
             (stepbox:needs: configmaps get, create, patch)"
        ),
        "{message}"
    );
    assert_eq!(
        plan_of(&report),
        [(
            "created".to_string(),
            "v1".to_string(),
            "ConfigMap".to_string(),
            "settings".to_string()
        )],
        "only the ConfigMap was written"
    );
    assert!(
        report["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["decision"] == "denied"
                && a["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("stepbox:needs")),
        "the refusal is audited: {report:#}"
    );
    assert!(
        !log_text(&report).contains(UNDECLARED_WARNING),
        "a declared step is not warned"
    );
}

#[test]
fn http_the_policy_allows_is_refused_to_a_step_that_declares_none() {
    let default = stepbox::policy::Policy::default_yaml();
    let policy = stepbox_tests::dir_with(&[(
        "policy.yaml",
        &format!("{default}\noutbound:\n  - http://127.0.0.1:9\n"),
    )]);
    let policy_file = policy.path().join("policy.yaml");
    let run = run_json(
        &guest("needs-probe"),
        &[
            "--policy",
            policy_file.to_str().unwrap(),
            "--input",
            "url=http://127.0.0.1:9/health",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["outputs"]["http-outcome"], "forbidden", "{report:#}");
    let message = report["outputs"]["http-message"].as_str().unwrap();
    assert!(
        message.contains(
            "http://127.0.0.1:9 is not among the needs the step declares \
             (stepbox:needs: configmaps get, create, patch); declare it under `outbound:`"
        ),
        "{message}"
    );
}

#[test]
fn helm_is_refused_to_a_step_that_does_not_declare_it() {
    let helm = stepbox_tests::helm_bin();
    let run = run_json(
        &guest("needs-probe"),
        &["--helm", helm.to_str().unwrap(), "--input", "helm=yes"],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["outputs"]["helm-outcome"], "forbidden", "{report:#}");
    assert_eq!(
        report["outputs"]["helm-message"],
        "helm is not among the needs the step declares (stepbox:needs: configmaps get, create, \
         patch); declare `helm: true` to call it"
    );
    // A step declaring `helm: true` calls the same helm: helm.rs's
    // the_helm_upgrade_step_installs_its_example_chart runs helm-upgrade.
}

#[test]
fn an_undeclared_step_keeps_its_policy_with_a_warning() {
    let report = probe(
        &guest("apply-probe"),
        &[CONFIG_MAP, SECRET],
        &["--namespace", "dev"],
    );
    assert_eq!(outcome(&report, 0).0, "ok");
    assert_eq!(outcome(&report, 1).0, "ok", "the policy grants Secrets");
    let log = log_text(&report);
    assert!(log.contains(UNDECLARED_WARNING), "{log}");
    assert!(log.contains("stepbox_sdk::needs! or a step.yaml"), "{log}");
}

/// `stepbox inspect --output json` of a component.
fn inspect(component: &Path) -> Value {
    let run = Invocation::from(
        stepbox()
            .args(["inspect", "--output", "json"])
            .arg(component)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn every_example_step_declares_its_needs() {
    let mut components: Vec<(&str, PathBuf)> = [
        "deploy-manifests",
        "helm-upgrade",
        "rotate-secret",
        "http-check",
    ]
    .into_iter()
    .map(|s| (s, step(s)))
    .collect();
    for dir in ["steps/deploy-manifests-js", "steps/deploy-manifests-py"] {
        components.push((dir, script_step(dir)));
    }
    for (name, wasm) in components {
        let info = inspect(&wasm);
        let needs = &info["needs"];
        assert_eq!(needs["kind"], "StepNeeds", "{name}: {info:#}");
        let rules = needs["rules"].to_string();
        match name {
            "http-check" => {
                assert_eq!(rules, "[]", "{name}");
                assert_eq!(needs["outbound"], serde_json::json!(["*://*:*"]), "{name}");
            }
            "helm-upgrade" => assert_eq!(needs["helm"], true, "{name}"),
            "rotate-secret" => assert!(rules.contains("secrets"), "{name}: {rules}"),
            _ => assert!(rules.contains("deployments"), "{name}: {rules}"),
        }
    }
    // deploy-manifests' diagnosis and prune keep what they need.
    let text = Invocation::from(
        stepbox()
            .arg("inspect")
            .arg(step("deploy-manifests"))
            .output()
            .unwrap(),
    );
    for want in [
        "pods/log: get",
        "events: list",
        "replicasets.apps: get, list",
        "configmaps: get, list, create, patch, delete",
    ] {
        assert!(text.stdout.contains(want), "{want}: {}", text.stdout);
    }
}

#[test]
fn deploy_manifests_ports_declare_what_the_rust_step_declares() {
    // They make the same calls (kustomize, prune's get and delete, the
    // diagnosis' lists, events and logs), so they need the same grant.
    let rust = inspect(&step("deploy-manifests"))["needs"].clone();
    assert!(
        rust["rules"].to_string().contains("pods/log"),
        "the Rust step's diagnosis reads logs: {rust}"
    );
    for dir in ["steps/deploy-manifests-js", "steps/deploy-manifests-py"] {
        assert_eq!(inspect(&script_step(dir))["needs"], rust, "{dir}");
    }
}

/// A new Rust step (`stepbox new`), built offline against the test guests'
/// lock and target dir.
fn new_rust_step(home: &Path) -> PathBuf {
    let run = Invocation::from(
        stepbox()
            .current_dir(home)
            .args(["new", "declared", "--lang", "rust"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let dir = home.join("declared");
    std::fs::copy(
        repo_root().join("tests/guests/Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .unwrap();
    dir
}

fn build(dir: &Path) -> Invocation {
    let mut cmd = stepbox();
    without_test_build_env(&mut cmd);
    cmd.arg("build")
        .arg(dir)
        .env("CARGO_TARGET_DIR", wasm_target_dir())
        .env("CARGO_NET_OFFLINE", "true");
    Invocation::from(cmd.output().unwrap())
}

#[test]
fn stepbox_build_embeds_a_step_yaml_once_and_refuses_a_second_declaration() {
    let home = tempfile::tempdir().unwrap();
    let dir = new_rust_step(home.path());
    // A new step declares what its template does.
    let fresh = build(&dir);
    assert_eq!(fresh.code, 0, "{}", fresh.all_output());
    let wasm = PathBuf::from(fresh.stdout.lines().last().unwrap());
    assert_eq!(
        inspect(&wasm)["needs"]["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"],
                            "verbs": ["get", "create", "patch"]}])
    );
    std::fs::write(
        dir.join("step.yaml"),
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\nrules:\n\
         - {apiGroups: [''], resources: [configmaps], verbs: [get, create, patch]}\n\
         podSecurity: restricted\n",
    )
    .unwrap();
    let first = build(&dir);
    assert_eq!(first.code, 0, "{}", first.all_output());
    // Built again (cargo keeps its output): still one declaration.
    let again = build(&dir);
    assert_eq!(again.code, 0, "{}", again.all_output());
    let text = Invocation::from(stepbox().arg("inspect").arg(&wasm).output().unwrap());
    assert!(
        text.stdout.contains(
            "needs (stepbox:needs):\n  configmaps: get, create, patch\n  podSecurity: restricted\n"
        ),
        "{}",
        text.stdout
    );

    // A bad step.yaml is named, with what to fix.
    std::fs::write(
        dir.join("step.yaml"),
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\nrules:\n\
         - {apiGroups: [''], resources: ['*'], verbs: [get]}\n",
    )
    .unwrap();
    let bad = build(&dir);
    assert_eq!(bad.code, 2, "{}", bad.all_output());
    assert!(
        bad.stderr.contains("step.yaml: fix the declaration")
            && bad
                .stderr
                .contains("rules[0].resources[0]: \"*\" is a wildcard"),
        "{}",
        bad.stderr
    );

    // needs! in the crate and a step.yaml: one declaration too many.
    std::fs::write(
        dir.join("step.yaml"),
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepNeeds\nrules: []\n",
    )
    .unwrap();
    let lib = dir.join("src/lib.rs");
    let mut source = std::fs::read_to_string(&lib).unwrap();
    source.push_str(
        "\nstepbox_sdk::needs!(\"apiVersion: stepbox.dev/v1alpha1\\nkind: StepNeeds\\nrules: []\\n\");\n",
    );
    std::fs::write(&lib, source).unwrap();
    let both = build(&dir);
    assert_eq!(both.code, 2, "{}", both.all_output());
    assert!(
        both.stderr
            .contains("with stepbox_sdk::needs! or a step.yaml, not both"),
        "{}",
        both.stderr
    );
    // Without the step.yaml the macro's declaration is the step's.
    std::fs::remove_file(dir.join("step.yaml")).unwrap();
    let macro_only = build(&dir);
    assert_eq!(macro_only.code, 0, "{}", macro_only.all_output());
    assert_eq!(
        inspect(&wasm)["needs"],
        serde_json::json!({"apiVersion": "stepbox.dev/v1alpha1", "kind": "StepNeeds", "rules": []})
    );
}

/// The dev cluster's administrator kubeconfig with `token` instead.
fn kubeconfig_with_token(cluster: &DevClusterProcess, token: &str, dir: &Path) -> PathBuf {
    let yaml = std::fs::read_to_string(cluster.kubeconfig()).unwrap();
    let admin = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("the admin token")
        .to_string();
    let path = dir.join("deployer.kubeconfig");
    std::fs::write(&path, yaml.replace(&admin, token)).unwrap();
    path
}

#[test]
fn the_role_stepbox_rbac_prints_lets_the_step_run_and_nothing_more() {
    let cluster = DevClusterProcess::start(&["--namespace", "shop"]);
    let probe_wasm = guest("needs-probe");
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // Without a declaration and a policy the Role is unknown.
    let run = stepbox_run([
        "rbac".to_string(),
        s(&guest("apply-probe")),
        "--namespace".into(),
        "shop".into(),
    ]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("declares no needs"), "{}", run.stderr);

    let run = stepbox_run([
        "rbac".to_string(),
        s(&probe_wasm),
        "--namespace".into(),
        "shop".into(),
        "--service-account".into(),
        "deployer".into(),
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let docs: Vec<Value> = run
        .stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{}", run.stdout);
    assert_eq!(docs[0]["kind"], "Role");
    assert_eq!(docs[0]["metadata"]["namespace"], "shop");
    assert_eq!(
        docs[0]["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"],
                            "verbs": ["get", "watch", "create", "patch"]}]),
        "minimal: what is declared and what the host uses to carry it out"
    );
    assert_eq!(docs[1]["kind"], "RoleBinding");
    assert_eq!(docs[1]["subjects"][0]["name"], "deployer");

    let files = tempfile::tempdir().unwrap();
    let role = files.path().join("role.yaml");
    std::fs::write(&role, &run.stdout).unwrap();
    for args in [
        vec!["create", "serviceaccount", "deployer", "-n", "shop"],
        vec!["apply", "-f", role.to_str().unwrap()],
    ] {
        let run = cluster.kubectl_run(&args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.all_output());
    }
    let run = cluster.kubectl_run(["create", "token", "deployer", "-n", "shop", "--duration=1h"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let token = run.stdout.trim().to_string();
    let kubeconfig = kubeconfig_with_token(&cluster, &token, files.path());
    let as_deployer = [
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespace",
        "shop",
    ];

    // The step runs with the Role's credentials.
    let report = probe(&probe_wasm, &[CONFIG_MAP], &as_deployer);
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(
        outcome(&report, 0),
        ("ok".into(), String::new()),
        "{report:#}"
    );
    let get = cluster.kubectl_run(["get", "configmap", "settings", "-n", "shop", "-o", "name"]);
    assert_eq!(
        get.stdout.trim(),
        "configmap/settings",
        "{}",
        get.all_output()
    );

    // Nothing more: a Secret, which the built-in policy would allow an
    // undeclared step, is refused by the API server itself.
    let report = probe(&guest("apply-probe"), &[SECRET], &as_deployer);
    let (kind, message) = outcome(&report, 0);
    assert_eq!(kind, "forbidden", "{message}");
    assert!(
        message.contains("User \"system:serviceaccount:shop:deployer\" cannot")
            && message.contains("secrets"),
        "the API server's 403: {message}"
    );
    let mut kubectl = cluster.kubectl();
    kubectl.args(["--token", &token, "-n", "shop"]);
    let run = Invocation::from(kubectl.args(["get", "secrets"]).output().unwrap());
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(run.stderr.contains("Forbidden"), "{}", run.stderr);
    for (verb, resource) in [("delete", "configmaps"), ("create", "deployments.apps")] {
        let mut kubectl = cluster.kubectl();
        kubectl.args([
            "--token", &token, "-n", "shop", "auth", "can-i", verb, resource,
        ]);
        let run = Invocation::from(kubectl.output().unwrap());
        assert_eq!(
            run.stdout.trim(),
            "no",
            "{verb} {resource}: {}",
            run.all_output()
        );
    }

    // stepbox check --step: the Role holds what the probe needs...
    let check = |step: &Path| {
        let run = stepbox_run([
            "check".to_string(),
            "--kubeconfig".into(),
            s(&kubeconfig),
            "--namespace".into(),
            "shop".into(),
            "--step".into(),
            s(step),
            "--output".into(),
            "json".into(),
        ]);
        let report: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", run.all_output()));
        (run.code, report)
    };
    let (code, report) = check(&probe_wasm);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["comparedWith"], "the steps' needs");
    // ... and not what rotate-secret needs, which it reports by name.
    let (code, report) = check(&step("rotate-secret"));
    assert_eq!(code, 1, "{report:#}");
    let missing: Vec<String> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "missing")
        .map(|r| {
            format!(
                "{} {}",
                r["verb"].as_str().unwrap(),
                r["resource"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        missing.contains(&"create secrets".to_string())
            && missing.contains(&"patch deployments".to_string()),
        "{missing:?}"
    );
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("`stepbox rbac` prints it"),
        "{report:#}"
    );
}
