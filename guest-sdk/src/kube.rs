//! Kubernetes objects in the run's namespace.
//!
//! Every call works in the namespace of the run: it is never a parameter,
//! and a manifest naming another namespace is refused. Every call is checked
//! against the run's policy first; a refused call returns
//! [`Error::Forbidden`](crate::Error::Forbidden) and changes nothing.
//!
//! There are two layers:
//! - typed helpers over [`k8s_openapi`] types: [`get`], [`list`], [`names`],
//!   [`apply_object`], [`patch`], [`delete`], [`wait`], [`events`], and a
//!   pod's [`logs`];
//! - [`apply`] of YAML/JSON manifest text, and [`raw`] calls that take a
//!   [`KindRef`] and move JSON text, for kinds `k8s_openapi` does not know
//!   (custom resources).
//!
//! ```no_run
//! use std::time::Duration;
//! use stepbox_sdk::prelude::*;
//! use stepbox_sdk::k8s_openapi::api::apps::v1::Deployment;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! for applied in kube::apply(&std::fs::read_to_string("/packages/web.yaml")?)? {
//!     info!("{} {}", applied.kubectl_name(), applied.action);
//! }
//! kube::wait::<Deployment>("web", WaitFor::Rollout, Duration::from_secs(300))?;
//! let web = kube::get::<Deployment>("web")?;
//! info!("web has {:?} ready replicas", web.status.and_then(|s| s.ready_replicas));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::wit::stepbox::step::kube as wit;

/// Names one object kind: `api_version` as in a manifest (`"v1"`,
/// `"apps/v1"`) and `kind` (`"Deployment"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KindRef {
    /// `apiVersion`, e.g. `"apps/v1"`.
    pub api_version: String,
    /// `kind`, e.g. `"Deployment"`.
    pub kind: String,
}

impl KindRef {
    /// A kind by its `apiVersion` and `kind`: `KindRef::new("apps/v1", "Deployment")`.
    pub fn new(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        KindRef {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }

    /// The kind of a `k8s_openapi` type: `KindRef::of::<Deployment>()`.
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        KindRef::new(K::API_VERSION, K::KIND)
    }

    fn to_wit(&self) -> wit::KindRef {
        wit::KindRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
        }
    }
}

impl fmt::Display for KindRef {
    /// Prints `apps/v1 Deployment`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)
    }
}

/// What to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// A workload (Deployment, StatefulSet, DaemonSet) has rolled out its
    /// current generation and every replica is ready; a Job has completed.
    Rollout,
    /// `status.conditions` holds the named condition (`"Available"`,
    /// `"Ready"`, `"Complete"`) with status `"True"`.
    Condition(String),
    /// The object exists.
    Exists,
    /// The object no longer exists.
    Deleted,
}

impl WaitFor {
    /// `WaitFor::Condition` of `name`.
    pub fn condition(name: impl Into<String>) -> Self {
        WaitFor::Condition(name.into())
    }

    fn to_wit(&self) -> wit::WaitFor {
        match self {
            WaitFor::Rollout => wit::WaitFor::Rollout,
            WaitFor::Condition(c) => wit::WaitFor::Condition(c.clone()),
            WaitFor::Exists => wit::WaitFor::Exists,
            WaitFor::Deleted => wit::WaitFor::Deleted,
        }
    }
}

/// What a write did to one object, in kubectl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The object did not exist and was created.
    Created,
    /// The object existed and was changed.
    Configured,
    /// The object existed and the apply changed nothing.
    Unchanged,
    /// The object was deleted.
    Deleted,
}

impl Action {
    /// The kubectl word: `"created"`, `"configured"`, `"unchanged"`, `"deleted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Action> for Action {
    fn from(a: wit::Action) -> Self {
        match a {
            wit::Action::Created => Action::Created,
            wit::Action::Configured => Action::Configured,
            wit::Action::Unchanged => Action::Unchanged,
            wit::Action::Deleted => Action::Deleted,
        }
    }
}

/// The result of an apply for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `apiVersion` of the object, e.g. `"apps/v1"`.
    pub api_version: String,
    /// `kind` of the object, e.g. `"Deployment"`.
    pub kind: String,
    /// `metadata.name` of the object.
    pub name: String,
    /// What the apply did.
    pub action: Action,
    /// The object's `resourceVersion` after the apply.
    pub resource_version: String,
}

impl Applied {
    /// The object as kubectl names it: lowercase kind, `.group` unless it is
    /// in the core group, `/name`: `deployment.apps/web`, `configmap/settings`.
    pub fn kubectl_name(&self) -> String {
        let kind = self.kind.to_lowercase();
        match self.api_version.split_once('/') {
            Some((group, _)) => format!("{kind}.{group}/{}", self.name),
            None => format!("{kind}/{}", self.name),
        }
    }

    /// The object's kind, to pass to [`raw`] calls.
    pub fn kind_ref(&self) -> KindRef {
        KindRef::new(&self.api_version, &self.kind)
    }
}

impl From<wit::AppliedObject> for Applied {
    fn from(o: wit::AppliedObject) -> Self {
        Applied {
            api_version: o.api_version,
            kind: o.kind,
            name: o.name,
            action: o.action.into(),
            resource_version: o.resource_version,
        }
    }
}

/// Server-side apply of YAML or JSON manifests: one or many documents
/// separated by `---`, or a `kind: List`. Every document is checked against
/// the policy before any is applied: one refused document means nothing is
/// applied. Returns one [`Applied`] per object, in order.
pub fn apply(manifests: &str) -> Result<Vec<Applied>> {
    Ok(wit::apply(manifests)?
        .into_iter()
        .map(Applied::from)
        .collect())
}

/// Server-side apply of one typed object (its `apiVersion` and `kind` come
/// from its type; leave `metadata.namespace` unset or the run's namespace).
///
/// ```no_run
/// use stepbox_sdk::kube;
/// use stepbox_sdk::k8s_openapi::api::core::v1::ConfigMap;
/// use stepbox_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// let cm = ConfigMap {
///     metadata: ObjectMeta { name: Some("settings".into()), ..Default::default() },
///     data: Some([("mode".to_string(), "fast".to_string())].into()),
///     ..Default::default()
/// };
/// let applied = kube::apply_object(&cm)?;
/// assert_eq!(applied.kubectl_name(), "configmap/settings");
/// # Ok(())
/// # }
/// ```
pub fn apply_object<K: k8s_openapi::Resource + Serialize>(object: &K) -> Result<Applied> {
    let json = serde_json::to_string(object)?;
    apply(&json)?
        .into_iter()
        .next()
        .ok_or_else(|| crate::Error::invalid(format!("apply of a {} returned no object", K::KIND)))
}

/// Reads the object `name` of kind `K`.
pub fn get<K: k8s_openapi::Resource + DeserializeOwned>(name: &str) -> Result<K> {
    Ok(serde_json::from_str(&raw::get(&KindRef::of::<K>(), name)?)?)
}

/// Lists the objects of kind `K`, optionally filtered by a label selector
/// (`"app=web,tier!=db"`, `"env in (a,b)"`, `"!legacy"`), sorted by name.
pub fn list<K: k8s_openapi::Resource + DeserializeOwned>(
    label_selector: Option<&str>,
) -> Result<Vec<K>> {
    raw::list(&KindRef::of::<K>(), label_selector)?
        .iter()
        .map(|item| Ok(serde_json::from_str(item)?))
        .collect()
}

/// The names of the objects of kind `K` matching a label selector, sorted.
/// Cheaper than [`list`] (in time and in component size): only
/// `metadata.name` of each object is read.
///
/// ```no_run
/// use stepbox_sdk::kube;
/// use stepbox_sdk::k8s_openapi::api::apps::v1::Deployment;
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// for name in kube::names::<Deployment>(Some("team=a"))? {
///     stepbox_sdk::info!("found deployment {name}");
/// }
/// # Ok(())
/// # }
/// ```
pub fn names<K: k8s_openapi::Resource>(label_selector: Option<&str>) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Named {
        metadata: Metadata,
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        name: String,
    }
    let mut names = raw::list(&KindRef::of::<K>(), label_selector)?
        .iter()
        .map(|item| Ok(serde_json::from_str::<Named>(item)?.metadata.name))
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// JSON merge patch (RFC 7386) of the object `name` of kind `K`. Returns the
/// patched object.
///
/// ```no_run
/// use stepbox_sdk::kube;
/// use stepbox_sdk::k8s_openapi::api::apps::v1::Deployment;
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// let patch = serde_json::json!({"spec": {"replicas": 3}});
/// let web: Deployment = kube::patch("web", &patch)?;
/// # Ok(())
/// # }
/// ```
pub fn patch<K: k8s_openapi::Resource + DeserializeOwned>(
    name: &str,
    merge_patch: &serde_json::Value,
) -> Result<K> {
    let patched = raw::patch(&KindRef::of::<K>(), name, &merge_patch.to_string())?;
    Ok(serde_json::from_str(&patched)?)
}

/// Deletes the object `name` of kind `K`. Returns false if it did not exist.
pub fn delete<K: k8s_openapi::Resource>(name: &str) -> Result<bool> {
    raw::delete(&KindRef::of::<K>(), name)
}

/// Waits until `condition` holds for the object `name` of kind `K`, or
/// `timeout` passes ([`Error::Timeout`](crate::Error::Timeout)). The timeout
/// is rounded up to whole seconds.
pub fn wait<K: k8s_openapi::Resource>(
    name: &str,
    condition: WaitFor,
    timeout: Duration,
) -> Result<()> {
    raw::wait(&KindRef::of::<K>(), name, &condition, timeout)
}

/// Which log of a pod [`logs`] reads, as `kubectl logs` takes it.
///
/// ```no_run
/// use stepbox_sdk::kube::{self, LogOptions};
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// let last = kube::logs("web-5d8f7c9b4k-x2x9z", &LogOptions::new().container("app").tail(20))?;
/// stepbox_sdk::info!("{last}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The container (`None`: the pod's only one).
    pub container: Option<String>,
    /// Only the last lines.
    pub tail_lines: Option<u32>,
    /// Only lines newer than this (whole seconds, rounded up).
    pub since: Option<Duration>,
    /// The previous instance of the container, after a restart.
    pub previous: bool,
}

impl LogOptions {
    /// Every line of the pod's only container.
    pub fn new() -> Self {
        Self::default()
    }

    /// The log of container `name`.
    pub fn container(mut self, name: impl Into<String>) -> Self {
        self.container = Some(name.into());
        self
    }

    /// Only the last `lines` lines.
    pub fn tail(mut self, lines: u32) -> Self {
        self.tail_lines = Some(lines);
        self
    }

    /// Only lines newer than `age`.
    pub fn since(mut self, age: Duration) -> Self {
        self.since = Some(age);
        self
    }

    /// The previous instance of the container (a crashed one's last words).
    pub fn previous(mut self) -> Self {
        self.previous = true;
        self
    }

    fn to_wit(&self) -> wit::LogOptions {
        wit::LogOptions {
            container: self.container.clone().unwrap_or_default(),
            tail_lines: self.tail_lines.unwrap_or(0),
            since_seconds: self.since.map_or(0, timeout_seconds),
            previous: self.previous,
        }
    }
}

/// The log of a container of pod `pod`, as text (policy: `get` on
/// `pods/log`). On the embedded namespace, which runs no containers, it is
/// empty unless the pod's `logs.stepbox.dev/CONTAINER` annotation seeds it.
pub fn logs(pod: &str, options: &LogOptions) -> Result<String> {
    raw::logs(pod, options)
}

/// The Events about the object `name` of kind `K`, oldest first (policy:
/// `list` on `events`): what `kubectl describe` shows at its end.
pub fn events<K: k8s_openapi::Resource>(
    name: &str,
) -> Result<Vec<k8s_openapi::api::core::v1::Event>> {
    raw::events(&KindRef::of::<K>(), name)?
        .iter()
        .map(|e| Ok(serde_json::from_str(e)?))
        .collect()
}

/// Whole seconds, rounded up, saturating at `u32::MAX`.
fn timeout_seconds(timeout: Duration) -> u32 {
    let secs = timeout
        .as_secs()
        .saturating_add(u64::from(timeout.subsec_nanos() > 0));
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The kube calls on JSON text, for any kind named by a [`KindRef`].
///
/// ```no_run
/// use stepbox_sdk::kube::{raw, KindRef};
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// let widgets = KindRef::new("example.com/v1", "Widget");
/// for json in raw::list(&widgets, Some("team=a"))? {
///     let widget: serde_json::Value = serde_json::from_str(&json)?;
///     stepbox_sdk::info!("widget {}", widget["metadata"]["name"]);
/// }
/// # Ok(())
/// # }
/// ```
pub mod raw {
    use std::time::Duration;

    use super::{Applied, KindRef, LogOptions, WaitFor, timeout_seconds, wit};
    use crate::Result;

    /// The log of a container of pod `pod`; the same as [`super::logs`].
    pub fn logs(pod: &str, options: &LogOptions) -> Result<String> {
        Ok(wit::logs(pod, &options.to_wit())?)
    }

    /// The Events about one object, oldest first, one JSON object each.
    pub fn events(kind: &KindRef, name: &str) -> Result<Vec<String>> {
        Ok(wit::events(&kind.to_wit(), name)?)
    }

    /// Reads one object. Returns its JSON.
    pub fn get(kind: &KindRef, name: &str) -> Result<String> {
        Ok(wit::get(&kind.to_wit(), name)?)
    }

    /// Lists objects of a kind, optionally filtered by a label selector.
    /// Returns one JSON object per item, sorted by name.
    pub fn list(kind: &KindRef, label_selector: Option<&str>) -> Result<Vec<String>> {
        Ok(wit::list(&kind.to_wit(), label_selector)?)
    }

    /// Server-side apply of YAML/JSON manifests; the same as [`super::apply`].
    pub fn apply(manifests: &str) -> Result<Vec<Applied>> {
        super::apply(manifests)
    }

    /// JSON merge patch (RFC 7386) of one object, given as JSON text.
    /// Returns the patched object's JSON.
    pub fn patch(kind: &KindRef, name: &str, merge_patch: &str) -> Result<String> {
        Ok(wit::patch(&kind.to_wit(), name, merge_patch)?)
    }

    /// Deletes one object. Returns false if it did not exist.
    pub fn delete(kind: &KindRef, name: &str) -> Result<bool> {
        Ok(wit::delete(&kind.to_wit(), name)?)
    }

    /// Waits until `condition` holds for the object, or `timeout` (rounded
    /// up to whole seconds) passes.
    pub fn wait(kind: &KindRef, name: &str, condition: &WaitFor, timeout: Duration) -> Result<()> {
        Ok(wit::wait(
            &kind.to_wit(),
            name,
            &condition.to_wit(),
            timeout_seconds(timeout),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn applied(api_version: &str, kind: &str, name: &str) -> Applied {
        Applied {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            action: Action::Created,
            resource_version: "1".into(),
        }
    }

    #[test]
    fn kubectl_names() {
        assert_eq!(
            applied("apps/v1", "Deployment", "web").kubectl_name(),
            "deployment.apps/web"
        );
        assert_eq!(
            applied("v1", "ConfigMap", "web-config").kubectl_name(),
            "configmap/web-config"
        );
        assert_eq!(
            applied("rbac.authorization.k8s.io/v1", "ClusterRole", "x").kubectl_name(),
            "clusterrole.rbac.authorization.k8s.io/x"
        );
    }

    #[test]
    fn actions_print_kubectl_words() {
        let words: Vec<String> = [
            Action::Created,
            Action::Configured,
            Action::Unchanged,
            Action::Deleted,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        assert_eq!(words, ["created", "configured", "unchanged", "deleted"]);
    }

    #[test]
    fn kind_refs_of_types() {
        assert_eq!(
            KindRef::of::<Deployment>(),
            KindRef::new("apps/v1", "Deployment")
        );
        assert_eq!(KindRef::of::<ConfigMap>(), KindRef::new("v1", "ConfigMap"));
        assert_eq!(
            KindRef::of::<Deployment>().to_string(),
            "apps/v1 Deployment"
        );
    }

    #[test]
    fn timeouts_round_up_to_whole_seconds() {
        assert_eq!(timeout_seconds(Duration::ZERO), 0);
        assert_eq!(timeout_seconds(Duration::from_millis(1)), 1);
        assert_eq!(timeout_seconds(Duration::from_secs(30)), 30);
        assert_eq!(timeout_seconds(Duration::from_millis(30_001)), 31);
        assert_eq!(timeout_seconds(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}
