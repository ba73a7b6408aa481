//! The helm processes of one run: starting a session (binary, version,
//! private home, kubeconfig, and for the embedded namespace the loopback API
//! server), running helm, and reading releases back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stepbox_apiserver::{Gateway, Upstream};

use super::binary::{self, HelmCommand, HelmHome, HelmOutput, HelmProcess};
use super::release::{self, ReleaseRecord};
use super::{
    Chart, HelmCluster, HelmCtx, HelmVersion, MIN_VERSION, ReleaseInfo, RenderedObject, Session,
};
use crate::caps::{CapError, ErrorKind, Result, StepError};
use crate::report::{Level, LogSource};

impl HelmCtx {
    /// The run's session, started on first use.
    pub(super) async fn session(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Session>>> {
        // Every helm call starts here: a step that declares its needs
        // without helm gets none.
        self.admission.admit_helm().map_err(StepError::forbidden)?;
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            *guard = Some(self.start_session().await?);
        }
        Ok(guard)
    }

    pub(super) async fn start_session(&self) -> Result<Session> {
        let Some(config) = &self.config else {
            return Err(StepError::unavailable(
                "this run has no helm: helm needs the embedded namespace or a kubeconfig (the host was started without one)",
            )
            .into());
        };
        let upstream = match &config.cluster {
            HelmCluster::Live(_) if self.scope.dry_run => {
                return Err(StepError::unavailable(
                    "helm is not available in a server-side dry-run: helm would change the cluster (run on the embedded namespace to try a chart)",
                )
                .into());
            }
            HelmCluster::Embedded(cluster) => {
                // As on a real cluster, the namespace exists before helm
                // writes into it.
                cluster
                    .ensure_namespace(&self.scope.namespace, "stepbox")
                    .map_err(|e| {
                        StepError::unavailable(format!(
                            "cannot prepare namespace {:?} for helm: {e}",
                            self.scope.namespace
                        ))
                    })?;
                Upstream::Memory(cluster.clone())
            }
            HelmCluster::Live(client) => Upstream::Live(client.clone()),
        };
        let binary = binary::locate(&config.binary)?;
        let home = HelmHome::create().map_err(|e| {
            StepError::unavailable(format!("cannot create a private directory for helm: {e}"))
        })?;
        let gateway = Gateway::new(
            upstream,
            self.scope.backend.clone(),
            Arc::new(self.admission.clone()),
        )
        .namespace(self.scope.namespace.clone())
        .client("helm")
        .start()
        .await
        .map_err(|e| {
            StepError::unavailable(format!("cannot start the gateway helm talks to: {e}"))
        })?;
        let kubeconfig = home
            .write_private(
                "kubeconfig",
                &gateway.kubeconfig_yaml(&self.scope.namespace),
            )
            .map_err(|e| StepError::unavailable(format!("cannot write helm's kubeconfig: {e}")))?;
        let process = HelmProcess::new(binary, &home, &kubeconfig);
        let out = process
            .run(&HelmCommand::new(["version", "--template", "{{.Version}}"]))
            .await?;
        let version = HelmVersion::parse(&out.stdout)
            .filter(|_| out.success)
            .ok_or_else(|| {
                StepError::unavailable(format!(
                    "{} does not look like helm (`helm version` printed {:?})",
                    process.binary.display(),
                    out.stdout.trim()
                ))
            })?;
        if version < MIN_VERSION {
            return Err(StepError::unavailable(format!(
                "helm {version} at {} is too old: stepbox needs helm {MIN_VERSION} or newer",
                process.binary.display()
            ))
            .into());
        }
        self.log(&format!("helm {version} ({})", process.binary.display()))?;
        Ok(Session {
            home,
            process,
            version,
            _gateway: gateway,
        })
    }

    /// Runs helm, logging the command, its exit and its stderr (masked) at
    /// debug level.
    pub(super) async fn helm(&self, session: &Session, cmd: &HelmCommand) -> Result<HelmOutput> {
        self.log(&format!("$ {}", self.scrub(session, &cmd.display())))?;
        let out = session.process.run(cmd).await?;
        for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
            self.log(&self.scrub(session, line))?;
        }
        let status = match out.code {
            Some(c) => format!("exit {c}"),
            None => "killed".to_string(),
        };
        self.log(&format!("{status} in {} ms", out.elapsed.as_millis()))?;
        Ok(out)
    }

    /// [`Self::helm`], with a failure turned into the step's error.
    pub(super) async fn helm_ok(&self, session: &Session, cmd: &HelmCommand) -> Result<HelmOutput> {
        let out = self.helm(session, cmd).await?;
        if out.success {
            Ok(out)
        } else {
            Err(binary::classify_failure(&out.error_message()).into())
        }
    }

    pub(super) fn log(&self, message: &str) -> Result<()> {
        Ok(self
            .scope
            .recorder
            .log(Level::Debug, LogSource::Helm, &format!("helm: {message}"))?)
    }

    /// The current release (or revision `revision`), `None` when there is
    /// none. Chart fields come from `helm get metadata` when `status` (helm
    /// 4) leaves them out.
    pub(super) async fn current(
        &self,
        session: &Session,
        release: &str,
        revision: Option<u32>,
    ) -> Result<Option<ReleaseRecord>> {
        let mut cmd = HelmCommand::new([
            "status",
            release,
            "--namespace",
            &self.scope.namespace,
            "--output",
            "json",
        ]);
        if let Some(r) = revision {
            cmd = cmd.args(["--revision", &r.to_string()]);
        }
        let out = self.helm(session, &cmd).await?;
        if !out.success {
            return match binary::classify_failure(&out.error_message()) {
                e if e.is(ErrorKind::NotFound) => Ok(None),
                other => Err(other.into()),
            };
        }
        let mut record = release::parse_status(&out.stdout)?;
        if record.info.chart_name.is_empty() {
            let mut meta = HelmCommand::new([
                "get",
                "metadata",
                release,
                "--namespace",
                &self.scope.namespace,
                "--output",
                "json",
            ]);
            meta = meta.args(["--revision", &record.info.revision.to_string()]);
            let out = self.helm(session, &meta).await?;
            if out.success {
                release::apply_metadata(&mut record.info, &out.stdout)?;
            } else {
                self.fill_chart_from_history(session, &mut record.info)
                    .await?;
            }
        }
        if record.info.namespace.is_empty() {
            record.info.namespace = self.scope.namespace.clone();
        }
        Ok(Some(record))
    }

    /// helm before 3.13 has no `get metadata`; its history names the chart.
    pub(super) async fn fill_chart_from_history(
        &self,
        session: &Session,
        info: &mut ReleaseInfo,
    ) -> Result<()> {
        let cmd = HelmCommand::new([
            "history",
            &info.name,
            "--namespace",
            &self.scope.namespace,
            "--output",
            "json",
        ]);
        let out = self.helm_ok(session, &cmd).await?;
        let history = release::parse_history(&out.stdout, &info.name, &self.scope.namespace)?;
        if let Some(rev) = history.iter().find(|r| r.revision == info.revision) {
            info.chart_name = rev.chart_name.clone();
            info.chart_version = rev.chart_version.clone();
            info.app_version = rev.app_version.clone();
        }
        Ok(())
    }

    /// `helm template` of the chart, split into objects.
    pub(super) async fn render(
        &self,
        session: &Session,
        release: &str,
        chart: &Chart,
        values: Option<&Path>,
        is_upgrade: bool,
    ) -> Result<Vec<RenderedObject>> {
        let cmd = template_command(release, chart, &self.scope.namespace, values, is_upgrade);
        let out = self.helm_ok(session, &cmd).await?;
        Ok(release::split_manifests(&out.stdout)?)
    }
}

pub(super) fn no_session() -> CapError {
    StepError::unavailable("helm session vanished").into()
}

/// helm's own timeout applies to each Kubernetes operation (a hook, the
/// wait); the process gets twice that and a grace period before it is
/// killed.
pub(super) fn op_deadline(timeout: Duration) -> Duration {
    timeout.saturating_mul(2) + binary::DEADLINE_GRACE
}

pub(super) fn wait_flags(cmd: HelmCommand, version: HelmVersion, wait: bool) -> HelmCommand {
    match (wait, version.is_v4()) {
        (false, _) => cmd,
        (true, true) => cmd.arg("--wait=watcher"),
        (true, false) => cmd.arg("--wait"),
    }
}

pub(super) fn template_command(
    release: &str,
    chart: &Chart,
    namespace: &str,
    values: Option<&Path>,
    is_upgrade: bool,
) -> HelmCommand {
    let mut cmd = HelmCommand::new(["template", release])
        .arg(chart.host.as_os_str())
        .args(["--namespace", namespace, "--include-crds"]);
    if let Some(f) = values {
        cmd = cmd.arg("--values").arg(f.as_os_str());
    }
    if is_upgrade {
        cmd = cmd.arg("--is-upgrade");
    }
    cmd
}
