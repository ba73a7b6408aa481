//! Fixtures shared by stepbox's benchmarks (`benches/host.rs`, the
//! `density` binary): the real components they run, a runtime set up as a
//! worker would set it up, run options on the embedded namespace, and
//! ordinary manifests.
//!
//! The components are the real ones: `deploy-manifests` from `steps/`, and
//! the test guests `hello` (a trivial step) and `call-loop` (one kind of
//! host call in a loop, timed inside the guest) from `tests/guests/`, built
//! for wasm32-wasip2 on first use by the helpers the end-to-end tests use.

#![deny(missing_docs)]

pub mod gate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stepbox::cluster::{ClusterBackend, MemoryCluster};
use stepbox::report::{RunReport, Status};
use stepbox::target::Target;
use stepbox::{Allocator, RunOptions, Runtime, RuntimeConfig};

/// The `.wasm` of a step from `steps/` (built on first use).
pub fn step(name: &str) -> PathBuf {
    stepbox_tests::step(name)
}

/// The `.wasm` of a test guest from `tests/guests/` (built on first use).
pub fn guest(name: &str) -> PathBuf {
    stepbox_tests::guest(name)
}

/// `steps/deploy-manifests/example`: a ConfigMap, two Deployments and a Job.
pub fn deploy_example() -> PathBuf {
    stepbox_tests::repo_root().join("steps/deploy-manifests/example")
}

/// `bench/manifests`: the 20 ordinary manifests (7 Deployments, 7 Services,
/// 6 ConfigMaps) that `compare-kubectl.sh` deploys.
pub fn twenty_manifests() -> PathBuf {
    stepbox_tests::repo_root().join("bench/manifests")
}

/// Run options for the embedded namespace `bench` with the default policy,
/// as `stepbox run` would make them.
pub fn options(backend: Arc<dyn ClusterBackend>, packages: Option<&Path>) -> RunOptions {
    let options = RunOptions::new("bench", Target::backend(backend, true));
    match packages {
        Some(dir) => options.packages(dir),
        None => options,
    }
}

/// A fresh embedded namespace.
pub fn memory() -> Arc<dyn ClusterBackend> {
    Arc::new(MemoryCluster::new())
}

/// Sets inputs on options.
pub fn with_inputs(options: RunOptions, inputs: &[(&str, &str)]) -> RunOptions {
    options.inputs(inputs.iter().copied())
}

/// Panics with the report when a run did not succeed: a bench must never
/// time a failure by mistake. Then removes the workspace the run kept for its artifacts (as
/// `stepbox run` does for `deploy-manifests`' `applied`), so thousands of
/// benchmarked runs leave nothing behind.
pub fn expect_success(report: &RunReport) {
    assert_eq!(
        report.status,
        Status::Succeeded,
        "the benchmarked run did not succeed: {}",
        serde_json::to_string_pretty(report).unwrap_or_default()
    );
    discard_artifacts(report);
}

/// Removes the temporary workspaces a run kept for its artifacts.
pub fn discard_artifacts(report: &RunReport) {
    for artifact in &report.artifacts {
        let kept = artifact.host_path.ancestors().find(|dir| {
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stepbox-workspace-"))
        });
        if let Some(dir) = kept {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The guest-measured time of a `call-loop` run, from its `elapsed-ns`
/// output.
pub fn guest_elapsed(report: &RunReport) -> std::time::Duration {
    expect_success(report);
    let ns: u64 = report
        .outputs
        .get("elapsed-ns")
        .and_then(|v| v.parse().ok())
        .expect("call-loop reports elapsed-ns");
    std::time::Duration::from_nanos(ns)
}

/// `n` ordinary objects as one multi-document manifest, cycling through a
/// ConfigMap, a Service and a Deployment (named `<kind>-<i>`), the mix a
/// deployment applies.
pub fn ordinary_objects(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push_str("---\n");
        }
        let doc = match i % 3 {
            0 => format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{i}\n  labels:\n    app: app-{i}\ndata:\n  LOG_LEVEL: info\n  URL: http://app-{i}:8080\n"
            ),
            1 => format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  labels:\n    app: app-{i}\nspec:\n  selector:\n    app: app-{i}\n  ports:\n    - name: http\n      port: 80\n      targetPort: 8080\n"
            ),
            _ => format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels:\n    app: app-{i}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.27\n          ports:\n            - containerPort: 8080\n          resources:\n            requests:\n              cpu: 50m\n              memory: 64Mi\n"
            ),
        };
        out.push_str(&doc);
    }
    out
}

/// A runtime with the compile cache in `cache_dir` (or none) and
/// wasmtime's default on-demand allocator, as `stepbox run` has it.
pub fn runtime(cache_dir: Option<&Path>) -> Runtime {
    runtime_with(cache_dir, Allocator::OnDemand)
}

/// A runtime with the given allocator.
pub fn runtime_with(cache_dir: Option<&Path>, allocator: Allocator) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: cache_dir.map(Path::to_path_buf),
        allocator,
    })
    .expect("runtime")
}

/// Both allocators, labelled as the benches name them; the pool is sized
/// for `max_runs` concurrent runs.
pub fn allocators(max_runs: u32) -> [(&'static str, Allocator); 2] {
    [
        ("on-demand", Allocator::OnDemand),
        ("pooling", Allocator::Pooling { max_runs }),
    ]
}
