//! The host binaries capabilities drive (helm, kubectl for kustomize):
//! finding one, and running it with an environment of the capability's
//! choosing, a deadline, and its output captured.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::caps::StepError;

/// Finds a tool: `explicit` is a path, or a bare name looked up on `PATH`.
/// `how` says how to provide it ("install helm v3.8 or newer, or ...").
///
/// # Errors
/// an `unavailable` [`StepError`] naming what is missing and `how`.
pub(crate) fn locate(explicit: &Path, tool: &str, how: &str) -> Result<PathBuf, StepError> {
    let missing = |what: String| StepError::unavailable(format!("{what}; {how}"));
    if explicit.components().count() > 1 || explicit.is_absolute() {
        return if explicit.is_file() {
            // The tool runs in a directory of its own: a relative path must
            // not change meaning.
            std::fs::canonicalize(explicit).map_err(|e| {
                missing(format!(
                    "the {tool} binary {} cannot be used ({e})",
                    explicit.display()
                ))
            })
        } else {
            Err(missing(format!(
                "the {tool} binary {} does not exist",
                explicit.display()
            )))
        };
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join(explicit))
        .find(|p| p.is_file())
        .ok_or_else(|| missing(format!("`{}` was not found on PATH", explicit.display())))
}

/// Why a tool did not run to its end.
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// It could not be started.
    Spawn(std::io::Error),
    /// Waiting for it failed.
    Wait(std::io::Error),
    /// It was still running at its deadline and was killed.
    Deadline,
}

/// Runs `binary ARGS` with exactly `env` (nothing inherited), in `cwd`,
/// stdin closed, until it ends or `deadline` passes (then it is killed, as
/// it is when the call is dropped).
pub(crate) async fn run(
    binary: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    cwd: &Path,
    deadline: Duration,
) -> Result<std::process::Output, RunFailure> {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(RunFailure::Spawn)?;
    match tokio::time::timeout(deadline, child.wait_with_output()).await {
        Err(_) => Err(RunFailure::Deadline),
        Ok(Err(e)) => Err(RunFailure::Wait(e)),
        Ok(Ok(out)) => Ok(out),
    }
}
