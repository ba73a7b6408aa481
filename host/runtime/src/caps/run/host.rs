//! The generated `stepbox:step/run` host trait, implemented on a borrowed
//! view of the run's [`RunCtx`]. Only conversions live here.

use wasmtime::component::Linker;

use super::RunCtx;
use crate::bindings::run::{self as wit, Level as WitLevel};
use crate::caps::error::to_wit;
use crate::caps::{CapError, HasCaps};
use crate::report::Level;

/// A borrowed view of the run capability.
struct RunView<'a> {
    ctx: &'a RunCtx,
}

/// `HasData` marker for [`RunView`].
struct HasRun;

impl wasmtime::component::HasData for HasRun {
    type Data<'a> = RunView<'a>;
}

/// Adds `stepbox:step/run` to `linker`, served by the store's [`RunCtx`].
pub(crate) fn add_to_linker<T: HasCaps>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasRun>(linker, |s| RunView { ctx: &s.caps().run })
}

/// For functions without a WIT error: a limit or fault becomes a trap.
fn trap_only(r: Result<(), CapError>) -> wasmtime::Result<()> {
    match r {
        Ok(()) => Ok(()),
        // Step errors cannot be returned here; the call is simply refused.
        Err(CapError::Step(_)) => Ok(()),
        Err(e) => to_wit(e).map(|_| ()),
    }
}

impl wit::Host for RunView<'_> {
    async fn input(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.ctx.input(&name))
    }

    async fn inputs(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.ctx.inputs())
    }

    async fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.ctx.secret(&name))
    }

    async fn set_output(
        &mut self,
        name: String,
        value: String,
        sensitive: bool,
    ) -> Result<(), CapError> {
        self.ctx.set_output(&name, &value, sensitive)
    }

    async fn log(&mut self, level: WitLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            WitLevel::Trace => Level::Trace,
            WitLevel::Debug => Level::Debug,
            WitLevel::Info => Level::Info,
            WitLevel::Warn => Level::Warn,
            WitLevel::Error => Level::Error,
        };
        trap_only(self.ctx.log(level, &message))
    }

    async fn progress(&mut self, percent: u8, message: String) -> wasmtime::Result<()> {
        trap_only(self.ctx.progress(percent, &message))
    }

    async fn artifact(&mut self, name: String, path: String) -> Result<(), CapError> {
        self.ctx.artifact(&name, &path)
    }
}

impl crate::bindings::types::Host for RunView<'_> {
    fn convert_error(&mut self, err: CapError) -> wasmtime::Result<crate::bindings::types::Error> {
        to_wit(err)
    }
}
