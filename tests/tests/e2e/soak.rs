//! Soak: 10,000 step runs in one host process, good and hostile mixed, with
//! the resident set size printed every 500 runs. After a warm-up of 1,000
//! runs the host must not grow by more than 5%: nothing a run leaves behind
//! (stores, handles, temp dirs, threads, recorders) may accumulate.
//!
//! Ignored by default (it takes minutes); run it with
//! `cargo test -p stepbox-tests --test e2e soak -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stepbox::cluster::MemoryCluster;
use stepbox::policy::Policy;
use stepbox::report::Status;
use stepbox::target::Target;
use stepbox::{LoadedStep, RunOptions, Runtime, RuntimeConfig};
use stepbox_tests::{guest, repo_root, step, target_dir};

const RUNS: usize = 10_000;
const WARM_UP: usize = 1_000;
const REPORT_EVERY: usize = 500;
const MAX_GROWTH: f64 = 0.05;

/// Resident set size of this process, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux only)");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident field");
    pages * 4096
}

/// One kind of run in the mix: which step, how, and how it must end.
struct Kind {
    name: &'static str,
    step: Arc<LoadedStep>,
    inputs: &'static [(&'static str, &'static str)],
    secrets: &'static [(&'static str, &'static str)],
    packages: Option<std::path::PathBuf>,
    timeout: Duration,
    memory: u64,
    workspace_bytes: u64,
    expect: Status,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: run explicitly"]
async fn soak_ten_thousand_runs_in_one_host() {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target_dir().join("soak-compile-cache")),
        ..Default::default()
    })
    .unwrap();
    let load = |p: std::path::PathBuf| runtime.load_file(&p).unwrap();
    let hostile = load(guest("hostile"));
    let base = |name, step: &Arc<LoadedStep>, expect| Kind {
        name,
        step: step.clone(),
        inputs: &[],
        secrets: &[],
        packages: None,
        timeout: Duration::from_secs(30),
        memory: 64 << 20,
        workspace_bytes: 1 << 30,
        expect,
    };
    let kinds = vec![
        base("hello", &load(guest("hello")), Status::Succeeded),
        Kind {
            inputs: &[("image", "nginx:1.27")],
            packages: Some(repo_root().join("steps/deploy-manifests/example")),
            ..base(
                "deploy-manifests",
                &load(step("deploy-manifests")),
                Status::Succeeded,
            )
        },
        Kind {
            inputs: &[("case", "other-namespace")],
            ..base(
                "policy-probe",
                &load(guest("policy-probe")),
                Status::Succeeded,
            )
        },
        Kind {
            timeout: Duration::from_millis(20),
            ..base("spin 20ms", &load(guest("spin")), Status::LimitExceeded)
        },
        Kind {
            memory: 16 << 20,
            ..base("alloc 16Mi", &load(guest("alloc")), Status::LimitExceeded)
        },
        Kind {
            secrets: &[("token", "soak-secret-value")],
            ..base("secret-echo", &load(guest("secret-echo")), Status::Failed)
        },
        base("fail", &load(guest("fail")), Status::Failed),
        Kind {
            inputs: &[("case", "kube-yaml-bomb")],
            ..base("yaml bomb", &hostile, Status::Succeeded)
        },
        Kind {
            inputs: &[("case", "fs-fill")],
            workspace_bytes: 2 << 20,
            ..base("fs-fill 2Mi", &hostile, Status::LimitExceeded)
        },
        Kind {
            inputs: &[("case", "res-handle-flood")],
            ..base("handle flood", &hostile, Status::LimitExceeded)
        },
        Kind {
            inputs: &[("case", "res-panic")],
            ..base("panic", &hostile, Status::Failed)
        },
        Kind {
            inputs: &[("case", "res-stack-overflow")],
            ..base("stack overflow", &hostile, Status::Failed)
        },
        Kind {
            inputs: &[("case", "secret-log")],
            secrets: &[("token", "soak-secret-value")],
            ..base("secret-log", &hostile, Status::Succeeded)
        },
    ];

    let started = Instant::now();
    let mut warm_rss = 0;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    println!("{:>6} {:>10} {:>8}", "runs", "rss", "secs");
    println!("{:>6} {:>7} MiB {:>8.1}", 0, rss_bytes() >> 20, 0.0);
    for i in 0..RUNS {
        let kind = &kinds[i % kinds.len()];
        let policy = Policy::default();
        let mut limits = policy.limits;
        limits.timeout = kind.timeout;
        limits.memory_bytes = kind.memory;
        limits.workspace_bytes = kind.workspace_bytes;
        let mut opts = RunOptions::new(
            "soak",
            Target::backend(Arc::new(MemoryCluster::new()), true),
        )
        .inputs(kind.inputs.iter().copied())
        .secrets(kind.secrets.iter().copied())
        .policy(policy)
        .limits(limits);
        if let Some(dir) = &kind.packages {
            opts = opts.packages(dir);
        }
        let report = runtime.run(&kind.step, opts).await;
        assert_eq!(
            report.status, kind.expect,
            "run {i} ({}): {:?}",
            kind.name, report.error
        );
        *counts.entry(kind.name).or_default() += 1;
        let done = i + 1;
        if done % REPORT_EVERY == 0 {
            let rss = rss_bytes();
            println!(
                "{done:>6} {:>7} MiB {:>8.1}",
                rss >> 20,
                started.elapsed().as_secs_f64()
            );
            if done == WARM_UP {
                warm_rss = rss;
            }
        }
    }
    let end_rss = rss_bytes();
    let growth = (end_rss as f64 - warm_rss as f64) / warm_rss as f64;
    println!(
        "{RUNS} runs in {:.0}s; RSS after {WARM_UP} runs {} MiB, at the end {} MiB: {:+.2}%",
        started.elapsed().as_secs_f64(),
        warm_rss >> 20,
        end_rss >> 20,
        growth * 100.0
    );
    println!("mix: {counts:?}");
    assert!(
        growth < MAX_GROWTH,
        "RSS grew {:.2}% after the warm-up (limit {}%)",
        growth * 100.0,
        MAX_GROWTH * 100.0
    );
}
