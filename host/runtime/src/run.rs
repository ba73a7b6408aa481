//! One run of a loaded step: [`RunOptions`] (built with a builder), a fresh
//! `Store` holding the run's WASI context and [`Caps`], the time and memory
//! limits, and the [`RunReport`] at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};

use crate::bindings::{Step, types::RunContext};
use crate::caps::fs::quota::WorkspaceQuota;
use crate::caps::fs::{RunFs, is_empty_dir};
use crate::caps::helm::{ChartRoots, HelmConfig};
use crate::caps::http::HttpRules;
use crate::caps::run::RunCtx;
use crate::caps::{Caps, LimitTrap, RunScope};
use crate::engine::{LoadedStep, Runtime};
use crate::limits::{MAX_HANDLES, RunLimiter};
use crate::mask::SecretMasker;
use crate::policy::{Limits, Policy};
use crate::report::{
    Level, LimitKind, LogSink, LogSource, RunMeta, RunRecorder, RunReport, Sources, Status,
};
use crate::state::StepState;
use crate::target::Target;
use stepbox_cluster::ClusterBackend;
use tokio_util::sync::CancellationToken;

/// Everything one run needs besides the component. Start from
/// [`RunOptions::new`] and set what differs from the defaults:
///
/// ```
/// use stepbox::RunOptions;
/// use stepbox::cluster::MemoryCluster;
/// use stepbox::target::Target;
///
/// let opts = RunOptions::new("dev", Target::embedded(MemoryCluster::new(), "helm".into()))
///     .input("image", "nginx:1.27")
///     .secret("token", "s3cr3t")
///     .packages("steps/deploy-manifests/example");
/// assert_eq!(opts.namespace(), "dev");
/// ```
#[derive(Clone)]
pub struct RunOptions {
    name: Option<String>,
    namespace: String,
    inputs: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    packages: Option<PathBuf>,
    workspace: Option<PathBuf>,
    policy: Arc<Policy>,
    limits: Limits,
    backend: Arc<dyn ClusterBackend>,
    dry_run: bool,
    log_sink: Option<LogSink>,
    helm: Option<HelmConfig>,
    sources: Sources,
    run_id: Option<String>,
    cancel: Option<CancellationToken>,
    kubectl: PathBuf,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Inputs may be large and secrets must never print: names only.
        f.debug_struct("RunOptions")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("inputs", &self.inputs.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("packages", &self.packages)
            .field("workspace", &self.workspace)
            .field("limits", &self.limits)
            .field("backend", &self.backend.name())
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// A run confined to `namespace` on `target` (its backend, helm and
    /// whether it is a dry run), with the built-in policy and its limits, no
    /// inputs or secrets, an empty `/packages`, a fresh `/workspace`, and
    /// the step named after its file.
    pub fn new(namespace: impl Into<String>, target: Target) -> Self {
        let policy = Policy::default();
        Self {
            name: None,
            namespace: namespace.into(),
            inputs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            packages: None,
            workspace: None,
            limits: policy.limits,
            policy: Arc::new(policy),
            backend: target.backend,
            dry_run: target.dry_run,
            log_sink: None,
            helm: target.helm,
            sources: Sources::default(),
            run_id: None,
            cancel: None,
            kubectl: crate::caps::kustomize::kubectl_from_env(None),
        }
    }

    /// The kubectl whose kustomize renders the step's kustomizations (a
    /// path, or a name looked up on `PATH`; default `$STEPBOX_KUBECTL`,
    /// else `kubectl`).
    pub fn kubectl(mut self, binary: impl Into<PathBuf>) -> Self {
        self.kubectl = binary.into();
        self
    }

    /// The run's id in its report (default: a fresh UUID), for a caller
    /// that records it before the run starts (a worker's status).
    pub fn run_id(mut self, id: impl Into<String>) -> Self {
        self.run_id = Some(id.into());
        self
    }

    /// Stop the run when `token` is cancelled: the guest is interrupted at
    /// its next epoch tick (10 ms) or host call, and the run ends with
    /// status [`Status::Cancelled`].
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The namespace the run is confined to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The step's name in the report (default: the component's file stem).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds an input.
    pub fn input(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inputs.insert(name.into(), value.into());
        self
    }

    /// Adds inputs.
    pub fn inputs<K: Into<String>, V: Into<String>>(
        mut self,
        inputs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.inputs
            .extend(inputs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a secret: its value is masked in everything the run reports.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// Adds secrets.
    pub fn secrets<K: Into<String>, V: Into<String>>(
        mut self,
        secrets: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.secrets
            .extend(secrets.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The host directory the step sees read-only as `/packages`
    /// (default: an empty one).
    pub fn packages(mut self, dir: impl Into<PathBuf>) -> Self {
        self.packages = Some(dir.into());
        self
    }

    /// The host directory the step sees as `/workspace` (default: a fresh
    /// temporary one, removed after the run unless it holds artifacts).
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = Some(dir.into());
        self
    }

    /// What the run may do; its limits become the run's (override them
    /// after with [`RunOptions::limits`]).
    pub fn policy(mut self, policy: impl Into<Arc<Policy>>) -> Self {
        let policy = policy.into();
        self.limits = policy.limits;
        self.policy = policy;
        self
    }

    /// The run's limits (default: the policy's).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Where the step and its package came from (pulled by reference),
    /// for the report.
    pub fn sources(mut self, sources: Sources) -> Self {
        self.sources = sources;
        self
    }

    /// Receives each log line as it happens (the report has them all at
    /// the end either way).
    pub fn log_sink(mut self, sink: LogSink) -> Self {
        self.log_sink = Some(sink);
        self
    }
}

impl Runtime {
    /// Runs a loaded step once, in a fresh store, and reports what happened.
    /// Never panics because of the guest; limits end the run, not the host.
    pub async fn run(&self, step: &LoadedStep, opts: RunOptions) -> RunReport {
        let run_id = opts
            .run_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| step.default_name.clone());
        let meta = RunMeta {
            step: name.clone(),
            run_id: run_id.clone(),
            namespace: opts.namespace.clone(),
            backend: opts.backend.name().to_string(),
            dry_run: opts.dry_run,
            sources: opts.sources.clone(),
        };
        let limits = opts.limits;
        let masker = SecretMasker::new(opts.secrets.values().map(String::as_str));
        let recorder = RunRecorder::new(
            masker,
            limits.log_bytes,
            limits.output_bytes,
            opts.log_sink.clone(),
        );

        let mut fs = match RunFs::prepare(
            opts.workspace.as_deref(),
            opts.packages.as_deref(),
            &self.dirs,
        ) {
            Ok(fs) => fs,
            Err(e) => return recorder.finish(Status::Invalid, Some(e.to_string()), meta),
        };
        let workspace = fs.workspace().to_path_buf();
        let quota = if fs.workspace_is_fresh() {
            WorkspaceQuota::empty(&limits)
        } else {
            let root = workspace.clone();
            match tokio::task::spawn_blocking(move || WorkspaceQuota::new(&root, &limits)).await {
                Ok(Ok(q)) => q,
                Ok(Err(e)) => {
                    let msg = format!(
                        "--workspace {}: {e}; stepbox cannot enforce the workspace limits",
                        workspace.display()
                    );
                    return recorder.finish(Status::Invalid, Some(msg), meta);
                }
                Err(e) => {
                    return recorder.finish(
                        Status::Invalid,
                        Some(format!("measuring the workspace: {e}")),
                        meta,
                    );
                }
            }
        };
        let (wasi, streams) = fs.wasi_ctx(&recorder);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        let run_ctx = RunCtx {
            inputs: opts.inputs.clone(),
            secrets: opts.secrets.clone(),
            workspace: workspace.clone(),
            recorder: recorder.clone(),
        };
        let needs = step.info.needs.clone().map(Arc::new);
        if needs.is_none() {
            // Cannot fail: nothing has been logged yet.
            let _ = recorder.log(
                Level::Warn,
                LogSource::Host,
                "the step declares no needs (no stepbox:needs section): it may do all its policy allows; \
                 declare them with stepbox_sdk::needs! or a step.yaml beside its sources, and rebuild",
            );
        }
        let scope = RunScope {
            namespace: opts.namespace.clone(),
            policy: opts.policy.clone(),
            needs: needs.clone(),
            backend: opts.backend.clone(),
            recorder: recorder.clone(),
            dry_run: opts.dry_run,
        };
        let charts = ChartRoots {
            packages: fs.packages().to_path_buf(),
            workspace: fs.workspace().to_path_buf(),
        };
        let state = StepState {
            wasi,
            table,
            caps: Caps::new(
                scope,
                run_ctx.clone(),
                charts,
                opts.helm.clone(),
                HttpRules {
                    outbound: opts.policy.outbound.clone(),
                    limits,
                    recorder: recorder.clone(),
                    api_server: opts.backend.server_url().map(str::to_string),
                    needs,
                },
                opts.kubectl.clone(),
            ),
            limiter: RunLimiter::new(limits.memory_bytes, recorder.clone()),
        };
        // A pool slot (with the pooling allocator): wait for one rather than
        // fail when the pool is in use by other runs. (The semaphore is never
        // closed, so acquiring cannot fail.)
        let slot = match &self.slots {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        let deadline = Instant::now() + limits.timeout;
        let watch = recorder.clone();
        let timeout = limits.timeout;
        store.epoch_deadline_callback(move |_| {
            if let Some(limit) = watch.limit_hit() {
                return Err(wasmtime::Error::new(LimitTrap(limit)));
            }
            if Instant::now() >= deadline {
                let limit = LimitKind::Time { limit: timeout };
                watch.limit_exceeded(limit.clone());
                return Err(wasmtime::Error::new(LimitTrap(limit)));
            }
            // Yield to tokio on every tick so a CPU-bound guest cannot starve
            // the other runs on this worker thread.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });

        let ctx = RunContext {
            namespace: opts.namespace.clone(),
            step_name: name,
            run_id,
            dry_run: opts.dry_run,
        };
        let call = async {
            let instance: Step = match step.pre.instantiate_async(&mut store).await {
                Ok(i) => i,
                Err(e) => return Outcome::NotStarted(e),
            };
            Outcome::Returned(instance.call_run(&mut store, &ctx).await)
        };
        let workspace_watch = self.watcher.watch(&workspace, quota, recorder.clone());
        // The run ends when the guest returns, at the time limit, or as soon
        // as any limit is recorded (even while the guest waits in the host).
        let cancelled = async {
            match &opts.cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(limits.timeout, call) => outcome.unwrap_or(Outcome::TimedOut),
            () = recorder.limit_tripped() => Outcome::Tripped,
            () = cancelled => Outcome::Cancelled,
        };
        drop(workspace_watch);
        drop(store);
        drop(slot);
        for s in &streams {
            s.flush_partial();
        }
        // A last measurement: a step that writes fast and returns at once is
        // held to its quota too. (A workspace left empty has nothing to
        // measure: the guest's files are all closed now.)
        if is_empty_dir(&workspace) {
            fs.workspace_left_empty();
        } else {
            let root = workspace.clone();
            if let Ok(Some(limit)) = tokio::task::spawn_blocking(move || quota.check(&root)).await {
                recorder.limit_exceeded(limit);
            }
        }

        let (status, error) = match (outcome, recorder.limit_hit()) {
            (Outcome::Cancelled, _) => (Status::Cancelled, Some("the run was cancelled".into())),
            (_, Some(limit)) => (Status::LimitExceeded, Some(limit.to_string())),
            (Outcome::TimedOut | Outcome::Tripped, None) => {
                let limit = LimitKind::Time {
                    limit: limits.timeout,
                };
                recorder.limit_exceeded(limit.clone());
                (Status::LimitExceeded, Some(limit.to_string()))
            }
            (Outcome::NotStarted(e), None) => (
                Status::Failed,
                Some(format!("the step could not be started: {e:#}")),
            ),
            (Outcome::Returned(Ok(Ok(()))), None) => (Status::Succeeded, None),
            (Outcome::Returned(Ok(Err(msg))), None) => (Status::Failed, Some(msg)),
            (Outcome::Returned(Err(trap)), None) => {
                if let Some(LimitTrap(limit)) = trap.downcast_ref::<LimitTrap>() {
                    (Status::LimitExceeded, Some(limit.to_string()))
                } else if is_table_full(&trap) {
                    let limit = LimitKind::Handles {
                        limit: MAX_HANDLES as u64,
                    };
                    recorder.limit_exceeded(limit.clone());
                    (Status::LimitExceeded, Some(limit.to_string()))
                } else {
                    (Status::Failed, Some(describe_trap(&trap)))
                }
            }
        };
        // Artifacts are checked again now that the guest cannot change them:
        // one swapped for a symlink after it was published is dropped.
        let (status, error) = match (run_ctx.reverify_artifacts(), status) {
            (Err(problem), Status::Succeeded) => (Status::Failed, Some(problem)),
            (_, status) => (status, error),
        };
        let report = recorder.finish(status, error, meta);
        if !report.artifacts.is_empty() {
            fs.keep_workspace();
        }
        drop(fs);
        report
    }
}

/// How the guest's part of a run ended.
enum Outcome {
    /// Instantiation failed (a limit on instances, tables or memories, or a
    /// start function that trapped).
    NotStarted(wasmtime::Error),
    /// `run` returned (or trapped).
    Returned(wasmtime::Result<Result<(), String>>),
    /// The time limit passed.
    TimedOut,
    /// A limit was recorded while the guest was running or waiting.
    Tripped,
    /// The run's cancel token fired.
    Cancelled,
}

/// True when the guest trapped because its handle table was full.
fn is_table_full(e: &wasmtime::Error) -> bool {
    matches!(
        e.downcast_ref::<wasmtime::component::ResourceTableError>(),
        Some(wasmtime::component::ResourceTableError::Full)
    )
}

/// A trap is a bug in the step (or a host fault): say which, with the
/// cause first and wasmtime's backtrace of the guest after it.
fn describe_trap(e: &wasmtime::Error) -> String {
    let backtrace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| format!("\n{b}"))
        .unwrap_or_default();
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        let hint = match trap {
            wasmtime::Trap::StackOverflow => {
                " (the step used more stack than allowed: unbounded recursion?)"
            }
            wasmtime::Trap::UnreachableCodeReached => " (the step panicked or hit `unreachable`)",
            wasmtime::Trap::MemoryOutOfBounds => {
                " (a bug in the step, or a stack overflow in linear memory: deep recursion or large local variables?)"
            }
            _ => "",
        };
        return format!("the step trapped: {trap}{hint}{backtrace}");
    }
    if !backtrace.is_empty() {
        // An error raised while the guest was running: a host call it made
        // could not be completed, typically because its arguments do not
        // follow the canonical ABI (bad pointer, enum value, UTF-8).
        return format!(
            "the step trapped in a host call: {}{backtrace}",
            e.root_cause()
        );
    }
    format!("the step failed in the host: {e:?}")
}
