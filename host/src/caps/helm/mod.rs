//! The `helm` capability: helm releases in the run's namespace, from charts
//! in the step's own filesystem, driven through the real `helm` binary.
//!
//! Every write goes the same way:
//!
//! ```text
//! chart path (/packages/.. or /workspace/..) -> host path, no escape
//! values YAML -> a private file (0600), never logged
//! helm template (same release, namespace, values; --include-crds)
//!   -> every object and hook checked against the policy (check.rs)
//!   -> one refusal: forbidden naming all of them, nothing installed
//! observe the objects (before) -> helm upgrade --install / rollback / uninstall
//!   -> observe again (after) -> plan entries, touched objects, audit line
//! ```
//!
//! helm runs with an environment of its own ([`binary`]): no inherited
//! variables beyond `PATH`, helm's homes in a private per-run directory,
//! `KUBECONFIG` pointing at a kubeconfig the host wrote, `--namespace`
//! always the run's, and no flag beyond those the WIT options map to.
//!
//! Where helm's Kubernetes calls go is [`HelmCluster`]:
//! - [`HelmCluster::Embedded`]: the run's embedded namespace. On the first
//!   helm call the host serves it as a Kubernetes API on loopback
//!   ([`crate::devcluster`]: 127.0.0.1, a fresh CA, a random token) until
//!   the run ends, so helm installs, upgrades, rolls back and uninstalls as
//!   against a cluster, and keeps its release records (Secrets
//!   `sh.helm.release.v1.NAME.vN`) as it always does.
//! - [`HelmCluster::Kubeconfig`]: a real cluster, through a kubeconfig the
//!   host writes for helm (from the run's kubeconfig and context, or the
//!   pod's service account). The plan then reads the objects through the
//!   run's backend, the same cluster.
//!
//! The plan lists the chart's objects (and hooks that remain) as created,
//! configured, unchanged or deleted, from the backend's state before and
//! after each helm call. helm's own release records are bookkeeping, not
//! the step's objects: they are left out of the plan (the release and its
//! revision are in the audit line and the call's result).
//!
//! The check sees what `helm template` renders. A chart whose output
//! depends on the cluster (`lookup`) can render differently at install
//! time; the host then warns in the run log when the release holds an
//! object it did not check.

mod binary;
mod check;
mod host;
mod kubeconfig;
mod release;

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::caps::{CapError, StepError};
use crate::cluster::{ClusterBackend, MemoryCluster};
use crate::plan::{self, Action, PlanEntry};
use crate::policy::{Policy, Verb};
use crate::report::{Decision, Level, LogSource, RunRecorder};

pub use binary::{HelmVersion, MIN_VERSION};
pub(crate) use host::{HasHelm, HelmView};
pub use kubeconfig::KubeconfigError;
pub use release::{
    ObjectKey, ReleaseDetails, ReleaseInfo, ReleaseOutcome, ReleaseStatus, RenderedObject,
    TouchedObject,
};

use binary::{HelmCommand, HelmHome, HelmOutput, HelmProcess};
use check::{Candidate, CheckItem, Intent};
use release::ReleaseRecord;

/// The environment variable naming the helm binary when `--helm` is not
/// given.
pub const HELM_ENV: &str = "STEPBOX_HELM";

/// helm's timeout when the step gives none (as helm's own default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where helm's Kubernetes calls go.
#[derive(Clone)]
pub enum HelmCluster {
    /// The run's embedded namespace, served to helm on loopback by the
    /// host from the first helm call to the end of the run.
    Embedded(MemoryCluster),
    /// A real cluster: the kubeconfig (YAML) helm uses, its current
    /// context the one to use, its file paths absolute
    /// ([`HelmCluster::from_kubeconfig_file`], [`HelmCluster::in_cluster`]
    /// make one). The host writes it to a private file; its exec
    /// credential plugins run with the host's `HOME` and `PATH`.
    Kubeconfig(String),
}

impl std::fmt::Debug for HelmCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded(_) => f.write_str("Embedded"),
            Self::Kubeconfig(_) => f.write_str("Kubeconfig(..)"),
        }
    }
}

/// How the runs of a host use helm.
#[derive(Debug, Clone)]
pub struct HelmConfig {
    /// The helm binary: a path, or a bare name looked up on `PATH`.
    pub binary: PathBuf,
    /// Where helm's Kubernetes calls go.
    pub cluster: HelmCluster,
}

impl HelmConfig {
    /// helm on the embedded namespace `cluster`.
    pub fn embedded(binary: PathBuf, cluster: MemoryCluster) -> Self {
        Self {
            binary,
            cluster: HelmCluster::Embedded(cluster),
        }
    }

    /// The binary to use: `explicit` (`--helm`), else `$STEPBOX_HELM`,
    /// else `helm` on `PATH`.
    pub fn binary_from_env(explicit: Option<PathBuf>) -> PathBuf {
        explicit
            .or_else(|| {
                std::env::var_os(HELM_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from("helm"))
    }
}

/// The host directories behind the step's `/packages` and `/workspace`,
/// where charts are found.
#[derive(Debug, Clone)]
pub struct ChartRoots {
    /// Behind `/packages`.
    pub packages: PathBuf,
    /// Behind `/workspace`.
    pub workspace: PathBuf,
}

/// Options of `upgrade_or_install`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpgradeOptions {
    /// Wait for readiness.
    pub wait: bool,
    /// helm's `--timeout`; `None`: [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// Roll back on failure (implies wait).
    pub atomic: bool,
}

/// Options of `rollback` and `uninstall`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitOptions {
    /// Wait for readiness (or deletion).
    pub wait: bool,
    /// helm's `--timeout`; `None`: [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// The helm processes of one run: binary, version, private home,
/// kubeconfig, and for the embedded namespace the loopback API server.
struct Session {
    home: HelmHome,
    process: HelmProcess,
    version: HelmVersion,
    _server: Option<crate::devcluster::RunningDevCluster>,
}

/// A chart the step named, found on the host.
struct Chart {
    /// The path the step gave.
    guest: String,
    /// Where it is on the host.
    host: PathBuf,
    /// A chart directory with a `crds/` folder (its own or a subchart's).
    crds_dir: Option<String>,
}

/// What the helm capability of one run may use.
pub struct HelmCtx {
    /// The namespace every call is confined to.
    pub namespace: String,
    /// What the run may do.
    pub policy: Arc<Policy>,
    /// Where objects live (read before and after each helm call for the
    /// plan).
    pub backend: Arc<dyn ClusterBackend>,
    /// Audit, plan, log and masking.
    pub recorder: RunRecorder,
    /// Where charts are found.
    pub roots: ChartRoots,
    /// helm, if the run has it.
    pub config: Option<HelmConfig>,
    /// The run changes nothing real. On the embedded namespace that is
    /// always so and helm works; on a live cluster
    /// ([`HelmCluster::Kubeconfig`], server-side dry-run) helm is then
    /// unavailable: it has no dry-run that reports what an upgrade would
    /// change object by object.
    pub dry_run: bool,
    session: tokio::sync::Mutex<Option<Session>>,
}

type CapResult<T> = Result<T, CapError>;

impl HelmCtx {
    /// The helm capability of a run. Nothing starts until the first call.
    pub fn new(
        namespace: String,
        policy: Arc<Policy>,
        backend: Arc<dyn ClusterBackend>,
        recorder: RunRecorder,
        roots: ChartRoots,
        config: Option<HelmConfig>,
        dry_run: bool,
    ) -> Self {
        Self {
            namespace,
            policy,
            backend,
            recorder,
            roots,
            config,
            dry_run,
            session: tokio::sync::Mutex::new(None),
        }
    }

    // ---- the calls -------------------------------------------------------

    /// `helm upgrade --install`: renders, checks every object and hook,
    /// then installs or upgrades.
    pub async fn upgrade_or_install(
        &self,
        release: &str,
        chart: &str,
        values: &str,
        options: UpgradeOptions,
    ) -> CapResult<ReleaseOutcome> {
        const CALL: &str = "helm.upgrade-or-install";
        let target = format!("release {release} chart {chart}");
        let result = self
            .upgrade_inner(CALL, release, chart, values, options)
            .await;
        self.finish(CALL, &target, result)
    }

    async fn upgrade_inner(
        &self,
        call: &str,
        release: &str,
        chart: &str,
        values: &str,
        options: UpgradeOptions,
    ) -> CapResult<ReleaseOutcome> {
        validate_release_name(release)?;
        let chart = self.find_chart(chart)?;
        let mut guard = self.session().await?;
        let session = guard.as_mut().ok_or_else(no_session)?;
        let values_file = self.values_file(session, values)?;
        let write_verbs = [
            Verb::Get,
            Verb::List,
            Verb::Create,
            Verb::Update,
            Verb::Delete,
        ];
        let storage = check::storage_refusal(&self.policy, &self.namespace, &write_verbs);
        if let Some(why) = storage {
            self.recorder
                .audit(call, "helm release records", Decision::Denied, &why);
            return Err(StepError::Forbidden(why).into());
        }
        let current = self.current(session, release, None).await?;
        let rendered = self
            .render(
                session,
                release,
                &chart,
                values_file.as_deref(),
                current.is_some(),
            )
            .await?;

        // What the call may do: every rendered object and hook, and the
        // deletion of the current objects the new chart drops.
        let mut items: Vec<CheckItem<'_>> = rendered
            .iter()
            .map(|o| CheckItem {
                object: &o.object,
                source: o.source.as_deref(),
                intent: if o.is_hook() {
                    Intent::Hook
                } else {
                    Intent::Apply
                },
            })
            .collect();
        let kept: HashSet<_> = rendered
            .iter()
            .filter(|o| !o.is_hook())
            .map(|o| o.key().identity())
            .collect();
        if let Some(cur) = &current {
            items.extend(
                cur.manifest
                    .iter()
                    .filter(|o| !kept.contains(&o.key().identity()))
                    .map(|o| CheckItem {
                        object: &o.object,
                        source: o.source.as_deref(),
                        intent: Intent::Delete,
                    }),
            );
        }
        let mut refusals = Vec::new();
        if let Some(dir) = &chart.crds_dir
            && !self.policy.allows_crds(Verb::Create)
        {
            refusals.push(format!(
                "chart {} has a {dir} folder: CustomResourceDefinitions are cluster-scoped and the step policy does not allow them (a rule must name apiGroups [apiextensions.k8s.io] and resources [customresourcedefinitions])",
                chart.guest
            ));
        }
        let mut candidates = self.check_objects(call, &items, refusals).await?;
        if let Some(cur) = &current {
            candidates.extend(self.stored_candidates(&cur.hooks, true).await);
        }
        let candidates = dedup(candidates);

        let before = self.observe(&candidates).await;
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut cmd = HelmCommand::new(["upgrade", "--install", release])
            .arg(chart.host.as_os_str())
            .args(["--namespace", &self.namespace])
            .args(["--timeout", &format!("{}s", timeout.as_secs().max(1))])
            .deadline(op_deadline(timeout));
        if let Some(f) = &values_file {
            cmd = cmd.arg("--values").arg(f.as_os_str());
        }
        cmd = wait_flags(cmd, session.version, options.wait || options.atomic);
        if options.atomic {
            cmd = cmd.arg(if session.version.is_v4() {
                "--rollback-on-failure"
            } else {
                "--atomic"
            });
        }
        // A helm that failed or was stopped may have changed objects too:
        // the plan records them either way.
        let outcome = self.helm(session, &cmd).await;
        let objects = self.record_changes(&candidates, &before).await;
        let outcome = outcome?;
        if !outcome.success {
            return Err(binary::classify_failure(&outcome.error_message()).into());
        }
        let after = self.current(session, release, None).await?.ok_or_else(|| {
            StepError::Unavailable(format!(
                "helm reported success, but release {release} is not there"
            ))
        })?;
        self.warn_unchecked(&after, &rendered);
        Ok(ReleaseOutcome {
            release: after.info,
            objects,
            notes: after.notes,
        })
    }

    /// `helm uninstall`: checks the deletion of every object of the
    /// release, then uninstalls.
    pub async fn uninstall(
        &self,
        release: &str,
        options: WaitOptions,
    ) -> CapResult<ReleaseOutcome> {
        const CALL: &str = "helm.uninstall";
        let result = self.uninstall_inner(CALL, release, options).await;
        self.finish(CALL, &format!("release {release}"), result)
    }

    async fn uninstall_inner(
        &self,
        call: &str,
        release: &str,
        options: WaitOptions,
    ) -> CapResult<ReleaseOutcome> {
        validate_release_name(release)?;
        let mut guard = self.session().await?;
        let session = guard.as_mut().ok_or_else(no_session)?;
        self.storage_check(call, &[Verb::Get, Verb::List, Verb::Update, Verb::Delete])?;
        let current = self
            .current(session, release, None)
            .await?
            .ok_or_else(|| self.release_missing(release))?;
        let mut items: Vec<CheckItem<'_>> = current
            .manifest
            .iter()
            .map(|o| CheckItem {
                object: &o.object,
                source: o.source.as_deref(),
                intent: Intent::Delete,
            })
            .collect();
        items.extend(
            current
                .hooks
                .iter()
                .filter(|h| runs_on(h, "delete"))
                .map(|h| CheckItem {
                    object: &h.object,
                    source: h.source.as_deref(),
                    intent: Intent::Hook,
                }),
        );
        let mut candidates = self.check_objects(call, &items, Vec::new()).await?;
        candidates.extend(self.stored_candidates(&current.hooks, true).await);
        let candidates = dedup(candidates);

        let before = self.observe(&candidates).await;
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut cmd = HelmCommand::new(["uninstall", release])
            .args(["--namespace", &self.namespace])
            .args(["--timeout", &format!("{}s", timeout.as_secs().max(1))])
            .deadline(op_deadline(timeout));
        cmd = wait_flags(cmd, session.version, options.wait);
        // A helm that failed or was stopped may have changed objects too:
        // the plan records them either way.
        let outcome = self.helm(session, &cmd).await;
        let objects = self.record_changes(&candidates, &before).await;
        let outcome = outcome?;
        if !outcome.success {
            return Err(binary::classify_failure(&outcome.error_message()).into());
        }
        let mut info = current.info;
        info.status = ReleaseStatus::Uninstalled;
        info.description = "Uninstallation complete".to_string();
        Ok(ReleaseOutcome {
            release: info,
            objects,
            notes: String::new(),
        })
    }

    /// `helm rollback`: checks the objects of the revision rolled back to
    /// (and the deletion of those it drops), then rolls back.
    pub async fn rollback(
        &self,
        release: &str,
        revision: u32,
        options: WaitOptions,
    ) -> CapResult<ReleaseOutcome> {
        const CALL: &str = "helm.rollback";
        let target = match revision {
            0 => format!("release {release} to the previous revision"),
            r => format!("release {release} to revision {r}"),
        };
        let result = self.rollback_inner(CALL, release, revision, options).await;
        self.finish(CALL, &target, result)
    }

    async fn rollback_inner(
        &self,
        call: &str,
        release: &str,
        revision: u32,
        options: WaitOptions,
    ) -> CapResult<ReleaseOutcome> {
        validate_release_name(release)?;
        let mut guard = self.session().await?;
        let session = guard.as_mut().ok_or_else(no_session)?;
        self.storage_check(
            call,
            &[
                Verb::Get,
                Verb::List,
                Verb::Create,
                Verb::Update,
                Verb::Delete,
            ],
        )?;
        let current = self
            .current(session, release, None)
            .await?
            .ok_or_else(|| self.release_missing(release))?;
        let wanted = match revision {
            0 if current.info.revision <= 1 => {
                return Err(StepError::Invalid(format!(
                    "release {release} has only revision {}: there is no previous revision to roll back to",
                    current.info.revision
                ))
                .into());
            }
            0 => current.info.revision - 1,
            r => r,
        };
        let goal = self.current(session, release, Some(wanted)).await?.ok_or_else(|| {
            StepError::NotFound(format!(
                "release {release} has no revision {wanted} in namespace {:?} (its current revision is {})",
                self.namespace, current.info.revision
            ))
        })?;
        let kept: HashSet<_> = goal.manifest.iter().map(|o| o.key().identity()).collect();
        let mut items: Vec<CheckItem<'_>> = goal
            .manifest
            .iter()
            .map(|o| CheckItem {
                object: &o.object,
                source: o.source.as_deref(),
                intent: Intent::Apply,
            })
            .collect();
        items.extend(
            goal.hooks
                .iter()
                .filter(|h| runs_on(h, "rollback"))
                .map(|h| CheckItem {
                    object: &h.object,
                    source: h.source.as_deref(),
                    intent: Intent::Hook,
                }),
        );
        items.extend(
            current
                .manifest
                .iter()
                .filter(|o| !kept.contains(&o.key().identity()))
                .map(|o| CheckItem {
                    object: &o.object,
                    source: o.source.as_deref(),
                    intent: Intent::Delete,
                }),
        );
        let mut candidates = self.check_objects(call, &items, Vec::new()).await?;
        candidates.extend(self.stored_candidates(&current.hooks, true).await);
        let candidates = dedup(candidates);

        let before = self.observe(&candidates).await;
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut cmd = HelmCommand::new(["rollback", release, &wanted.to_string()])
            .args(["--namespace", &self.namespace])
            .args(["--timeout", &format!("{}s", timeout.as_secs().max(1))])
            .deadline(op_deadline(timeout));
        cmd = wait_flags(cmd, session.version, options.wait);
        // A helm that failed or was stopped may have changed objects too:
        // the plan records them either way.
        let outcome = self.helm(session, &cmd).await;
        let objects = self.record_changes(&candidates, &before).await;
        let outcome = outcome?;
        if !outcome.success {
            return Err(binary::classify_failure(&outcome.error_message()).into());
        }
        let after = self
            .current(session, release, None)
            .await?
            .ok_or_else(|| self.release_missing(release))?;
        Ok(ReleaseOutcome {
            release: after.info,
            objects,
            notes: after.notes,
        })
    }

    /// `helm status`: the current revision and its objects.
    pub async fn status(&self, release: &str) -> CapResult<ReleaseDetails> {
        const CALL: &str = "helm.status";
        let result = async {
            validate_release_name(release)?;
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            self.storage_check(CALL, &[Verb::Get, Verb::List])?;
            let record = self
                .current(session, release, None)
                .await?
                .ok_or_else(|| self.release_missing(release))?;
            Ok(ReleaseDetails {
                release: record.info,
                objects: record.manifest.iter().map(RenderedObject::key).collect(),
                notes: record.notes,
            })
        }
        .await;
        self.finish(CALL, &format!("release {release}"), result)
    }

    /// `helm list`: the releases of the namespace, sorted by name.
    pub async fn list(&self) -> CapResult<Vec<ReleaseInfo>> {
        const CALL: &str = "helm.list";
        let result = async {
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            self.storage_check(CALL, &[Verb::Get, Verb::List])?;
            let cmd = HelmCommand::new([
                "list",
                "--namespace",
                &self.namespace,
                "--output",
                "json",
                "--max",
                "0",
            ]);
            let out = self.helm_ok(session, &cmd).await?;
            let mut releases = release::parse_list(&out.stdout)?;
            releases.retain(|r| r.namespace.is_empty() || r.namespace == self.namespace);
            Ok(releases)
        }
        .await;
        self.finish(CALL, "releases", result)
    }

    /// `helm history`: every revision of a release, oldest first.
    pub async fn history(&self, release: &str) -> CapResult<Vec<ReleaseInfo>> {
        const CALL: &str = "helm.history";
        let result = async {
            validate_release_name(release)?;
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            self.storage_check(CALL, &[Verb::Get, Verb::List])?;
            let cmd = HelmCommand::new([
                "history",
                release,
                "--namespace",
                &self.namespace,
                "--output",
                "json",
            ]);
            let out = self.helm(session, &cmd).await?;
            if !out.success {
                return Err(match binary::classify_failure(&out.error_message()) {
                    StepError::NotFound(_) => self.release_missing(release),
                    other => other.into(),
                });
            }
            Ok(release::parse_history(
                &out.stdout,
                release,
                &self.namespace,
            )?)
        }
        .await;
        self.finish(CALL, &format!("release {release}"), result)
    }

    /// `helm template`: renders without installing; returns helm's
    /// multi-document YAML (CRDs and hooks included). Nothing is checked:
    /// nothing is changed.
    pub async fn template(&self, release: &str, chart: &str, values: &str) -> CapResult<String> {
        const CALL: &str = "helm.template";
        let result = async {
            validate_release_name(release)?;
            let chart = self.find_chart(chart)?;
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            let values_file = self.values_file(session, values)?;
            let out = self
                .helm_ok(
                    session,
                    &template_command(
                        release,
                        &chart,
                        &self.namespace,
                        values_file.as_deref(),
                        false,
                    ),
                )
                .await?;
            Ok(out.stdout)
        }
        .await;
        self.finish(CALL, &format!("release {release} chart {chart}"), result)
    }

    // ---- helm processes ---------------------------------------------------

    /// The run's session, started on first use.
    async fn session(&self) -> CapResult<tokio::sync::MutexGuard<'_, Option<Session>>> {
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            *guard = Some(self.start_session().await?);
        }
        Ok(guard)
    }

    async fn start_session(&self) -> CapResult<Session> {
        let Some(config) = &self.config else {
            return Err(StepError::Unavailable(
                "this run has no helm: helm needs the embedded namespace or a kubeconfig (the host was started without one)".into(),
            )
            .into());
        };
        if self.dry_run && matches!(config.cluster, HelmCluster::Kubeconfig(_)) {
            return Err(StepError::Unavailable(
                "helm is not available in a server-side dry-run: helm would change the cluster (run on the embedded namespace to try a chart)".into(),
            )
            .into());
        }
        let binary = binary::locate(&config.binary)?;
        let home = HelmHome::create().map_err(|e| {
            StepError::Unavailable(format!("cannot create a private directory for helm: {e}"))
        })?;
        let (kubeconfig_yaml, server, host_home) = match &config.cluster {
            HelmCluster::Embedded(cluster) => {
                let server = crate::devcluster::DevCluster::new(cluster.clone())
                    .namespace(self.namespace.clone())
                    .start()
                    .await
                    .map_err(|e| {
                        StepError::Unavailable(format!(
                            "cannot serve the embedded namespace to helm: {e}"
                        ))
                    })?;
                (server.kubeconfig_yaml(&self.namespace), Some(server), false)
            }
            HelmCluster::Kubeconfig(yaml) => (yaml.clone(), None, true),
        };
        let kubeconfig = home
            .write_private("kubeconfig", &kubeconfig_yaml)
            .map_err(|e| StepError::Unavailable(format!("cannot write helm's kubeconfig: {e}")))?;
        let process = HelmProcess::new(binary, &home, &kubeconfig, host_home);
        let out = process
            .run(&HelmCommand::new(["version", "--template", "{{.Version}}"]))
            .await?;
        let version = HelmVersion::parse(&out.stdout)
            .filter(|_| out.success)
            .ok_or_else(|| {
                StepError::Unavailable(format!(
                    "{} does not look like helm (`helm version` printed {:?})",
                    process.binary.display(),
                    out.stdout.trim()
                ))
            })?;
        if version < MIN_VERSION {
            return Err(StepError::Unavailable(format!(
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
            _server: server,
        })
    }

    /// Runs helm, logging the command, its exit and its stderr (masked) at
    /// debug level.
    async fn helm(&self, session: &Session, cmd: &HelmCommand) -> CapResult<HelmOutput> {
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
    async fn helm_ok(&self, session: &Session, cmd: &HelmCommand) -> CapResult<HelmOutput> {
        let out = self.helm(session, cmd).await?;
        if out.success {
            Ok(out)
        } else {
            Err(binary::classify_failure(&out.error_message()).into())
        }
    }

    fn log(&self, message: &str) -> CapResult<()> {
        Ok(self
            .recorder
            .log(Level::Debug, LogSource::Helm, &format!("helm: {message}"))?)
    }

    /// The current release (or revision `revision`), `None` when there is
    /// none. Chart fields come from `helm get metadata` when `status` (helm
    /// 4) leaves them out.
    async fn current(
        &self,
        session: &Session,
        release: &str,
        revision: Option<u32>,
    ) -> CapResult<Option<ReleaseRecord>> {
        let mut cmd = HelmCommand::new([
            "status",
            release,
            "--namespace",
            &self.namespace,
            "--output",
            "json",
        ]);
        if let Some(r) = revision {
            cmd = cmd.args(["--revision", &r.to_string()]);
        }
        let out = self.helm(session, &cmd).await?;
        if !out.success {
            return match binary::classify_failure(&out.error_message()) {
                StepError::NotFound(_) => Ok(None),
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
                &self.namespace,
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
            record.info.namespace = self.namespace.clone();
        }
        Ok(Some(record))
    }

    /// helm before 3.13 has no `get metadata`; its history names the chart.
    async fn fill_chart_from_history(
        &self,
        session: &Session,
        info: &mut ReleaseInfo,
    ) -> CapResult<()> {
        let cmd = HelmCommand::new([
            "history",
            &info.name,
            "--namespace",
            &self.namespace,
            "--output",
            "json",
        ]);
        let out = self.helm_ok(session, &cmd).await?;
        let history = release::parse_history(&out.stdout, &info.name, &self.namespace)?;
        if let Some(rev) = history.iter().find(|r| r.revision == info.revision) {
            info.chart_name = rev.chart_name.clone();
            info.chart_version = rev.chart_version.clone();
            info.app_version = rev.app_version.clone();
        }
        Ok(())
    }

    /// `helm template` of the chart, split into objects.
    async fn render(
        &self,
        session: &Session,
        release: &str,
        chart: &Chart,
        values: Option<&Path>,
        is_upgrade: bool,
    ) -> CapResult<Vec<RenderedObject>> {
        let cmd = template_command(release, chart, &self.namespace, values, is_upgrade);
        let out = self.helm_ok(session, &cmd).await?;
        Ok(release::split_manifests(&out.stdout)?)
    }

    // ---- the step's inputs ------------------------------------------------

    /// Maps the step's chart path to the host and checks it is a chart that
    /// stays inside the step's filesystem.
    fn find_chart(&self, guest: &str) -> CapResult<Chart> {
        let path = Path::new(guest);
        let (root, guest_root, rest) =
            if let Ok(rest) = path.strip_prefix(crate::caps::fs::PACKAGES_GUEST_PATH) {
                (
                    &self.roots.packages,
                    crate::caps::fs::PACKAGES_GUEST_PATH,
                    rest,
                )
            } else if let Ok(rest) = path.strip_prefix(crate::caps::fs::WORKSPACE_GUEST_PATH) {
                (
                    &self.roots.workspace,
                    crate::caps::fs::WORKSPACE_GUEST_PATH,
                    rest,
                )
            } else {
                return Err(StepError::Invalid(format!(
                    "chart path {guest:?} must be absolute and under {} or {}",
                    crate::caps::fs::PACKAGES_GUEST_PATH,
                    crate::caps::fs::WORKSPACE_GUEST_PATH
                ))
                .into());
            };
        let mut relative = PathBuf::new();
        for c in rest.components() {
            match c {
                Component::Normal(s) => relative.push(s),
                Component::CurDir => {}
                _ => {
                    return Err(StepError::Forbidden(format!(
                        "chart path {guest:?} leaves {guest_root}"
                    ))
                    .into());
                }
            }
        }
        let host = root.join(&relative);
        let meta = std::fs::metadata(&host).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StepError::NotFound(format!("chart {guest} does not exist"))
            }
            _ => StepError::Invalid(format!("chart {guest}: {e}")),
        })?;
        let root_real = std::fs::canonicalize(root)
            .map_err(|e| StepError::Unavailable(format!("{guest_root}: {e}")))?;
        let host_real = std::fs::canonicalize(&host)
            .map_err(|e| StepError::Invalid(format!("chart {guest}: {e}")))?;
        if !host_real.starts_with(&root_real) {
            return Err(StepError::Forbidden(format!(
                "chart {guest} is a link that leaves {guest_root}"
            ))
            .into());
        }
        if meta.is_dir() {
            if !host_real.join("Chart.yaml").is_file() {
                return Err(StepError::Invalid(format!(
                    "{guest} is not a chart: it has no Chart.yaml (a chart is a directory with Chart.yaml, or a packaged .tgz)"
                ))
                .into());
            }
            let crds_dir = scan_chart_dir(&host_real, &root_real, guest, guest_root)?;
            Ok(Chart {
                guest: guest.to_string(),
                host: host_real,
                crds_dir,
            })
        } else if guest.ends_with(".tgz") || guest.ends_with(".tar.gz") {
            Ok(Chart {
                guest: guest.to_string(),
                host: host_real,
                crds_dir: None,
            })
        } else {
            Err(StepError::Invalid(format!(
                "{guest} is not a chart: a chart is a directory with Chart.yaml, or a packaged .tgz"
            ))
            .into())
        }
    }

    /// Checks the values are a YAML mapping and writes them to a private
    /// file for helm (`None` when empty).
    fn values_file(&self, session: &Session, values: &str) -> CapResult<Option<PathBuf>> {
        if values.trim().is_empty() {
            return Ok(None);
        }
        if values.len() > crate::manifest::MAX_MANIFEST_BYTES {
            return Err(StepError::Invalid(format!(
                "the values are {} bytes, more than the {} allowed",
                values.len(),
                crate::manifest::MAX_MANIFEST_BYTES
            ))
            .into());
        }
        match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(values) {
            Ok(serde_yaml_ng::Value::Mapping(_) | serde_yaml_ng::Value::Null) => {}
            Ok(other) => {
                let what = match other {
                    serde_yaml_ng::Value::Sequence(_) => "a list",
                    serde_yaml_ng::Value::String(_) => "a string",
                    serde_yaml_ng::Value::Number(_) => "a number",
                    serde_yaml_ng::Value::Bool(_) => "a boolean",
                    _ => "a tagged value",
                };
                return Err(StepError::Invalid(format!(
                    "the values must be a YAML mapping (key: value), not {what}"
                ))
                .into());
            }
            Err(e) => {
                return Err(
                    StepError::Invalid(format!("the values are not valid YAML: {e}")).into(),
                );
            }
        }
        let path = session
            .home
            .write_private("values.yaml", values)
            .map_err(|e| {
                StepError::Unavailable(format!("cannot write the values for helm: {e}"))
            })?;
        Ok(Some(path))
    }

    // ---- policy -----------------------------------------------------------

    fn storage_check(&self, call: &str, verbs: &[Verb]) -> CapResult<()> {
        match check::storage_refusal(&self.policy, &self.namespace, verbs) {
            None => Ok(()),
            Some(why) => {
                self.recorder
                    .audit(call, "helm release records", Decision::Denied, &why);
                Err(StepError::Forbidden(why).into())
            }
        }
    }

    /// Objects of a stored release (hooks) to observe, without a check:
    /// helm only deletes or recreates them under the hook rules already
    /// checked for the call.
    async fn stored_candidates(&self, objects: &[RenderedObject], hook: bool) -> Vec<Candidate> {
        let mut out = Vec::new();
        for o in objects {
            let key = o.key();
            if let Ok(res) = self.backend.resource(&key.api_version, &key.kind).await
                && res.namespaced
            {
                out.push(Candidate { res, key, hook });
            }
        }
        out
    }

    // ---- plan -------------------------------------------------------------

    /// Reads each candidate from the backend (`None`: absent or unreadable).
    async fn observe(&self, candidates: &[Candidate]) -> Vec<Option<Value>> {
        let mut out = Vec::with_capacity(candidates.len());
        for c in candidates {
            match self.backend.get(&c.res, &self.namespace, &c.key.name).await {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(object = %c.key, "helm: cannot read for the plan: {e}");
                    out.push(None);
                }
            }
        }
        out
    }

    /// Compares the candidates with `before`, records plan entries for what
    /// changed and returns the touched objects.
    async fn record_changes(
        &self,
        candidates: &[Candidate],
        before: &[Option<Value>],
    ) -> Vec<TouchedObject> {
        let after = self.observe(candidates).await;
        let mut touched = Vec::new();
        for ((c, b), a) in candidates.iter().zip(before).zip(&after) {
            let (action, entry) = match (b, a) {
                (None, None) => continue,
                // A hook left as it was is not something this call did.
                (Some(b), Some(a)) if c.hook && plan::classify(Some(b), a) == Action::Unchanged => {
                    continue;
                }
                (None, Some(a)) => (Action::Created, PlanEntry::for_change(None, a)),
                (Some(b), None) => (Action::Deleted, PlanEntry::deleted(b)),
                (Some(b), Some(a)) => {
                    let entry = PlanEntry::for_change(Some(b), a);
                    (entry.action, entry)
                }
            };
            self.recorder.plan(entry);
            touched.push(TouchedObject {
                key: c.key.clone(),
                action,
                hook: c.hook,
            });
        }
        touched
    }

    /// Warns when the installed release holds objects the check did not
    /// see (a chart using `lookup` or cluster capabilities).
    fn warn_unchecked(&self, installed: &ReleaseRecord, rendered: &[RenderedObject]) {
        let seen: HashSet<_> = rendered.iter().map(|o| o.key().identity()).collect();
        for o in installed.manifest.iter().chain(&installed.hooks) {
            let key = o.key();
            if !seen.contains(&key.identity()) {
                let msg = format!(
                    "release {} holds {key}, which `helm template` did not render before the install (the chart depends on the cluster)",
                    installed.info.name
                );
                let _ = self
                    .recorder
                    .log(Level::Warn, LogSource::Helm, &format!("helm: {msg}"));
            }
        }
    }

    // ---- results ----------------------------------------------------------

    fn release_missing(&self, release: &str) -> CapError {
        StepError::NotFound(format!(
            "release {release} not found in namespace {:?}",
            self.namespace
        ))
        .into()
    }

    /// Writes the call's audit line and masks the error.
    fn finish<T>(&self, call: &str, target: &str, result: CapResult<T>) -> CapResult<T> {
        let (decision, reason) = match &result {
            Ok(_) => (Decision::Allowed, String::new()),
            Err(CapError::Step(e @ StepError::Forbidden(_))) => (Decision::Denied, e.to_string()),
            Err(CapError::Step(e)) => (Decision::Allowed, e.to_string()),
            Err(CapError::Limit(l)) => (Decision::Allowed, l.to_string()),
            Err(CapError::Trap(e)) => (Decision::Allowed, format!("{e:#}")),
        };
        let reason = self.scrub_paths(&reason);
        self.recorder.audit(call, target, decision, &reason);
        result.map_err(|e| match e {
            CapError::Step(s) => {
                let msg = self.recorder.mask(&self.scrub_paths(s.message()));
                CapError::Step(replace_message(s, msg))
            }
            other => other,
        })
    }

    /// Host paths in helm's words become the step's (`/packages/...`) or
    /// placeholders.
    fn scrub(&self, session: &Session, text: &str) -> String {
        let home = session.home.path().to_string_lossy().into_owned();
        let text = text.replace(&format!("{home}/values.yaml"), "<values>");
        let text = text.replace(&format!("{home}/kubeconfig"), "<kubeconfig>");
        self.scrub_paths(&text.replace(&home, "<helm-home>"))
    }

    fn scrub_paths(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (root, guest) in [
            (&self.roots.packages, crate::caps::fs::PACKAGES_GUEST_PATH),
            (&self.roots.workspace, crate::caps::fs::WORKSPACE_GUEST_PATH),
        ] {
            for form in [Some(root.clone()), std::fs::canonicalize(root).ok()]
                .into_iter()
                .flatten()
            {
                let host = form.to_string_lossy().into_owned();
                if !host.is_empty() && host != "/" {
                    text = text.replace(&host, guest);
                }
            }
        }
        text
    }
}

fn replace_message(e: StepError, msg: String) -> StepError {
    match e {
        StepError::Forbidden(_) => StepError::Forbidden(msg),
        StepError::NotFound(_) => StepError::NotFound(msg),
        StepError::Conflict(_) => StepError::Conflict(msg),
        StepError::Invalid(_) => StepError::Invalid(msg),
        StepError::Timeout(_) => StepError::Timeout(msg),
        StepError::Unavailable(_) => StepError::Unavailable(msg),
        StepError::LimitExceeded(_) => StepError::LimitExceeded(msg),
    }
}

fn no_session() -> CapError {
    StepError::Unavailable("helm session vanished".into()).into()
}

/// helm's own timeout applies to each Kubernetes operation (a hook, the
/// wait); the process gets twice that and a grace period before it is
/// killed.
fn op_deadline(timeout: Duration) -> Duration {
    timeout.saturating_mul(2) + binary::DEADLINE_GRACE
}

fn wait_flags(cmd: HelmCommand, version: HelmVersion, wait: bool) -> HelmCommand {
    match (wait, version.is_v4()) {
        (false, _) => cmd,
        (true, true) => cmd.arg("--wait=watcher"),
        (true, false) => cmd.arg("--wait"),
    }
}

fn template_command(
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

/// Whether a hook runs on an event of `kind` (`delete`: pre-/post-delete).
fn runs_on(hook: &RenderedObject, kind: &str) -> bool {
    hook.hook_events
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|e| e.strip_prefix("pre-").or_else(|| e.strip_prefix("post-")) == Some(kind))
}

fn dedup(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut seen = HashSet::new();
    candidates
        .into_iter()
        .filter(|c| seen.insert(c.key.identity()))
        .collect()
}

/// Release names as helm accepts them: DNS-1123 subdomain-like, at most 53
/// characters (helm adds suffixes to them for its records).
fn validate_release_name(name: &str) -> CapResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 53
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(StepError::Invalid(format!(
            "invalid release name {name:?}: use at most 53 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        ))
        .into())
    }
}

/// Largest number of files the host walks in a chart directory.
const MAX_CHART_FILES: usize = 10_000;

/// Walks a chart directory: every link must stay inside the step's
/// filesystem; returns the `crds/` folder (of the chart or a subchart) if
/// there is one with files in it.
fn scan_chart_dir(
    dir: &Path,
    root: &Path,
    guest: &str,
    guest_root: &str,
) -> CapResult<Option<String>> {
    let mut crds = None;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| StepError::Invalid(format!("chart {guest}: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| StepError::Invalid(format!("chart {guest}: {e}")))?;
            seen += 1;
            if seen > MAX_CHART_FILES {
                return Err(StepError::Invalid(format!(
                    "chart {guest} has more than {MAX_CHART_FILES} files"
                ))
                .into());
            }
            let path = entry.path();
            let ty = entry
                .file_type()
                .map_err(|e| StepError::Invalid(format!("chart {guest}: {e}")))?;
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if ty.is_symlink() {
                let real = std::fs::canonicalize(&path).map_err(|e| {
                    StepError::Invalid(format!("chart {guest}: {rel} is a broken link ({e})"))
                })?;
                if !real.starts_with(root) {
                    return Err(StepError::Forbidden(format!(
                        "chart {guest}: {rel} is a link that leaves {guest_root}"
                    ))
                    .into());
                }
                continue;
            }
            if ty.is_dir() {
                let name = entry.file_name();
                let is_crds = name == "crds" && {
                    // crds/ of the chart, or charts/<sub>/crds/
                    let parent = path
                        .parent()
                        .and_then(|p| p.strip_prefix(dir).ok())
                        .map(Path::to_path_buf);
                    parent.as_deref().is_some_and(|p| {
                        p.as_os_str().is_empty()
                            || (p.parent().and_then(Path::file_name) == Some("charts".as_ref())
                                && p.components().count() >= 2)
                    })
                };
                if is_crds
                    && crds.is_none()
                    && std::fs::read_dir(&path)
                        .map(|mut r| r.next().is_some())
                        .unwrap_or(false)
                {
                    crds = Some(format!("{rel}/"));
                }
                stack.push(path);
            }
        }
    }
    Ok(crds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names() {
        assert!(validate_release_name("web").is_ok());
        assert!(validate_release_name("web-1.prod").is_ok());
        for bad in [
            "",
            "Web",
            "-web",
            "web-",
            "--set=x",
            &"a".repeat(54),
            "a..b",
            "a/b",
        ] {
            assert!(validate_release_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hooks_by_event() {
        let hook = |events: &[&str]| RenderedObject {
            object: serde_json::json!({}),
            source: None,
            hook_events: Some(events.iter().map(|e| e.to_string()).collect()),
        };
        assert!(runs_on(&hook(&["pre-delete"]), "delete"));
        assert!(runs_on(
            &hook(&["pre-install", "post-rollback"]),
            "rollback"
        ));
        assert!(!runs_on(&hook(&["pre-install", "test"]), "delete"));
    }

    #[test]
    fn crds_folders_are_found() {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let chart = root.join("c");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: c\n").unwrap();
        assert_eq!(
            scan_chart_dir(&chart, &root, "/packages/c", "/packages").unwrap(),
            None
        );
        std::fs::create_dir_all(chart.join("charts/sub/crds")).unwrap();
        std::fs::write(chart.join("charts/sub/crds/a.yaml"), "x").unwrap();
        assert_eq!(
            scan_chart_dir(&chart, &root, "/packages/c", "/packages")
                .unwrap()
                .as_deref(),
            Some("charts/sub/crds/")
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", chart.join("templates/leak.txt")).unwrap();
            let err = scan_chart_dir(&chart, &root, "/packages/c", "/packages").unwrap_err();
            assert!(matches!(err, CapError::Step(StepError::Forbidden(_))));
        }
    }
}
