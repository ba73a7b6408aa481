//! The generated `stepbox:step/kustomize` host trait, implemented on a
//! borrowed view of the run's [`KustomizeCtx`]. Only conversions live here.

use wasmtime::component::Linker;

use super::KustomizeCtx;
use crate::bindings::kustomize as wit;
use crate::caps::error::to_wit;
use crate::caps::{CapError, HasCaps};

/// A borrowed view of the kustomize capability.
struct KustomizeView<'a> {
    ctx: &'a KustomizeCtx,
}

/// `HasData` marker for [`KustomizeView`].
struct HasKustomize;

impl wasmtime::component::HasData for HasKustomize {
    type Data<'a> = KustomizeView<'a>;
}

/// Adds `stepbox:step/kustomize` to `linker`, served by the store's
/// [`KustomizeCtx`].
pub(crate) fn add_to_linker<T: HasCaps>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasKustomize>(linker, |s| KustomizeView {
        ctx: &s.caps().kustomize,
    })
}

impl wit::Host for KustomizeView<'_> {
    async fn build(&mut self, dir: String) -> Result<String, CapError> {
        self.ctx.build(&dir).await
    }
}

impl crate::bindings::types::Host for KustomizeView<'_> {
    fn convert_error(&mut self, err: CapError) -> wasmtime::Result<crate::bindings::types::Error> {
        to_wit(err)
    }
}
