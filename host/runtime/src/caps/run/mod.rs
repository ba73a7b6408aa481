//! The `run` capability: the step's inputs, secrets, outputs, log, progress
//! and artifacts, and the guest's captured stdout/stderr.
//!
//! Inputs and secrets are given by whoever starts the run; outputs and log
//! lines go to the run's [`RunRecorder`], which masks secrets and enforces
//! the log and output byte limits (a limit ends the run).

mod host;
mod stdio;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::caps::{CapError, ErrorKind, Result, StepError};
use crate::report::{Artifact, Decision, Level, LogSource, RunRecorder};

pub(crate) use host::add_to_linker;
pub use stdio::LogStream;

/// Where the guest sees its workspace.
pub const WORKSPACE_GUEST_PATH: &str = "/workspace";

/// What the run capability of one run holds.
#[derive(Clone, Debug)]
pub struct RunCtx {
    /// Inputs, name → value.
    pub inputs: BTreeMap<String, String>,
    /// Secrets, name → value (their values are masked everywhere).
    pub secrets: BTreeMap<String, String>,
    /// Host directory behind `/workspace`.
    pub workspace: PathBuf,
    /// Log, outputs, audit.
    pub recorder: RunRecorder,
}

impl RunCtx {
    /// The value of an input.
    pub fn input(&self, name: &str) -> Option<String> {
        self.inputs.get(name).cloned()
    }

    /// All inputs, sorted by name.
    pub fn inputs(&self) -> Vec<(String, String)> {
        self.inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The value of a secret; the read is audited (by name, never value).
    pub fn secret(&self, name: &str) -> Option<String> {
        let value = self.secrets.get(name).cloned();
        let reason = if value.is_some() {
            ""
        } else {
            "no such secret"
        };
        self.recorder
            .audit("run.secret", name, Decision::Allowed, reason);
        value
    }

    /// Sets an output.
    pub fn set_output(&self, name: &str, value: &str, sensitive: bool) -> Result<()> {
        if name.is_empty() {
            return Err(StepError::invalid("an output needs a name").into());
        }
        Ok(self.recorder.set_output(name, value, sensitive)?)
    }

    /// Writes a log line.
    pub fn log(&self, level: Level, message: &str) -> Result<()> {
        Ok(self.recorder.log(level, LogSource::Step, message)?)
    }

    /// Records progress.
    pub fn progress(&self, percent: u8, message: &str) -> Result<()> {
        Ok(self.recorder.progress(percent, message)?)
    }

    /// Publishes a file under /workspace as an artifact.
    pub fn artifact(&self, name: &str, guest_path: &str) -> Result<()> {
        let result = self.artifact_inner(name, guest_path);
        let reason = match &result {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        let decision = match &result {
            Err(e) if e.is(ErrorKind::Forbidden) => Decision::Denied,
            _ => Decision::Allowed,
        };
        self.recorder.audit(
            "run.artifact",
            &format!("{name} {guest_path}"),
            decision,
            &reason,
        );
        result.map_err(CapError::from)
    }

    fn artifact_inner(&self, name: &str, guest_path: &str) -> Result<(), StepError> {
        if name.is_empty() {
            return Err(StepError::invalid("an artifact needs a name"));
        }
        let rel = workspace_relative(guest_path)?;
        let artifact = describe_artifact(&self.workspace, &rel, name, guest_path)?;
        self.recorder.artifact(artifact);
        Ok(())
    }

    /// Checks every published artifact again once the guest has stopped (so
    /// it cannot change them any more), refreshing size and sha256. An
    /// artifact that is no longer a regular file inside the workspace (say,
    /// swapped for a symlink pointing out of it after it was published) is
    /// dropped from the report, and the problem returned.
    ///
    /// # Errors
    /// A message naming each dropped artifact and why.
    pub fn reverify_artifacts(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for artifact in self.recorder.take_artifacts() {
            let checked = workspace_relative(&artifact.path).and_then(|rel| {
                describe_artifact(&self.workspace, &rel, &artifact.name, &artifact.path)
            });
            match checked {
                Ok(fresh) => self.recorder.artifact(fresh),
                Err(e) => problems.push(format!(
                    "artifact {} ({}) changed after it was published and is left out of the report: {}",
                    artifact.name,
                    artifact.path,
                    e.message()
                )),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Describes the file at `rel` in `workspace` as an artifact. It must be a
/// regular file reached without leaving the workspace (cap-std refuses any
/// path or symlink that leaves it), and not itself a symlink: the report
/// hands its host path to whoever collects artifacts, who must not be led
/// anywhere else.
fn describe_artifact(
    workspace: &Path,
    rel: &Path,
    name: &str,
    guest_path: &str,
) -> Result<Artifact, StepError> {
    let dir = cap_std::fs::Dir::open_ambient_dir(workspace, cap_std::ambient_authority())
        .map_err(|e| StepError::unavailable(format!("workspace: {e}")))?;
    let open_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => {
            StepError::not_found(format!("artifact file {guest_path} does not exist"))
        }
        std::io::ErrorKind::PermissionDenied => {
            StepError::forbidden(format!("artifact path {guest_path} leaves the workspace"))
        }
        _ => StepError::invalid(format!("artifact file {guest_path}: {e}")),
    };
    let link = dir.symlink_metadata(rel).map_err(open_err)?;
    if link.is_symlink() {
        return Err(StepError::forbidden(format!(
            "artifact {guest_path} is a symlink; publish the file itself"
        )));
    }
    let mut file = dir.open(rel).map_err(open_err)?;
    let meta = file
        .metadata()
        .map_err(|e| StepError::invalid(format!("{guest_path}: {e}")))?;
    if !meta.is_file() {
        return Err(StepError::invalid(format!(
            "artifact {guest_path} is not a regular file"
        )));
    }
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| StepError::invalid(format!("{guest_path}: {e}")))?;
    Ok(Artifact {
        name: name.to_string(),
        path: guest_path.to_string(),
        host_path: workspace.join(rel),
        size: meta.len(),
        sha256: hex::encode(hasher.finalize()),
    })
}

/// `/workspace/a/b` (or `a/b`) → `a/b`; anything outside is forbidden.
fn workspace_relative(guest_path: &str) -> Result<PathBuf, StepError> {
    let p = Path::new(guest_path);
    let rel = match p.strip_prefix(WORKSPACE_GUEST_PATH) {
        Ok(r) => r,
        Err(_) if p.is_absolute() => {
            return Err(StepError::forbidden(format!(
                "artifact path {guest_path} is outside {WORKSPACE_GUEST_PATH}"
            )));
        }
        Err(_) => p,
    };
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => {
                return Err(StepError::forbidden(format!(
                    "artifact path {guest_path} leaves {WORKSPACE_GUEST_PATH}"
                )));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(StepError::invalid(format!(
            "artifact path {guest_path} names no file"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths() {
        assert_eq!(
            workspace_relative("/workspace/a/b.json").unwrap(),
            PathBuf::from("a/b.json")
        );
        assert_eq!(workspace_relative("a/./b").unwrap(), PathBuf::from("a/b"));
        let kind = |p: &str| workspace_relative(p).map_err(|e| e.kind).err();
        assert_eq!(kind("/etc/passwd"), Some(ErrorKind::Forbidden));
        assert_eq!(kind("/workspace/../etc"), Some(ErrorKind::Forbidden));
        assert_eq!(kind("/workspace"), Some(ErrorKind::Invalid));
    }
}
