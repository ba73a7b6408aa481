//! Keeping the worker's two disk caches (pulled blobs and compiled
//! components) under `--cache-max-size` together, least recently used
//! first across both, without touching what a run in flight uses.
//!
//! A run holds a read lock of [`CacheUse`] from its first pull until the
//! digests it pulled are registered as in use ([`InUse`], dropped when the
//! run ends); collection takes the write lock, so it never sees a run that
//! pulled but has not registered yet. A compiled component loaded now is
//! safe to remove from disk (it is mapped; see the compile cache).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use stepbox::engine::CompileCache;
use stepbox_oci::BlobCache;
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::metrics::Metrics;

/// The digests runs in flight use, and the gate between pulls and
/// collection.
#[derive(Debug, Default)]
pub struct CacheUse {
    gate: RwLock<()>,
    digests: Mutex<HashMap<String, usize>>,
}

/// Digests a run uses; released when dropped.
#[derive(Debug)]
pub struct InUse {
    owner: Arc<CacheUse>,
    digests: Vec<String>,
}

impl InUse {
    /// Marks `digests` in use too.
    pub fn add(&mut self, digests: impl IntoIterator<Item = String>) {
        let mut held = self.owner.lock();
        for d in digests {
            *held.entry(d.clone()).or_default() += 1;
            self.digests.push(d);
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut held = self.owner.lock();
        for d in &self.digests {
            if let Some(n) = held.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    held.remove(d);
                }
            }
        }
    }
}

impl CacheUse {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.digests.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Held from a run's first pull until its digests are in [`InUse`]:
    /// no collection runs meanwhile.
    pub async fn pulling(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// An empty set of digests in use, for one run.
    pub fn hold(self: &Arc<Self>) -> InUse {
        InUse {
            owner: self.clone(),
            digests: Vec::new(),
        }
    }

    /// Collects both caches down to `max_bytes` together, keeping what
    /// runs use, and counts what went in `metrics`.
    pub async fn collect(
        &self,
        blobs: BlobCache,
        compiled: Option<PathBuf>,
        max_bytes: u64,
        metrics: &Metrics,
    ) {
        let _gate = self.gate.write().await;
        let in_use: HashSet<String> = self.lock().keys().cloned().collect();
        let done = tokio::task::spawn_blocking(move || {
            let compiled = compiled.map(CompileCache::new);
            let (blob_budget, compiled_budget) = stepbox::engine::split_budget(
                max_bytes,
                blobs.entries().iter().map(|e| (e.bytes, e.last_used)),
                compiled
                    .iter()
                    .flat_map(CompileCache::entries)
                    .map(|e| (e.bytes, e.last_used)),
            );
            let b = blobs.collect(&stepbox_oci::Collect {
                max_bytes: Some(blob_budget),
                in_use,
                ..Default::default()
            });
            let c = compiled.map(|c| {
                c.collect(&stepbox::engine::Collect {
                    max_bytes: Some(compiled_budget),
                    ..Default::default()
                })
            });
            (b, c)
        })
        .await;
        let Ok((b, c)) = done else { return };
        match b {
            Ok(b) => metrics.evicted("blob", b.removed.len(), b.bytes_freed),
            Err(e) => tracing::warn!(error = %e, "cannot collect the blob cache"),
        }
        match c {
            Some(Ok(c)) => metrics.evicted("compile", c.removed.len(), c.bytes_freed),
            Some(Err(e)) => tracing::warn!(error = %e, "cannot collect the compile cache"),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_in_use_until_every_run_using_them_ends() {
        let uses = Arc::new(CacheUse::default());
        let mut one = uses.hold();
        one.add(["sha256:a".to_string()]);
        let mut two = uses.hold();
        two.add(["sha256:a".to_string(), "sha256:b".to_string()]);
        drop(one);
        assert!(uses.lock().contains_key("sha256:a"));
        drop(two);
        assert!(uses.lock().is_empty());
    }

    #[tokio::test]
    async fn collection_keeps_what_runs_use() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobCache::new(dir.path().join("oci"));
        let r = stepbox_oci::Reference::parse("127.0.0.1:5000/steps/s:1").unwrap();
        let used = stepbox_oci::digest_of(b"used by a run");
        let idle = stepbox_oci::digest_of(b"idle");
        blobs.put(&r, &used, b"used by a run").unwrap();
        blobs.put(&r, &idle, b"idle").unwrap();
        let uses = Arc::new(CacheUse::default());
        let mut running = uses.hold();
        running.add([used.clone()]);
        let metrics = Metrics::default();
        uses.collect(blobs.clone(), None, 0, &metrics).await;
        assert!(blobs.get(&used).is_some());
        assert!(blobs.get(&idle).is_none());
        let text = metrics.encode();
        assert!(
            text.contains("stepbox_worker_cache_evictions_total{cache=\"blob\"} 1"),
            "{text}"
        );
        drop(running);
        uses.collect(blobs.clone(), None, 0, &metrics).await;
        assert!(blobs.get(&used).is_none());
    }
}
