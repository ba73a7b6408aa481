//! The generated `stepbox:step/kube` host trait, implemented on a borrowed
//! view of the run's [`KubeCtx`]. Only conversions live here.

use std::time::Duration;

use wasmtime::component::Linker;

use super::{KubeCtx, WaitFor};
use crate::bindings::kube::{self as wit, Action as WitAction, AppliedObject, KindRef};
use crate::caps::error::to_wit;
use crate::caps::{CapError, HasCaps};
use stepbox_k8s::plan::Action;

/// A borrowed view of the kube capability, what the generated trait is
/// implemented on.
struct KubeView<'a> {
    ctx: &'a KubeCtx,
}

/// `HasData` marker for [`KubeView`].
struct HasKube;

impl wasmtime::component::HasData for HasKube {
    type Data<'a> = KubeView<'a>;
}

/// Adds `stepbox:step/kube` to `linker`, served by the store's [`KubeCtx`].
pub(crate) fn add_to_linker<T: HasCaps>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasKube>(linker, |s| KubeView {
        ctx: &s.caps().kube,
    })
}

fn json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl wit::Host for KubeView<'_> {
    async fn get(&mut self, kind: KindRef, name: String) -> Result<String, CapError> {
        let ctx = self.ctx;
        ctx.noted(ctx.get(&kind.api_version, &kind.kind, &name))
            .await
            .map(|v| json(&v))
    }

    async fn list(
        &mut self,
        kind: KindRef,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, CapError> {
        let ctx = self.ctx;
        let items = ctx
            .noted(ctx.list(&kind.api_version, &kind.kind, label_selector.as_deref()))
            .await?;
        Ok(items.iter().map(json).collect())
    }

    async fn apply(&mut self, manifests: String) -> Result<Vec<AppliedObject>, CapError> {
        let ctx = self.ctx;
        let applied = ctx.noted(ctx.apply(&manifests)).await?;
        Ok(applied
            .into_iter()
            .map(|a| AppliedObject {
                api_version: a.api_version,
                kind: a.kind,
                name: a.name,
                action: match a.action {
                    Action::Created => WitAction::Created,
                    Action::Configured => WitAction::Configured,
                    Action::Unchanged => WitAction::Unchanged,
                    Action::Deleted => WitAction::Deleted,
                },
                resource_version: a.resource_version,
            })
            .collect())
    }

    async fn patch(
        &mut self,
        kind: KindRef,
        name: String,
        merge_patch: String,
    ) -> Result<String, CapError> {
        let ctx = self.ctx;
        ctx.noted(ctx.patch(&kind.api_version, &kind.kind, &name, &merge_patch))
            .await
            .map(|v| json(&v))
    }

    async fn delete(&mut self, kind: KindRef, name: String) -> Result<bool, CapError> {
        let ctx = self.ctx;
        ctx.noted(ctx.delete(&kind.api_version, &kind.kind, &name))
            .await
    }

    async fn logs(&mut self, pod: String, options: wit::LogOptions) -> Result<String, CapError> {
        let nonzero = |n: u32| (n > 0).then_some(n);
        let options = stepbox_cluster::LogOptions {
            container: Some(options.container).filter(|c| !c.is_empty()),
            tail_lines: nonzero(options.tail_lines),
            since_seconds: nonzero(options.since_seconds),
            previous: options.previous,
        };
        let ctx = self.ctx;
        ctx.noted(ctx.logs(&pod, &options)).await
    }

    async fn events(&mut self, kind: KindRef, name: String) -> Result<Vec<String>, CapError> {
        let ctx = self.ctx;
        let events = ctx
            .noted(ctx.events(&kind.api_version, &kind.kind, &name))
            .await?;
        Ok(events.iter().map(json).collect())
    }

    async fn wait(
        &mut self,
        kind: KindRef,
        name: String,
        for_: wit::WaitFor,
        timeout_seconds: u32,
    ) -> Result<(), CapError> {
        let what = match for_ {
            wit::WaitFor::Rollout => WaitFor::Rollout,
            wit::WaitFor::Condition(c) => WaitFor::Condition(c),
            wit::WaitFor::Exists => WaitFor::Exists,
            wit::WaitFor::Deleted => WaitFor::Deleted,
        };
        let timeout = Duration::from_secs(u64::from(timeout_seconds));
        let ctx = self.ctx;
        ctx.noted(ctx.wait(&kind.api_version, &kind.kind, &name, &what, timeout))
            .await
    }
}

impl crate::bindings::types::Host for KubeView<'_> {
    fn convert_error(&mut self, err: CapError) -> wasmtime::Result<crate::bindings::types::Error> {
        to_wit(err)
    }
}
