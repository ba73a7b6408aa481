//! The generated `stepbox:step/helm` host trait, implemented on a borrowed
//! view of the run's [`HelmCtx`]. Only conversions live here.

use std::time::Duration;

use wasmtime::component::Linker;

use super::{HelmCtx, ReleaseInfo, ReleaseStatus, TouchedObject, UpgradeOptions, WaitOptions};
use crate::bindings::helm as wit;
use crate::caps::error::to_wit;
use crate::caps::{CapError, HasCaps};
use stepbox_k8s::plan::Action;

/// A borrowed view of the helm capability, what the generated trait is
/// implemented on.
struct HelmView<'a> {
    ctx: &'a HelmCtx,
}

/// `HasData` marker for [`HelmView`].
struct HasHelm;

impl wasmtime::component::HasData for HasHelm {
    type Data<'a> = HelmView<'a>;
}

/// Adds `stepbox:step/helm` to `linker`, served by the store's [`HelmCtx`].
pub(crate) fn add_to_linker<T: HasCaps>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasHelm>(linker, |s| HelmView {
        ctx: &s.caps().helm,
    })
}

fn timeout(seconds: u32) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)))
}

fn status(s: ReleaseStatus) -> wit::ReleaseStatus {
    match s {
        ReleaseStatus::Unknown => wit::ReleaseStatus::Unknown,
        ReleaseStatus::Deployed => wit::ReleaseStatus::Deployed,
        ReleaseStatus::Uninstalled => wit::ReleaseStatus::Uninstalled,
        ReleaseStatus::Superseded => wit::ReleaseStatus::Superseded,
        ReleaseStatus::Failed => wit::ReleaseStatus::Failed,
        ReleaseStatus::Uninstalling => wit::ReleaseStatus::Uninstalling,
        ReleaseStatus::PendingInstall => wit::ReleaseStatus::PendingInstall,
        ReleaseStatus::PendingUpgrade => wit::ReleaseStatus::PendingUpgrade,
        ReleaseStatus::PendingRollback => wit::ReleaseStatus::PendingRollback,
    }
}

fn release(r: ReleaseInfo) -> wit::Release {
    wit::Release {
        name: r.name,
        namespace: r.namespace,
        revision: r.revision,
        status: status(r.status),
        chart_name: r.chart_name,
        chart_version: r.chart_version,
        app_version: r.app_version,
        description: r.description,
        updated: r.updated,
    }
}

fn touched(t: TouchedObject) -> wit::TouchedObject {
    wit::TouchedObject {
        api_version: t.key.api_version,
        kind: t.key.kind,
        name: t.key.name,
        action: match t.action {
            Action::Created => wit::Change::Created,
            Action::Configured => wit::Change::Configured,
            Action::Unchanged => wit::Change::Unchanged,
            Action::Deleted => wit::Change::Deleted,
        },
        hook: t.hook,
    }
}

fn result(o: super::ReleaseOutcome) -> wit::ReleaseResult {
    wit::ReleaseResult {
        release: release(o.release),
        objects: o.objects.into_iter().map(touched).collect(),
        notes: o.notes,
    }
}

impl wit::Host for HelmView<'_> {
    async fn upgrade_or_install(
        &mut self,
        release_name: String,
        chart: String,
        values: String,
        options: wit::UpgradeOptions,
    ) -> Result<wit::ReleaseResult, CapError> {
        let options = UpgradeOptions {
            wait: options.wait,
            timeout: timeout(options.timeout_seconds),
            atomic: options.atomic,
        };
        self.ctx
            .upgrade_or_install(&release_name, &chart, &values, options)
            .await
            .map(result)
    }

    async fn uninstall(
        &mut self,
        release_name: String,
        options: wit::WaitOptions,
    ) -> Result<wit::ReleaseResult, CapError> {
        let options = WaitOptions {
            wait: options.wait,
            timeout: timeout(options.timeout_seconds),
        };
        self.ctx.uninstall(&release_name, options).await.map(result)
    }

    async fn rollback(
        &mut self,
        release_name: String,
        revision: u32,
        options: wit::WaitOptions,
    ) -> Result<wit::ReleaseResult, CapError> {
        let options = WaitOptions {
            wait: options.wait,
            timeout: timeout(options.timeout_seconds),
        };
        self.ctx
            .rollback(&release_name, revision, options)
            .await
            .map(result)
    }

    async fn status(&mut self, release_name: String) -> Result<wit::ReleaseDetails, CapError> {
        let d = self.ctx.status(&release_name).await?;
        Ok(wit::ReleaseDetails {
            release: release(d.release),
            objects: d
                .objects
                .into_iter()
                .map(|k| wit::ObjectRef {
                    api_version: k.api_version,
                    kind: k.kind,
                    name: k.name,
                })
                .collect(),
            notes: d.notes,
        })
    }

    async fn list(&mut self) -> Result<Vec<wit::Release>, CapError> {
        Ok(self.ctx.list().await?.into_iter().map(release).collect())
    }

    async fn history(&mut self, release_name: String) -> Result<Vec<wit::Release>, CapError> {
        Ok(self
            .ctx
            .history(&release_name)
            .await?
            .into_iter()
            .map(release)
            .collect())
    }

    async fn template(
        &mut self,
        release_name: String,
        chart: String,
        values: String,
    ) -> Result<String, CapError> {
        self.ctx.template(&release_name, &chart, &values).await
    }
}

impl crate::bindings::types::Host for HelmView<'_> {
    fn convert_error(&mut self, err: CapError) -> wasmtime::Result<crate::bindings::types::Error> {
        to_wit(err)
    }
}
