//! The component host: one [`Engine`] per process, a compile cache on disk,
//! `InstancePre` reuse per component, and a fresh `Store` per run with the
//! run's limits.
//!
//! ```text
//! Runtime::load(file)  -> header check -> compile (or cache hit) -> world check -> InstancePre
//! Runtime::run(step, options)
//!     Store { WASI ctx, caps (kube, helm, run), memory limiter }, epoch deadline
//!     guest run(ctx) -> kube / helm / run / WASI calls (policy -> backend -> audit)
//!     -> RunReport { status, outputs, plan, log, audit, error }
//! ```
//!
//! Limits end a run with [`Status::LimitExceeded`](crate::report::Status::LimitExceeded) and a message naming the
//! limit; the host, and every other run in it, carries on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::bindings::StepPre;
use crate::caps::fs::RunDirs;
use crate::caps::fs::quota::WorkspaceWatcher;
use crate::limits::EpochTicker;
use crate::state::StepState;

pub use crate::cache::collect::{CacheEntry, Collect, Collected, split_budget};
pub use crate::cache::{CacheOutcome, CompileCache};
pub use crate::inspect::{self, ComponentInfo, WasmKind};

/// Largest component file the host will load.
pub const MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;

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
    /// A step whose `stepbox:needs` declaration cannot be read.
    #[error(
        "{path}: {reason}; fix the declaration (the step's step.yaml or its stepbox_sdk::needs!) and build the step again"
    )]
    Needs {
        /// The file.
        path: PathBuf,
        /// What is wrong with the declaration.
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
    pub(crate) pre: StepPre<StepState>,
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

/// The host: an engine, a linker with every capability, and caches.
pub struct Runtime {
    pub(crate) engine: Engine,
    linker: Linker<StepState>,
    cache: Option<CompileCache>,
    loaded: Mutex<HashMap<String, Arc<LoadedStep>>>,
    /// With the pooling allocator: one permit per pool slot, so runs past
    /// the pool's size wait rather than fail.
    pub(crate) slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Fresh workspaces and the shared empty `/packages`.
    pub(crate) dirs: RunDirs,
    /// Measures every running step's workspace.
    pub(crate) watcher: WorkspaceWatcher,
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
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking WASI: {e:#}"))?;
        crate::caps::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("linking the stepbox capabilities: {e:#}"))?;
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
        if let Some(reason) = &info.needs_error {
            return Err(LoadError::Needs {
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
}
