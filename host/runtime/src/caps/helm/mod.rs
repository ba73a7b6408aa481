//! The `helm` capability: helm releases in the run's namespace, from charts
//! in the step's own filesystem, driven through the real `helm` binary.
//!
//! Every write goes the same way:
//!
//! ```text
//! chart path (/packages/.. or /workspace/..) -> host path, no escape
//! values YAML -> a private file (0600), never logged
//! helm template (same release, namespace, values; --include-crds)
//!   -> every object and hook through the run's admission (check.rs)
//!   -> one refusal: forbidden naming all of them, nothing installed
//! helm upgrade --install / rollback / uninstall
//!   -> every request helm sends: the gateway -> the same admission
//!        refused: 403, helm fails with `forbidden` naming the object
//!        (with `atomic`, helm rolls the release back)
//!        allowed: forwarded to the cluster; a write becomes a plan entry
//!   -> touched objects, audit line
//! ```
//!
//! helm runs with an environment of its own (`binary`): no inherited
//! variables beyond `PATH`, helm's homes in a private per-run directory,
//! `KUBECONFIG` pointing at the run's gateway, `--namespace` always the
//! run's, and no flag beyond those the WIT options map to.
//!
//! helm never talks to a cluster directly. On its first call the host
//! starts a gateway ([`stepbox_apiserver::Gateway`]: 127.0.0.1, a CA of
//! its own, a random token) in front of [`HelmCluster`]: the embedded
//! namespace, or the real cluster through a client holding the run's
//! credentials. Every request passes the run's admission there, so a chart
//! can neither read nor change what a `kube` call of the same run could
//! not, even when it renders differently at install time (`lookup`).
//!
//! The plan lists every object helm wrote, write by write, as the gateway
//! saw it (see `writes`). helm's own release records are bookkeeping,
//! not the step's objects: they are audited but left out of the plan (the
//! release and its revision are in the audit line and the call's result).

mod binary;
mod chart;
mod check;
mod host;
mod release;
mod session;
mod writes;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::caps::{CapError, ErrorKind, Result, RunScope, StepError};
use crate::policy::Verb;
use crate::report::Decision;
use stepbox_cluster::MemoryCluster;

pub use binary::{HelmVersion, MIN_VERSION};
pub(crate) use host::add_to_linker;
pub use release::{
    ObjectKey, ReleaseDetails, ReleaseInfo, ReleaseOutcome, ReleaseStatus, RenderedObject,
    TouchedObject,
};

use binary::{HelmCommand, HelmHome, HelmProcess};
use chart::validate_release_name;
use check::{CheckItem, Intent};
use session::{no_session, template_command, wait_flags};
use writes::{HelmWrites, runs_on};

/// The environment variable naming the helm binary when `--helm` is not
/// given.
pub const HELM_ENV: &str = "STEPBOX_HELM";

/// What a write needs on helm's release records (Secrets).
const WRITE_VERBS: [Verb; 5] = [
    Verb::Get,
    Verb::List,
    Verb::Create,
    Verb::Update,
    Verb::Delete,
];

/// helm's timeout when the step gives none (as helm's own default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The cluster behind the gateway helm talks to.
#[derive(Clone)]
pub enum HelmCluster {
    /// The run's embedded namespace.
    Embedded(MemoryCluster),
    /// A real cluster, through a client holding the run's credentials
    /// (helm never sees them).
    Live(kube::Client),
}

impl std::fmt::Debug for HelmCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded(_) => f.write_str("Embedded"),
            Self::Live(_) => f.write_str("Live"),
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

/// The helm processes of one run: binary, version, private home, and the
/// gateway its kubeconfig points at.
struct Session {
    home: HelmHome,
    process: HelmProcess,
    version: HelmVersion,
    _gateway: stepbox_apiserver::RunningServer,
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
    /// The run's namespace, policy, backend and recorder. In a server-side
    /// dry run helm is unavailable: it has no dry run that reports what an
    /// upgrade would change object by object.
    scope: RunScope,
    /// The run's admission, auditing to `writes`: for the checks before
    /// helm runs and for the gateway.
    admission: Admission,
    /// The plan entries of the current call, from the gateway.
    writes: Arc<HelmWrites>,
    /// Where charts are found.
    roots: ChartRoots,
    /// helm, if the run has it.
    config: Option<HelmConfig>,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl HelmCtx {
    /// The helm capability of a run in `scope`, with charts under `roots`
    /// and helm as `config` says (`None`: every call is `unavailable`).
    /// Nothing starts until the first call.
    pub fn new(scope: RunScope, roots: ChartRoots, config: Option<HelmConfig>) -> Self {
        let writes = Arc::new(HelmWrites::new(scope.recorder.clone()));
        let admission = Admission::for_scope(&scope, writes.clone());
        Self {
            admission,
            writes,
            scope,
            roots,
            config,
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
    ) -> Result<ReleaseOutcome> {
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
    ) -> Result<ReleaseOutcome> {
        validate_release_name(release)?;
        let chart = self.find_chart(chart)?;
        let mut guard = self.session().await?;
        let session = guard.as_mut().ok_or_else(no_session)?;
        let values_file = self.values_file(session, values)?;
        self.storage_check(call, &WRITE_VERBS).await?;
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
            && !self.scope.policy.allows_crds(Verb::Create)
        {
            refusals.push(format!(
                "chart {} has a {dir} folder: CustomResourceDefinitions are cluster-scoped and the step policy does not allow them (a rule must name apiGroups [apiextensions.k8s.io] and resources [customresourcedefinitions])",
                chart.guest
            ));
        }
        self.precheck(call, &items, refusals).await?;
        let mut hooks: Vec<RenderedObject> =
            rendered.iter().filter(|o| o.is_hook()).cloned().collect();
        if let Some(cur) = &current {
            hooks.extend(cur.hooks.iter().cloned());
        }

        let mut cmd = self.write_command(
            HelmCommand::new(["upgrade", "--install", release]).arg(chart.host.as_os_str()),
            options.timeout,
        );
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
        let objects = self.guarded_write(session, &cmd, &hooks).await?;
        let after = self.current(session, release, None).await?.ok_or_else(|| {
            StepError::unavailable(format!(
                "helm reported success, but release {release} is not there"
            ))
        })?;
        Ok(ReleaseOutcome {
            release: after.info,
            objects,
            notes: after.notes,
        })
    }

    /// `helm uninstall`: checks the deletion of every object of the
    /// release, then uninstalls.
    pub async fn uninstall(&self, release: &str, options: WaitOptions) -> Result<ReleaseOutcome> {
        const CALL: &str = "helm.uninstall";
        let result = self.uninstall_inner(CALL, release, options).await;
        self.finish(CALL, &format!("release {release}"), result)
    }

    async fn uninstall_inner(
        &self,
        call: &str,
        release: &str,
        options: WaitOptions,
    ) -> Result<ReleaseOutcome> {
        validate_release_name(release)?;
        let mut guard = self.session().await?;
        let session = guard.as_mut().ok_or_else(no_session)?;
        self.storage_check(call, &[Verb::Get, Verb::List, Verb::Update, Verb::Delete])
            .await?;
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
        self.precheck(call, &items, Vec::new()).await?;

        let cmd = wait_flags(
            self.write_command(HelmCommand::new(["uninstall", release]), options.timeout),
            session.version,
            options.wait,
        );
        let objects = self.guarded_write(session, &cmd, &current.hooks).await?;
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
    ) -> Result<ReleaseOutcome> {
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
    ) -> Result<ReleaseOutcome> {
        validate_release_name(release)?;
        let mut guard = self.session().await?;
        let session = guard.as_mut().ok_or_else(no_session)?;
        self.storage_check(call, &WRITE_VERBS).await?;
        let current = self
            .current(session, release, None)
            .await?
            .ok_or_else(|| self.release_missing(release))?;
        let wanted = match revision {
            0 if current.info.revision <= 1 => {
                return Err(StepError::invalid(format!(
                    "release {release} has only revision {}: there is no previous revision to roll back to",
                    current.info.revision
                ))
                .into());
            }
            0 => current.info.revision - 1,
            r => r,
        };
        let goal = self.current(session, release, Some(wanted)).await?.ok_or_else(|| {
            StepError::not_found(format!(
                "release {release} has no revision {wanted} in namespace {:?} (its current revision is {})",
                self.scope.namespace, current.info.revision
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
        self.precheck(call, &items, Vec::new()).await?;

        let cmd = wait_flags(
            self.write_command(
                HelmCommand::new(["rollback", release, &wanted.to_string()]),
                options.timeout,
            ),
            session.version,
            options.wait,
        );
        let objects = self.guarded_write(session, &cmd, &current.hooks).await?;
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
    pub async fn status(&self, release: &str) -> Result<ReleaseDetails> {
        const CALL: &str = "helm.status";
        let result = async {
            validate_release_name(release)?;
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            self.storage_check(CALL, &[Verb::Get, Verb::List]).await?;
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
    pub async fn list(&self) -> Result<Vec<ReleaseInfo>> {
        const CALL: &str = "helm.list";
        let result = async {
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            self.storage_check(CALL, &[Verb::Get, Verb::List]).await?;
            let cmd = HelmCommand::new([
                "list",
                "--namespace",
                &self.scope.namespace,
                "--output",
                "json",
                "--max",
                "0",
            ]);
            let out = self.helm_ok(session, &cmd).await?;
            let mut releases = release::parse_list(&out.stdout)?;
            releases.retain(|r| r.namespace.is_empty() || r.namespace == self.scope.namespace);
            Ok(releases)
        }
        .await;
        self.finish(CALL, "releases", result)
    }

    /// `helm history`: every revision of a release, oldest first.
    pub async fn history(&self, release: &str) -> Result<Vec<ReleaseInfo>> {
        const CALL: &str = "helm.history";
        let result = async {
            validate_release_name(release)?;
            let mut guard = self.session().await?;
            let session = guard.as_mut().ok_or_else(no_session)?;
            self.storage_check(CALL, &[Verb::Get, Verb::List]).await?;
            let cmd = HelmCommand::new([
                "history",
                release,
                "--namespace",
                &self.scope.namespace,
                "--output",
                "json",
            ]);
            let out = self.helm(session, &cmd).await?;
            if !out.success {
                return Err(match binary::classify_failure(&out.error_message()) {
                    e if e.is(ErrorKind::NotFound) => self.release_missing(release),
                    other => other.into(),
                });
            }
            Ok(release::parse_history(
                &out.stdout,
                release,
                &self.scope.namespace,
            )?)
        }
        .await;
        self.finish(CALL, &format!("release {release}"), result)
    }

    /// `helm template`: renders without installing; returns helm's
    /// multi-document YAML (CRDs and hooks included). Nothing is checked:
    /// nothing is changed.
    pub async fn template(&self, release: &str, chart: &str, values: &str) -> Result<String> {
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
                        &self.scope.namespace,
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

    // ---- the guarded write ------------------------------------------------

    /// `cmd` as a write: in the run's namespace, with helm's `--timeout`
    /// (`None`: [`DEFAULT_TIMEOUT`]) and a process deadline just past it.
    fn write_command(&self, cmd: HelmCommand, timeout: Option<Duration>) -> HelmCommand {
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        cmd.args(["--namespace", &self.scope.namespace])
            .args(["--timeout", &format!("{}s", timeout.as_secs().max(1))])
            .deadline(session::op_deadline(timeout))
    }

    /// How every write (upgrade, rollback, uninstall) ends, once what it
    /// will do was checked: run helm, whose requests the gateway admits one
    /// by one and turns into plan entries; the objects it wrote (`hooks`
    /// marked), or helm's error. A helm that failed or was stopped may have
    /// changed objects too: the plan records them either way.
    async fn guarded_write(
        &self,
        session: &Session,
        cmd: &HelmCommand,
        hooks: &[RenderedObject],
    ) -> Result<Vec<TouchedObject>> {
        self.writes.clear();
        let outcome = self.helm(session, cmd).await;
        let objects = self.writes.touched(hooks);
        let outcome = outcome?;
        if !outcome.success {
            return Err(binary::classify_failure(&outcome.error_message()).into());
        }
        Ok(objects)
    }

    // ---- results ----------------------------------------------------------

    fn release_missing(&self, release: &str) -> CapError {
        StepError::not_found(format!(
            "release {release} not found in namespace {:?}",
            self.scope.namespace
        ))
        .into()
    }

    /// Writes the call's audit line and masks the error.
    fn finish<T>(&self, call: &str, target: &str, result: Result<T>) -> Result<T> {
        let (decision, reason) = match &result {
            Ok(_) => (Decision::Allowed, String::new()),
            Err(CapError::Step(e)) if e.is(ErrorKind::Forbidden) => {
                (Decision::Denied, e.to_string())
            }
            Err(CapError::Step(e)) => (Decision::Allowed, e.to_string()),
            Err(CapError::Limit(l)) => (Decision::Allowed, l.to_string()),
            Err(CapError::Trap(e)) => (Decision::Allowed, format!("{e:#}")),
        };
        let reason = self.scrub_paths(&reason);
        self.scope.recorder.audit(call, target, decision, &reason);
        result.map_err(|e| match e {
            CapError::Step(s) => {
                let msg = self.scope.recorder.mask(&self.scrub_paths(s.message()));
                CapError::Step(StepError::new(s.kind, msg))
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

#[cfg(test)]
mod tests {
    use super::*;
    use chart::scan_chart_dir;

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
            assert!(matches!(err, CapError::Step(e) if e.is(ErrorKind::Forbidden)));
        }
    }
}
