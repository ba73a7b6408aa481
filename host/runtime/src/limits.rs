//! The limits of one run that wasmtime enforces: memory, tables,
//! instances and memories ([`RunLimiter`]), and the epoch ticker behind the
//! time limit and the yielding of CPU-bound guests ([`EpochTicker`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter};

use crate::caps::LimitTrap;
use crate::report::{LimitKind, RunRecorder};

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

/// Enforces the memory limit and the table, instance and memory caps of one
/// run, recording which limit was hit so the report can name it.
///
/// Memory and table elements are summed over every memory and table of the
/// run: a component with many memories gets one budget, not one each.
pub(crate) struct RunLimiter {
    memory_limit: u64,
    memory_used: u64,
    table_elements: u64,
    recorder: RunRecorder,
}

impl RunLimiter {
    pub(crate) fn new(memory_limit: u64, recorder: RunRecorder) -> Self {
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
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Self {
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
