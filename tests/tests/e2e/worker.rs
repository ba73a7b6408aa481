//! `stepbox worker` end to end: the real binary as a StepRun controller
//! against `stepbox dev-cluster`, steps pulled by digest from a real
//! registry (Debian's docker-registry), StepRuns applied with the real
//! kubectl, `stepbox submit --follow` and `stepbox logs`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use stepbox_tests::registry::{Mode, Registry};
use stepbox_tests::worker::{WorkerProcess, policies_dir};
use stepbox_tests::{DevClusterProcess, Invocation, guest, repo_root, stepbox};

pub const NS: &str = "shop";

/// A dev cluster with the StepRun CRD, a registry holding test guests, and
/// the worker's policies.
pub struct Env {
    pub cluster: DevClusterProcess,
    pub registry: Registry,
    pub policies: tempfile::TempDir,
    pins: std::collections::BTreeMap<String, String>,
}

/// A policy whose memory limit is small (the alloc guest hits it).
const TIGHT: &str = "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\nlimits: {memory: 16Mi, timeout: 1m}\n";

impl Env {
    /// The cluster, the CRD, and `guests` pushed.
    pub fn new(guests: &[&str], cluster_args: &[&str]) -> Self {
        let mut args = vec!["-n", NS];
        args.extend_from_slice(cluster_args);
        let cluster = DevClusterProcess::start(&args);
        let crd = repo_root().join("deploy/crds/stepruns.stepbox.dev.yaml");
        ok(
            &cluster.kubectl_run([Path::new("apply"), Path::new("-f"), &crd]),
            "kubectl apply the CRD",
        );
        ok(
            &cluster.kubectl_run([
                "wait",
                "--for",
                "condition=established",
                "crd/stepruns.stepbox.dev",
                "--timeout",
                "30s",
            ]),
            "kubectl wait for the CRD",
        );
        let registry = Registry::start(Mode::Plain);
        let mut me = Self {
            cluster,
            registry,
            policies: policies_dir(&[("tight", TIGHT)]),
            pins: Default::default(),
        };
        for g in guests {
            let pinned = me.push(&guest(g), &format!("steps/{g}:1"), false);
            me.pins.insert((*g).to_string(), pinned);
        }
        me
    }

    /// `stepbox push` of `source` to `path` in the registry: the pinned reference.
    pub fn push(&self, source: &Path, path: &str, package: bool) -> String {
        let mut c = stepbox();
        c.arg("push");
        if package {
            c.arg("--package");
        }
        let out = Invocation::from(
            c.arg(source)
                .arg(self.registry.reference(path))
                .output()
                .expect("stepbox push"),
        );
        assert_eq!(out.code, 0, "push {path}: {}", out.all_output());
        out.last_line()
    }

    /// The pinned reference of a pushed guest.
    pub fn pin(&self, guest: &str) -> &str {
        &self.pins[guest]
    }

    /// A worker named `name` with `args`.
    pub fn worker(&self, name: &str, args: &[&str]) -> WorkerProcess {
        WorkerProcess::start(
            self.cluster.kubeconfig(),
            NS,
            self.policies.path(),
            name,
            args,
        )
    }

    /// `kubectl apply` of `yaml`.
    pub fn apply(&self, yaml: &str) {
        let file = self.cluster.dir().join(format!("apply-{}.yaml", uuid()));
        std::fs::write(&file, yaml).unwrap();
        let out = self
            .cluster
            .kubectl_run([Path::new("apply"), Path::new("-f"), &file]);
        ok(&out, "kubectl apply");
    }

    /// `kubectl get steprun NAME -o json`, if it exists.
    pub fn get(&self, name: &str) -> Option<Value> {
        let out = self
            .cluster
            .kubectl_run(["get", "steprun", name, "-n", NS, "-o", "json"]);
        (out.code == 0).then(|| serde_json::from_str(&out.stdout).unwrap())
    }

    /// Waits (at most `limit`) until StepRun `name` satisfies `what`.
    pub fn wait(
        &self,
        name: &str,
        limit: Duration,
        workers: &[&WorkerProcess],
        what: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = self.get(name)
                && what(&v)
            {
                return v;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = workers
                    .iter()
                    .map(|w| format!("--- {}:\n{}", w.name(), w.stderr()))
                    .collect();
                panic!(
                    "StepRun {name} did not get there within {limit:?}: {}\n{}",
                    serde_json::to_string_pretty(&self.get(name)).unwrap(),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `name` is Running.
    pub fn running(&self, name: &str, workers: &[&WorkerProcess]) -> Value {
        self.wait(name, Duration::from_secs(30), workers, |v| {
            phase(v) == "Running"
        })
    }

    /// Waits until `name` finished (Succeeded or Failed).
    pub fn finished(&self, name: &str, workers: &[&WorkerProcess]) -> Value {
        self.wait(name, Duration::from_secs(60), workers, |v| {
            matches!(phase(v), "Succeeded" | "Failed")
        })
    }
}

fn uuid() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}
static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn ok(run: &Invocation, what: &str) {
    assert_eq!(run.code, 0, "{what} failed:\n{}", run.all_output());
}

/// A StepRun manifest: `spec` is extra YAML lines of the spec (indented 2).
pub fn steprun(name: &str, step: &str, spec: &str) -> String {
    format!(
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepRun\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  step: {step}\n{spec}"
    )
}

pub fn phase(v: &Value) -> &str {
    v["status"]["phase"].as_str().unwrap_or("")
}

pub fn reason(v: &Value) -> &str {
    v["status"]["conditions"][0]["reason"]
        .as_str()
        .unwrap_or("")
}

fn events(env: &Env, name: &str) -> Vec<(String, String)> {
    let out = env.cluster.kubectl_run([
        "get",
        "events",
        "-n",
        NS,
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "json",
    ]);
    ok(&out, "kubectl get events");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn stepbox_in(env: &Env, args: &[&str]) -> Invocation {
    Invocation::from(
        stepbox()
            .args(args)
            .arg("--kubeconfig")
            .arg(env.cluster.kubeconfig())
            .args(["-n", NS])
            .output()
            .expect("run stepbox"),
    )
}

#[test]
fn a_steprun_applied_with_kubectl_runs_a_step_pulled_by_digest_and_reports_in_status() {
    let env = Env::new(&[], &[]);
    let step = env.push(
        &repo_root().join("steps/deploy-manifests"),
        "steps/deploy:1",
        false,
    );
    let package = env.push(
        &repo_root().join("steps/deploy-manifests/example"),
        "pkgs/shop:1",
        true,
    );
    let worker = env.worker("worker-a", &[]);
    env.apply(&steprun(
        "deploy-1",
        &step,
        &format!("  package: {package}\n  inputs: {{image: \"nginx:1.27\"}}\n"),
    ));
    let done = env.finished("deploy-1", &[&worker]);
    assert_eq!(phase(&done), "Succeeded", "{done:#}");
    assert_eq!(reason(&done), "Succeeded");
    let status = &done["status"];
    assert_eq!(status["attempt"], 1);
    assert_eq!(status["stepDigest"], step.split('@').nth(1).unwrap());
    assert!(
        status["outputs"].as_object().is_some_and(|o| !o.is_empty()),
        "{status:#}"
    );
    assert!(
        status["plan"]["created"].as_u64().unwrap() >= 4,
        "{status:#}"
    );
    assert_eq!(status["worker"]["name"], "worker-a");
    assert!(
        done["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{done:#}"
    );

    // The step's objects are in the namespace, made with the worker's credentials.
    ok(
        &env.cluster
            .kubectl_run(["get", "deployment", "web", "-n", NS]),
        "the Deployment exists",
    );

    // kubectl shows the CRD's columns; describe shows the Events.
    let table = env.cluster.kubectl_run(["get", "stepruns", "-n", NS]);
    ok(&table, "kubectl get stepruns");
    let header = table.stdout.lines().next().unwrap_or_default();
    for col in ["NAME", "PHASE", "REASON", "ATTEMPT", "AGE"] {
        assert!(header.contains(col), "{}", table.stdout);
    }
    assert!(
        table.stdout.contains("deploy-1") && table.stdout.contains("Succeeded"),
        "{}",
        table.stdout
    );
    let reasons: Vec<String> = events(&env, "deploy-1")
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert!(
        reasons.contains(&"Claimed".to_string()) && reasons.contains(&"Succeeded".to_string()),
        "{reasons:?}"
    );
    let described = env
        .cluster
        .kubectl_run(["describe", "steprun", "deploy-1", "-n", NS]);
    ok(&described, "kubectl describe");
    assert!(described.stdout.contains("Claimed"), "{}", described.stdout);

    // The log and the report, with stepbox logs.
    let logs = stepbox_in(&env, &["logs", "deploy-1"]);
    ok(&logs, "stepbox logs");
    assert!(
        logs.stdout.contains("deployment.apps/web"),
        "{}",
        logs.stdout
    );
    let report = stepbox_in(&env, &["logs", "deploy-1", "--report"]);
    ok(&report, "stepbox logs --report");
    let report: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["sources"]["step"]["reference"], step);
    assert_eq!(report["sources"]["package"]["reference"], package);

    // The report ConfigMap is owned by the StepRun: deleting it takes both.
    ok(
        &env.cluster
            .kubectl_run(["delete", "steprun", "deploy-1", "-n", NS, "--wait=true"]),
        "kubectl delete",
    );
    let cm = env
        .cluster
        .kubectl_run(["get", "configmap", "deploy-1-report", "-n", NS]);
    assert_ne!(cm.code, 0, "the report ConfigMap outlived its StepRun");

    assert_eq!(
        worker.metric("stepbox_worker_runs_total{result=\"Succeeded\"}"),
        1.0
    );
    assert_eq!(worker.get("/healthz").0, 200);
    assert_eq!(worker.get("/readyz").0, 200);
}

#[test]
fn each_way_a_run_can_end_has_its_reason_and_submit_follow_its_exit_code() {
    let env = Env::new(&["hello", "fail", "spin", "alloc"], &[]);
    let worker = env.worker("worker-a", &[]);
    let hello = env.pin("hello").to_string();
    let tag = env.registry.reference("steps/hello:1");
    let wrong = format!(
        "{}@sha256:{}",
        env.registry.reference("steps/hello"),
        "0".repeat(64)
    );
    let cases: Vec<(&str, Vec<String>, &str, u8)> = vec![
        ("ok", vec![hello.clone()], "Succeeded", 0),
        ("fails", vec![env.pin("fail").into()], "StepFailed", 1),
        (
            "spins",
            vec![env.pin("spin").into(), "--timeout".into(), "1s".into()],
            "TimedOut",
            3,
        ),
        (
            "allocates",
            vec![env.pin("alloc").into(), "--policy".into(), "tight".into()],
            "LimitExceeded",
            3,
        ),
        (
            "no-policy",
            vec![hello.clone(), "--policy".into(), "admin".into()],
            "Invalid",
            2,
        ),
        (
            "no-secret",
            vec![
                hello.clone(),
                "--secret-ref".into(),
                "token=missing/token".into(),
            ],
            "Invalid",
            2,
        ),
        ("by-tag", vec![tag], "Invalid", 2),
        ("not-pushed", vec![wrong], "PullFailed", 2),
    ];
    for (name, args, want, code) in cases {
        let mut all = vec![
            "submit".to_string(),
            "--name".into(),
            name.into(),
            "--follow".into(),
        ];
        all.extend(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = stepbox_in(&env, &all);
        assert_eq!(
            out.code,
            i32::from(code),
            "{name}: {}\n{}",
            out.all_output(),
            worker.stderr()
        );
        let v = env.get(name).unwrap();
        assert_eq!(reason(&v), want, "{name}: {v:#}");
        assert!(out.stderr.contains(want), "{name}: {}", out.stderr);
        if want != "Succeeded" {
            assert!(
                v["status"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{name}: {v:#}"
            );
        }
    }
    let v = env.get("ok").unwrap();
    assert_eq!(
        v["status"]["outputs"]["greeting"],
        "hello from hello in shop"
    );
    let v = env.get("no-policy").unwrap();
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .contains("\"admin\""),
        "{v:#}"
    );
    let v = env.get("no-secret").unwrap();
    assert!(
        v["status"]["message"].as_str().unwrap().contains("missing"),
        "{v:#}"
    );
    assert_eq!(
        worker.metric("stepbox_worker_runs_total{result=\"TimedOut\"}"),
        1.0
    );
}

#[test]
fn secrets_come_from_secret_references_and_never_reach_status_or_the_report() {
    let env = Env::new(&["secret-echo"], &[]);
    ok(
        &env.cluster.kubectl_run([
            "create",
            "secret",
            "generic",
            "deploy-token",
            "-n",
            NS,
            "--from-literal=token=s3cr3t-value-42",
        ]),
        "kubectl create secret",
    );
    let worker = env.worker("worker-a", &[]);
    let out = stepbox_in(
        &env,
        &[
            "submit",
            env.pin("secret-echo"),
            "--name",
            "echo",
            "--secret-ref",
            "token=deploy-token/token",
            "--follow",
        ],
    );
    // The guest fails on purpose, with the secret in its error.
    assert_eq!(out.code, 1, "{}\n{}", out.all_output(), worker.stderr());
    assert!(!out.all_output().contains("s3cr3t-value-42"));
    assert!(out.stderr.contains("StepFailed"), "{}", out.stderr);
    let v = env.get("echo").unwrap();
    assert!(!v.to_string().contains("s3cr3t-value-42"), "{v:#}");
    let report = stepbox_in(&env, &["logs", "echo", "--report"]);
    ok(&report, "stepbox logs --report");
    assert!(!report.stdout.contains("s3cr3t-value-42"));
    let cm = env
        .cluster
        .kubectl_run(["get", "configmap", "echo-report", "-n", NS, "-o", "yaml"]);
    assert!(!cm.stdout.contains("s3cr3t-value-42"));
    let ev = env
        .cluster
        .kubectl_run(["get", "events", "-n", NS, "-o", "yaml"]);
    assert!(!ev.stdout.contains("s3cr3t-value-42"));
    assert!(!worker.stderr().contains("s3cr3t-value-42"));
}

#[test]
fn cancel_and_delete_stop_a_running_step() {
    let env = Env::new(&["sleep"], &[]);
    let worker = env.worker("worker-a", &[]);
    let sleep = env.pin("sleep").to_string();
    env.apply(&steprun(
        "cancel-me",
        &sleep,
        "  inputs: {ms: \"600000\"}\n",
    ));
    env.running("cancel-me", &[&worker]);
    ok(
        &env.cluster.kubectl_run([
            "patch",
            "steprun",
            "cancel-me",
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"cancel":true}}"#,
        ]),
        "kubectl patch spec.cancel",
    );
    let v = env.finished("cancel-me", &[&worker]);
    assert_eq!(reason(&v), "Cancelled", "{v:#}");

    // Cancelled before any worker took it.
    env.apply(&steprun("never", &sleep, "  cancel: true\n"));
    let v = env.finished("never", &[&worker]);
    assert_eq!(reason(&v), "Cancelled", "{v:#}");
    assert_eq!(v["status"]["attempt"].as_u64().unwrap_or(0), 0);

    // Deleted while running: the guest stops, the finalizer goes, the StepRun goes.
    env.apply(&steprun(
        "delete-me",
        &sleep,
        "  inputs: {ms: \"600000\"}\n",
    ));
    env.running("delete-me", &[&worker]);
    let deleted =
        env.cluster
            .kubectl_run(["delete", "steprun", "delete-me", "-n", NS, "--timeout=30s"]);
    ok(&deleted, "kubectl delete a running StepRun");
    assert!(env.get("delete-me").is_none());
    let deadline = Instant::now() + Duration::from_secs(30);
    while worker.metric("stepbox_worker_runs_total{result=\"Cancelled\"}") < 3.0 {
        assert!(Instant::now() < deadline, "{}", worker.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(worker.metric("stepbox_worker_running"), 0.0);
}

#[test]
fn two_workers_run_fifty_stepruns_each_exactly_once() {
    let env = Env::new(&["hello"], &[]);
    let a = env.worker("worker-a", &["--max-concurrent-runs", "4"]);
    let b = env.worker("worker-b", &["--max-concurrent-runs", "4"]);
    let hello = env.pin("hello").to_string();
    let all: Vec<String> = (0..50)
        .map(|i| steprun(&format!("run-{i}"), &hello, ""))
        .collect();
    env.apply(&all.join("---\n"));
    for i in 0..50 {
        let v = env.finished(&format!("run-{i}"), &[&a, &b]);
        assert_eq!(phase(&v), "Succeeded", "{v:#}");
        assert_eq!(v["status"]["attempt"], 1, "{v:#}");
        let claims = events(&env, &format!("run-{i}"))
            .into_iter()
            .filter(|(r, _)| r == "Claimed")
            .count();
        assert_eq!(claims, 1, "run-{i} was claimed {claims} times");
    }
    let ran = |w: &WorkerProcess| w.metric("stepbox_worker_runs_total{result=\"Succeeded\"}");
    assert_eq!(ran(&a) + ran(&b), 50.0, "a: {}, b: {}", ran(&a), ran(&b));
}

#[test]
fn a_killed_workers_run_is_recovered_as_worker_lost_and_retried() {
    let env = Env::new(&["sleep"], &[]);
    let timing = ["--heartbeat", "200ms", "--lost-after", "1s"];
    let mut a = env.worker("worker-a", &timing);
    env.apply(&steprun(
        "survive",
        env.pin("sleep"),
        "  inputs: {ms: \"1500\"}\n  retries: 1\n",
    ));
    env.running("survive", &[&a]);
    a.kill();
    let b = env.worker("worker-b", &timing);
    let v = env.finished("survive", &[&a, &b]);
    assert_eq!(phase(&v), "Succeeded", "{v:#}");
    assert_eq!(v["status"]["attempt"], 2);
    assert_eq!(v["status"]["worker"]["name"], "worker-b");
    let ev = events(&env, "survive");
    assert!(
        ev.iter()
            .any(|(r, m)| r == "WorkerLost" && m.contains("worker-a")),
        "{ev:?}"
    );
    assert_eq!(b.metric("stepbox_worker_recoveries_total"), 1.0);

    // Without retries, a lost run fails as WorkerLost.
    drop(b);
    let mut c = env.worker("worker-c", &timing);
    env.apply(&steprun(
        "no-retry",
        env.pin("sleep"),
        "  inputs: {ms: \"600000\"}\n",
    ));
    env.running("no-retry", &[&c]);
    c.kill();
    let d = env.worker("worker-d", &timing);
    let v = env.finished("no-retry", &[&c, &d]);
    assert_eq!(reason(&v), "WorkerLost", "{v:#}");
    assert_eq!(phase(&v), "Failed");
}

#[test]
fn a_restarted_pod_recovers_its_own_runs_at_once() {
    let env = Env::new(&["sleep"], &[]);
    // A lost-after so long that only the restart can explain the recovery.
    let timing = ["--heartbeat", "1s", "--lost-after", "10m"];
    let a = env.worker("pod-0", &timing);
    env.apply(&steprun(
        "restart",
        env.pin("sleep"),
        "  inputs: {ms: \"1000\"}\n  retries: 1\n",
    ));
    env.running("restart", &[&a]);
    let a = WorkerProcess::restart(
        a,
        env.cluster.kubeconfig(),
        NS,
        env.policies.path(),
        &timing,
    );
    let v = env.finished("restart", &[&a]);
    assert_eq!(phase(&v), "Succeeded", "{v:#}");
    assert_eq!(v["status"]["attempt"], 2);
    let ev = events(&env, "restart");
    assert!(
        ev.iter()
            .any(|(r, m)| r == "WorkerLost" && m.contains("restarted")),
        "{ev:?}"
    );
}

#[test]
fn sigterm_drains_and_a_drain_that_times_out_hands_runs_back() {
    let env = Env::new(&["sleep"], &[]);
    let mut a = env.worker("worker-a", &[]);
    env.apply(&steprun(
        "drained",
        env.pin("sleep"),
        "  inputs: {ms: \"1500\"}\n",
    ));
    env.running("drained", &[&a]);
    assert_eq!(
        a.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        a.stderr()
    );
    let v = env.get("drained").unwrap();
    assert_eq!(
        phase(&v),
        "Succeeded",
        "the run in flight finished before the worker left: {v:#}"
    );

    let mut b = env.worker("worker-b", &["--drain-timeout", "300ms"]);
    env.apply(&steprun(
        "handed-back",
        env.pin("sleep"),
        "  inputs: {ms: \"600000\"}\n  retries: 1\n",
    ));
    env.running("handed-back", &[&b]);
    assert_eq!(
        b.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        b.stderr()
    );
    let v = env.get("handed-back").unwrap();
    assert_eq!(phase(&v), "Pending", "{v:#}");
    assert_eq!(reason(&v), "WorkerLost");
    assert!(
        v["status"]["message"].as_str().unwrap().contains("drain"),
        "{v:#}"
    );
}

#[test]
fn finished_stepruns_go_after_their_ttl() {
    let env = Env::new(&["hello"], &[]);
    let worker = env.worker("worker-a", &[]);
    env.apply(&steprun(
        "short-lived",
        env.pin("hello"),
        "  ttlSecondsAfterFinished: 1\n",
    ));
    env.apply(&steprun("kept", env.pin("hello"), ""));
    env.finished("kept", &[&worker]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.get("short-lived").is_some() {
        assert!(
            Instant::now() < deadline,
            "not deleted after its TTL:\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(env.get("kept").is_some());
    let cm = env
        .cluster
        .kubectl_run(["get", "configmap", "short-lived-report", "-n", NS]);
    assert_ne!(cm.code, 0, "the report ConfigMap outlived its StepRun");
}

#[test]
fn the_worker_keeps_its_caches_under_the_budget_and_pulls_again_what_went() {
    let env = Env::new(&["hello"], &[]);
    // One byte: whatever no run uses goes once the run ends.
    let worker = env.worker("worker-a", &["--cache-max-size", "1"]);
    env.apply(&steprun("first", env.pin("hello"), ""));
    assert_eq!(phase(&env.finished("first", &[&worker])), "Succeeded");
    let evicted = "stepbox_worker_cache_evictions_total{cache=\"blob\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    while worker.metric(evicted) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the blob cache was not collected:\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(worker.metric("stepbox_worker_cache_freed_bytes_total{cache=\"blob\"}") > 0.0);
    // The step went from disk: the next run pulls it again.
    env.apply(&steprun("second", env.pin("hello"), ""));
    assert_eq!(phase(&env.finished("second", &[&worker])), "Succeeded");
    // The worker collects its own cache; another process may not.
    let prune = stepbox()
        .args(["cache", "prune", "--max-size", "0", "--oci-cache"])
        .arg(worker.oci_cache())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&prune.stderr);
    assert!(!prune.status.success(), "{text}");
    assert!(text.contains("in use by another stepbox process"), "{text}");
}

#[test]
fn runs_finish_through_api_faults() {
    // The claim's status write fails twice, the watch is cut twice, and a
    // heartbeat is refused once with 503: each run still runs exactly once.
    let env = Env::new(
        &["hello", "sleep"],
        &[
            "--fault",
            "status=500:verb=update,resource=stepruns,times=2",
            "--fault",
            "cut-watch:resource=stepruns,after-events=1,times=2",
            "--fault",
            "status=503:verb=patch,resource=stepruns,times=1",
        ],
    );
    let worker = env.worker("worker-a", &["--heartbeat", "200ms", "--lost-after", "5s"]);
    env.apply(&steprun("through-faults", env.pin("hello"), ""));
    env.apply(&steprun(
        "slow-through-faults",
        env.pin("sleep"),
        "  inputs: {ms: \"1000\"}\n",
    ));
    for name in ["through-faults", "slow-through-faults"] {
        let v = env.finished(name, &[&worker]);
        assert_eq!(phase(&v), "Succeeded", "{v:#}\n{}", worker.stderr());
        assert_eq!(v["status"]["attempt"], 1, "{v:#}");
    }
    let log = env.cluster.stderr();
    assert!(
        log.matches("fault").count() >= 3,
        "the faults did not fire:\n{log}"
    );
}

/// A kubeconfig like `admin`'s whose user is `token` (a service account's).
fn kubeconfig_with_token(admin: &Path, token: &str, out: &Path) {
    let text = std::fs::read_to_string(admin).unwrap();
    let mut v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let users = v["users"].as_sequence_mut().unwrap();
    for u in users.iter_mut() {
        let user = u["user"].as_mapping_mut().unwrap();
        user.clear();
        user.insert("token".into(), token.into());
    }
    std::fs::write(out, serde_yaml_ng::to_string(&v).unwrap()).unwrap();
}

#[test]
fn the_chart_installs_and_its_role_is_all_a_worker_needs() {
    let env = Env::new(&[], &[]);
    let step = env.push(
        &repo_root().join("steps/deploy-manifests"),
        "steps/deploy:1",
        false,
    );
    let package = env.push(
        &repo_root().join("steps/deploy-manifests/example"),
        "pkgs/shop:1",
        true,
    );
    let helm = Invocation::from(
        std::process::Command::new(stepbox_tests::helm_bin())
            .env("HOME", env.cluster.dir())
            .args(["install", "stepbox-worker"])
            .arg(repo_root().join("charts/stepbox-worker"))
            .args(["-n", NS, "--kubeconfig"])
            .arg(env.cluster.kubeconfig())
            .output()
            .expect("run helm"),
    );
    ok(&helm, "helm install");
    for kind in [
        "serviceaccount",
        "role",
        "rolebinding",
        "configmap",
        "deployment",
        "service",
        "poddisruptionbudget",
    ] {
        let out = env.cluster.kubectl_run([
            "get",
            kind,
            "-n",
            NS,
            "-l",
            "app.kubernetes.io/instance=stepbox-worker",
            "-o",
            "name",
        ]);
        ok(&out, "kubectl get");
        assert!(!out.stdout.trim().is_empty(), "the chart made no {kind}");
    }
    let cluster_roles =
        env.cluster
            .kubectl_run(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    assert!(
        !cluster_roles.stdout.contains("stepbox"),
        "{}",
        cluster_roles.stdout
    );

    // The worker as the chart's pods run it: the chart's policies, the
    // chart's service account token.
    let cm = env.cluster.kubectl_run([
        "get",
        "configmap",
        "stepbox-worker-policies",
        "-n",
        NS,
        "-o",
        "json",
    ]);
    ok(&cm, "kubectl get the policies ConfigMap");
    let cm: Value = serde_json::from_str(&cm.stdout).unwrap();
    let policies = tempfile::tempdir().unwrap();
    for (file, text) in cm["data"].as_object().unwrap() {
        std::fs::write(policies.path().join(file), text.as_str().unwrap()).unwrap();
    }
    let token = env
        .cluster
        .kubectl_run(["create", "token", "stepbox-worker", "-n", NS]);
    ok(&token, "kubectl create token");
    let sa_kubeconfig = env.cluster.dir().join("sa.kubeconfig");
    kubeconfig_with_token(
        env.cluster.kubeconfig(),
        token.stdout.trim(),
        &sa_kubeconfig,
    );

    // Kubernetes RBAC holds: the service account cannot list Secrets or make Roles.
    let denied = Invocation::from(
        std::process::Command::new(stepbox_tests::kubectl_bin())
            .env("HOME", env.cluster.dir())
            .arg("--kubeconfig")
            .arg(&sa_kubeconfig)
            .args(["get", "secrets", "-n", NS])
            .output()
            .unwrap(),
    );
    assert_ne!(denied.code, 0, "{}", denied.all_output());
    assert!(denied.stderr.contains("forbidden"), "{}", denied.stderr);

    let worker = WorkerProcess::start(&sa_kubeconfig, NS, policies.path(), "stepbox-worker-0", &[]);
    env.apply(&steprun(
        "with-the-chart",
        &step,
        &format!("  package: {package}\n  inputs: {{image: \"nginx:1.27\"}}\n"),
    ));
    let v = env.finished("with-the-chart", &[&worker]);
    assert_eq!(phase(&v), "Succeeded", "{v:#}\n{}", worker.stderr());
    assert!(
        v["status"]["outputs"]
            .as_object()
            .is_some_and(|o| !o.is_empty()),
        "{v:#}"
    );
    ok(
        &env.cluster
            .kubectl_run(["get", "deployment", "web", "-n", NS]),
        "the step's Deployment exists",
    );

    // `stepbox worker --print-role` is the chart's Role.
    let printed = Invocation::from(
        stepbox()
            .args(["worker", "--print-role", "-n", NS, "--policies"])
            .arg(policies.path())
            .output()
            .unwrap(),
    );
    ok(&printed, "stepbox worker --print-role");
    let printed: Value = serde_yaml_ng::from_str(&printed.stdout).unwrap();
    let role = env
        .cluster
        .kubectl_run(["get", "role", "stepbox-worker", "-n", NS, "-o", "json"]);
    ok(&role, "kubectl get role");
    let role: Value = serde_json::from_str(&role.stdout).unwrap();
    assert_eq!(role["rules"], printed["rules"]);
}
