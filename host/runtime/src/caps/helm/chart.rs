//! The step's inputs to helm: its chart (a directory or packaged chart
//! under `/packages` or `/workspace`, never outside them), its values and
//! its release names.

use std::path::{Component, Path, PathBuf};

use super::{Chart, ChartRoots, HelmCtx, Session};
use crate::caps::{Result, StepError};

/// A path of the step's filesystem, found on the host.
pub(crate) struct Located {
    /// Where it is on the host (links resolved).
    pub(crate) host: PathBuf,
    /// The host directory of the root it is under (links resolved).
    pub(crate) root: PathBuf,
    /// That root as the step sees it: `/packages` or `/workspace`.
    pub(crate) guest_root: &'static str,
    /// What it is.
    pub(crate) meta: std::fs::Metadata,
}

impl ChartRoots {
    /// Maps the step's path `guest` (`/packages/...` or `/workspace/...`)
    /// to the host, refusing paths and links that leave the root. `what`
    /// names the path in errors ("chart", "kustomization").
    pub(crate) fn locate(&self, guest: &str, what: &str) -> Result<Located> {
        let path = Path::new(guest);
        let (root, guest_root, rest) =
            if let Ok(rest) = path.strip_prefix(crate::caps::fs::PACKAGES_GUEST_PATH) {
                (&self.packages, crate::caps::fs::PACKAGES_GUEST_PATH, rest)
            } else if let Ok(rest) = path.strip_prefix(crate::caps::fs::WORKSPACE_GUEST_PATH) {
                (&self.workspace, crate::caps::fs::WORKSPACE_GUEST_PATH, rest)
            } else {
                return Err(StepError::invalid(format!(
                    "{what} path {guest:?} must be absolute and under {} or {}",
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
                    return Err(StepError::forbidden(format!(
                        "{what} path {guest:?} leaves {guest_root}"
                    ))
                    .into());
                }
            }
        }
        let host = root.join(&relative);
        let meta = std::fs::metadata(&host).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StepError::not_found(format!("{what} {guest} does not exist"))
            }
            _ => StepError::invalid(format!("{what} {guest}: {e}")),
        })?;
        let root_real = std::fs::canonicalize(root)
            .map_err(|e| StepError::unavailable(format!("{guest_root}: {e}")))?;
        let host_real = std::fs::canonicalize(&host)
            .map_err(|e| StepError::invalid(format!("{what} {guest}: {e}")))?;
        if !host_real.starts_with(&root_real) {
            return Err(StepError::forbidden(format!(
                "{what} {guest} is a link that leaves {guest_root}"
            ))
            .into());
        }
        Ok(Located {
            host: host_real,
            root: root_real,
            guest_root,
            meta,
        })
    }
}

impl HelmCtx {
    /// Maps the step's chart path to the host and checks it is a chart that
    /// stays inside the step's filesystem.
    pub(super) fn find_chart(&self, guest: &str) -> Result<Chart> {
        let Located {
            host: host_real,
            root: root_real,
            guest_root,
            meta,
        } = self.roots.locate(guest, "chart")?;
        if meta.is_dir() {
            if !host_real.join("Chart.yaml").is_file() {
                return Err(StepError::invalid(format!(
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
            Err(StepError::invalid(format!(
                "{guest} is not a chart: a chart is a directory with Chart.yaml, or a packaged .tgz"
            ))
            .into())
        }
    }

    /// Checks the values are a YAML mapping and writes them to a private
    /// file for helm (`None` when empty).
    pub(super) fn values_file(&self, session: &Session, values: &str) -> Result<Option<PathBuf>> {
        if values.trim().is_empty() {
            return Ok(None);
        }
        if values.len() > stepbox_k8s::manifest::MAX_MANIFEST_BYTES {
            return Err(StepError::invalid(format!(
                "the values are {} bytes, more than the {} allowed",
                values.len(),
                stepbox_k8s::manifest::MAX_MANIFEST_BYTES
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
                return Err(StepError::invalid(format!(
                    "the values must be a YAML mapping (key: value), not {what}"
                ))
                .into());
            }
            Err(e) => {
                return Err(
                    StepError::invalid(format!("the values are not valid YAML: {e}")).into(),
                );
            }
        }
        let path = session
            .home
            .write_private("values.yaml", values)
            .map_err(|e| {
                StepError::unavailable(format!("cannot write the values for helm: {e}"))
            })?;
        Ok(Some(path))
    }
}

/// Release names as helm accepts them: DNS-1123 subdomain-like, at most 53
/// characters (helm adds suffixes to them for its records).
pub(super) fn validate_release_name(name: &str) -> Result<()> {
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
        Err(StepError::invalid(format!(
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
pub(super) fn scan_chart_dir(
    dir: &Path,
    root: &Path,
    guest: &str,
    guest_root: &str,
) -> Result<Option<String>> {
    let mut crds = None;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| StepError::invalid(format!("chart {guest}: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| StepError::invalid(format!("chart {guest}: {e}")))?;
            seen += 1;
            if seen > MAX_CHART_FILES {
                return Err(StepError::invalid(format!(
                    "chart {guest} has more than {MAX_CHART_FILES} files"
                ))
                .into());
            }
            let path = entry.path();
            let ty = entry
                .file_type()
                .map_err(|e| StepError::invalid(format!("chart {guest}: {e}")))?;
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if ty.is_symlink() {
                let real = std::fs::canonicalize(&path).map_err(|e| {
                    StepError::invalid(format!("chart {guest}: {rel} is a broken link ({e})"))
                })?;
                if !real.starts_with(root) {
                    return Err(StepError::forbidden(format!(
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
