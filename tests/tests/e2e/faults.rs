//! Fault injection: `stepbox dev-cluster --fault SPEC` misbehaves the way
//! real API servers do, and the real `deploy-manifests` step runs against
//! it through the live backend (`stepbox run --kubeconfig`). Each test
//! checks the report (status, error text, audit), the objects in the
//! cluster afterwards and, from the server's request log
//! (`kubectl get --raw /debug/stepbox/requests`), how many writes really
//! arrived: a write must never be sent twice.

use std::time::{Duration, Instant};

use serde_json::Value;
use stepbox_tests::{DevClusterProcess, Invocation, dir_with, example_manifests, run_json, step};

/// The server's request log: every API request with its verb, resource,
/// name, the fault it met and whether the server handled it.
fn requests(dc: &DevClusterProcess) -> Vec<Value> {
    let out = dc.kubectl_run(["get", "--raw", "/debug/stepbox/requests"]);
    assert_eq!(out.code, 0, "request log: {}", out.all_output());
    let log: Value = serde_json::from_str(&out.stdout).expect("the request log is JSON");
    log["requests"].as_array().expect("requests").clone()
}

/// The requests of `verb` on `resource`/`name` made by stepbox (kubectl's
/// own requests name another field manager or are reads of their own).
fn calls<'a>(log: &'a [Value], verb: &str, resource: &str, name: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|r| r["verb"] == verb && r["resource"] == resource && r["name"] == name)
        .collect()
}

/// Every write request in the log.
fn writes(log: &[Value]) -> Vec<&Value> {
    log.iter()
        .filter(|r| {
            matches!(
                r["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            )
        })
        .collect()
}

/// `deploy-manifests` on `pkg` against `dc`, JSON report.
fn deploy(dc: &DevClusterProcess, pkg: &std::path::Path, extra: &[&str]) -> Invocation {
    let mut args = vec![
        "--kubeconfig",
        dc.kubeconfig().to_str().unwrap(),
        "--package",
        pkg.to_str().unwrap(),
        "--input",
        "image=nginx:1.27",
    ];
    args.extend_from_slice(extra);
    run_json(&step("deploy-manifests"), &args)
}

/// The audit lines of `call` (e.g. `kube.retry`) as "target: reason".
fn audit(report: &Value, call: &str) -> Vec<String> {
    report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["call"] == call)
        .map(|a| {
            format!(
                "{}: {}",
                a["target"].as_str().unwrap_or_default(),
                a["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn server_url(dc: &DevClusterProcess) -> String {
    let text = std::fs::read_to_string(dc.kubeconfig()).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_string()
}

const CONFIG: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
";

#[test]
fn hostile_fault_invalid_specs_are_refused_with_what_to_write() {
    for (spec, expected) in [
        (
            "explode",
            "invalid fault \"explode\": unknown fault kind \"explode\"; write one of status=CODE, delay=DURATION, drop, drop-after, cut-watch, down-after=N",
        ),
        (
            "status=429:verb=fetch",
            "unknown verb \"fetch\"; write verb= with one or more of get, list, watch",
        ),
        ("delay=soon", "delay=\"soon\" is not a duration"),
    ] {
        let run = stepbox_tests::stepbox_run(["dev-cluster", "--fault", spec]);
        assert_eq!(run.code, 2, "{spec}: {}", run.all_output());
        assert!(run.stderr.contains(expected), "{spec}: {}", run.stderr);
    }
}

#[test]
fn hostile_fault_server_down_at_start_fails_fast_naming_the_server() {
    // Every request is dropped: the server accepts connections but never
    // answers, as a dying API server behind a load balancer.
    let dc = DevClusterProcess::start(&["--fault", "down-after=0"]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["backend"], "live");
    let error = report["error"].as_str().unwrap();
    let url = server_url(&dc);
    assert!(
        error.contains(&format!("the cluster at {url} is not usable")),
        "{error}"
    );
    assert!(error.contains("(after 4 attempts)"), "{error}");
    assert!(error.contains("kubectl cluster-info"), "{error}");
    assert_eq!(report["plan"], serde_json::json!([]));
    // The step never started: only the version probe, tried 4 times.
    let log = requests(&dc);
    assert_eq!(log.len(), 4, "{log:#?}");
    assert!(
        log.iter()
            .all(|r| r["path"] == "/version" && r["fault"] == "down" && r["handled"] == false)
    );

    // Nothing listening at all: connection refused, same shape.
    let kubeconfig = std::fs::read_to_string(dc.kubeconfig()).unwrap();
    let dead = dir_with(&[(
        "kubeconfig",
        &kubeconfig.replace(&url, "https://127.0.0.1:9"),
    )]);
    let run = run_json(
        &step("deploy-manifests"),
        &[
            "--kubeconfig",
            dead.path().join("kubeconfig").to_str().unwrap(),
            "--package",
            pkg.path().to_str().unwrap(),
            "--input",
            "image=nginx:1.27",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("the cluster at https://127.0.0.1:9 is not usable")
            && error.contains("connection refused"),
        "{error}"
    );
}

#[test]
fn hostile_fault_server_dropped_mid_run_the_unanswered_write_is_reported_not_repeated() {
    // Two applies are answered, then the server goes away: the third apply
    // (the Service) is sent and never answered.
    let dc = DevClusterProcess::start(&["--fault", "down-after=2:verb=patch"]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains(
            "apply Service web: the connection was closed before the API server answered"
        ),
        "{error}"
    );
    assert!(
        error.contains("the server may or may not have applied it, so it was not repeated: check with `kubectl get services web -n default -o yaml`, then re-run the step"),
        "{error}"
    );
    let plan: Vec<_> = stepbox_tests::plan_of(&report)
        .into_iter()
        .map(|p| (p.0, p.2, p.3))
        .collect();
    assert_eq!(
        plan,
        [
            (
                "created".to_string(),
                "ConfigMap".to_string(),
                "web-config".to_string()
            ),
            ("created".into(), "Deployment".into(), "web".into()),
        ],
        "the report lists what was applied before the server went away"
    );
    assert_eq!(
        audit(&report, "kube.write"),
        ["v1 Service web: outcome unknown: apply Service web was sent once and not repeated"]
    );
    let log = requests(&dc);
    let w = writes(&log);
    assert_eq!(w.len(), 3, "three applies, none repeated: {w:#?}");
    assert_eq!(calls(&log, "patch", "services", "web").len(), 1);
    assert_eq!(w[2]["fault"], "down");
    assert!(
        log.last().unwrap()["verb"] == "patch",
        "nothing after the lost write: {log:#?}"
    );
}

#[test]
fn hostile_fault_slow_reads_time_out_and_are_retried() {
    let dc = DevClusterProcess::start(&[
        "--fault",
        "delay=10s:verb=get,resource=deployments,name=web,times=2",
    ]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &["--request-timeout", "1s"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    let retries = audit(&report, "kube.retry");
    assert_eq!(
        retries,
        [
            "apps/v1 Deployment web: retrying get Deployment web after no answer within 1s, attempt 2 of 4 in 200ms",
            "apps/v1 Deployment web: retrying get Deployment web after no answer within 1s, attempt 3 of 4 in 400ms",
        ]
    );
    let log = requests(&dc);
    assert_eq!(
        calls(&log, "patch", "deployments", "web").len(),
        1,
        "one apply"
    );
}

#[test]
fn hostile_fault_slow_write_times_out_and_is_reported_as_unknown_not_repeated() {
    let dc =
        DevClusterProcess::start(&["--fault", "delay=3s:verb=patch,resource=configmaps,times=1"]);
    let pkg = dir_with(&[("cm.yaml", CONFIG)]);
    let run = deploy(&dc, pkg.path(), &["--request-timeout", "1s"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("timeout: apply ConfigMap settings: the API server at https://127.0.0.1:")
            && error.contains("did not answer within 1s (the request time limit)")
            && error.contains("the server may or may not have applied it, so it was not repeated: check with `kubectl get configmaps settings -n default -o yaml`"),
        "{error}"
    );
    // The server handles the write once its delay is over: the client could
    // not know, and did not send it again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let patches = loop {
        let log = requests(&dc);
        let patches: Vec<Value> = calls(&log, "patch", "configmaps", "settings")
            .into_iter()
            .cloned()
            .collect();
        if patches.iter().any(|p| p["handled"] == true) || Instant::now() > deadline {
            break patches;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(patches.len(), 1, "{patches:#?}");
    assert_eq!(patches[0]["handled"], true);
    let got = dc.kubectl_run([
        "get",
        "configmap",
        "settings",
        "-o",
        "jsonpath={.data.mode}",
    ]);
    assert_eq!(got.stdout, "fast", "{}", got.all_output());
}

#[test]
fn hostile_fault_hung_server_the_runs_time_limit_ends_it() {
    let dc = DevClusterProcess::start(&["--fault", "delay=1h:verb=patch"]);
    let pkg = dir_with(&[("cm.yaml", CONFIG)]);
    let run = deploy(&dc, pkg.path(), &["--timeout", "6s"]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "limit-exceeded");
    assert_eq!(
        report["error"],
        "time limit exceeded: the step ran longer than 6s (raise it with --timeout or limits.timeout in the policy)"
    );
    // The audit says what the step was waiting for when the limit hit.
    assert_eq!(
        audit(&report, "kube.slow"),
        [
            "v1 ConfigMap settings: apply ConfigMap settings: no answer after 2s, still waiting (request time limit 30s)"
        ]
    );
    assert_eq!(report["plan"], serde_json::json!([]));
    let log = requests(&dc);
    assert_eq!(calls(&log, "patch", "configmaps", "settings").len(), 1);
}

#[test]
fn hostile_fault_429_with_retry_after_is_honoured_for_reads_and_writes() {
    let dc = DevClusterProcess::start(&[
        "--fault",
        "status=429:verb=get,resource=deployments,name=web,times=2,retry-after=1",
        "--fault",
        "status=429:verb=patch,resource=configmaps,times=1,retry-after=1",
    ]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(
        audit(&report, "kube.retry"),
        [
            "apps/v1 Deployment web: retrying get Deployment web after 429 TooManyRequests (Retry-After 1s), attempt 2 of 4 in 1s",
            "apps/v1 Deployment web: retrying get Deployment web after 429 TooManyRequests (Retry-After 1s), attempt 3 of 4 in 1s",
            "v1 ConfigMap web-config: retrying apply ConfigMap web-config after 429 TooManyRequests (Retry-After 1s) (the server did not handle it, so repeating it cannot apply it twice), attempt 2 of 4 in 1s",
        ]
    );
    let log = requests(&dc);
    let cm = calls(&log, "patch", "configmaps", "web-config");
    assert_eq!(cm.len(), 2, "refused once, then sent again: {cm:#?}");
    assert_eq!(
        (cm[0]["status"].as_u64(), cm[0]["handled"].as_bool()),
        (Some(429), Some(false))
    );
    assert_eq!(
        (cm[1]["status"].as_u64(), cm[1]["handled"].as_bool()),
        (Some(201), Some(true))
    );
    let handled_writes = writes(&log).iter().filter(|w| w["handled"] == true).count();
    assert_eq!(handled_writes, 5, "each of the five objects written once");
    let got = dc.kubectl_run([
        "get",
        "configmap",
        "web-config",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert_eq!(got.stdout, "stepbox", "{}", got.all_output());
}

#[test]
fn hostile_fault_500s_reads_are_retried_writes_are_not() {
    // Reads: two 500s, then an answer.
    let dc = DevClusterProcess::start(&[
        "--fault",
        "status=500:verb=get,resource=deployments,name=web,times=2",
    ]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(
        audit(&run.report(), "kube.retry"),
        [
            "apps/v1 Deployment web: retrying get Deployment web after 500 InternalError, attempt 2 of 4 in 200ms",
            "apps/v1 Deployment web: retrying get Deployment web after 500 InternalError, attempt 3 of 4 in 400ms",
        ]
    );

    // Reads that keep failing give up after 4 attempts.
    let dc = DevClusterProcess::start(&["--fault", "status=503:verb=get,resource=configmaps"]);
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("unavailable: get ConfigMap web-config: injected fault: 503 ServiceUnavailable (503 ServiceUnavailable) (after 4 attempts)"),
        "{error}"
    );
    let log = requests(&dc);
    // 4 attempts when the apply checks whether it exists, 4 more when it
    // reads the object before writing it.
    assert_eq!(calls(&log, "get", "configmaps", "web-config").len(), 8);
    assert_eq!(writes(&log).len(), 0, "nothing written when the reads fail");

    // A write answered with 500 may have been applied: not repeated.
    let dc = DevClusterProcess::start(&[
        "--fault",
        "status=500:verb=patch,resource=deployments,name=web",
    ]);
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("apply Deployment web: injected fault: 500 InternalError (500 InternalError); the server may or may not have applied it, so it was not repeated: check with `kubectl get deployments.apps web -n default -o yaml`"),
        "{error}"
    );
    let log = requests(&dc);
    assert_eq!(calls(&log, "patch", "deployments", "web").len(), 1);
    let got = dc.kubectl_run(["get", "deployment", "web", "-o", "name"]);
    assert!(
        got.stderr.contains("NotFound"),
        "the fault refused it: {}",
        got.all_output()
    );
}

#[test]
fn hostile_fault_409_conflict_reaches_the_step_as_conflict() {
    let dc = DevClusterProcess::start(&[
        "--fault",
        "status=409:verb=patch,resource=configmaps,name=settings",
    ]);
    let pkg = dir_with(&[("cm.yaml", CONFIG)]);
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.starts_with("conflict: apply ConfigMap settings: Operation cannot be fulfilled on configmaps \"settings\": the object has been modified"),
        "{error}"
    );
    assert!(error.contains("re-run the step"), "{error}");
    assert!(
        !error.contains("may or may not"),
        "a 409 is a clear answer: {error}"
    );
    let log = requests(&dc);
    assert_eq!(
        calls(&log, "patch", "configmaps", "settings").len(),
        1,
        "not repeated"
    );
    let got = dc.kubectl_run(["get", "configmap", "settings", "-o", "name"]);
    assert!(got.stderr.contains("NotFound"), "{}", got.all_output());
}

const SUSPENDED_JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  suspend: true
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: busybox
";

#[test]
fn hostile_fault_cut_watches_are_re_established_and_the_wait_finishes() {
    // The first two watches are cut a second after they start.
    let dc = DevClusterProcess::start(&["--fault", "cut-watch:after=1s,times=2"]);
    let pkg = dir_with(&[("job.yaml", SUSPENDED_JOB)]);
    let step_run = {
        let kubeconfig = dc.kubeconfig().to_path_buf();
        let pkg = pkg.path().to_path_buf();
        std::thread::spawn(move || {
            run_json(
                &step("deploy-manifests"),
                &[
                    "--kubeconfig",
                    kubeconfig.to_str().unwrap(),
                    "--package",
                    pkg.to_str().unwrap(),
                    "--input",
                    "timeout=120",
                ],
            )
        })
    };
    // Once a third watch is open (the two cut ones re-established), the
    // Job is resumed; the wait sees it complete.
    let deadline = Instant::now() + Duration::from_secs(120);
    let watches = loop {
        let log = requests(&dc);
        let watches: Vec<Value> = log
            .iter()
            .filter(|r| r["verb"] == "watch")
            .cloned()
            .collect();
        if watches.len() >= 3 {
            break watches;
        }
        assert!(Instant::now() < deadline, "no third watch: {log:#?}");
        assert!(
            !step_run.is_finished(),
            "the step ended early: {:?}",
            step_run.join().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let resume = dc.kubectl_run([
        "patch",
        "job",
        "migrate",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    assert_eq!(resume.code, 0, "{}", resume.all_output());
    let run = step_run.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    let cut = audit(&report, "kube.watch");
    assert_eq!(cut.len(), 2, "{cut:#?}");
    for line in &cut {
        assert!(
            line.starts_with(
                "batch/v1 Job migrate: the watch of Job migrate from resourceVersion "
            ) && line.contains("reading it again"),
            "{line}"
        );
    }
    // Each watch starts from the resourceVersion last read, none from scratch.
    assert_eq!(watches[0]["fault"], "cut-watch:after=1s,times=2");
    assert_eq!(watches[1]["fault"], "cut-watch:after=1s,times=2");
    assert!(watches[2]["fault"].is_null());
    for w in &watches {
        let path = w["path"].as_str().unwrap();
        let from: u64 = path
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("resourceVersion="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no resourceVersion in {path}"));
        assert!(from > 0, "{path}");
        assert!(
            path.contains("fieldSelector=metadata.name%3Dmigrate"),
            "{path}"
        );
    }
    let log = requests(&dc);
    let applies: Vec<_> = calls(&log, "patch", "jobs", "migrate")
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().contains("fieldManager=stepbox"))
        .collect();
    assert_eq!(applies.len(), 1, "the Job was applied once: {applies:#?}");
}

#[test]
fn hostile_fault_dropped_connections_reads_are_retried() {
    let dc = DevClusterProcess::start(&[
        "--fault",
        "drop:verb=get,resource=deployments,name=web,times=2",
    ]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let retries = audit(&run.report(), "kube.retry");
    assert_eq!(retries.len(), 2, "{retries:#?}");
    for (line, attempt) in retries
        .iter()
        .zip(["attempt 2 of 4 in 200ms", "attempt 3 of 4 in 400ms"])
    {
        assert!(
            line.starts_with(
                "apps/v1 Deployment web: retrying get Deployment web after a connection failure"
            ) && line.ends_with(attempt),
            "{line}"
        );
    }
    let log = requests(&dc);
    let gets = calls(&log, "get", "deployments", "web");
    assert_eq!(
        gets[0]["fault"],
        "drop:verb=get,resource=deployments,name=web,times=2"
    );
    assert_eq!(gets[0]["handled"], false);
    assert_eq!(
        calls(&log, "patch", "deployments", "web").len(),
        1,
        "applied once"
    );
}

#[test]
fn hostile_fault_write_applied_but_unanswered_is_not_repeated() {
    // The server applies the Deployment, then drops the connection before
    // answering: the client cannot know it was applied.
    let dc = DevClusterProcess::start(&[
        "--fault",
        "drop-after:verb=patch,resource=deployments,name=web,times=1",
    ]);
    let pkg = example_manifests("nginx:1.27");
    let run = deploy(&dc, pkg.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    let error = report["error"].as_str().unwrap();
    assert!(
        error.starts_with("unavailable: apply Deployment web: the connection was closed before the API server answered (https://127.0.0.1:")
            && error.ends_with("the server may or may not have applied it, so it was not repeated: check with `kubectl get deployments.apps web -n default -o yaml`, then re-run the step"),
        "{error}"
    );
    let log = requests(&dc);
    let patches = calls(&log, "patch", "deployments", "web");
    assert_eq!(patches.len(), 1, "sent once: {patches:#?}");
    assert_eq!(patches[0]["handled"], true);
    assert!(patches[0]["status"].is_null(), "no answer was sent");
    assert_eq!(
        writes(&log).len(),
        2,
        "the ConfigMap, then the Deployment; nothing after"
    );
    // It was applied after all: kubectl shows it, as the error says to check.
    let got = dc.kubectl_run([
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(got.stdout, "nginx:1.27", "{}", got.all_output());
}
