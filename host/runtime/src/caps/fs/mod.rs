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
use std::sync::{Arc, Mutex, mpsc};

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
    /// The thread that removes finished workspaces could not be started.
    #[error("could not start the thread that removes finished workspaces: {0}")]
    Janitor(#[source] std::io::Error),
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

/// The host directories of one run. A temporary workspace is handed to
/// the [`RunDirs`] it came from when dropped (to be removed in the
/// background), unless [`RunFs::keep_workspace`] was called.
#[derive(Debug)]
pub struct RunFs {
    workspace: PathBuf,
    packages: PathBuf,
    temp_workspace: Option<tempfile::TempDir>,
    /// The run left its temporary workspace empty: it may serve another.
    reusable: bool,
    janitor: mpsc::Sender<JanitorTask>,
}

impl RunFs {
    /// Checks the given directories; a run without `--workspace` gets a
    /// fresh empty one from `dirs`, and one without `--package` the shared
    /// empty (read-only) packages directory.
    pub fn prepare(
        workspace: Option<&Path>,
        packages: Option<&Path>,
        dirs: &RunDirs,
    ) -> Result<Self, FsError> {
        let (workspace, temp_workspace) = match workspace {
            Some(p) => (existing_dir("--workspace", p)?, None),
            None => {
                let t = dirs.fresh_workspace()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let packages = match packages {
            Some(p) => existing_dir("--package", p)?,
            None => dirs.empty_packages().to_path_buf(),
        };
        Ok(Self {
            workspace,
            packages,
            temp_workspace,
            reusable: false,
            janitor: dirs.janitor.clone(),
        })
    }

    /// True when the workspace is a fresh, empty directory the host made
    /// for this run (no `--workspace`): it held nothing when the run began.
    pub fn workspace_is_fresh(&self) -> bool {
        self.temp_workspace.is_some()
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

    /// Says the run is over (the guest holds no handle into the workspace
    /// any more) and left its temporary workspace empty, so it can serve a
    /// later run instead of being removed: creating and removing a
    /// directory per run is most of a small run's filesystem cost. The
    /// janitor checks it is still empty before reusing it.
    pub fn workspace_left_empty(&mut self) {
        self.reusable = true;
    }
}

impl Drop for RunFs {
    fn drop(&mut self) {
        if let Some(t) = self.temp_workspace.take() {
            // Removed by the janitor thread, off the run's path; should it
            // be gone, `t` is dropped (and removed) here instead.
            let task = if self.reusable {
                JanitorTask::Reuse(t)
            } else {
                JanitorTask::Remove(t)
            };
            let _ = self.janitor.send(task);
        }
    }
}

/// How many empty workspaces [`RunDirs`] keeps ready for a process's
/// concurrent runs.
const READY_WORKSPACES: usize = 8;

/// The temporary directories of a [`Runtime`](crate::Runtime)'s
/// runs: one empty, read-only `/packages` for every run given no
/// `--package`, and workspaces: kept ready (after a process's first run)
/// and removed after their run by a janitor thread, so neither `mkdir` nor
/// the removal of what a step wrote is on a run's path.
///
/// Every workspace is a directory private to the user (mode 0700), in the
/// system's temp directory, that holds nothing when its run starts: a new
/// one, or one an earlier run left empty (checked again, its times reset).
/// Dropping `RunDirs` waits for the janitor to remove what it was given.
#[derive(Debug)]
pub struct RunDirs {
    shared: Arc<DirsShared>,
    /// A workspace was handed out already (the first run gets no stock).
    served: std::sync::atomic::AtomicBool,
    janitor: mpsc::Sender<JanitorTask>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct DirsShared {
    empty_packages: tempfile::TempDir,
    ready: Mutex<Vec<tempfile::TempDir>>,
}

#[derive(Debug)]
enum JanitorTask {
    /// Remove a finished run's workspace.
    Remove(tempfile::TempDir),
    /// Make a finished run's empty workspace ready for another run (or
    /// remove it, if it is not empty or enough are ready).
    Reuse(tempfile::TempDir),
    /// Make fresh workspaces until [`READY_WORKSPACES`] are ready.
    Refill,
}

impl RunDirs {
    /// Makes the shared packages directory and starts the janitor.
    ///
    /// # Errors
    /// When the temp directory cannot be written or no thread can be
    /// started.
    pub fn new() -> Result<Self, FsError> {
        let empty_packages = temp_dir("stepbox-packages-", "packages")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Read-only for the host too: nothing ever goes in it.
            let _ = std::fs::set_permissions(
                empty_packages.path(),
                std::fs::Permissions::from_mode(0o500),
            );
        }
        let shared = Arc::new(DirsShared {
            empty_packages,
            ready: Mutex::default(),
        });
        let (janitor, tasks) = mpsc::channel();
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("stepbox-janitor".into())
            .spawn(move || {
                for task in tasks {
                    match task {
                        JanitorTask::Remove(dir) => drop(dir),
                        JanitorTask::Reuse(dir) => worker.reuse(dir),
                        JanitorTask::Refill => worker.refill(),
                    }
                }
            })
            .map_err(FsError::Janitor)?;
        Ok(Self {
            shared,
            served: std::sync::atomic::AtomicBool::new(false),
            janitor,
            thread: Some(thread),
        })
    }

    /// The shared empty directory behind `/packages` for runs without
    /// `--package`.
    pub fn empty_packages(&self) -> &Path {
        self.shared.empty_packages.path()
    }

    /// An empty workspace: one made ahead of time or left empty by an
    /// earlier run, else a new one.
    fn fresh_workspace(&self) -> Result<tempfile::TempDir, FsError> {
        let (ready, left) = {
            let mut ready = self.shared.lock_ready();
            (ready.pop(), ready.len())
        };
        let first = !self.served.swap(true, std::sync::atomic::Ordering::Relaxed);
        // Nothing is made ahead for a process's first run (`stepbox run`
        // has only that one). After it, runs that leave their workspace
        // empty give it back; the stock is topped up when concurrent runs
        // draw it down.
        if !first && left < READY_WORKSPACES / 2 {
            let _ = self.janitor.send(JanitorTask::Refill);
        }
        match ready {
            Some(dir) => Ok(dir),
            None => new_workspace(),
        }
    }
}

impl DirsShared {
    fn lock_ready(&self) -> std::sync::MutexGuard<'_, Vec<tempfile::TempDir>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts an empty workspace back among the ready ones, its times reset
    /// (so nothing, not even when the last run touched it, carries over);
    /// drops (removes) it otherwise.
    fn reuse(&self, dir: tempfile::TempDir) {
        if !is_empty_dir(dir.path()) || self.lock_ready().len() >= READY_WORKSPACES * 2 {
            return;
        }
        let now = std::time::SystemTime::now();
        let reset = std::fs::File::open(dir.path()).and_then(|d| {
            d.set_times(
                std::fs::FileTimes::new()
                    .set_accessed(now)
                    .set_modified(now),
            )
        });
        if reset.is_ok() {
            self.lock_ready().push(dir);
        }
    }

    fn refill(&self) {
        while self.lock_ready().len() < READY_WORKSPACES {
            match new_workspace() {
                Ok(dir) => self.lock_ready().push(dir),
                Err(e) => {
                    // Runs then make their own, and say so if that fails.
                    tracing::debug!("could not make a workspace ahead of time: {e}");
                    return;
                }
            }
        }
    }
}

impl Drop for RunDirs {
    fn drop(&mut self) {
        // Closing the channel ends the janitor once it has removed
        // everything it was given (runs still holding a `RunFs` remove
        // their workspace themselves).
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.janitor, closed));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                self.shared.empty_packages.path(),
                std::fs::Permissions::from_mode(0o700),
            );
        }
    }
}

/// True when `dir` can be read and holds nothing.
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

/// A new, empty workspace directory.
fn new_workspace() -> Result<tempfile::TempDir, FsError> {
    temp_dir("stepbox-workspace-", "workspace")
}

fn temp_dir(prefix: &str, what: &'static str) -> Result<tempfile::TempDir, FsError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| FsError::TempDir { what, source })
}

impl RunFs {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (briefly) for the janitor to have handled what it was sent.
    fn settle(dirs: &RunDirs, until: impl Fn(&RunDirs) -> bool) {
        for _ in 0..500 {
            if until(dirs) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn ready(dirs: &RunDirs) -> Vec<PathBuf> {
        dirs.shared
            .lock_ready()
            .iter()
            .map(|d| d.path().to_path_buf())
            .collect()
    }

    #[test]
    fn an_empty_workspace_is_reused_with_its_times_reset() {
        let dirs = RunDirs::new().unwrap();
        let mut fs = RunFs::prepare(None, None, &dirs).unwrap();
        let ws = fs.workspace().to_path_buf();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::open(&ws)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(old))
            .unwrap();
        fs.workspace_left_empty();
        drop(fs);
        settle(&dirs, |d| ready(d).contains(&ws));
        assert!(
            ready(&dirs).contains(&ws),
            "the empty workspace is ready again"
        );
        let modified = std::fs::metadata(&ws).unwrap().modified().unwrap();
        assert!(modified > old, "its modification time was reset");
    }

    #[test]
    fn a_workspace_with_anything_in_it_is_removed() {
        let dirs = RunDirs::new().unwrap();
        let mut fs = RunFs::prepare(None, None, &dirs).unwrap();
        let ws = fs.workspace().to_path_buf();
        std::fs::write(ws.join("left-over"), "x").unwrap();
        // Even if the run (wrongly) said it was empty: the janitor checks.
        fs.workspace_left_empty();
        drop(fs);
        settle(&dirs, |_| !ws.exists());
        assert!(!ws.exists(), "removed");
        assert!(!ready(&dirs).contains(&ws));

        let fs = RunFs::prepare(None, None, &dirs).unwrap();
        let ws = fs.workspace().to_path_buf();
        drop(fs);
        settle(&dirs, |_| !ws.exists());
        assert!(!ws.exists(), "a run that did not say so gets no reuse");
    }
}
