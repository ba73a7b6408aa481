//! Collecting the blob cache: least recently used artifacts go first.
//!
//! An *entry* is one cached manifest with the blobs it names that are
//! cached (its config and layers) and the unpacked package of each layer;
//! a blob no cached manifest names is an entry of its own. An entry was
//! last used when the newest of its files was: a pull touches the
//! manifest and the layer it uses ([`BlobCache::touch`]), because access
//! times are not kept on most mounts (`relatime`, `noatime`).
//!
//! An entry is removed whole, manifest first, so a half-removed artifact
//! is never found: without its manifest a pull fetches it again. A blob
//! that a kept entry also names stays. Tags are left alone: a tag may
//! remember a digest that is gone, which is a cache miss like any other.
//! Entries holding a digest in [`Collect::in_use`] are never removed, and
//! the temporary files of writes under way are left alone unless they are
//! older than [`STALE_TEMP`] (a crashed write).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::BlobCache;
use crate::reference::is_sha256_digest;

/// How old a temporary file must be before collection removes it: no
/// write takes this long.
pub const STALE_TEMP: Duration = Duration::from_secs(60 * 60);

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct Collect {
    /// Remove least recently used entries until the cache holds at most
    /// this many bytes (`None`: no size budget).
    pub max_bytes: Option<u64>,
    /// Remove entries not used for this long (`None`: no age limit).
    pub unused_for: Option<Duration>,
    /// Digests (manifests or layers) that runs of this process use now:
    /// the entries naming them are kept whatever their age.
    pub in_use: HashSet<String>,
    /// Only report what would be removed.
    pub dry_run: bool,
}

/// One entry of the cache, as [`BlobCache::entries`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The manifest's digest (or the lone blob's).
    pub digest: String,
    /// Bytes of its blobs and unpacked packages.
    pub bytes: u64,
    /// When it was last used.
    pub last_used: SystemTime,
}

/// What a collection removed (or, dry, would remove).
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The entries removed, least recently used first.
    pub removed: Vec<CacheEntry>,
    /// Bytes freed (blobs a kept entry shares are not counted).
    pub bytes_freed: u64,
    /// Bytes the cache holds after.
    pub bytes_left: u64,
    /// Stale temporary files and directories removed.
    pub stale_temp: usize,
}

struct Member {
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
}

struct Entry {
    digest: String,
    /// Digests of the blobs (the manifest's first).
    blobs: Vec<String>,
    last_used: SystemTime,
}

/// The cache's blobs and entries as they are on disk.
struct Scan {
    members: BTreeMap<String, Member>,
    entries: Vec<Entry>,
    temps: Vec<PathBuf>,
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(read) = std::fs::read_dir(path) else {
        return 0;
    };
    read.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn is_temp(name: &str) -> bool {
    name.starts_with(".tmp")
}

impl BlobCache {
    /// Marks blob `digest` (and its unpacked package, if any) used now,
    /// for collection. Failures only make it look older.
    pub fn touch(&self, digest: &str) {
        let now = SystemTime::now();
        for path in [self.path(digest), self.package_dir(digest)] {
            if let Ok(f) = std::fs::File::open(&path) {
                let _ = f.set_modified(now);
            }
        }
    }

    fn scan(&self) -> Scan {
        let mut members = BTreeMap::new();
        let mut temps = Vec::new();
        let blobs = self.root().join("blobs").join("sha256");
        for e in std::fs::read_dir(&blobs).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_temp(&name) {
                temps.push(e.path());
                continue;
            }
            let digest = format!("sha256:{name}");
            let Ok(meta) = e.metadata() else { continue };
            if !is_sha256_digest(&digest) || !meta.is_file() {
                continue;
            }
            let package = self.package_dir(&digest);
            let mut member = Member {
                path: e.path(),
                bytes: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            };
            if let Ok(pm) = std::fs::metadata(&package) {
                member.bytes += dir_bytes(&package);
                member.modified = member
                    .modified
                    .max(pm.modified().unwrap_or(member.modified));
            }
            members.insert(digest, member);
        }
        let packages = self.root().join("packages");
        for e in std::fs::read_dir(&packages).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_temp(&name) {
                temps.push(e.path());
            } else if let Some(hex) = name.strip_prefix("sha256-") {
                // A package whose layer is gone: an entry of its own.
                let digest = format!("sha256:{hex}");
                if is_sha256_digest(&digest) && !members.contains_key(&digest) {
                    let modified = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    members.insert(
                        digest,
                        Member {
                            path: PathBuf::new(),
                            bytes: dir_bytes(&e.path()),
                            modified,
                        },
                    );
                }
            }
        }
        // Manifests are the small blobs that parse as one.
        let mut named = BTreeSet::new();
        let mut entries = Vec::new();
        for (digest, m) in &members {
            if m.bytes > crate::artifact::MAX_SMALL_BLOB || m.path.as_os_str().is_empty() {
                continue;
            }
            let Some(manifest) = std::fs::read(&m.path)
                .ok()
                .and_then(|b| serde_json::from_slice::<crate::artifact::Manifest>(&b).ok())
            else {
                continue;
            };
            let mut blobs = vec![digest.clone()];
            for d in std::iter::once(&manifest.config.digest)
                .chain(manifest.layers.iter().map(|l| &l.digest))
            {
                if d != digest && members.contains_key(d) && !blobs.contains(d) {
                    blobs.push(d.clone());
                }
            }
            named.extend(blobs.iter().skip(1).cloned());
            entries.push(Entry {
                digest: digest.clone(),
                blobs,
                last_used: SystemTime::UNIX_EPOCH,
            });
        }
        let manifests: HashSet<String> = entries.iter().map(|e| e.digest.clone()).collect();
        for digest in members.keys() {
            if !named.contains(digest) && !manifests.contains(digest) {
                entries.push(Entry {
                    digest: digest.clone(),
                    blobs: vec![digest.clone()],
                    last_used: SystemTime::UNIX_EPOCH,
                });
            }
        }
        for e in &mut entries {
            e.last_used = e
                .blobs
                .iter()
                .filter_map(|d| members.get(d))
                .map(|m| m.modified)
                .max()
                .unwrap_or(SystemTime::UNIX_EPOCH);
        }
        entries.sort_by(|a, b| (a.last_used, &a.digest).cmp(&(b.last_used, &b.digest)));
        Scan {
            members,
            entries,
            temps,
        }
    }

    /// The cache's entries, least recently used first.
    pub fn entries(&self) -> Vec<CacheEntry> {
        let scan = self.scan();
        scan.entries
            .iter()
            .map(|e| CacheEntry {
                digest: e.digest.clone(),
                bytes: e.blobs.iter().map(|d| scan.members[d].bytes).sum(),
                last_used: e.last_used,
            })
            .collect()
    }

    /// Removes the entries `how` asks for, least recently used first, and
    /// stale temporary files. Nothing is removed that an entry kept (or
    /// in use) needs.
    ///
    /// # Errors
    /// [`crate::Error::Local`] naming a file that cannot be removed (what
    /// was removed before stays removed).
    pub fn collect(&self, how: &Collect) -> crate::Result<Collected> {
        let scan = self.scan();
        let now = SystemTime::now();
        let mut out = Collected::default();
        for t in &scan.temps {
            let old = std::fs::symlink_metadata(t)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > STALE_TEMP);
            if old {
                out.stale_temp += 1;
                if !how.dry_run {
                    let _ = std::fs::remove_dir_all(t).or_else(|_| std::fs::remove_file(t));
                }
            }
        }
        // How many entries name each blob: it goes with the last of them.
        let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &scan.entries {
            for d in &e.blobs {
                *holders.entry(d).or_default() += 1;
            }
        }
        let mut total: u64 = scan.members.values().map(|m| m.bytes).sum();
        for e in &scan.entries {
            if e.blobs.iter().any(|d| how.in_use.contains(d)) {
                continue;
            }
            let too_old = how
                .unused_for
                .is_some_and(|age| now.duration_since(e.last_used).is_ok_and(|a| a > age));
            let too_big = how.max_bytes.is_some_and(|max| total > max);
            if !too_old && !too_big {
                continue;
            }
            let mut freed = 0;
            let mut bytes = 0;
            for d in &e.blobs {
                let m = &scan.members[d];
                bytes += m.bytes;
                let n = holders.get_mut(d.as_str()).expect("counted above");
                *n -= 1;
                if *n == 0 {
                    freed += m.bytes;
                    if !how.dry_run {
                        self.remove_blob(d, m)?;
                    }
                }
            }
            total -= freed;
            out.bytes_freed += freed;
            out.removed.push(CacheEntry {
                digest: e.digest.clone(),
                bytes,
                last_used: e.last_used,
            });
        }
        out.bytes_left = total;
        Ok(out)
    }

    /// Removes a blob, then its unpacked package: renamed to a temporary
    /// name first, so a removal that fails half way never leaves a partial
    /// package where a pull would use it (the next collection removes it).
    fn remove_blob(&self, digest: &str, m: &Member) -> crate::Result<()> {
        let gone = |r: std::io::Result<()>, path: &Path| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::Error::Local {
                path: path.display().to_string(),
                detail: format!("cannot remove it from the blob cache: {e}"),
            }),
            _ => Ok(()),
        };
        if !m.path.as_os_str().is_empty() {
            gone(std::fs::remove_file(&m.path), &m.path)?;
        }
        let package = self.package_dir(digest);
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let doomed = package.with_file_name(format!(".tmp-removed-{hex}"));
        // Left by an earlier removal that failed: in the way of the rename.
        let _ = std::fs::remove_dir_all(&doomed);
        gone(std::fs::rename(&package, &doomed), &package)?;
        gone(std::fs::remove_dir_all(&doomed), &doomed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reference;
    use crate::artifact::{Descriptor, Manifest};

    fn r() -> Reference {
        Reference::parse("127.0.0.1:5000/steps/deploy:1").unwrap()
    }

    fn ago(secs: u64) -> SystemTime {
        SystemTime::now() - Duration::from_secs(secs)
    }

    fn set_time(path: &Path, t: SystemTime) {
        std::fs::File::open(path).unwrap().set_modified(t).unwrap();
    }

    /// Caches an artifact with a `layer_len`-byte layer of the first
    /// letter of `name`, last used `used` seconds ago; returns the
    /// manifest and layer digests.
    fn artifact(cache: &BlobCache, name: &str, layer_len: usize, used: u64) -> (String, String) {
        let layer = vec![name.as_bytes()[0]; layer_len];
        let layer_digest = crate::digest_of(&layer);
        let config = format!("{{\"name\":\"{name}\"}}").into_bytes();
        let config_digest = crate::digest_of(&config);
        let desc = |d: &str, n: usize| Descriptor {
            media_type: "application/octet-stream".into(),
            digest: d.into(),
            size: n as u64,
            annotations: Default::default(),
        };
        let manifest = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: None,
            config: desc(&config_digest, config.len()),
            layers: vec![desc(&layer_digest, layer.len())],
            annotations: Default::default(),
        })
        .unwrap();
        let digest = crate::digest_of(&manifest);
        for (d, b) in [
            (&digest, &manifest),
            (&config_digest, &config),
            (&layer_digest, &layer),
        ] {
            cache.put(&r(), d, b).unwrap();
            set_time(&cache.path(d), ago(used));
        }
        (digest, layer_digest)
    }

    #[test]
    fn least_recently_used_go_first_until_under_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let (old, old_layer) = artifact(&cache, "a", 1000, 300);
        let (mid, _) = artifact(&cache, "b", 1000, 200);
        let (new, _) = artifact(&cache, "c", 1000, 100);
        // Unpacked packages count, and go with their layer.
        std::fs::create_dir_all(cache.package_dir(&old_layer)).unwrap();
        std::fs::write(cache.package_dir(&old_layer).join("f"), [0; 500]).unwrap();
        // A pull of the oldest makes it the newest.
        cache.touch(&old);
        let entries = cache.entries();
        let order: Vec<_> = entries.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(order, [mid.as_str(), new.as_str(), old.as_str()]);
        let total: u64 = entries.iter().map(|e| e.bytes).sum();

        let dry = cache
            .collect(&Collect {
                max_bytes: Some(total - 1),
                dry_run: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(dry.removed.len(), 1);
        assert_eq!(cache.entries().len(), 3, "a dry run removes nothing");

        let done = cache
            .collect(&Collect {
                max_bytes: Some(2000),
                ..Default::default()
            })
            .unwrap();
        let removed: Vec<_> = done.removed.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(removed, [mid.as_str(), new.as_str()]);
        assert_eq!(done.bytes_left, total - done.bytes_freed);
        assert!(done.bytes_left <= 2000, "{done:?}");
        assert!(cache.read(&mid).is_none() && cache.read(&new).is_none());
        assert!(cache.read(&old).is_some());
        assert!(cache.package_dir(&old_layer).is_dir());
    }

    #[test]
    fn entries_unused_for_longer_than_the_age_go_with_their_package() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let (old, old_layer) = artifact(&cache, "a", 10, 3 * 86400);
        let (new, _) = artifact(&cache, "b", 10, 60);
        std::fs::create_dir_all(cache.package_dir(&old_layer)).unwrap();
        set_time(&cache.package_dir(&old_layer), ago(3 * 86400));
        cache.remember_tag(&r(), &old);
        let done = cache
            .collect(&Collect {
                unused_for: Some(Duration::from_secs(86400)),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(done.removed.len(), 1);
        assert_eq!(done.removed[0].digest, old);
        assert!(cache.get(&old).is_none() && cache.get(&old_layer).is_none());
        assert!(!cache.package_dir(&old_layer).exists());
        assert!(cache.get(&new).is_some());
        // The tag still names the digest: a miss, not an error.
        assert_eq!(cache.tag(&r()).as_deref(), Some(old.as_str()));
    }

    #[test]
    fn entries_in_use_and_shared_blobs_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let (running, running_layer) = artifact(&cache, "a", 10, 500);
        let (other, _) = artifact(&cache, "b", 10, 400);
        // A third manifest (another config) naming the running one's layer.
        let (shares, shared_layer) = artifact(&cache, "ab", 10, 300);
        assert_eq!(shared_layer, running_layer);
        let done = cache
            .collect(&Collect {
                max_bytes: Some(0),
                in_use: HashSet::from([running.clone()]),
                ..Default::default()
            })
            .unwrap();
        let removed: Vec<_> = done.removed.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(removed, [other.as_str(), shares.as_str()]);
        assert!(cache.read(&shares).is_none());
        assert!(cache.read(&running).is_some() && cache.get(&running_layer).is_some());
        assert!(done.bytes_left > 0);
    }

    #[test]
    fn only_stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        artifact(&cache, "a", 10, 10);
        let blobs = dir.path().join("blobs/sha256");
        let fresh = blobs.join(".tmpFresh");
        let stale = blobs.join(".tmpStale");
        std::fs::write(&fresh, b"writing").unwrap();
        std::fs::write(&stale, b"crashed").unwrap();
        set_time(&stale, ago(2 * 3600));
        let unpacking = dir.path().join("packages/.tmpDir");
        std::fs::create_dir_all(&unpacking).unwrap();
        let done = cache
            .collect(&Collect {
                max_bytes: Some(0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(done.stale_temp, 1);
        assert!(fresh.exists() && unpacking.exists() && !stale.exists());
        assert!(cache.entries().is_empty());
    }
}
