//! Resources: CPU, memory, stack, handles, host calls, log, outputs and
//! errors are all bounded; a guest that breaks a bound ends its own run, and
//! the host carries on.

use std::time::{Duration, Instant};

use stepbox::report::Status;
use stepbox_tests::run_json;

use super::{Case, assert_limit, assert_status, hostile_wasm, policy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_infinite_loop() {
    let started = Instant::now();
    let r = Case::new("res-loop")
        .timeout(Duration::from_secs(1))
        .run()
        .await;
    assert_limit(
        &r,
        "time",
        &[
            "time limit exceeded: the step ran longer than 1s",
            "--timeout",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let run = run_json(
        &hostile_wasm(),
        &["--input", "case=res-loop", "--timeout", "1s"],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_memory_bomb() {
    let r = Case::new("res-memory-bomb").memory(32 << 20).run().await;
    assert_limit(
        &r,
        "memory",
        &["memory limit exceeded", "the limit is 32 MiB"],
    );

    let run = run_json(
        &hostile_wasm(),
        &["--input", "case=res-memory-bomb", "--memory", "24Mi"],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert_eq!(run.report()["limit"]["kind"], "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_stack_overflow() {
    let r = Case::new("res-stack-overflow").run().await;
    assert_status(
        &r,
        Status::Failed,
        &[
            "the step trapped: wasm trap: call stack exhausted (the step used more stack than allowed: unbounded recursion?)",
        ],
    );

    let run = run_json(&hostile_wasm(), &["--input", "case=res-stack-overflow"]);
    assert_eq!(run.code, 1, "{}", run.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_stack_overflow_in_linear_memory() {
    // Big frames exhaust the stack Rust keeps in linear memory before the
    // wasm call stack: the guest faults on memory below address 0.
    let r = Case::new("res-shadow-stack").run().await;
    assert_status(
        &r,
        Status::Failed,
        &[
            "the step trapped: wasm trap: out of bounds memory access (a bug in the step, or a stack overflow in linear memory",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_handle_flood() {
    // Every open file is a host file descriptor, shared by the whole host.
    let r = Case::new("res-handle-flood").run().await;
    assert_limit(
        &r,
        "handles",
        &["handle limit exceeded", "4096 open handles"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_flood_of_tiny_host_calls() {
    let r = Case::new("res-call-flood")
        .timeout(Duration::from_secs(1))
        .run()
        .await;
    assert_limit(&r, "time", &["time limit exceeded"]);
    // Reading an input records nothing: the flood grows no host state
    // (the log holds only the host's warning that the step declares no
    // needs).
    assert!(step_log(&r.log).is_empty() && r.audit.is_empty() && r.plan.is_empty());
}

/// The log lines the step wrote (not the host's own, such as its warning
/// that the step declares no needs).
fn step_log(log: &[stepbox::report::LogEntry]) -> Vec<&stepbox::report::LogEntry> {
    log.iter()
        .filter(|l| l.source != stepbox::report::LogSource::Host)
        .collect()
}

fn small_log_policy() -> stepbox::policy::Policy {
    policy("rules: []\nlimits:\n  logBytes: 64Ki\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_log_flood() {
    let r = Case::new("res-log-flood")
        .policy(small_log_policy())
        .run()
        .await;
    assert_limit(&r, "log-bytes", &["log limit exceeded", "64 KiB"]);
    let logged: usize = r.log.iter().map(|l| l.message.len()).sum();
    assert!(logged <= 64 << 10, "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_stdout_flood_without_newlines() {
    let r = Case::new("res-stdout-flood")
        .policy(small_log_policy())
        .run()
        .await;
    assert_limit(&r, "log-bytes", &["log limit exceeded"]);
    assert!(
        r.log.iter().all(|l| l.message.len() <= 16 << 10),
        "long lines are split at 16 KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_huge_log_line() {
    let r = Case::new("res-huge-log-line").memory(256 << 20).run().await;
    assert_limit(&r, "log-bytes", &["more than 1 MiB of log"]);
    assert!(step_log(&r.log).is_empty(), "the line is dropped, not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_huge_output_value() {
    let r = Case::new("res-huge-output").memory(256 << 20).run().await;
    assert_limit(&r, "output-bytes", &["output limit exceeded", "256 KiB"]);
    assert!(!r.outputs.contains_key("huge"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_huge_return_value() {
    // `run` fails with a 100 MiB message: the report keeps 64 KiB of it.
    let r = Case::new("res-huge-error").memory(256 << 20).run().await;
    assert_status(
        &r,
        Status::Failed,
        &["[error truncated: 64 KiB of 100 MiB shown]"],
    );
    assert!(
        super::error(&r).len() < (64 << 10) + 100,
        "{}",
        super::error(&r).len()
    );
    assert!(super::error(&r).starts_with("eeee"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_panic() {
    let r = Case::new("res-panic").run().await;
    assert_status(
        &r,
        Status::Failed,
        &[
            "the step trapped: wasm trap: wasm `unreachable` instruction executed (the step panicked or hit `unreachable`)",
        ],
    );
    assert!(
        r.log
            .iter()
            .any(|l| l.message.contains("hostile step panicking on purpose")),
        "the panic message reaches the log through stderr"
    );
}

async fn bad_host_call(mode: &str) -> stepbox::report::RunReport {
    Case::new("res-bad-host-call")
        .input("mode", mode)
        .run()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_trap_mid_host_call_bad_enum() {
    let r = bad_host_call("enum").await;
    assert_status(
        &r,
        Status::Failed,
        &["the step trapped in a host call: unexpected discriminant: 99"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_trap_mid_host_call_bad_pointer() {
    let r = bad_host_call("pointer").await;
    assert_status(
        &r,
        Status::Failed,
        &["the step trapped in a host call: string pointer/length out of bounds of memory"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_trap_mid_host_call_bad_utf8() {
    let r = bad_host_call("utf8").await;
    assert_status(
        &r,
        Status::Failed,
        &["the step trapped in a host call: invalid utf-8 sequence"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_res_many_floods_at_once() {
    // A spinning step and a memory bomb at the same time as ordinary runs:
    // each hostile run ends on its own limit; the ordinary ones succeed.
    let spin = tokio::spawn(Case::new("res-loop").timeout(Duration::from_secs(2)).run());
    let bomb = tokio::spawn(Case::new("res-memory-bomb").memory(32 << 20).run());
    for _ in 0..5 {
        super::host_carries_on().await;
    }
    assert_limit(&spin.await.unwrap(), "time", &[]);
    assert_limit(&bomb.await.unwrap(), "memory", &[]);
}
