//! Limits end a run with a clear result naming the limit, and the host
//! carries on: the next run in the same host process succeeds.

use std::sync::Arc;
use std::time::Duration;

use stepbox::cluster::MemoryCluster;
use stepbox::policy::Policy;
use stepbox::report::Status;
use stepbox::target::Target;
use stepbox::{RunOptions, Runtime, RuntimeConfig};
use stepbox_tests::{dir_with, guest, run_json};

fn options(timeout: Duration, memory: u64) -> RunOptions {
    let policy = Policy::default();
    let mut limits = policy.limits;
    limits.timeout = timeout;
    limits.memory_bytes = memory;
    RunOptions::new(
        "limits",
        Target::backend(Arc::new(MemoryCluster::new()), true),
    )
    .policy(policy)
    .limits(limits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_and_memory_limits_end_the_run_and_the_host_carries_on() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let spin = runtime.load_file(&guest("spin")).unwrap();
    let alloc = runtime.load_file(&guest("alloc")).unwrap();
    let hello = runtime.load_file(&guest("hello")).unwrap();

    let report = runtime
        .run(&spin, options(Duration::from_millis(500), 64 << 20))
        .await;
    assert_eq!(report.status, Status::LimitExceeded);
    assert!(
        report.error.as_deref().unwrap().contains("time limit"),
        "{:?}",
        report.error
    );
    let after = runtime
        .run(&hello, options(Duration::from_secs(30), 64 << 20))
        .await;
    assert_eq!(after.status, Status::Succeeded, "{:?}", after.error);

    let report = runtime
        .run(&alloc, options(Duration::from_secs(60), 32 << 20))
        .await;
    assert_eq!(report.status, Status::LimitExceeded);
    assert!(
        report.error.as_deref().unwrap().contains("memory limit"),
        "{:?}",
        report.error
    );
    let after = runtime
        .run(&hello, options(Duration::from_secs(30), 64 << 20))
        .await;
    assert_eq!(after.status, Status::Succeeded, "{:?}", after.error);
    assert!(after.outputs.contains_key("greeting"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_guest_does_not_starve_a_concurrent_run() {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let spin = runtime.load_file(&guest("spin")).unwrap();
    let hello = runtime.load_file(&guest("hello")).unwrap();
    let spinning = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            runtime
                .run(&spin, options(Duration::from_secs(3), 64 << 20))
                .await
        })
    };
    for _ in 0..5 {
        let r = runtime
            .run(&hello, options(Duration::from_secs(30), 64 << 20))
            .await;
        assert_eq!(r.status, Status::Succeeded);
    }
    assert!(
        !spinning.is_finished(),
        "the spinner is still running while hello runs complete"
    );
    assert_eq!(spinning.await.unwrap().status, Status::LimitExceeded);
}

#[test]
fn cli_timeout_exits_3_naming_the_limit() {
    let run = run_json(&guest("spin"), &["--timeout", "1s"]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "limit-exceeded");
    assert_eq!(report["limit"]["kind"], "time");
    assert!(report["error"].as_str().unwrap().contains("--timeout"));
}

#[test]
fn cli_memory_limit_exits_3_naming_the_limit() {
    let run = run_json(&guest("alloc"), &["--memory", "24Mi"]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "limit-exceeded");
    assert_eq!(report["limit"]["kind"], "memory");
    assert!(report["error"].as_str().unwrap().contains("memory limit"));
}

fn policy_with_limits(limits: &str) -> tempfile::TempDir {
    dir_with(&[(
        "policy.yaml",
        &format!(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\nlimits:\n{limits}"
        ),
    )])
}

#[test]
fn log_flood_hits_the_log_limit() {
    let policy = policy_with_limits("  logBytes: 64Ki\n");
    let run = run_json(
        &guest("log-flood"),
        &[
            "--policy",
            policy.path().join("policy.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["limit"]["kind"], "log-bytes");
    let logged: usize = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().len())
        .sum();
    assert!(
        logged <= 64 * 1024,
        "the log stays within its limit: {logged}"
    );
}

#[test]
fn output_flood_hits_the_output_limit() {
    let policy = policy_with_limits("  outputBytes: 32Ki\n");
    let run = run_json(
        &guest("output-flood"),
        &[
            "--policy",
            policy.path().join("policy.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["limit"]["kind"], "output-bytes");
    assert!(report["error"].as_str().unwrap().contains("output limit"));
}
