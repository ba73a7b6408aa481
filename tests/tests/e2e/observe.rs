//! What a step reads to explain a rollout: pod logs (`kube.logs`) and
//! Events (`kube.events`), from the embedded namespace (the Events its
//! stand-in controllers record; logs empty unless seeded, and the audit
//! says why) and from `stepbox dev-cluster` (`pods/log` served from the
//! pod's `logs.stepbox.dev/CONTAINER` annotations). And the end of it:
//! `deploy-manifests` whose Deployment does not roll out reports why, on
//! dev-cluster and on the embedded namespace (status seeded as a
//! controller would write it), as do its JavaScript and Python ports (on
//! both, the same log, error and audit). The JavaScript and Python SDKs
//! make the same calls (and kustomize's) with the same results.

use stepbox_tests::{
    DevClusterProcess, Invocation, deploy_manifests_ports, dir_with, guest, kubectl_bin, observed,
    repo_root, run_json, script_step, step,
};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
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
          image: example.com/web:broken
";

/// A pod of `web` whose container crashed: the log of its previous
/// instance seeded by annotation, and the kubelet's BackOff Event.
const CRASHING_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web-7c9d8-x2x9z
  labels:
    app: web
  annotations:
    logs.stepbox.dev/web: "starting web\n"
    logs.stepbox.dev/web.previous: "starting web\nconnecting to the database\nerror: DATABASE_URL is not set\n"
spec:
  containers:
    - name: web
      image: example.com/web:broken
    - name: sidecar
      image: example.com/proxy:1
---
apiVersion: v1
kind: Event
metadata:
  name: web-7c9d8-x2x9z.backoff
involvedObject:
  apiVersion: v1
  kind: Pod
  name: web-7c9d8-x2x9z
reason: BackOff
message: Back-off restarting failed container web in pod web-7c9d8-x2x9z
type: Warning
count: 4
"#;

fn observe(extra: &[&str]) -> Invocation {
    run_json(&guest("observe"), extra)
}

fn audit_of<'a>(report: &'a serde_json::Value, call: &str) -> &'a serde_json::Value {
    report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["call"] == call)
        .unwrap_or_else(|| panic!("no {call} in the audit: {report:#}"))
}

#[test]
fn observe_offline_logs_are_empty_and_say_so_and_events_are_the_synthesized_ones() {
    let dir = dir_with(&[("seed.yaml", &format!("{DEPLOYMENT}---\n{CRASHING_POD}"))]);
    let seed = dir.path().join("seed.yaml");
    let seed = seed.to_str().unwrap();

    let run = observe(&[
        "--seed",
        seed,
        "--input",
        "pod=web-7c9d8-x2x9z",
        "--input",
        "container=sidecar",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["outputs"]["log"], "");
    let logs = audit_of(&report, "kube.logs");
    assert_eq!(logs["decision"], "allowed");
    let reason = logs["reason"].as_str().unwrap();
    assert!(reason.contains("runs no containers"), "{reason}");

    let run = observe(&[
        "--seed",
        seed,
        "--input",
        "pod=web-7c9d8-x2x9z",
        "--input",
        "container=web",
        "--input",
        "tail=2",
        "--input",
        "previous=true",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(
        run.report()["outputs"]["log"],
        "connecting to the database\nerror: DATABASE_URL is not set\n",
        "a seeded log, its last two lines"
    );

    let run = observe(&[
        "--seed",
        seed,
        "--input",
        "api-version=apps/v1",
        "--input",
        "kind=Deployment",
        "--input",
        "name=web",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let events = run.report()["outputs"]["events"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        events.starts_with("Normal ScalingReplicaSet: Scaled up replica set web-"),
        "the controller's Event: {events}"
    );
}

#[test]
fn observe_logs_and_events_come_from_dev_cluster() {
    let dir = dir_with(&[("seed.yaml", CRASHING_POD)]);
    let seed = dir.path().join("seed.yaml");
    let dc = DevClusterProcess::start(&["--seed", seed.to_str().unwrap()]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();

    let run = observe(&[
        "--kubeconfig",
        &kc,
        "--input",
        "pod=web-7c9d8-x2x9z",
        "--input",
        "container=web",
        "--input",
        "previous=true",
        "--input",
        "tail=1",
        "--input",
        "kind=Pod",
        "--input",
        "name=web-7c9d8-x2x9z",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let out = &run.report()["outputs"];
    assert_eq!(out["log"], "error: DATABASE_URL is not set\n");
    assert_eq!(
        out["events"],
        "Warning BackOff: Back-off restarting failed container web in pod web-7c9d8-x2x9z"
    );

    // kubectl reads the same log from the same server.
    let kubectl = dc.kubectl_run(["logs", "web-7c9d8-x2x9z", "-c", "web"]);
    assert_eq!(kubectl.code, 0, "{}", kubectl.all_output());
    assert_eq!(kubectl.stdout, "starting web\n");
}

#[test]
fn observe_a_failed_rollout_report_says_why() {
    let dir = dir_with(&[("pkg/web.yaml", DEPLOYMENT), ("pod.yaml", CRASHING_POD)]);
    let dc = DevClusterProcess::start(&[]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    // The cluster as a controller leaves it: the Deployment past its
    // progress deadline, its pod's container crash-looping.
    let web = dir.path().join("pkg/web.yaml");
    let pod = dir.path().join("pod.yaml");
    let applied = dc.kubectl_run([
        "apply",
        "-f",
        web.to_str().unwrap(),
        "-f",
        pod.to_str().unwrap(),
    ]);
    assert_eq!(applied.code, 0, "{}", applied.all_output());
    let status = r#"{"status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"unavailableReplicas":1,"readyReplicas":null,"availableReplicas":null,"conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded","message":"ReplicaSet \"web-7c9d8\" has timed out progressing."},{"type":"Available","status":"False","reason":"MinimumReplicasUnavailable","message":"Deployment does not have minimum availability."}]}}"#;
    let patched = dc.kubectl_run([
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    assert_eq!(patched.code, 0, "{}", patched.all_output());
    let pod_status = r#"{"status":{"phase":"Running","containerStatuses":[{"name":"web","ready":false,"restartCount":4,"image":"example.com/web:broken","imageID":"","state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 1m20s restarting failed container=web"}}},{"name":"sidecar","ready":true,"restartCount":0,"image":"example.com/proxy:1","imageID":"","state":{"running":{}}}]}}"#;
    let patched = dc.kubectl_run([
        "patch",
        "pod",
        "web-7c9d8-x2x9z",
        "--subresource=status",
        "--type=merge",
        "-p",
        pod_status,
    ]);
    assert_eq!(patched.code, 0, "{}", patched.all_output());

    let pkg = dir.path().join("pkg");
    let args = [
        "--kubeconfig",
        &kc,
        "--package",
        pkg.to_str().unwrap(),
        "--input",
        "timeout=5",
    ];
    let run = run_json(&step("deploy-manifests"), &args);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    let error = report["error"].as_str().unwrap();
    for why in [
        "ProgressDeadlineExceeded",
        "container web of pod/web-7c9d8-x2x9z",
        "CrashLoopBackOff",
    ] {
        assert!(error.contains(why), "the error says {why:?}: {error}");
    }
    let log: Vec<&str> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["source"] == "step")
        .filter_map(|l| l["message"].as_str())
        .collect();
    let log = log.join("\n");
    for line in [
        "condition Available=False MinimumReplicasUnavailable",
        "event pod/web-7c9d8-x2x9z: Warning BackOff (x4)",
        "last lines of pod/web-7c9d8-x2x9z container web:",
        "    error: DATABASE_URL is not set",
    ] {
        assert!(log.contains(line), "the log has {line:?}:\n{log}");
    }
    assert!(
        !log.contains("container sidecar"),
        "a ready container is not shown:\n{log}"
    );

    // The ports, on the same cluster, read and say the same.
    let expected = observed(&report);
    for (lang, wasm) in deploy_manifests_ports() {
        let run = run_json(&wasm, &args);
        assert_ne!(run.code, 0, "{lang}: {}", run.all_output());
        assert_eq!(observed(&run.report()), expected, "{lang} against Rust");
    }
}

#[test]
fn observe_js_and_python_read_logs_events_and_kustomize_as_rust_does() {
    let dir = dir_with(&[("seed.yaml", &format!("{DEPLOYMENT}---\n{CRASHING_POD}"))]);
    let seed = dir.path().join("seed.yaml");
    let package = repo_root().join("steps/deploy-manifests/example-kustomize");
    let kubectl = kubectl_bin();
    let args = [
        "--seed",
        seed.to_str().unwrap(),
        "--package",
        package.to_str().unwrap(),
        "--kubectl",
        kubectl.to_str().unwrap(),
        "--input",
        "pod=web-7c9d8-x2x9z",
        "--input",
        "container=web",
        "--input",
        "previous=true",
        "--input",
        "tail=2",
        "--input",
        "api-version=apps/v1",
        "--input",
        "kind=Deployment",
        "--input",
        "name=web",
        "--input",
        "kustomization=/packages/overlays/prod",
    ];
    let rust = run_json(&guest("observe"), &args);
    assert_eq!(rust.code, 0, "{}", rust.all_output());
    let expected = rust.report()["outputs"].clone();
    assert_eq!(
        expected["log"],
        "connecting to the database\nerror: DATABASE_URL is not set\n"
    );
    assert!(
        expected["events"]
            .as_str()
            .unwrap()
            .starts_with("Normal ScalingReplicaSet: "),
        "{expected}"
    );
    assert!(
        expected["rendered"]
            .as_str()
            .unwrap()
            .contains("name: prod-web\n"),
        "{expected}"
    );
    for dir in ["tests/guests-js/observe", "tests/guests-py/observe"] {
        let run = run_json(&script_step(dir), &args);
        assert_eq!(run.code, 0, "{dir}: {}", run.all_output());
        assert_eq!(run.report()["outputs"], expected, "{dir} against Rust");
    }
}

/// `metadata.managedFields` naming the status subresource: a controller owns
/// the object's status, so the embedded namespace keeps the seeded one
/// instead of synthesizing a ready one.
const STATUS_BY_A_CONTROLLER: &str = "  managedFields:
    - manager: kube-controller-manager
      operation: Update
      subresource: status
      apiVersion: v1
      fieldsType: FieldsV1
      fieldsV1: {f:status: {}}
";

/// A seed of the cluster a controller leaves after a failed rollout (the
/// Deployment past its progress deadline, its pod's container
/// crash-looping) as `seed.yaml`, and the package applying that Deployment
/// as `pkg/`.
fn failed_rollout_offline() -> tempfile::TempDir {
    let deployment = DEPLOYMENT.replacen(
        "  name: web\n",
        &format!("  name: web\n{STATUS_BY_A_CONTROLLER}"),
        1,
    ) + "status:
  observedGeneration: 1
  replicas: 1
  updatedReplicas: 1
  unavailableReplicas: 1
  conditions:
    - type: Progressing
      status: \"False\"
      reason: ProgressDeadlineExceeded
      message: ReplicaSet \"web-7c9d8\" has timed out progressing.
";
    let pod = CRASHING_POD.replacen(
        "  name: web-7c9d8-x2x9z\n",
        &format!("  name: web-7c9d8-x2x9z\n{STATUS_BY_A_CONTROLLER}"),
        1,
    );
    let pod = pod.replacen(
        "---\n",
        "status:
  phase: Running
  containerStatuses:
    - name: web
      ready: false
      restartCount: 2
      image: example.com/web:broken
      imageID: \"\"
      state:
        waiting:
          reason: CrashLoopBackOff
---
",
        1,
    );
    dir_with(&[
        ("seed.yaml", &format!("{deployment}---\n{pod}")),
        ("pkg/web.yaml", DEPLOYMENT),
    ])
}

/// `deploy-manifests` (any language) on [`failed_rollout_offline`].
fn deploy_failing(wasm: &std::path::Path, dir: &tempfile::TempDir) -> Invocation {
    let seed = dir.path().join("seed.yaml");
    let pkg = dir.path().join("pkg");
    run_json(
        wasm,
        &[
            "--seed",
            seed.to_str().unwrap(),
            "--package",
            pkg.to_str().unwrap(),
            "--input",
            "timeout=5",
        ],
    )
}

#[test]
fn observe_a_failed_rollout_offline_report_says_why() {
    let dir = failed_rollout_offline();
    let run = deploy_failing(&step("deploy-manifests"), &dir);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    let error = report["error"].as_str().unwrap();
    for why in [
        "ProgressDeadlineExceeded",
        "container web of pod/web-7c9d8-x2x9z: waiting CrashLoopBackOff",
    ] {
        assert!(error.contains(why), "the error says {why:?}: {error}");
    }
    let log = report["log"].to_string();
    assert!(log.contains("Warning BackOff (x4)"), "{log}");
    assert!(log.contains("error: DATABASE_URL is not set"), "{log}");
}

#[test]
fn observe_a_failed_rollout_offline_javascript_and_python_say_why_as_rust_does() {
    let dir = failed_rollout_offline();
    let rust = deploy_failing(&step("deploy-manifests"), &dir);
    assert_ne!(rust.code, 0, "{}", rust.all_output());
    let expected = observed(&rust.report());
    assert_eq!(expected["status"], "failed");
    for (lang, wasm) in deploy_manifests_ports() {
        let run = deploy_failing(&wasm, &dir);
        assert_ne!(run.code, 0, "{lang}: {}", run.all_output());
        let report = run.report();
        let error = report["error"].as_str().unwrap_or_default();
        for why in [
            "waiting for deployment.apps/web (Progressing ProgressDeadlineExceeded",
            "container web of pod/web-7c9d8-x2x9z: waiting CrashLoopBackOff",
            "the log has its conditions, events and container logs",
        ] {
            assert!(
                error.contains(why),
                "{lang}: the error says {why:?}: {error}"
            );
        }
        assert_eq!(observed(&report), expected, "{lang} against Rust");
    }
}
