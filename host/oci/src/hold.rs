//! What one process pulled stays in the cache while it uses it, whatever
//! another process collects.
//!
//! A pull holds a shared lock on `<root>/lock` and hands it out with the
//! artifact ([`Pulled::hold`](crate::Pulled::hold)); `stepbox run` keeps it
//! until the run ends and a worker for as long as it lives. Collecting
//! from another process (`stepbox cache prune`) takes the lock
//! exclusively and does not wait: while anything holds it, the prune says
//! so and removes nothing. The locks are the operating system's (`flock`),
//! so a process that dies releases its own: a killed run never leaves the
//! cache locked.
//!
//! A process that collects its own cache (the worker) knows which digests
//! its runs use ([`Collect::in_use`](crate::Collect::in_use)) and does not
//! take the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::sync::Arc;

use crate::{BlobCache, Error, Result};

/// A shared hold on a blob cache (or the exclusive one of a collection);
/// released when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct CacheHold {
    /// `None` where the cache's file system cannot lock (said in a
    /// warning when taken).
    _file: Option<Arc<File>>,
}

impl BlobCache {
    fn lock_path(&self) -> PathBuf {
        self.root().join("lock")
    }

    /// The lock file, created with the cache; opened read-only where the
    /// cache is (a shared lock needs no write access).
    fn lock_file(&self) -> std::io::Result<File> {
        let path = self.lock_path();
        let created = std::fs::create_dir_all(self.root()).and_then(|()| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        });
        // Read-only where the cache is; failing that, why not created.
        created.or_else(|e| File::open(&path).map_err(|_| e))
    }

    /// A shared hold: no other process collects this cache while it is
    /// held. Waits while a collection runs (it takes seconds at most).
    /// Where the cache cannot be locked (a read-only cache without a lock
    /// file, a file system without locks), a warning says so and the hold
    /// protects nothing, as before locks existed.
    pub async fn hold(&self) -> CacheHold {
        let unlocked = |e: std::io::Error| {
            let lock = self.lock_path();
            // A cache this process may not write, no other may prune
            // either (a read-only mount of a filled cache): nothing to say.
            if matches!(
                e.kind(),
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
            ) {
                tracing::debug!(lock = %lock.display(), error = %e, "blob cache not locked");
            } else {
                tracing::warn!(
                    lock = %lock.display(),
                    error = %e,
                    "cannot lock the blob cache; another process's `stepbox cache prune` may remove what this one uses"
                );
            }
            CacheHold { _file: None }
        };
        let file = match self.lock_file() {
            Ok(f) => f,
            Err(e) => return unlocked(e),
        };
        let locked = match file.try_lock_shared() {
            Ok(()) => file,
            Err(TryLockError::WouldBlock) => {
                tracing::info!(
                    cache = %self.root().display(),
                    "waiting for a collection of the blob cache to finish"
                );
                let waited = tokio::task::spawn_blocking(move || file.lock_shared().map(|()| file))
                    .await
                    .map_err(std::io::Error::other);
                match waited {
                    Ok(Ok(file)) => file,
                    Ok(Err(e)) | Err(e) => return unlocked(e),
                }
            }
            Err(TryLockError::Error(e)) => return unlocked(e),
        };
        CacheHold {
            _file: Some(Arc::new(locked)),
        }
    }

    /// The exclusive hold a collection from outside the process that
    /// uses the cache takes first; it does not wait.
    ///
    /// # Errors
    /// [`Error::Local`] naming the lock file when another process holds
    /// the cache (a run of a pulled step, a worker, a pull), or when it
    /// cannot be locked at all.
    pub fn hold_exclusive(&self) -> Result<CacheHold> {
        let path = self.lock_path();
        let local = |detail: String| Error::Local {
            path: path.display().to_string(),
            detail,
        };
        let file = self
            .lock_file()
            .map_err(|e| local(format!("cannot open the cache's lock file: {e}")))?;
        match file.try_lock() {
            Ok(()) => Ok(CacheHold {
                _file: Some(Arc::new(file)),
            }),
            Err(TryLockError::WouldBlock) => Err(local(
                "the blob cache is in use by another stepbox process (a run of a pulled step, a pull, or a worker); \
                 nothing was removed: prune again when it has finished (a worker keeps its own cache under --cache-max-size)"
                    .to_string(),
            )),
            Err(TryLockError::Error(e)) => Err(local(format!(
                "cannot lock the blob cache ({e}); nothing was removed"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shared_hold_refuses_a_collection_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("oci"));
        let run = cache.hold().await;
        let also = run.clone();
        let other_run = cache.hold().await;

        let err = cache.hold_exclusive().unwrap_err().to_string();
        assert!(err.contains("in use by another stepbox process"), "{err}");
        assert!(err.contains("nothing was removed"), "{err}");
        assert!(err.contains("lock"), "{err}");
        drop(run);
        drop(other_run);
        // A clone keeps the hold.
        assert!(cache.hold_exclusive().is_err());
        drop(also);
        let collecting = cache.hold_exclusive().unwrap();
        assert!(cache.hold_exclusive().is_err(), "one collection at a time");
        drop(collecting);
        cache.hold_exclusive().unwrap();
    }

    #[tokio::test]
    async fn a_hold_waits_for_a_collection() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let collecting = cache.hold_exclusive().unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let c = cache.clone();
        let waiter = tokio::spawn(async move {
            let hold = c.hold().await;
            let _ = tx.send(());
            hold
        });
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "the hold did not wait");
        drop(collecting);
        let hold = waiter.await.unwrap();
        assert!(hold._file.is_some());
        assert!(cache.hold_exclusive().is_err());
    }

    #[tokio::test]
    async fn an_unlockable_cache_still_serves_runs() {
        // A cache directory that cannot be created: the hold protects
        // nothing but the pull goes on.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let cache = BlobCache::new(file.join("oci"));
        assert!(cache.hold().await._file.is_none());
        let err = cache.hold_exclusive().unwrap_err().to_string();
        assert!(err.contains("cannot open the cache's lock file"), "{err}");
    }
}
