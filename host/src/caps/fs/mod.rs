//! The filesystem a step sees, and the rest of its WASI context.
//!
//! Two preopened directories, both through cap-std (a path or symlink that
//! leaves them is refused by construction):
//!
//! | guest path   | host                                   | access     |
//! |--------------|----------------------------------------|------------|
//! | `/workspace` | `--workspace DIR`, else a fresh temp dir | read-write |
//! | `/packages`  | `--package DIR`, else an empty temp dir  | read-only  |
//!
//! Nothing else of the host is visible: no environment variables, no
//! arguments, no stdin, and no sockets (TCP, UDP and name lookup are all
//! denied). Clocks and random numbers are the host's, as WASI defines them.
//!
//! What a run may add to `/workspace` is limited by [`quota`]
//! (`limits.workspaceBytes`, `limits.workspaceFiles`).

pub mod quota;

use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::caps::run::LogStream;
use crate::report::{LogSource, RunRecorder};

/// Where the guest sees the package files.
pub const PACKAGES_GUEST_PATH: &str = "/packages";
/// Where the guest sees its workspace.
pub use crate::caps::run::WORKSPACE_GUEST_PATH;

/// Errors preparing a run's filesystem.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A directory given by the user does not exist or is not a directory.
    #[error("{what} {path} is not a directory: {reason}")]
    NotADirectory {
        /// `--package` or `--workspace`.
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A temp dir could not be made.
    #[error("could not create a temporary {what} directory: {source}")]
    TempDir {
        /// Which one.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The host directories of one run. Temporary ones are removed on drop,
/// unless [`RunFs::keep_workspace`] was called.
#[derive(Debug)]
pub struct RunFs {
    workspace: PathBuf,
    packages: PathBuf,
    temp_workspace: Option<tempfile::TempDir>,
    _temp_packages: Option<tempfile::TempDir>,
}

impl RunFs {
    /// Checks the given directories, making temp ones for those not given.
    pub fn prepare(workspace: Option<&Path>, packages: Option<&Path>) -> Result<Self, FsError> {
        let (workspace, temp_workspace) = match workspace {
            Some(p) => (existing_dir("--workspace", p)?, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("stepbox-workspace-")
                    .tempdir()
                    .map_err(|source| FsError::TempDir {
                        what: "workspace",
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let (packages, temp_packages) = match packages {
            Some(p) => (existing_dir("--package", p)?, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("stepbox-packages-")
                    .tempdir()
                    .map_err(|source| FsError::TempDir {
                        what: "packages",
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Self {
            workspace,
            packages,
            temp_workspace,
            _temp_packages: temp_packages,
        })
    }

    /// Host path behind `/workspace`.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// Host path behind `/packages`.
    pub fn packages(&self) -> &Path {
        &self.packages
    }

    /// Keeps a temporary workspace after the run (it holds artifacts).
    pub fn keep_workspace(&mut self) {
        if let Some(t) = self.temp_workspace.take() {
            let _ = t.keep();
        }
    }

    /// The WASI context of the run: the two preopens, stdout/stderr into the
    /// run log, and nothing else.
    pub fn wasi_ctx(&self, recorder: &RunRecorder) -> (WasiCtx, [LogStream; 2]) {
        let stdout = LogStream::new(recorder.clone(), LogSource::Stdout);
        let stderr = LogStream::new(recorder.clone(), LogSource::Stderr);
        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .allow_blocking_current_thread(true);
        // Both directories were checked in `prepare`; a failure here means
        // they vanished since, and the step then sees no preopen (and the
        // read fails with a clear WASI error) rather than the host failing.
        if let Err(e) = b.preopened_dir(&self.workspace, WORKSPACE_GUEST_PATH, FsPerms::ReadWrite) {
            tracing::warn!(path = %self.workspace.display(), "workspace preopen failed: {e:#}");
        }
        if let Err(e) = b.preopened_dir(&self.packages, PACKAGES_GUEST_PATH, FsPerms::ReadOnly) {
            tracing::warn!(path = %self.packages.display(), "packages preopen failed: {e:#}");
        }
        (b.build(), [stdout, stderr])
    }
}

fn existing_dir(what: &'static str, p: &Path) -> Result<PathBuf, FsError> {
    let err = |reason: String| FsError::NotADirectory {
        what,
        path: p.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(p).map_err(|e| err(e.to_string()))?;
    if !meta.is_dir() {
        return Err(err("it is a file".into()));
    }
    std::fs::canonicalize(p).map_err(|e| err(e.to_string()))
}
