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
mod gateway;
mod helm;
mod kube;
mod resources;
mod secrets;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stepbox::cluster::MemoryCluster;
use stepbox::policy::{Limits, Policy};
use stepbox::report::{RunReport, Status};
use stepbox::target::Target;
use stepbox::{LoadedStep, RunOptions, Runtime, RuntimeConfig};
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
    policy: Policy,
    limits: Limits,
    inputs: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    workspace: Option<PathBuf>,
    packages: Option<PathBuf>,
    cluster: Arc<MemoryCluster>,
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
            policy,
            limits,
            inputs: Vec::new(),
            secrets: Vec::new(),
            workspace: None,
            packages: None,
            cluster: Arc::new(MemoryCluster::new()),
        }
    }

    /// Adds an input.
    pub fn input(mut self, name: &str, value: impl Into<String>) -> Self {
        self.inputs.push((name.into(), value.into()));
        self
    }

    /// Adds a secret.
    pub fn secret(mut self, name: &str, value: &str) -> Self {
        self.secrets.push((name.into(), value.into()));
        self
    }

    /// Uses `policy` for rules and for its log, output and workspace limits
    /// (time and memory stay this case's: see [`Case::timeout`],
    /// [`Case::memory`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        let (l, mine) = (policy.limits, &mut self.limits);
        mine.log_bytes = l.log_bytes;
        mine.output_bytes = l.output_bytes;
        mine.workspace_bytes = l.workspace_bytes;
        mine.workspace_files = l.workspace_files;
        self.policy = policy;
        self
    }

    /// Sets the time limit.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.limits.timeout = t;
        self
    }

    /// Sets the memory limit.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.limits.memory_bytes = bytes;
        self
    }

    /// Sets the workspace quota.
    pub fn workspace_quota(mut self, bytes: u64, files: u64) -> Self {
        self.limits.workspace_bytes = bytes;
        self.limits.workspace_files = files;
        self
    }

    /// Uses `dir` as /workspace.
    pub fn workspace(mut self, dir: &Path) -> Self {
        self.workspace = Some(dir.to_path_buf());
        self
    }

    /// Uses `dir` as /packages.
    pub fn packages(mut self, dir: &Path) -> Self {
        self.packages = Some(dir.to_path_buf());
        self
    }

    /// Uses `cluster` as the embedded namespace.
    pub fn cluster(mut self, cluster: Arc<MemoryCluster>) -> Self {
        self.cluster = cluster;
        self
    }

    /// The run's options.
    fn options(self) -> (Arc<LoadedStep>, RunOptions) {
        let mut opts = RunOptions::new(NS, Target::backend(self.cluster, true))
            .policy(self.policy)
            .limits(self.limits)
            .inputs(self.inputs)
            .secrets(self.secrets);
        if let Some(dir) = self.workspace {
            opts = opts.workspace(dir);
        }
        if let Some(dir) = self.packages {
            opts = opts.packages(dir);
        }
        (self.step, opts)
    }

    /// Runs the case, then checks that an ordinary step runs fine in the
    /// same host process, and returns the case's report.
    pub async fn run(self) -> RunReport {
        let (step, opts) = self.options();
        let report = runtime().run(&step, opts).await;
        host_carries_on().await;
        report
    }
}

/// The `hello` guest runs and succeeds in the shared runtime.
pub async fn host_carries_on() {
    let (step, opts) = Case::guest("hello").options();
    let report = runtime().run(&step, opts).await;
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

/// A temp dir holding `files`.
pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    stepbox_tests::dir_with(files)
}

/// The `hostile` guest's component file.
pub fn hostile_wasm() -> PathBuf {
    guest("hostile")
}
