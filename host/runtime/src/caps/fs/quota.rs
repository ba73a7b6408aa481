//! The workspace quota: how much a run may add to `/workspace`.
//!
//! WASI filesystem calls have no quota of their own, so the host measures the
//! workspace: once before the guest starts (the baseline), every
//! [`SAMPLE_INTERVAL`] while it runs (one [`WorkspaceWatcher`] thread for
//! all the runs of a runtime), and once
//! after it stops. A run that holds more than the baseline plus
//! `limits.workspaceBytes` bytes, or plus `limits.workspaceFiles` entries,
//! is ended with [`LimitKind::WorkspaceBytes`] / [`LimitKind::WorkspaceFiles`].
//!
//! What is counted:
//! - the length of every regular file and symlink (sparse files count at
//!   their full length, hard links once per name: a conservative count);
//! - every file, directory and symlink as one entry;
//! - on Linux, files the guest deleted but still holds open (they still use
//!   the disk), found through `/proc/self/fd`.
//!
//! The walk goes through cap-std handles (it never follows a symlink and
//! never leaves the workspace) and holds one directory handle per level, so
//! directories nested deeper than [`MAX_DEPTH`] end the run
//! ([`LimitKind::WorkspaceDepth`]) instead of hiding bytes from the count.
//!
//! Sampling means a step can overshoot the quota by what it writes in one
//! interval before it is stopped; the disk does not fill.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;

use crate::policy::Limits;
use crate::report::{LimitKind, RunRecorder};

/// How often a running step's workspace is measured (at least; a large
/// workspace is measured less often, see [`WorkspaceWatch`]).
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// Deepest directory nesting the host measures in `/workspace`.
pub const MAX_DEPTH: usize = 128;

/// What a workspace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkspaceUsage {
    /// Sum of file (and symlink) lengths.
    pub bytes: u64,
    /// Files, directories and symlinks, the root not included.
    pub files: u64,
}

/// Why a workspace could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// Directories nest deeper than [`MAX_DEPTH`].
    #[error("directories nest more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// The workspace directory itself could not be read.
    #[error("cannot read the workspace: {0}")]
    Io(#[from] std::io::Error),
}

/// The most a run's workspace may hold: the baseline plus the limits.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceQuota {
    baseline: WorkspaceUsage,
    limit_bytes: u64,
    limit_files: u64,
}

impl WorkspaceQuota {
    /// A quota of `limits` over what `root` holds now.
    ///
    /// # Errors
    /// When the workspace cannot be measured (see [`measure`]).
    pub fn new(root: &Path, limits: &Limits) -> Result<Self, MeasureError> {
        let baseline = measure(root, None)?;
        Ok(Self {
            baseline,
            limit_bytes: limits.workspace_bytes,
            limit_files: limits.workspace_files,
        })
    }

    fn max(&self) -> WorkspaceUsage {
        WorkspaceUsage {
            bytes: self.baseline.bytes.saturating_add(self.limit_bytes),
            files: self.baseline.files.saturating_add(self.limit_files),
        }
    }

    /// A quota of `limits` over an empty workspace (one the host just made).
    pub fn empty(limits: &Limits) -> Self {
        Self {
            baseline: WorkspaceUsage::default(),
            limit_bytes: limits.workspace_bytes,
            limit_files: limits.workspace_files,
        }
    }

    /// Measures `root` and returns the limit it breaks, if any.
    pub fn check(&self, root: &Path) -> Option<LimitKind> {
        self.check_with(root, open_deleted_bytes(root))
    }

    /// [`WorkspaceQuota::check`] with the bytes of deleted but open files
    /// under `root` already known.
    fn check_with(&self, root: &Path, open_deleted_bytes: u64) -> Option<LimitKind> {
        let max = self.max();
        match measure_tree(root, Some(max), open_deleted_bytes) {
            Ok(usage) if usage.files > max.files => Some(LimitKind::WorkspaceFiles {
                limit: self.limit_files,
            }),
            Ok(usage) if usage.bytes > max.bytes => Some(LimitKind::WorkspaceBytes {
                limit: self.limit_bytes,
            }),
            Ok(_) => None,
            Err(MeasureError::TooDeep) => Some(LimitKind::WorkspaceDepth {
                limit: MAX_DEPTH as u64,
            }),
            // The workspace vanished or became unreadable: nothing is held.
            Err(MeasureError::Io(e)) => {
                tracing::debug!(root = %root.display(), "workspace not measured: {e}");
                None
            }
        }
    }
}

/// Measures what `root` holds. With `stop_over`, the walk stops as soon as
/// either count passes it (the result is then only known to be over).
///
/// # Errors
/// [`MeasureError::TooDeep`] past [`MAX_DEPTH`] levels; [`MeasureError::Io`]
/// when `root` itself cannot be read (unreadable entries below it are
/// skipped).
pub fn measure(
    root: &Path,
    stop_over: Option<WorkspaceUsage>,
) -> Result<WorkspaceUsage, MeasureError> {
    measure_tree(root, stop_over, open_deleted_bytes(root))
}

/// Bytes of the files under `root` deleted but still open in this process
/// (one scan of `/proc/self/fd`; see [`OpenDeletedFiles`]).
fn open_deleted_bytes(root: &Path) -> u64 {
    std::fs::canonicalize(root)
        .map(|root| OpenDeletedFiles::scan().bytes_under(&root))
        .unwrap_or(0)
}

/// [`measure`] with the bytes of deleted but open files already counted.
fn measure_tree(
    root: &Path,
    stop_over: Option<WorkspaceUsage>,
    open_deleted_bytes: u64,
) -> Result<WorkspaceUsage, MeasureError> {
    let over = |u: &WorkspaceUsage| {
        stop_over.is_some_and(|max| u.bytes > max.bytes || u.files > max.files)
    };
    let mut usage = WorkspaceUsage {
        bytes: open_deleted_bytes,
        files: 0,
    };
    let top = Arc::new(Dir::open_ambient_dir(root, cap_std::ambient_authority())?);
    // Pending directories as (parent handle, name, depth): a handle stays
    // open only while some of its children are pending, so at most about
    // one handle per level is open.
    let mut pending: Vec<(Arc<Dir>, Option<OsString>, usize)> = vec![(top, None, 0)];
    while let Some((parent, name, depth)) = pending.pop() {
        let dir = match name {
            None => parent,
            Some(name) => match parent.open_dir(&name) {
                Ok(d) => Arc::new(d),
                // Removed meanwhile, or swapped for something else.
                Err(_) => continue,
            },
        };
        let Ok(entries) = dir.entries() else { continue };
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            usage.files += 1;
            if file_type.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    return Err(MeasureError::TooDeep);
                }
                pending.push((dir.clone(), Some(entry.file_name()), depth + 1));
            } else if let Ok(meta) = entry.metadata() {
                usage.bytes = usage.bytes.saturating_add(meta.len());
            }
            if over(&usage) {
                return Ok(usage);
            }
        }
    }
    Ok(usage)
}

/// Files deleted but still open in this process (a guest holds them: they
/// use the disk but no walk sees them), found through `/proc/self/fd`.
/// Linux only; none elsewhere.
///
/// One scan serves every workspace measured at the same time: the cost of
/// a scan grows with the process's open files, which grow with its runs.
#[derive(Debug, Default)]
struct OpenDeletedFiles(Vec<(PathBuf, u64)>);

impl OpenDeletedFiles {
    fn scan() -> Self {
        if !cfg!(target_os = "linux") {
            return Self::default();
        }
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return Self::default();
        };
        let mut files = Vec::new();
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let text = target.to_string_lossy();
            let Some(path) = text.strip_suffix(" (deleted)") else {
                continue;
            };
            if let Ok(meta) = std::fs::metadata(fd.path()) {
                files.push((PathBuf::from(path), meta.len()));
            }
        }
        Self(files)
    }

    /// Bytes of the files once under `root` (a canonical path).
    fn bytes_under(&self, root: &Path) -> u64 {
        self.0
            .iter()
            .filter(|(path, _)| path.starts_with(root))
            .fold(0u64, |sum, (_, len)| sum.saturating_add(*len))
    }
}

/// Measures the workspaces of running steps, every [`SAMPLE_INTERVAL`] at
/// least, on one thread for all the runs of a
/// [`Runtime`](crate::Runtime), recording the first limit each run
/// breaks (which ends that run).
///
/// A workspace is measured again [`SAMPLE_INTERVAL`] after its last
/// measurement, or twice as long as that measurement took, whichever is
/// longer, so a huge workspace is measured less often rather than keeping
/// the thread busy. Since one thread serves every run, a run with a huge
/// workspace also delays the sampling of the others (each run's quota is
/// still checked once more when it ends).
#[derive(Debug)]
pub struct WorkspaceWatcher {
    shared: Arc<WatchShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct WatchShared {
    state: Mutex<WatchState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct WatchState {
    next_id: u64,
    entries: HashMap<u64, WatchEntry>,
    stopped: bool,
    /// How the thread sleeps, when it does.
    sleeping: Option<Sleep>,
}

#[derive(Debug, Clone, Copy)]
enum Sleep {
    /// No workspace to measure: until woken.
    Forever,
    /// Until the next workspace is due.
    Until(Instant),
}

#[derive(Debug)]
struct WatchEntry {
    /// The workspace (made canonical when measured, as `/proc/self/fd`
    /// names files).
    root: PathBuf,
    quota: WorkspaceQuota,
    recorder: RunRecorder,
    due: Instant,
}

/// One run's workspace under a [`WorkspaceWatcher`]; dropping it stops the
/// watching.
#[derive(Debug)]
pub struct WorkspaceWatch {
    shared: Arc<WatchShared>,
    id: u64,
}

impl WorkspaceWatcher {
    /// Starts the watcher's thread.
    ///
    /// # Errors
    /// When no thread can be started.
    pub fn new() -> std::io::Result<Self> {
        let shared = Arc::new(WatchShared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("stepbox-workspace".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Watches `root` against `quota` until the returned guard is dropped.
    pub fn watch(
        &self,
        root: &Path,
        quota: WorkspaceQuota,
        recorder: RunRecorder,
    ) -> WorkspaceWatch {
        let due = Instant::now() + SAMPLE_INTERVAL;
        let mut state = self.shared.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.entries.insert(
            id,
            WatchEntry {
                root: root.to_path_buf(),
                quota,
                recorder,
                due,
            },
        );
        // Wake the thread only when it would otherwise sleep past this
        // workspace's first measurement (a run's start stays cheap).
        let wake = match state.sleeping {
            Some(Sleep::Forever) => true,
            Some(Sleep::Until(at)) => due < at,
            None => false,
        };
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        WorkspaceWatch {
            shared: self.shared.clone(),
            id,
        }
    }
}

impl Drop for WorkspaceWatcher {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for WorkspaceWatch {
    fn drop(&mut self) {
        self.shared.lock().entries.remove(&self.id);
    }
}

impl WatchShared {
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The watcher thread: sleeps until a workspace is due, measures every
    /// due one (with one scan of the open files for all), and records the
    /// limits they break.
    fn run(&self) {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return;
            }
            let now = Instant::now();
            let due: Vec<(u64, PathBuf, WorkspaceQuota, RunRecorder)> = state
                .entries
                .iter()
                .filter(|(_, e)| e.due <= now)
                .map(|(id, e)| (*id, e.root.clone(), e.quota, e.recorder.clone()))
                .collect();
            if due.is_empty() {
                let next = state.entries.values().map(|e| e.due).min();
                state = match next {
                    Some(at) => {
                        state.sleeping = Some(Sleep::Until(at));
                        let wait = at.saturating_duration_since(now);
                        self.wake
                            .wait_timeout(state, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => {
                        state.sleeping = Some(Sleep::Forever);
                        self.wake.wait(state).unwrap_or_else(|e| e.into_inner())
                    }
                };
                state.sleeping = None;
                continue;
            }
            drop(state);
            let deleted = OpenDeletedFiles::scan();
            let mut measured = Vec::with_capacity(due.len());
            for (id, root, quota, recorder) in due {
                let started = Instant::now();
                let root = std::fs::canonicalize(&root).unwrap_or(root);
                let broken = quota.check_with(&root, deleted.bytes_under(&root));
                let took = started.elapsed();
                let is_broken = broken.is_some();
                if let Some(limit) = broken {
                    recorder.limit_exceeded(limit);
                }
                measured.push((id, is_broken, SAMPLE_INTERVAL.max(took * 2)));
            }
            state = self.lock();
            let now = Instant::now();
            for (id, broken, wait) in measured {
                if broken {
                    // The run is ending; nothing more to measure.
                    state.entries.remove(&id);
                } else if let Some(entry) = state.entries.get_mut(&id) {
                    entry.due = now + wait;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: u64, files: u64) -> Limits {
        Limits {
            workspace_bytes: bytes,
            workspace_files: files,
            ..Limits::default()
        }
    }

    #[test]
    fn counts_files_dirs_and_bytes_without_following_symlinks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(d.path().join("x/y")).unwrap();
        std::fs::write(d.path().join("x/y/b"), vec![0u8; 24]).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/", d.path().join("root-link")).unwrap();
        let u = measure(d.path(), None).unwrap();
        let link_len = if cfg!(unix) { 1 } else { 0 };
        assert_eq!(u.bytes, 1024 + link_len);
        assert_eq!(u.files, 4 + link_len);
    }

    #[test]
    fn quota_is_over_the_baseline() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("existing"), vec![0u8; 4096]).unwrap();
        let q = WorkspaceQuota::new(d.path(), &limits(1000, 2)).unwrap();
        assert_eq!(q.check(d.path()), None, "what was there does not count");
        std::fs::write(d.path().join("new"), vec![0u8; 1001]).unwrap();
        assert_eq!(
            q.check(d.path()),
            Some(LimitKind::WorkspaceBytes { limit: 1000 })
        );
        std::fs::write(d.path().join("new"), b"").unwrap();
        std::fs::write(d.path().join("n2"), b"").unwrap();
        assert_eq!(q.check(d.path()), None);
        std::fs::write(d.path().join("n3"), b"").unwrap();
        assert_eq!(
            q.check(d.path()),
            Some(LimitKind::WorkspaceFiles { limit: 2 })
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut p = d.path().to_path_buf();
        for _ in 0..=MAX_DEPTH {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        assert!(matches!(
            measure(d.path(), None),
            Err(MeasureError::TooDeep)
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_deleted_files_still_count() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let mut f = std::fs::File::create(d.path().join("gone")).unwrap();
        f.write_all(&[0u8; 5000]).unwrap();
        std::fs::remove_file(d.path().join("gone")).unwrap();
        assert_eq!(measure(d.path(), None).unwrap().bytes, 5000);
        drop(f);
        assert_eq!(measure(d.path(), None).unwrap().bytes, 0);
    }
}
