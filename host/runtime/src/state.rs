//! The data of one run's `Store`: its WASI context and handle table, its
//! capabilities and its memory limiter.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::caps::{Caps, HasCaps};
use crate::limits::RunLimiter;

/// The data of one run's `Store`.
pub(crate) struct StepState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) caps: Caps,
    pub(crate) limiter: RunLimiter,
}

impl HasCaps for StepState {
    fn caps(&mut self) -> &Caps {
        &self.caps
    }
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.caps.http.hooks,
            table: &mut self.table,
            ctx: &mut self.caps.http.wasi,
        }
    }
}
