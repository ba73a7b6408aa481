//! Collecting the compile cache: least recently used entries go first.
//!
//! An entry is one precompiled component (`<key>.cwasm`) or one
//! remembered hash (`stamps/<key>`). A cache hit marks its entry used
//! (its modification time: access times are not kept on most mounts).
//!
//! Removing the entry of a component loaded now is harmless: wasmtime
//! maps the file, and a mapped file that is unlinked stays readable until
//! it is unmapped; the next load of that step is a miss and compiles it
//! again. Temporary files of writes under way are left alone unless they
//! are older than [`STALE_TEMP`] (a crashed write).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::CompileCache;

/// How old a temporary file must be before collection removes it: no
/// write takes this long.
pub const STALE_TEMP: Duration = Duration::from_secs(60 * 60);

/// What to collect.
#[derive(Debug, Clone, Copy, Default)]
pub struct Collect {
    /// Remove least recently used entries until the cache holds at most
    /// this many bytes (`None`: no size budget).
    pub max_bytes: Option<u64>,
    /// Remove entries not used for this long (`None`: no age limit).
    pub unused_for: Option<Duration>,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// One entry of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// Its file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// When it was last used.
    pub last_used: SystemTime,
}

/// What a collection removed (or, dry, would remove).
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The entries removed, least recently used first.
    pub removed: Vec<CacheEntry>,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Bytes the cache holds after.
    pub bytes_left: u64,
    /// Stale temporary files removed.
    pub stale_temp: usize,
}

/// Marks the file at `path` used now. Failures only make it look older.
pub(super) fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

impl CompileCache {
    /// The entries and temporary files as they are on disk.
    fn scan(&self) -> (Vec<CacheEntry>, Vec<CacheEntry>) {
        let (mut entries, mut temps) = (Vec::new(), Vec::new());
        for dir in [self.dir().to_path_buf(), self.dir().join("stamps")] {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let Ok(meta) = e.metadata() else { continue };
                if !meta.is_file() {
                    continue;
                }
                let entry = CacheEntry {
                    path: e.path(),
                    bytes: meta.len(),
                    last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                };
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".tmp") {
                    temps.push(entry);
                } else if name.ends_with(".cwasm") || dir.ends_with("stamps") {
                    entries.push(entry);
                }
            }
        }
        entries.sort_by(|a, b| (a.last_used, &a.path).cmp(&(b.last_used, &b.path)));
        (entries, temps)
    }

    /// The cache's entries, least recently used first.
    pub fn entries(&self) -> Vec<CacheEntry> {
        self.scan().0
    }

    /// Removes the entries `how` asks for, least recently used first, and
    /// stale temporary files.
    ///
    /// # Errors
    /// When an entry cannot be removed (what was removed before stays
    /// removed); the error names the file.
    pub fn collect(&self, how: &Collect) -> std::io::Result<Collected> {
        let (entries, temps) = self.scan();
        let now = SystemTime::now();
        let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        let mut out = Collected::default();
        for t in temps.iter().filter(|t| age(t.last_used) > STALE_TEMP) {
            out.stale_temp += 1;
            if !how.dry_run {
                let _ = std::fs::remove_file(&t.path);
            }
        }
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        for e in entries {
            let too_old = how.unused_for.is_some_and(|max| age(e.last_used) > max);
            let too_big = how.max_bytes.is_some_and(|max| total > max);
            if !too_old && !too_big {
                continue;
            }
            if !how.dry_run {
                match std::fs::remove_file(&e.path) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        return Err(std::io::Error::new(
                            err.kind(),
                            format!(
                                "{}: cannot remove it from the compile cache: {err}",
                                e.path.display()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            total -= e.bytes;
            out.bytes_freed += e.bytes;
            out.removed.push(e);
        }
        out.bytes_left = total;
        Ok(out)
    }
}

/// How much of `max` each of two caches may keep so that together they
/// hold the most recently used entries (`(bytes, last used)`) that fit:
/// the blob cache and the compile cache share one budget (`stepbox cache
/// prune --max-size`, the worker's `--cache-max-size`).
pub fn split_budget(
    max: u64,
    blobs: impl IntoIterator<Item = (u64, SystemTime)>,
    compiled: impl IntoIterator<Item = (u64, SystemTime)>,
) -> (u64, u64) {
    let mut all: Vec<(SystemTime, u64, bool)> = blobs
        .into_iter()
        .map(|(b, t)| (t, b, true))
        .chain(compiled.into_iter().map(|(b, t)| (t, b, false)))
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    let (mut blob, mut comp, mut total) = (0u64, 0u64, 0u64);
    for (_, bytes, is_blob) in all {
        total += bytes;
        if total > max {
            break;
        }
        if is_blob {
            blob += bytes;
        } else {
            comp += bytes;
        }
    }
    (blob, comp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_budget_goes_to_the_most_recently_used_of_both_caches() {
        let blobs = [(100, at(10)), (100, at(40))];
        let compiled = [(100, at(20)), (100, at(30))];
        assert_eq!(split_budget(1000, blobs, compiled), (200, 200));
        // Room for two: the blob used at 40 and the component used at 30.
        assert_eq!(split_budget(250, blobs, compiled), (100, 100));
        assert_eq!(split_budget(0, blobs, compiled), (0, 0));
    }

    fn put(cache: &CompileCache, name: &str, bytes: usize, used_secs_ago: u64) -> PathBuf {
        let path = cache.dir().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![0u8; bytes]).unwrap();
        let t = SystemTime::now() - Duration::from_secs(used_secs_ago);
        std::fs::File::open(&path).unwrap().set_modified(t).unwrap();
        path
    }

    #[test]
    fn least_recently_used_go_first_until_under_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let a = put(&cache, "a.cwasm", 100, 300);
        let b = put(&cache, "b.cwasm", 100, 200);
        let c = put(&cache, "c.cwasm", 100, 100);
        let stamp = put(&cache, "stamps/s", 10, 400);
        // A hit on the oldest makes it the newest.
        touch(&a);
        let order: Vec<_> = cache.entries().into_iter().map(|e| e.path).collect();
        assert_eq!(order, [stamp.clone(), b.clone(), c.clone(), a.clone()]);

        let dry = cache
            .collect(&Collect {
                max_bytes: Some(150),
                dry_run: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(dry.removed.len(), 3);
        assert_eq!(cache.entries().len(), 4, "a dry run removes nothing");

        let done = cache
            .collect(&Collect {
                max_bytes: Some(150),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(done.bytes_freed, 210);
        assert_eq!(done.bytes_left, 100);
        assert!(a.exists() && !b.exists() && !c.exists() && !stamp.exists());
    }

    #[test]
    fn entries_unused_for_longer_than_the_age_go() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let old = put(&cache, "old.cwasm", 10, 3 * 86400);
        let new = put(&cache, "new.cwasm", 10, 60);
        let other = put(&cache, "notes.txt", 10, 3 * 86400);
        let done = cache
            .collect(&Collect {
                unused_for: Some(Duration::from_secs(86400)),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(done.removed.len(), 1);
        assert!(!old.exists() && new.exists());
        assert!(other.exists(), "files that are not entries are not touched");
    }

    #[test]
    fn only_stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let fresh = put(&cache, ".tmpFresh", 10, 60);
        let stale = put(&cache, ".tmpStale", 10, 2 * 3600);
        let done = cache
            .collect(&Collect {
                max_bytes: Some(0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(done.stale_temp, 1);
        assert!(fresh.exists() && !stale.exists());
    }
}
