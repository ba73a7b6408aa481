//! Helm's release records as the host reads them from helm's JSON output
//! (`helm status -o json`, `helm list -o json`, `helm history -o json`,
//! `helm get metadata -o json`), and rendered manifests split into
//! objects.
//!
//! Parsing is lenient about what helm versions add or drop (helm 4 strips
//! the chart from `status`; helm 3 keeps it) and strict about what the host
//! needs: a release without a name or revision is an error.

use serde_json::Value;

use crate::caps::StepError;
use stepbox_k8s::plan::Action;

/// The state of a release revision, as helm names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseStatus {
    /// `unknown`, or a word helm added later.
    Unknown,
    /// `deployed`
    Deployed,
    /// `uninstalled`
    Uninstalled,
    /// `superseded`
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

impl ReleaseStatus {
    /// Reads helm's word (`"deployed"`, `"pending-install"`, ...).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "deployed" => Self::Deployed,
            "uninstalled" => Self::Uninstalled,
            "superseded" => Self::Superseded,
            "failed" => Self::Failed,
            "uninstalling" => Self::Uninstalling,
            "pending-install" => Self::PendingInstall,
            "pending-upgrade" => Self::PendingUpgrade,
            "pending-rollback" => Self::PendingRollback,
            _ => Self::Unknown,
        }
    }

    /// Helm's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Deployed => "deployed",
            Self::Uninstalled => "uninstalled",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
            Self::Uninstalling => "uninstalling",
            Self::PendingInstall => "pending-install",
            Self::PendingUpgrade => "pending-upgrade",
            Self::PendingRollback => "pending-rollback",
        }
    }
}

impl std::fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One revision of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Revision (1 for the first install).
    pub revision: u32,
    /// State.
    pub status: ReleaseStatus,
    /// `Chart.yaml` name.
    pub chart_name: String,
    /// `Chart.yaml` version.
    pub chart_version: String,
    /// `Chart.yaml` appVersion.
    pub app_version: String,
    /// What helm says happened.
    pub description: String,
    /// When it was deployed (RFC 3339), empty if unknown.
    pub updated: String,
}

/// One object of a release: apiVersion, kind, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// apiVersion.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a JSON object (empty strings for missing fields).
    pub fn of(object: &Value) -> Self {
        let s = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Self {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            name: s("/metadata/name"),
        }
    }

    /// The key without the version, so `apps/v1` and `apps/v1beta1` of one
    /// kind compare equal: `(group, kind, name)`.
    pub fn identity(&self) -> (String, String, String) {
        let group = stepbox_k8s::resources::split_api_version(&self.api_version)
            .0
            .to_string();
        (group, self.kind.clone(), self.name.clone())
    }
}

impl std::fmt::Display for ObjectKey {
    /// `apps/v1 Deployment web`, as audit targets read.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.api_version, self.kind, self.name)
    }
}

/// One object a release call touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TouchedObject {
    /// Which object.
    pub key: ObjectKey,
    /// What happened to it.
    pub action: Action,
    /// It is a hook, not part of the release manifest.
    pub hook: bool,
}

/// The result of a write (upgrade-or-install, rollback, uninstall).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOutcome {
    /// The release after the call.
    pub release: ReleaseInfo,
    /// What the call did, object by object.
    pub objects: Vec<TouchedObject>,
    /// The rendered NOTES.txt.
    pub notes: String,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDetails {
    /// The current revision.
    pub release: ReleaseInfo,
    /// The objects of its manifest (no hooks).
    pub objects: Vec<ObjectKey>,
    /// The rendered NOTES.txt.
    pub notes: String,
}

/// One object of a rendered chart or a stored release.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    /// The object.
    pub object: Value,
    /// The template it came from (`web/templates/deployment.yaml`), if
    /// helm said.
    pub source: Option<String>,
    /// The hook events (`pre-install`, `test`, ...) when it is a hook.
    pub hook_events: Option<Vec<String>>,
}

impl RenderedObject {
    /// Its key.
    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(&self.object)
    }

    /// Whether it is a hook.
    pub fn is_hook(&self) -> bool {
        self.hook_events.is_some()
    }
}

/// The annotation that makes an object a hook.
pub const HOOK_ANNOTATION: &str = "helm.sh/hook";

fn hook_events_of(object: &Value) -> Option<Vec<String>> {
    let events = object
        .pointer("/metadata/annotations")?
        .get(HOOK_ANNOTATION)?
        .as_str()?;
    Some(
        events
            .split(',')
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect(),
    )
}

/// Splits helm's multi-document output (`---` / `# Source: ...` blocks)
/// into objects, keeping each one's template and hook events.
///
/// # Errors
/// [`StepError::Invalid`] naming the template whose output is not a valid
/// object.
pub fn split_manifests(text: &str) -> Result<Vec<RenderedObject>, StepError> {
    let mut out = Vec::new();
    let mut chunk = String::new();
    let flush = |chunk: &mut String, out: &mut Vec<RenderedObject>| -> Result<(), StepError> {
        let text = std::mem::take(chunk);
        if text.trim().is_empty() {
            return Ok(());
        }
        let source = text
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(|s| s.trim().to_string());
        let docs = stepbox_k8s::manifest::parse_documents(&text).map_err(|e| {
            StepError::invalid(match &source {
                Some(s) => format!("{s} does not render to a valid Kubernetes object: {e}"),
                None => format!("the chart renders an invalid object: {e}"),
            })
        })?;
        for object in docs {
            let hook_events = hook_events_of(&object);
            out.push(RenderedObject {
                object,
                source: source.clone(),
                hook_events,
            });
        }
        Ok(())
    };
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            flush(&mut chunk, &mut out)?;
            continue;
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    flush(&mut chunk, &mut out)?;
    Ok(out)
}

/// A release as `helm status -o json` gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRecord {
    /// Name, revision, status, chart (when helm said), ...
    pub info: ReleaseInfo,
    /// The manifest's objects.
    pub manifest: Vec<RenderedObject>,
    /// The hooks' objects.
    pub hooks: Vec<RenderedObject>,
    /// NOTES.txt.
    pub notes: String,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn u32_at(v: &Value, pointer: &str) -> Option<u32> {
    match v.pointer(pointer)? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_json(text: &str, what: &str) -> Result<Value, StepError> {
    serde_json::from_str(text.trim())
        .map_err(|e| StepError::unavailable(format!("helm printed {what} that is not JSON ({e})")))
}

/// Parses `helm status NAME -o json`.
///
/// # Errors
/// [`StepError::Unavailable`] when helm's output is not a release.
pub fn parse_status(text: &str) -> Result<ReleaseRecord, StepError> {
    let v = parse_json(text, "a status")?;
    let name = str_at(&v, "/name").to_string();
    let revision = u32_at(&v, "/version");
    let (Some(revision), false) = (revision, name.is_empty()) else {
        return Err(StepError::unavailable(
            "helm's status output has no release name or revision",
        ));
    };
    let info = ReleaseInfo {
        name,
        namespace: str_at(&v, "/namespace").to_string(),
        revision,
        status: ReleaseStatus::parse(str_at(&v, "/info/status")),
        chart_name: str_at(&v, "/chart/metadata/name").to_string(),
        chart_version: str_at(&v, "/chart/metadata/version").to_string(),
        app_version: str_at(&v, "/chart/metadata/appVersion").to_string(),
        description: str_at(&v, "/info/description").to_string(),
        updated: rfc3339(str_at(&v, "/info/last_deployed")),
    };
    let manifest = split_manifests(str_at(&v, "/manifest"))?;
    let mut hooks = Vec::new();
    for hook in v
        .get("hooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut objects = split_manifests(str_at(hook, "/manifest"))?;
        for o in &mut objects {
            if o.hook_events.is_none() {
                let events = hook.get("events").and_then(Value::as_array).map(|events| {
                    events
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                });
                o.hook_events = Some(events.unwrap_or_default());
            }
            if o.source.is_none() {
                o.source = hook.get("path").and_then(Value::as_str).map(str::to_string);
            }
        }
        hooks.extend(objects);
    }
    Ok(ReleaseRecord {
        info,
        manifest,
        hooks,
        notes: str_at(&v, "/info/notes").to_string(),
    })
}

/// Fills the chart fields of `info` from `helm get metadata -o json`.
///
/// # Errors
/// [`StepError::Unavailable`] when the output is not JSON.
pub fn apply_metadata(info: &mut ReleaseInfo, text: &str) -> Result<(), StepError> {
    let v = parse_json(text, "release metadata")?;
    let first = |keys: &[&str]| {
        keys.iter()
            .map(|k| str_at(&v, k))
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .to_string()
    };
    info.chart_name = first(&["/chart", "/chart_name", "/chartName"]);
    info.chart_version = first(&["/version", "/chart_version", "/chartVersion"]);
    info.app_version = first(&["/appVersion", "/app_version"]);
    Ok(())
}

/// Splits helm's `NAME-VERSION` chart column: the version starts at the
/// first `-` followed by something that reads as a version (a digit, and
/// a dot before any further `-` or `+`).
pub fn split_chart(chart: &str) -> (String, String) {
    for (at, _) in chart.match_indices('-') {
        let rest = &chart[at + 1..];
        let core = rest.split(['-', '+']).next().unwrap_or_default();
        if rest.starts_with(|c: char| c.is_ascii_digit()) && core.contains('.') {
            return (chart[..at].to_string(), rest.to_string());
        }
    }
    (chart.to_string(), String::new())
}

/// Parses `helm list -o json` (releases of one namespace).
///
/// # Errors
/// [`StepError::Unavailable`] when the output is not a JSON list.
pub fn parse_list(text: &str) -> Result<Vec<ReleaseInfo>, StepError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v = parse_json(text, "a release list")?;
    let items = v
        .as_array()
        .ok_or_else(|| StepError::unavailable("helm's list output is not a JSON list"))?;
    let mut out: Vec<ReleaseInfo> = items
        .iter()
        .map(|r| {
            let (chart_name, chart_version) = split_chart(str_at(r, "/chart"));
            ReleaseInfo {
                name: str_at(r, "/name").to_string(),
                namespace: str_at(r, "/namespace").to_string(),
                revision: u32_at(r, "/revision").unwrap_or(0),
                status: ReleaseStatus::parse(str_at(r, "/status")),
                chart_name,
                chart_version,
                app_version: str_at(r, "/app_version").to_string(),
                description: String::new(),
                updated: rfc3339(str_at(r, "/updated")),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Parses `helm history NAME -o json`, oldest revision first.
///
/// # Errors
/// [`StepError::Unavailable`] when the output is not a JSON list.
pub fn parse_history(
    text: &str,
    name: &str,
    namespace: &str,
) -> Result<Vec<ReleaseInfo>, StepError> {
    let v = parse_json(text, "a release history")?;
    let items = v
        .as_array()
        .ok_or_else(|| StepError::unavailable("helm's history output is not a JSON list"))?;
    let mut out: Vec<ReleaseInfo> = items
        .iter()
        .map(|r| {
            let (chart_name, chart_version) = split_chart(str_at(r, "/chart"));
            ReleaseInfo {
                name: name.to_string(),
                namespace: namespace.to_string(),
                revision: u32_at(r, "/revision").unwrap_or(0),
                status: ReleaseStatus::parse(str_at(r, "/status")),
                chart_name,
                chart_version,
                app_version: str_at(r, "/app_version").to_string(),
                description: str_at(r, "/description").to_string(),
                updated: rfc3339(str_at(r, "/updated")),
            }
        })
        .collect();
    out.sort_by_key(|r| r.revision);
    Ok(out)
}

/// Normalises helm's timestamps to RFC 3339 in UTC: JSON times already
/// are RFC 3339;
/// `helm list` prints Go's default format (`2025-01-02 15:04:05.999 +0000 UTC`).
pub fn rfc3339(text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return String::new();
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return d
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    // Go: "2006-01-02 15:04:05.999999999 -0700 MST"
    let without_zone_name = match t.rsplit_once(' ') {
        Some((head, tail)) if tail.chars().all(|c| c.is_ascii_alphabetic()) => head,
        _ => t,
    };
    match chrono::DateTime::parse_from_str(without_zone_name, "%Y-%m-%d %H:%M:%S%.f %z") {
        Ok(d) => d
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_split_at_the_version() {
        assert_eq!(split_chart("web-0.1.0"), ("web".into(), "0.1.0".into()));
        assert_eq!(
            split_chart("my-app2-1.2.3-rc.1"),
            ("my-app2".into(), "1.2.3-rc.1".into())
        );
        assert_eq!(
            split_chart("kube-prometheus-stack-45.7.1"),
            ("kube-prometheus-stack".into(), "45.7.1".into())
        );
        assert_eq!(split_chart("odd"), ("odd".into(), String::new()));
    }

    #[test]
    fn times_become_rfc3339() {
        assert_eq!(
            rfc3339("2025-03-04 10:11:12.123456 +0100 CET"),
            "2025-03-04T09:11:12Z"
        );
        assert_eq!(
            rfc3339("2025-03-04T10:11:12.5+01:00"),
            "2025-03-04T09:11:12Z"
        );
        assert_eq!(rfc3339(""), "");
    }

    #[test]
    fn rendered_output_splits_with_sources_and_hooks() {
        let text = "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: web/templates/empty.yaml\n---\n# Source: web/templates/job.yaml\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  annotations:\n    \"helm.sh/hook\": pre-install,pre-upgrade\n";
        let objects = split_manifests(text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].source.as_deref(), Some("web/templates/cm.yaml"));
        assert!(!objects[0].is_hook());
        assert_eq!(
            objects[1].hook_events,
            Some(vec!["pre-install".to_string(), "pre-upgrade".to_string()])
        );
    }

    #[test]
    fn a_bad_object_names_its_template() {
        let err = split_manifests("---\n# Source: web/templates/bad.yaml\nkind: ConfigMap\n")
            .unwrap_err();
        assert!(err.message().contains("web/templates/bad.yaml"), "{err}");
    }

    #[test]
    fn status_json() {
        let text = r#"{"name":"web","info":{"last_deployed":"2025-01-01T00:00:00Z","description":"Install complete","status":"deployed","notes":"hi"},
            "manifest":"---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
            "hooks":[{"name":"j","kind":"Job","path":"web/templates/job.yaml","manifest":"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n","events":["pre-install"]}],
            "version":2,"namespace":"dev"}"#;
        let r = parse_status(text).unwrap();
        assert_eq!(r.info.revision, 2);
        assert_eq!(r.info.status, ReleaseStatus::Deployed);
        assert_eq!(r.manifest.len(), 1);
        assert_eq!(
            r.hooks[0].hook_events,
            Some(vec!["pre-install".to_string()])
        );
        assert_eq!(r.notes, "hi");
        let mut info = r.info;
        apply_metadata(
            &mut info,
            r#"{"name":"web","chart":"web","version":"0.1.0","appVersion":"1.16.0"}"#,
        )
        .unwrap();
        assert_eq!(
            (
                info.chart_name.as_str(),
                info.chart_version.as_str(),
                info.app_version.as_str()
            ),
            ("web", "0.1.0", "1.16.0")
        );
    }
}
