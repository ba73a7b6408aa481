//! Helm releases in the run's namespace, from charts in the step's own
//! filesystem.
//!
//! What a script pod's `helm` CLI gives, confined: the namespace is always
//! the run's, the chart is a path under `/packages` or `/workspace` (a chart
//! directory or a packaged `.tgz`), and the options are the ones below —
//! no other helm flag exists. Before anything is installed the host renders
//! the chart and checks every object and hook against the run's policy; one
//! refused object (a ClusterRole, another namespace, a `crds/` folder, a
//! kind the policy does not grant) means nothing is installed and the call
//! returns [`Error::Forbidden`](crate::Error::Forbidden) naming each one.
//!
//! ```no_run
//! use std::time::Duration;
//! use stepbox_sdk::prelude::*;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! let values = "image:\n  tag: \"1.27\"\nreplicaCount: 2\n";
//! let options = helm::UpgradeOptions::new().wait(true).timeout(Duration::from_secs(300));
//! let result = helm::upgrade_or_install("web", "/packages/charts/web", values, &options)?;
//! info!("release {} is at revision {} ({})", result.release.name, result.release.revision, result.release.status);
//! for o in &result.objects {
//!     info!("{} {}", o.kubectl_name(), o.action);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Values may also come from any `Serialize` type with
//! [`upgrade_or_install_with`]. Values are never logged by the host, and
//! secrets in them are masked wherever they would show.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::Result;
use crate::kube::Action;
use crate::wit::stepbox::step::helm as wit;

/// The state of a release revision, as helm names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `unknown`
    Unknown,
    /// `deployed`: the current, working revision.
    Deployed,
    /// `uninstalled`
    Uninstalled,
    /// `superseded`: an older revision.
    Superseded,
    /// `failed`
    Failed,
    /// `uninstalling`
    Uninstalling,
    /// `pending-install`
    PendingInstall,
    /// `pending-upgrade`
    PendingUpgrade,
    /// `pending-rollback`
    PendingRollback,
}

impl Status {
    /// helm's word: `"deployed"`, `"pending-install"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Deployed => "deployed",
            Status::Uninstalled => "uninstalled",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::ReleaseStatus> for Status {
    fn from(s: wit::ReleaseStatus) -> Self {
        match s {
            wit::ReleaseStatus::Unknown => Status::Unknown,
            wit::ReleaseStatus::Deployed => Status::Deployed,
            wit::ReleaseStatus::Uninstalled => Status::Uninstalled,
            wit::ReleaseStatus::Superseded => Status::Superseded,
            wit::ReleaseStatus::Failed => Status::Failed,
            wit::ReleaseStatus::Uninstalling => Status::Uninstalling,
            wit::ReleaseStatus::PendingInstall => Status::PendingInstall,
            wit::ReleaseStatus::PendingUpgrade => Status::PendingUpgrade,
            wit::ReleaseStatus::PendingRollback => Status::PendingRollback,
        }
    }
}

/// One revision of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release name.
    pub name: String,
    /// The namespace (the run's).
    pub namespace: String,
    /// The revision (1 for the first install).
    pub revision: u32,
    /// Its state.
    pub status: Status,
    /// The chart's name.
    pub chart_name: String,
    /// The chart's version.
    pub chart_version: String,
    /// The chart's appVersion (may be empty).
    pub app_version: String,
    /// What helm says happened ("Install complete", "Rollback to 1", ...).
    pub description: String,
    /// When it was deployed (RFC 3339), empty if unknown.
    pub updated: String,
}

impl From<wit::Release> for Release {
    fn from(r: wit::Release) -> Self {
        Release {
            name: r.name,
            namespace: r.namespace,
            revision: r.revision,
            status: r.status.into(),
            chart_name: r.chart_name,
            chart_version: r.chart_version,
            app_version: r.app_version,
            description: r.description,
            updated: r.updated,
        }
    }
}

/// One object a release call touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// `apiVersion`, e.g. `"apps/v1"`.
    pub api_version: String,
    /// `kind`, e.g. `"Deployment"`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// What happened to it, in kubectl's words.
    pub action: Action,
    /// It is a hook (`helm.sh/hook`), not part of the release manifest.
    pub hook: bool,
}

impl Touched {
    /// The object as kubectl names it: `deployment.apps/web`, `service/web`.
    pub fn kubectl_name(&self) -> String {
        kubectl_name(&self.api_version, &self.kind, &self.name)
    }
}

fn kubectl_name(api_version: &str, kind: &str, name: &str) -> String {
    let kind = kind.to_lowercase();
    match api_version.split_once('/') {
        Some((group, _)) => format!("{kind}.{group}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Names one object of a release.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// The object as kubectl names it.
    pub fn kubectl_name(&self) -> String {
        kubectl_name(&self.api_version, &self.kind, &self.name)
    }
}

/// The result of [`upgrade_or_install`], [`rollback`] and [`uninstall`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseResult {
    /// The release after the call (after an uninstall: its last revision,
    /// status [`Status::Uninstalled`]).
    pub release: Release,
    /// Every object the call created, changed or deleted, and the release's
    /// objects it left unchanged.
    pub objects: Vec<Touched>,
    /// The chart's rendered NOTES.txt (empty if none).
    pub notes: String,
}

impl ReleaseResult {
    /// The objects with a given action.
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &Touched> {
        self.objects.iter().filter(move |o| o.action == action)
    }
}

impl From<wit::ReleaseResult> for ReleaseResult {
    fn from(r: wit::ReleaseResult) -> Self {
        ReleaseResult {
            release: r.release.into(),
            objects: r
                .objects
                .into_iter()
                .map(|o| Touched {
                    api_version: o.api_version,
                    kind: o.kind,
                    name: o.name,
                    action: match o.action {
                        wit::Change::Created => Action::Created,
                        wit::Change::Configured => Action::Configured,
                        wit::Change::Unchanged => Action::Unchanged,
                        wit::Change::Deleted => Action::Deleted,
                    },
                    hook: o.hook,
                })
                .collect(),
            notes: r.notes,
        }
    }
}

/// What [`status`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDetails {
    /// The current revision.
    pub release: Release,
    /// The objects of its manifest (hooks not included).
    pub objects: Vec<ObjectRef>,
    /// The chart's rendered NOTES.txt.
    pub notes: String,
}

/// Options of [`upgrade_or_install`]. The default: no wait, helm's default
/// timeout (5 minutes), not atomic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpgradeOptions {
    /// Wait until every object is ready before the release counts as
    /// deployed.
    pub wait: bool,
    /// Time allowed for each Kubernetes operation (hooks, the wait), rounded
    /// up to whole seconds; `None`: helm's default.
    pub timeout: Option<Duration>,
    /// On failure, roll back (a first install: uninstall). Implies `wait`.
    pub atomic: bool,
}

impl UpgradeOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`UpgradeOptions::wait`].
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// Sets [`UpgradeOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`UpgradeOptions::atomic`].
    pub fn atomic(mut self, atomic: bool) -> Self {
        self.atomic = atomic;
        self
    }
}

/// Options of [`rollback`] and [`uninstall`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitOptions {
    /// Wait until the objects are ready (rollback) or gone (uninstall).
    pub wait: bool,
    /// Time allowed for each Kubernetes operation, rounded up to whole
    /// seconds; `None`: helm's default.
    pub timeout: Option<Duration>,
}

impl WaitOptions {
    /// The defaults: no wait, helm's default timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`WaitOptions::wait`].
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// Sets [`WaitOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn to_wit(self) -> wit::WaitOptions {
        wit::WaitOptions {
            wait: self.wait,
            timeout_seconds: seconds(self.timeout),
        }
    }
}

/// Whole seconds, rounded up, saturating; 0 for `None`.
fn seconds(timeout: Option<Duration>) -> u32 {
    timeout.map_or(0, |t| {
        let secs = t.as_secs().saturating_add(u64::from(t.subsec_nanos() > 0));
        u32::try_from(secs).unwrap_or(u32::MAX).max(1)
    })
}

/// Installs `chart` as release `release`, or upgrades the release if it
/// exists. `chart` is a path under `/packages` or `/workspace`: a chart
/// directory or a packaged `.tgz`. `values` is YAML (a mapping), or empty
/// for the chart's defaults.
pub fn upgrade_or_install(
    release: &str,
    chart: &str,
    values: &str,
    options: &UpgradeOptions,
) -> Result<ReleaseResult> {
    let options = wit::UpgradeOptions {
        wait: options.wait,
        timeout_seconds: seconds(options.timeout),
        atomic: options.atomic,
    };
    Ok(wit::upgrade_or_install(release, chart, values, options)?.into())
}

/// [`upgrade_or_install`] with values from any `Serialize` type (a
/// `serde_json::Value`, a struct, a map).
///
/// ```no_run
/// use stepbox_sdk::helm;
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// let values = serde_json::json!({"replicaCount": 3, "image": {"tag": "1.27"}});
/// helm::upgrade_or_install_with("web", "/packages/web-0.1.0.tgz", &values, &helm::UpgradeOptions::new())?;
/// # Ok(())
/// # }
/// ```
pub fn upgrade_or_install_with<V: Serialize>(
    release: &str,
    chart: &str,
    values: &V,
    options: &UpgradeOptions,
) -> Result<ReleaseResult> {
    let yaml = serde_yaml_ng::to_string(values)
        .map_err(|e| crate::Error::invalid(format!("the values cannot be written as YAML: {e}")))?;
    upgrade_or_install(release, chart, &yaml, options)
}

/// Removes the release and every object it created.
pub fn uninstall(release: &str, options: &WaitOptions) -> Result<ReleaseResult> {
    Ok(wit::uninstall(release, options.to_wit())?.into())
}

/// Rolls the release back to `revision`, or to the previous revision with
/// `None`. This makes a new revision.
pub fn rollback(
    release: &str,
    revision: Option<u32>,
    options: &WaitOptions,
) -> Result<ReleaseResult> {
    Ok(wit::rollback(release, revision.unwrap_or(0), options.to_wit())?.into())
}

/// The current revision of a release and its objects;
/// [`Error::NotFound`](crate::Error::NotFound) if there is none.
pub fn status(release: &str) -> Result<ReleaseDetails> {
    let d = wit::status(release)?;
    Ok(ReleaseDetails {
        release: d.release.into(),
        objects: d
            .objects
            .into_iter()
            .map(|o| ObjectRef {
                api_version: o.api_version,
                kind: o.kind,
                name: o.name,
            })
            .collect(),
        notes: d.notes,
    })
}

/// The releases in the run's namespace, sorted by name.
pub fn list() -> Result<Vec<Release>> {
    Ok(wit::list()?.into_iter().map(Release::from).collect())
}

/// Every revision of a release, oldest first.
pub fn history(release: &str) -> Result<Vec<Release>> {
    Ok(wit::history(release)?
        .into_iter()
        .map(Release::from)
        .collect())
}

/// Renders `chart` with `values` without installing anything; returns the
/// manifests (CRDs and hooks included) as multi-document YAML.
pub fn template(release: &str, chart: &str, values: &str) -> Result<String> {
    Ok(wit::template(release, chart, values)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up() {
        assert_eq!(seconds(None), 0);
        assert_eq!(seconds(Some(Duration::from_millis(1))), 1);
        assert_eq!(seconds(Some(Duration::ZERO)), 1);
        assert_eq!(seconds(Some(Duration::from_millis(2_500))), 3);
    }

    #[test]
    fn options_build() {
        let o = UpgradeOptions::new()
            .wait(true)
            .atomic(true)
            .timeout(Duration::from_secs(60));
        assert!(o.wait && o.atomic);
        assert_eq!(o.timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn names_read_like_kubectl() {
        let t = Touched {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            action: Action::Created,
            hook: false,
        };
        assert_eq!(t.kubectl_name(), "deployment.apps/web");
        assert_eq!(Status::PendingUpgrade.to_string(), "pending-upgrade");
    }
}
