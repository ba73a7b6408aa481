//! The component host: one [`Engine`] per process, a compile cache on disk,
//! `InstancePre` reuse per component, and a fresh `Store` per run with the
//! run's limits.
//!
//! ```text
//! Runtime::load(file)  -> header check -> compile (or cache hit) -> world check -> InstancePre
//! Runtime::run(step, options)
//!     Store { WASI ctx, kube ctx, helm ctx, run ctx, memory limiter }, epoch deadline
//!     guest run(ctx) -> kube / helm / run / WASI calls (policy -> backend -> audit)
//!     -> RunReport { status, outputs, plan, log, audit, error }
//! ```
//!
//! Limits end a run with [`Status::LimitExceeded`] and a message naming the
//! limit; the host, and every other run in it, carries on.

pub mod cache;
pub mod inspect;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{Step, StepPre, types::RunContext};
use crate::caps::fs::quota::{WorkspaceQuota, WorkspaceWatcher};
use crate::caps::fs::{RunDirs, RunFs, is_empty_dir};
use crate::caps::helm::{ChartRoots, HasHelm, HelmConfig, HelmCtx, HelmView};
use crate::caps::kube::{HasKube, KubeCtx, KubeView};
use crate::caps::run::{HasRun, RunCtx, RunView};
use crate::caps::{HasTypes, LimitTrap, TypesView};
use crate::cluster::ClusterBackend;
use crate::mask::SecretMasker;
use crate::policy::{Limits, Policy};
use crate::report::{LimitKind, LogSink, RunMeta, RunRecorder, RunReport, Status};

pub use cache::{CacheOutcome, CompileCache};
pub use inspect::{ComponentInfo, WasmKind};

/// Largest component file the host will load.
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;

/// How often the epoch advances; the granularity of the time limit and of
/// yielding CPU-bound guests to other runs.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most table elements a guest may hold, all its tables together.
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Most core instances one run may create (a Rust step has a handful).
pub const MAX_INSTANCES: usize = 1_000;

/// Most tables one run may create.
pub const MAX_TABLES: usize = 1_000;

/// Most linear memories one run may create. (The memory limit holds for all
/// of them together; this bounds the address space they reserve.)
pub const MAX_MEMORIES: usize = 16;

/// Most handles (open files, directories, streams, pollables, ...) a run may
/// hold in the host at once. Many are host file descriptors, which the whole
/// host process shares.
pub const MAX_HANDLES: usize = 4_096;

/// Why a component could not be loaded as a step. Each message says what
/// is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Over [`MAX_COMPONENT_BYTES`].
    #[error("{path} is {size} bytes, more than the {max} bytes a step may be")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Not WebAssembly at all.
    #[error(
        "{path} is not a WebAssembly component (no `\\0asm` header); build the step with `stepbox build STEP_DIR`"
    )]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// WebAssembly text.
    #[error(
        "{path} is WebAssembly text; stepbox runs binary components (build the step with `stepbox build STEP_DIR`)"
    )]
    Text {
        /// The file.
        path: PathBuf,
    },
    /// A core module, not a component.
    #[error(
        "{path} is a core WebAssembly module, not a component; build for the wasm32-wasip2 target \
         (`stepbox build STEP_DIR` does), which produces components"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// Has a component header but does not validate or compile.
    #[error("{path} is a malformed component: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The validator's or compiler's words.
        reason: String,
    },
    /// A component, but not of the step world.
    #[error("{path}: {reason}")]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Settings of a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where precompiled components are kept; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// How instances get their memories, tables and stacks.
    pub allocator: Allocator,
}

/// How a [`Runtime`] allocates instances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Allocator {
    /// Memories, tables and stacks are mapped for each run and unmapped
    /// after it (wasmtime's default). Nothing is reserved up front: the
    /// right choice for one run per process, as `stepbox run`.
    #[default]
    OnDemand,
    /// Slots for `max_runs` concurrent runs are reserved once, and each run
    /// takes one and gives it back, its memory reset but kept mapped with the
    /// step's initial image: faster instantiation and no address-space
    /// churn for a host running many steps (a worker). Runs past `max_runs`
    /// wait for a slot. Each slot reserves address space (not memory) for
    /// [`POOL_MEMORIES_PER_RUN`] linear memories of up to 4 GiB.
    Pooling {
        /// Runs that may be instantiated at once.
        max_runs: u32,
    },
}

/// Linear memories a pooled run may have; a component with more cannot
/// start in a pooling [`Runtime`]. (Steps built with the SDK have one.)
pub const POOL_MEMORIES_PER_RUN: u32 = 2;

/// Core instances a pooled run may have; a component with more cannot start
/// in a pooling [`Runtime`]. (Steps built with the SDK have a handful.)
pub const POOL_CORE_INSTANCES_PER_RUN: u32 = 32;

/// Tables a pooled run may have.
const POOL_TABLES_PER_RUN: u32 = 8;

/// Elements one table of a pooled run may hold (a Rust step's function
/// table has a few thousand).
const POOL_TABLE_ELEMENTS: usize = 65_536;

impl Allocator {
    /// Applies this allocator to a wasmtime configuration.
    fn configure(self, config: &mut Config) {
        let Allocator::Pooling { max_runs } = self else {
            return;
        };
        let max_runs = max_runs.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(max_runs)
            .total_stacks(max_runs)
            .total_core_instances(max_runs.saturating_mul(POOL_CORE_INSTANCES_PER_RUN))
            .total_memories(max_runs.saturating_mul(POOL_MEMORIES_PER_RUN))
            .total_tables(max_runs.saturating_mul(POOL_TABLES_PER_RUN))
            .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_RUN)
            .max_memories_per_component(POOL_MEMORIES_PER_RUN)
            .max_tables_per_component(POOL_TABLES_PER_RUN)
            .max_memories_per_module(POOL_MEMORIES_PER_RUN)
            .max_tables_per_module(POOL_TABLES_PER_RUN)
            .table_elements(POOL_TABLE_ELEMENTS);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
}

/// A component loaded and checked as a step, ready to instantiate.
pub struct LoadedStep {
    pre: StepPre<StepState>,
    /// What the component is and imports.
    pub info: ComponentInfo,
    /// Whether it came from the compile cache.
    pub cache: CacheOutcome,
    /// Time to compile or load it.
    pub load_time: Duration,
    /// The file's stem, the default step name.
    pub default_name: String,
}

impl std::fmt::Debug for LoadedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedStep")
            .field("sha256", &self.info.sha256)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Everything one run needs besides the component.
#[derive(Clone)]
pub struct RunOptions {
    /// Step name; defaults to the file stem.
    pub name: Option<String>,
    /// The namespace the run is confined to.
    pub namespace: String,
    /// Inputs.
    pub inputs: BTreeMap<String, String>,
    /// Secrets (masked everywhere).
    pub secrets: BTreeMap<String, String>,
    /// Host directory for `/packages` (read-only); empty if `None`.
    pub packages: Option<PathBuf>,
    /// Host directory for `/workspace`; a temp dir if `None`.
    pub workspace: Option<PathBuf>,
    /// What the run may do.
    pub policy: Arc<Policy>,
    /// Limits (usually the policy's, with CLI overrides).
    pub limits: Limits,
    /// Where objects live.
    pub backend: Arc<dyn ClusterBackend>,
    /// True when nothing real changes (embedded namespace, server dry-run).
    pub dry_run: bool,
    /// Receives log lines as they happen.
    pub log_sink: Option<LogSink>,
    /// The helm binary and where helm's Kubernetes calls go; `None`: the
    /// step's helm calls fail with `unavailable`.
    pub helm: Option<HelmConfig>,
}

/// The data of one run's `Store`.
pub struct StepState {
    wasi: WasiCtx,
    table: ResourceTable,
    kube: KubeCtx,
    helm: HelmCtx,
    run: RunCtx,
    limiter: RunLimiter,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the memory limit and the table, instance and memory caps of one
/// run, recording which limit was hit so the report can name it.
///
/// Memory and table elements are summed over every memory and table of the
/// run: a component with many memories gets one budget, not one each.
struct RunLimiter {
    memory_limit: u64,
    memory_used: u64,
    table_elements: u64,
    recorder: RunRecorder,
}

impl RunLimiter {
    fn new(memory_limit: u64, recorder: RunRecorder) -> Self {
        Self {
            memory_limit,
            memory_used: 0,
            table_elements: 0,
            recorder,
        }
    }

    fn exceeded(&self, limit: LimitKind) -> wasmtime::Error {
        self.recorder.limit_exceeded(limit.clone());
        wasmtime::Error::new(LimitTrap(limit))
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_used
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if total > self.memory_limit {
            return Err(self.exceeded(LimitKind::Memory {
                limit: self.memory_limit,
                requested: total,
            }));
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .table_elements
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if total > MAX_TABLE_ELEMENTS as u64 {
            return Err(self.exceeded(LimitKind::TableElements {
                limit: MAX_TABLE_ELEMENTS as u64,
            }));
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("stepbox-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(
                "could not start the epoch thread, time limits will only hold in host calls: {e}"
            );
        }
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The host: an engine, a linker with every capability, and caches.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    cache: Option<CompileCache>,
    loaded: Mutex<HashMap<String, Arc<LoadedStep>>>,
    /// With the pooling allocator: one permit per pool slot, so runs past
    /// the pool's size wait rather than fail.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Fresh workspaces and the shared empty `/packages`.
    dirs: RunDirs,
    /// Measures every running step's workspace.
    watcher: WorkspaceWatcher,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and linker.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut c = Config::new();
        c.wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        config.allocator.configure(&mut c);
        let engine =
            Engine::new(&c).map_err(|e| anyhow::anyhow!("creating the wasmtime engine: {e:#}"))?;
        let mut linker = Linker::<StepState>::new(&engine);
        let link = |r: wasmtime::Result<()>, what: &str| {
            r.map_err(|e| anyhow::anyhow!("linking {what}: {e:#}"))
        };
        link(wasmtime_wasi::p2::add_to_linker_async(&mut linker), "WASI")?;
        link(
            crate::bindings::types::add_to_linker::<_, HasTypes>(&mut linker, |_| TypesView),
            "types",
        )?;
        link(
            crate::bindings::kube::add_to_linker::<_, HasKube>(&mut linker, |s| KubeView {
                ctx: &s.kube,
            }),
            "kube",
        )?;
        link(
            crate::bindings::helm::add_to_linker::<_, HasHelm>(&mut linker, |s| HelmView {
                ctx: &s.helm,
            }),
            "helm",
        )?;
        link(
            crate::bindings::run::add_to_linker::<_, HasRun>(&mut linker, |s| RunView {
                ctx: &s.run,
            }),
            "run",
        )?;
        let ticker = EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache: config.cache_dir.map(CompileCache::new),
            loaded: Mutex::default(),
            slots: match config.allocator {
                Allocator::OnDemand => None,
                Allocator::Pooling { max_runs } => Some(Arc::new(tokio::sync::Semaphore::new(
                    max_runs.max(1) as usize,
                ))),
            },
            dirs: RunDirs::new()?,
            watcher: WorkspaceWatcher::new()
                .map_err(|e| anyhow::anyhow!("starting the workspace watcher thread: {e}"))?,
            _ticker: ticker,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads a component file and loads it (see [`Runtime::load_bytes`]).
    pub fn load_file(&self, path: &Path) -> Result<Arc<LoadedStep>, LoadError> {
        let read_err = |source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        let meta = file.metadata().map_err(read_err)?;
        if meta.len() > MAX_COMPONENT_BYTES {
            return Err(LoadError::TooLarge {
                path: path.to_path_buf(),
                size: meta.len(),
                max: MAX_COMPONENT_BYTES,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(read_err)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace('_', "-"))
            .unwrap_or_else(|| "step".into());
        // A file loaded before (and unchanged since) need not be hashed
        // again: the compile cache remembers its hash by its stamp.
        let known = (meta.len() == bytes.len() as u64)
            .then(|| self.cache.as_ref()?.known_sha256(path, &meta))
            .flatten();
        let remember = known.is_none();
        let sha = known.unwrap_or_else(|| inspect::sha256_hex(&bytes));
        let loaded = self.load_hashed(path, &bytes, &name, sha)?;
        if let (true, Some(cache)) = (remember, &self.cache) {
            cache.remember_sha256(path, &meta, &loaded.info.sha256);
        }
        Ok(loaded)
    }

    /// Checks, compiles (or loads from the compile cache) and links a
    /// component as a step. The same bytes load once per runtime.
    pub fn load_bytes(
        &self,
        path: &Path,
        bytes: &[u8],
        default_name: &str,
    ) -> Result<Arc<LoadedStep>, LoadError> {
        self.load_hashed(path, bytes, default_name, inspect::sha256_hex(bytes))
    }

    /// [`Runtime::load_bytes`] of bytes whose hex sha256 is `sha`.
    fn load_hashed(
        &self,
        path: &Path,
        bytes: &[u8],
        default_name: &str,
        sha: String,
    ) -> Result<Arc<LoadedStep>, LoadError> {
        let path_buf = path.to_path_buf();
        match inspect::detect(bytes) {
            WasmKind::Component => {}
            WasmKind::CoreModule => return Err(LoadError::CoreModule { path: path_buf }),
            WasmKind::Text => return Err(LoadError::Text { path: path_buf }),
            WasmKind::NotWasm => return Err(LoadError::NotWasm { path: path_buf }),
        }
        if let Some(hit) = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&sha)
        {
            return Ok(hit.clone());
        }
        let started = Instant::now();
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes, &sha),
            None => wasmtime::component::Component::new(&self.engine, bytes)
                .map(|c| (c, CacheOutcome::Disabled)),
        };
        let (component, outcome) = compiled.map_err(|e| LoadError::Malformed {
            path: path_buf.clone(),
            reason: format!("{e:#}"),
        })?;
        let load_time = started.elapsed();
        let info = inspect::describe(&self.engine, &component, bytes, sha.clone());
        if let Err(reason) = &info.step_world {
            return Err(LoadError::WrongWorld {
                path: path_buf,
                reason: reason.clone(),
            });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(StepPre::new)
            .map_err(|e| LoadError::WrongWorld {
                path: path_buf.clone(),
                reason: format!("{e:#}"),
            })?;
        tracing::debug!(sha256 = %sha, cache = ?outcome, ms = load_time.as_millis() as u64, "component loaded");
        let loaded = Arc::new(LoadedStep {
            pre,
            info,
            cache: outcome,
            load_time,
            default_name: default_name.to_string(),
        });
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha, loaded.clone());
        Ok(loaded)
    }

    /// Forgets a loaded step (by the sha256 of its bytes, as in
    /// [`ComponentInfo::sha256`]), so the next load of the same bytes goes
    /// to the compile cache (or the compiler) again. Runs holding the step
    /// keep it alive until they end. Returns whether it was loaded.
    pub fn unload(&self, sha256: &str) -> bool {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sha256)
            .is_some()
    }

    /// Runs a loaded step once, in a fresh store, and reports what happened.
    /// Never panics because of the guest; limits end the run, not the host.
    pub async fn run(&self, step: &LoadedStep, opts: RunOptions) -> RunReport {
        let run_id = uuid::Uuid::new_v4().to_string();
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
        let state = StepState {
            wasi,
            table,
            kube: KubeCtx {
                namespace: opts.namespace.clone(),
                policy: opts.policy.clone(),
                backend: opts.backend.clone(),
                recorder: recorder.clone(),
            },
            helm: HelmCtx::new(
                opts.namespace.clone(),
                opts.policy.clone(),
                opts.backend.clone(),
                recorder.clone(),
                ChartRoots {
                    packages: fs.packages().to_path_buf(),
                    workspace: fs.workspace().to_path_buf(),
                },
                opts.helm.clone(),
                opts.dry_run,
            ),
            run: run_ctx.clone(),
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
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(limits.timeout, call) => outcome.unwrap_or(Outcome::TimedOut),
            () = recorder.limit_tripped() => Outcome::Tripped,
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
