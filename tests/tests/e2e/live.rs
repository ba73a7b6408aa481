//! Steps against a real Kubernetes API: `stepbox dev-cluster` started by the
//! test, the live backend (`--kubeconfig`, `--in-cluster`), server-side
//! dry-run, and the real kubectl looking at the same server.

use std::path::Path;

use stepbox_tests::{
    DevClusterProcess, Invocation, dir_with, guest, kubectl_bin, plan_of, repo_root, run_json, step,
};

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Invocation {
    let out = std::process::Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    Invocation::from(out)
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: #{image}
          ports:
            - containerPort: 80
";
const SVC: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 80
";
const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  LOG_LEVEL: info
";

/// The same manifests, with `#{image}` filled in for kubectl.
fn manifests(image: Option<&str>) -> tempfile::TempDir {
    let web = match image {
        Some(i) => WEB.replace("#{image}", i),
        None => WEB.to_string(),
    };
    dir_with(&[
        ("10-config.yaml", CONFIG),
        ("20-web.yaml", &web),
        ("30-svc.yaml", SVC),
    ])
}

fn sorted_plan(report: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let mut p = plan_of(report);
    p.sort();
    p
}

#[test]
fn a_step_sees_and_changes_what_kubectl_applied() {
    let dc = DevClusterProcess::start(&[]);
    let kc = dc.kubeconfig();

    let applied = manifests(Some("nginx:1.27"));
    let run = kubectl(kc, &["apply", "-f", applied.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "kubectl apply: {}", run.all_output());
    let run = kubectl(kc, &["get", "deploy,svc,cm", "-o", "name"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    for name in ["deployment.apps/web", "service/web", "configmap/web-config"] {
        assert!(
            run.stdout.contains(name),
            "kubectl get lists {name}: {}",
            run.stdout
        );
    }

    // The step sees what kubectl made and changes the image.
    let pkg = manifests(None);
    let run = run_json(
        &step("deploy-manifests"),
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--package",
            pkg.path().to_str().unwrap(),
            "--input",
            "image=nginx:1.28",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["backend"], "live");
    assert_eq!(report["dryRun"], false);
    assert_eq!(report["namespace"], "default", "the context's namespace");
    let plan = sorted_plan(&report);
    let actions = |kind: &str| {
        plan.iter()
            .find(|p| p.2 == kind)
            .map(|p| p.0.clone())
            .unwrap_or_default()
    };
    assert_eq!(actions("Deployment"), "configured", "{plan:?}");
    assert_eq!(actions("ConfigMap"), "unchanged", "{plan:?}");
    assert_eq!(actions("Service"), "unchanged", "{plan:?}");
    let changes = report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "Deployment")
        .unwrap()["changes"]
        .clone();
    assert!(changes.to_string().contains("nginx:1.28"), "{changes}");

    // kubectl then shows what the plan said.
    let run = kubectl(
        kc,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    );
    assert_eq!(run.stdout.trim(), "nginx:1.28", "{}", run.all_output());
    let run = kubectl(
        kc,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
}

#[test]
fn the_same_step_plans_the_same_offline_with_server_dry_run_and_live() {
    let pkg = manifests(None);
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--package",
            pkg.path().to_str().unwrap(),
            "--input",
            "image=nginx:1.27",
            "--namespace",
            "default",
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run_with = |extra: &[&str]| {
        let a = args(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run_json(&step("deploy-manifests"), &refs)
    };

    let offline = run_with(&[]);
    assert_eq!(offline.code, 0, "{}", offline.all_output());

    let dc = DevClusterProcess::start(&[]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let dry = run_with(&["--kubeconfig", &kc, "--dry-run", "server"]);
    assert_eq!(dry.code, 0, "{}", dry.all_output());
    assert_eq!(dry.report()["dryRun"], true);
    let after_dry = kubectl(dc.kubeconfig(), &["get", "deploy,svc,cm", "-o", "name"]);
    assert!(
        !after_dry.stdout.contains("web"),
        "server dry-run persisted nothing: {}",
        after_dry.stdout
    );

    let live = run_with(&["--kubeconfig", &kc]);
    assert_eq!(live.code, 0, "{}", live.all_output());

    let p_offline = sorted_plan(&offline.report());
    assert_eq!(p_offline.len(), 3);
    assert!(p_offline.iter().all(|p| p.0 == "created"));
    assert_eq!(
        sorted_plan(&dry.report()),
        p_offline,
        "server dry-run plans like offline"
    );
    assert_eq!(
        sorted_plan(&live.report()),
        p_offline,
        "live plans like offline"
    );
    let after_live = kubectl(dc.kubeconfig(), &["get", "deploy,svc,cm", "-o", "name"]);
    assert!(
        after_live.stdout.contains("deployment.apps/web"),
        "{}",
        after_live.stdout
    );
}

#[test]
fn policy_denials_hold_against_a_live_cluster() {
    let dc = DevClusterProcess::start(&[]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    for (case, needle) in [
        ("other-namespace", "kube-system"),
        ("cluster-role", "ClusterRole"),
        ("kind-not-allowed", "roles"),
    ] {
        let run = run_json(
            &guest("policy-probe"),
            &["--kubeconfig", &kc, "--input", &format!("case={case}")],
        );
        assert_eq!(run.code, 0, "{}", run.all_output());
        let report = run.report();
        assert_eq!(
            report["outputs"]["outcome"], "forbidden",
            "{case}: {report:#}"
        );
        assert!(
            report["outputs"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{case}: {report:#}"
        );
        assert_eq!(plan_of(&report), vec![], "{case}: nothing applied");
    }
    let run = kubectl(
        dc.kubeconfig(),
        &["get", "configmaps", "-n", "kube-system", "-o", "name"],
    );
    assert!(
        !run.stdout.contains("sneaky") && !run.stdout.contains("configmap/"),
        "{}",
        run.stdout
    );
    let run = kubectl(dc.kubeconfig(), &["get", "clusterroles", "-o", "name"]);
    assert!(!run.stdout.contains("evil"), "{}", run.stdout);
}

/// The kubeconfig's token and CA, written as a pod's service account mount.
fn service_account_dir(kubeconfig: &Path, namespace: &str) -> (tempfile::TempDir, String, String) {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(key)
                    .map(|v| v.trim().trim_matches('"').to_string())
            })
            .unwrap_or_else(|| panic!("{key} in the dev-cluster kubeconfig:\n{text}"))
    };
    let server = field("server:");
    let token = field("token:");
    let ca_b64 = field("certificate-authority-data:");
    let ca = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(ca_b64.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap()
        .stdout;
    let dir = dir_with(&[("token", &token), ("namespace", namespace)]);
    std::fs::write(dir.path().join("ca.crt"), ca).unwrap();
    let hostport = server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    (dir, host.to_string(), port.to_string())
}

#[test]
fn an_in_cluster_style_run_uses_the_service_account_files() {
    let dc = DevClusterProcess::start(&["--namespace", "team-a"]);
    let (sa, host, port) = service_account_dir(dc.kubeconfig(), "team-a");
    let pkg = manifests(None);
    let out = stepbox_tests::stepbox()
        .args([
            "run",
            step("deploy-manifests").to_str().unwrap(),
            "--output",
            "json",
            "--in-cluster",
            "--service-account-dir",
        ])
        .arg(sa.path())
        .args([
            "--package",
            pkg.path().to_str().unwrap(),
            "--input",
            "image=nginx:1.27",
            "--input",
            "wait=false",
        ])
        .env("KUBERNETES_SERVICE_HOST", host)
        .env("KUBERNETES_SERVICE_PORT", port)
        .output()
        .unwrap();
    let run = Invocation::from(out);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(
        report["namespace"], "team-a",
        "namespace from the mounted namespace file: {report:#}"
    );
    assert_eq!(report["backend"], "live");
    assert_eq!(plan_of(&report).len(), 3);
    let run = kubectl(
        dc.kubeconfig(),
        &["get", "deployment", "web", "-n", "team-a", "-o", "name"],
    );
    assert_eq!(
        run.stdout.trim(),
        "deployment.apps/web",
        "{}",
        run.all_output()
    );
}

#[test]
fn a_wrong_token_and_a_dead_server_give_clear_errors() {
    let dc = DevClusterProcess::start(&[]);
    let text = std::fs::read_to_string(dc.kubeconfig()).unwrap();
    let token_line = text
        .lines()
        .find(|l| l.trim().starts_with("token:"))
        .unwrap();
    let bad = dir_with(&[(
        "kubeconfig",
        &text.replace(token_line, "    token: not-the-token"),
    )]);
    let run = run_json(
        &guest("kube-ops"),
        &[
            "--kubeconfig",
            bad.path().join("kubeconfig").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.contains("rejected the credentials"), "{error}");

    let server_line = text
        .lines()
        .find(|l| l.trim().starts_with("server:"))
        .unwrap();
    let dead = dir_with(&[(
        "kubeconfig",
        &text.replace(server_line, "    server: https://127.0.0.1:9"),
    )]);
    let run = run_json(
        &guest("kube-ops"),
        &[
            "--kubeconfig",
            dead.path().join("kubeconfig").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.contains("connection refused"), "{error}");
}

#[test]
fn offline_is_the_default_and_refuses_server_dry_run() {
    let run = run_json(&guest("hello"), &["--dry-run", "server"]);
    assert_eq!(run.code, 2);
    assert!(
        run.report()["error"]
            .as_str()
            .unwrap()
            .contains("needs a cluster")
    );
    let run = run_json(&guest("hello"), &["--offline", "--kubeconfig", "x"]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    let _ = repo_root();
}

#[test]
fn a_certificate_from_another_ca_is_refused_clearly() {
    let a = DevClusterProcess::start(&[]);
    let b = DevClusterProcess::start(&[]);
    let text_a = std::fs::read_to_string(a.kubeconfig()).unwrap();
    let text_b = std::fs::read_to_string(b.kubeconfig()).unwrap();
    let ca_line = |t: &str| {
        t.lines()
            .find(|l| l.trim().starts_with("certificate-authority-data:"))
            .unwrap()
            .to_string()
    };
    // a's server and token, b's CA.
    let mixed = text_a.replace(&ca_line(&text_a), &ca_line(&text_b));
    let d = dir_with(&[("kubeconfig", &mixed)]);
    let run = run_json(
        &guest("kube-ops"),
        &[
            "--kubeconfig",
            d.path().join("kubeconfig").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.contains("certificate"), "{error}");
}

#[test]
fn check_compares_policy_grants_with_the_credentials() {
    let dc = DevClusterProcess::start(&[]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let run = stepbox_tests::stepbox_run(["check", "--kubeconfig", &kc, "--output", "json"]);
    // The dev cluster's credentials are its administrator's: everything the
    // policy grants is held, and so are cluster-wide rights a namespaced
    // worker must not have, which check reports with a non-zero exit.
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        report["serverVersion"].as_str().unwrap().starts_with('v'),
        "{report:#}"
    );
    assert_eq!(report["namespace"], "default");
    assert_eq!(report["namespaceStatus"], "exists");
    let rows = report["rows"].as_array().unwrap();
    let granted: Vec<_> = rows.iter().filter(|r| r["policy"] == true).collect();
    assert!(granted.len() > 20, "one row per granted resource and verb");
    assert!(granted.iter().all(|r| r["verdict"] == "ok"), "{granted:?}");
    let probes: Vec<_> = rows.iter().filter(|r| r["policy"] == false).collect();
    assert!(
        !probes.is_empty() && probes.iter().all(|r| r["verdict"] == "too-broad"),
        "{probes:?}"
    );
    assert!(report["problems"].to_string().contains("cluster-wide"));

    let text = stepbox_tests::stepbox_run(["check", "--kubeconfig", &kc]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("TOO BROAD") && text.stdout.contains("deployments.apps"),
        "{}",
        text.stdout
    );

    let dead = stepbox_tests::stepbox_run(["check", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(dead.code, 2, "{}", dead.all_output());
}
