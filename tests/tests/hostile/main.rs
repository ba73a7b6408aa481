//! The hostile-guest suite: real components attacking the host, each case a
//! test named `hostile_*` (`cargo test --workspace hostile_` runs exactly
//! these). SECURITY.md lists every case with its expected outcome.
//!
//! Each case asserts the exact outcome (report status, the limit or error
//! value, what the step observed) and then that the next ordinary step runs
//! fine in the same host process: [`Case::run`] runs the `hello` guest in
//! the same [`Runtime`] after every hostile run. All cases share one
//! `Runtime` (so one engine, epoch thread and compile cache), as a worker
//! would; cases that also check exit codes run the CLI too.

mod components;
mod crafted;
mod env;
mod fs;
mod kube;
mod resources;
mod secrets;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use stepbox::cluster::memory::MemoryCluster;
use stepbox::policy::Policy;
use stepbox::report::{RunReport, Status};
use stepbox::runtime::{LoadedStep, RunOptions, Runtime, RuntimeConfig};
use stepbox_tests::{guest, target_dir};

/// The namespace every case runs in.
pub const NS: &str = "dev";

/// The host shared by every case of this test process.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache_dir = Some(target_dir().join("hostile-compile-cache"));
        Runtime::new(RuntimeConfig {
            cache_dir,
            ..Default::default()
        })
        .expect("runtime")
    })
}

/// Loads a test guest into the shared runtime.
pub fn load(name: &str) -> Arc<LoadedStep> {
    runtime()
        .load_file(&guest(name))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// A policy from YAML rules (and optional limits).
pub fn policy(rules_and_limits: &str) -> Policy {
    Policy::from_yaml(&format!(
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\n{rules_and_limits}"
    ))
    .unwrap_or_else(|e| panic!("test policy: {e}"))
}

/// One run of the `hostile` guest (or another guest), built up then run.
pub struct Case {
    step: Arc<LoadedStep>,
    opts: RunOptions,
}

impl Case {
    /// The `hostile` guest with input `case`, the default policy, a fresh
    /// embedded namespace, 10 s and 64 MiB.
    pub fn new(case: &str) -> Self {
        Self::guest("hostile").input("case", case)
    }

    /// Another guest, with the same defaults.
    pub fn guest(name: &str) -> Self {
        Self::from_step(load(name))
    }

    /// A loaded step, with the same defaults.
    pub fn from_step(step: Arc<LoadedStep>) -> Self {
        let policy = Policy::default();
        let mut limits = policy.limits;
        limits.timeout = Duration::from_secs(10);
        limits.memory_bytes = 64 << 20;
        Self {
            step,
            opts: RunOptions {
                name: None,
                namespace: NS.into(),
                inputs: Default::default(),
                secrets: Default::default(),
                packages: None,
                workspace: None,
                policy: Arc::new(policy),
                limits,
                backend: Arc::new(MemoryCluster::new()),
                dry_run: true,
                log_sink: None,
                helm: None,
            },
        }
    }

    /// Adds an input.
    pub fn input(mut self, name: &str, value: impl Into<String>) -> Self {
        self.opts.inputs.insert(name.into(), value.into());
        self
    }

    /// Adds a secret.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.opts.secrets.insert(name.into(), value.into());
        self
    }

    /// Uses `policy` for rules and for its log, output and workspace limits
    /// (time and memory stay this case's: see [`Case::timeout`],
    /// [`Case::memory`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        let (l, mine) = (policy.limits, &mut self.opts.limits);
        mine.log_bytes = l.log_bytes;
        mine.output_bytes = l.output_bytes;
        mine.workspace_bytes = l.workspace_bytes;
        mine.workspace_files = l.workspace_files;
        self.opts.policy = Arc::new(policy);
        self
    }

    /// Sets the time limit.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.opts.limits.timeout = t;
        self
    }

    /// Sets the memory limit.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.opts.limits.memory_bytes = bytes;
        self
    }

    /// Sets the workspace quota.
    pub fn workspace_quota(mut self, bytes: u64, files: u64) -> Self {
        self.opts.limits.workspace_bytes = bytes;
        self.opts.limits.workspace_files = files;
        self
    }

    /// Uses `dir` as /workspace.
    pub fn workspace(mut self, dir: &Path) -> Self {
        self.opts.workspace = Some(dir.to_path_buf());
        self
    }

    /// Uses `dir` as /packages.
    pub fn packages(mut self, dir: &Path) -> Self {
        self.opts.packages = Some(dir.to_path_buf());
        self
    }

    /// Uses `cluster` as the embedded namespace.
    pub fn cluster(mut self, cluster: Arc<MemoryCluster>) -> Self {
        self.opts.backend = cluster;
        self
    }

    /// Runs the case, then checks that an ordinary step runs fine in the
    /// same host process, and returns the case's report.
    pub async fn run(self) -> RunReport {
        let report = runtime().run(&self.step, self.opts).await;
        host_carries_on().await;
        report
    }
}

/// The `hello` guest runs and succeeds in the shared runtime.
pub async fn host_carries_on() {
    let hello = Case::guest("hello");
    let report = runtime().run(&hello.step, hello.opts).await;
    assert_eq!(
        report.status,
        Status::Succeeded,
        "the next ordinary step fails: {:?}",
        report.error
    );
    assert_eq!(report.outputs["greeting"], "hello from hello in dev");
}

/// An output of a report ("" when missing).
pub fn out<'a>(report: &'a RunReport, name: &str) -> &'a str {
    report.outputs.get(name).map_or("", String::as_str)
}

/// The report's error ("" when none).
pub fn error(report: &RunReport) -> &str {
    report.error.as_deref().unwrap_or("")
}

/// Asserts the status, and that the error contains each needle.
#[track_caller]
pub fn assert_status(report: &RunReport, status: Status, needles: &[&str]) {
    assert_eq!(
        report.status, status,
        "error: {:?}\noutputs: {:?}",
        report.error, report.outputs
    );
    for n in needles {
        assert!(
            error(report).contains(n),
            "error {:?} should mention {n:?}",
            error(report)
        );
    }
}

/// Asserts the run ended on the limit of `kind` (its JSON name).
#[track_caller]
pub fn assert_limit(report: &RunReport, kind: &str, needles: &[&str]) {
    assert_status(report, Status::LimitExceeded, needles);
    let limit = serde_json::to_value(report.limit.as_ref().expect("a limit is named")).unwrap();
    assert_eq!(limit["kind"], kind, "{limit}");
}

/// Asserts the step saw `outcome` with a message containing each needle.
#[track_caller]
pub fn assert_outcome(report: &RunReport, outcome: &str, needles: &[&str]) {
    assert_eq!(
        report.status,
        Status::Succeeded,
        "the step handles the error itself: {:?}",
        report.error
    );
    assert_eq!(
        out(report, "outcome"),
        outcome,
        "message: {:?}",
        out(report, "message")
    );
    for n in needles {
        assert!(
            out(report, "message").contains(n),
            "message {:?} should mention {n:?}",
            out(report, "message")
        );
    }
}

/// The whole report as JSON text.
pub fn json(report: &RunReport) -> String {
    serde_json::to_string(report).unwrap()
}

/// The report as a JSON value.
pub fn value(report: &RunReport) -> Value {
    serde_json::to_value(report).unwrap()
}

/// A temp dir holding `files`.
pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    stepbox_tests::dir_with(files)
}

/// The `hostile` guest's component file.
pub fn hostile_wasm() -> PathBuf {
    guest("hostile")
}
