//! The workspace quota: how much a run may add to `/workspace`.
//!
//! WASI filesystem calls have no quota of their own, so the host measures the
//! workspace: once before the guest starts (the baseline), every
//! [`SAMPLE_INTERVAL`] while it runs (a [`WorkspaceWatch`] thread), and once
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

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

    /// Measures `root` and returns the limit it breaks, if any.
    pub fn check(&self, root: &Path) -> Option<LimitKind> {
        let max = self.max();
        match measure(root, Some(max)) {
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
    let over = |u: &WorkspaceUsage| {
        stop_over.is_some_and(|max| u.bytes > max.bytes || u.files > max.files)
    };
    let mut usage = WorkspaceUsage {
        bytes: open_deleted_bytes(root),
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

/// Bytes of files under `root` that were deleted but are still open in
/// this process (the guest holds them: they use the disk but no walk sees
/// them). Linux only; 0 elsewhere.
fn open_deleted_bytes(root: &Path) -> u64 {
    if !cfg!(target_os = "linux") {
        return 0;
    }
    let Ok(root) = std::fs::canonicalize(root) else {
        return 0;
    };
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let mut bytes = 0u64;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let text = target.to_string_lossy();
        let Some(path) = text.strip_suffix(" (deleted)") else {
            continue;
        };
        if !Path::new(path).starts_with(&root) {
            continue;
        }
        if let Ok(meta) = std::fs::metadata(fd.path()) {
            bytes = bytes.saturating_add(meta.len());
        }
    }
    bytes
}

/// Measures a running step's workspace on a thread of its own until dropped,
/// recording the first limit broken (which ends the run).
///
/// The thread waits [`SAMPLE_INTERVAL`] between measurements, or twice as
/// long as the last measurement took, whichever is longer.
#[derive(Debug)]
pub struct WorkspaceWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::Thread>,
}

impl WorkspaceWatch {
    /// Starts watching `root` against `quota`.
    pub fn start(root: PathBuf, quota: WorkspaceQuota, recorder: RunRecorder) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("stepbox-workspace".into())
            .spawn(move || {
                let mut wait = SAMPLE_INTERVAL;
                loop {
                    std::thread::park_timeout(wait);
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    let started = Instant::now();
                    if let Some(limit) = quota.check(&root) {
                        recorder.limit_exceeded(limit);
                        return;
                    }
                    wait = SAMPLE_INTERVAL.max(started.elapsed() * 2);
                }
            });
        match spawned {
            Ok(handle) => Self {
                stop,
                thread: Some(handle.thread().clone()),
            },
            Err(e) => {
                tracing::error!(
                    "could not start the workspace watch; the quota is checked only at the end of the run: {e}"
                );
                Self { stop, thread: None }
            }
        }
    }
}

impl Drop for WorkspaceWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.thread {
            t.unpark();
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
