//! The on-disk compile cache: precompiled components keyed by content and
//! engine settings.
//!
//! The key is the sha256 of the component bytes together with
//! [`Engine::precompile_compatibility_hash`], so a change of wasmtime
//! version or of any setting that affects code generation (such as
//! `memory_reservation`) misses the cache instead of loading incompatible
//! code. Entries are written to a temp file and renamed into place, so a
//! crash or a concurrent writer never leaves a torn entry.

pub mod collect;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How long ago a file must have last changed before its hash is
/// remembered (longer than any file system's timestamp granularity).
pub const RACY_WINDOW: std::time::Duration = std::time::Duration::from_secs(3);

/// What identifies one version of a file: device, inode, size,
/// modification and change times (to the nanosecond).
struct FileStamp;

impl FileStamp {
    #[cfg(unix)]
    fn of(meta: &std::fs::Metadata) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        Some(format!(
            "v1 {} {} {} {}.{:09} {}.{:09}",
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec()
        ))
    }

    #[cfg(not(unix))]
    fn of(_meta: &std::fs::Metadata) -> Option<String> {
        None
    }

    /// True when the file's change time is at least `window` ago (to the
    /// second).
    #[cfg(unix)]
    fn changed_before(meta: &std::fs::Metadata, window: std::time::Duration) -> bool {
        use std::os::unix::fs::MetadataExt;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        u64::try_from(meta.ctime()).is_ok_and(|c| c.saturating_add(window.as_secs()) <= now)
    }

    #[cfg(not(unix))]
    fn changed_before(_meta: &std::fs::Metadata, _window: std::time::Duration) -> bool {
        false
    }
}

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Loaded precompiled code from the cache.
    Hit,
    /// Compiled, and stored in the cache.
    Miss,
    /// Compiled; no cache in use.
    Disabled,
}

impl CompileCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The default location: `$STEPBOX_CACHE_DIR`, else the user's cache
    /// directory (`~/.cache/stepbox/components`), else a temp dir.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("STEPBOX_CACHE_DIR") {
            return PathBuf::from(d);
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("stepbox")
            .join("components")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, engine: &Engine, sha256: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("{:016x}", h.finish());
        let mut d = Sha256::new();
        d.update(sha256.as_bytes());
        d.update(engine_key.as_bytes());
        d.update(env!("CARGO_PKG_VERSION").as_bytes());
        self.dir
            .join(format!("{}.cwasm", hex::encode(&d.finalize()[..20])))
    }

    /// Loads the precompiled component for `bytes` (whose sha256 is
    /// `sha256`), or compiles and stores it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(engine, sha256);
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is part of the
            // key), into a directory this process controls, and is only
            // ever replaced by an atomic rename.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => {
                    collect::touch(&path);
                    return Ok((c, CacheOutcome::Hit));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable compile cache entry: {e:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        match self.store(&path, &component) {
            Ok(()) => Ok((component, CacheOutcome::Miss)),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "could not write the compile cache: {e:#}");
                Ok((component, CacheOutcome::Disabled))
            }
        }
    }

    /// The sha256 of the component file `path` (opened, with metadata
    /// `meta`) as remembered by [`CompileCache::remember_sha256`], if the
    /// file is unchanged since: same device, inode, size, modification and
    /// change times. (A write to a file always moves its change time, which
    /// no user can set back.) Hashing a step is half of a cache hit's time;
    /// this skips it for a file loaded before.
    pub fn known_sha256(&self, path: &Path, meta: &std::fs::Metadata) -> Option<String> {
        let stamp = FileStamp::of(meta)?;
        let stamp_path = self.stamp_path(path)?;
        let text = std::fs::read_to_string(&stamp_path).ok()?;
        let (recorded, sha256) = text.trim_end().rsplit_once(' ')?;
        let known = recorded == stamp
            && sha256.len() == 64
            && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        known.then(|| {
            collect::touch(&stamp_path);
            sha256.to_string()
        })
    }

    /// Remembers the sha256 of the component file `path` for
    /// [`CompileCache::known_sha256`]. Only for a file last changed more
    /// than `RACY_WINDOW` ago: on a file system with coarse timestamps a
    /// write within the same tick as the stamp would otherwise go unseen
    /// (git's "racy clean" rule). Failures only cost the next load a hash.
    pub fn remember_sha256(&self, path: &Path, meta: &std::fs::Metadata, sha256: &str) {
        self.remember_settled(path, meta, sha256, RACY_WINDOW);
    }

    fn remember_settled(
        &self,
        path: &Path,
        meta: &std::fs::Metadata,
        sha256: &str,
        window: std::time::Duration,
    ) {
        let Some(stamp) = FileStamp::of(meta) else {
            return;
        };
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= window);
        if !settled || !FileStamp::changed_before(meta, window) {
            return;
        }
        let Some(stamp_path) = self.stamp_path(path) else {
            return;
        };
        if let Err(e) = write_atomically(&stamp_path, format!("{stamp} {sha256}\n").as_bytes()) {
            tracing::debug!(dir = %self.dir.display(), "could not remember a component's hash: {e}");
        }
    }

    /// Where the stamp of the file at `path` is kept: named by the hash of
    /// its canonical path.
    fn stamp_path(&self, path: &Path) -> Option<PathBuf> {
        let canonical = std::fs::canonicalize(path).ok()?;
        let mut d = Sha256::new();
        d.update(canonical.as_os_str().as_encoded_bytes());
        Some(
            self.dir
                .join("stamps")
                .join(hex::encode(&d.finalize()[..20])),
        )
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        write_atomically(path, &bytes)?;
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temp file beside it and a rename (the
/// directory made first), so a crash or a concurrent writer never leaves a
/// torn file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SHA: &str = "95c7b8011ce86ef25847e1261705c91f29fede3816dbc97183b67d9297746e92";

    fn meta(path: &Path) -> std::fs::Metadata {
        std::fs::metadata(path).unwrap()
    }

    #[test]
    fn a_remembered_hash_holds_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let file = dir.path().join("step.wasm");
        std::fs::write(&file, b"\0asm one").unwrap();
        assert_eq!(cache.known_sha256(&file, &meta(&file)), None);

        cache.remember_settled(&file, &meta(&file), SHA, Duration::ZERO);
        assert_eq!(
            cache.known_sha256(&file, &meta(&file)).as_deref(),
            Some(SHA)
        );

        // Rebuilt (written elsewhere and renamed into place, as cargo
        // does): same size, another inode.
        let rebuilt = dir.path().join("step.wasm.new");
        std::fs::write(&rebuilt, b"\0asm two").unwrap();
        std::fs::rename(&rebuilt, &file).unwrap();
        assert_eq!(cache.known_sha256(&file, &meta(&file)), None);

        // Remembered again, then changed in place (the size moves; a write
        // of the same size moves the change time, which the window keeps
        // apart from the remembered one).
        cache.remember_settled(&file, &meta(&file), SHA, Duration::ZERO);
        assert_eq!(
            cache.known_sha256(&file, &meta(&file)).as_deref(),
            Some(SHA)
        );
        std::fs::write(&file, b"\0asm three").unwrap();
        assert_eq!(cache.known_sha256(&file, &meta(&file)), None);

        // Another file at another path has its own stamp.
        let other = dir.path().join("other.wasm");
        std::fs::write(&other, b"\0asm one").unwrap();
        assert_eq!(cache.known_sha256(&other, &meta(&other)), None);
    }

    #[test]
    fn a_hit_marks_its_entry_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let engine = Engine::default();
        // The smallest component: its header.
        let bytes = b"\0asm\x0d\0\x01\0";
        let (_, outcome) = cache.load_or_compile(&engine, bytes, SHA).unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        let entry = cache.entries().remove(0).path;
        let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(86400);
        std::fs::File::open(&entry)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let (_, outcome) = cache.load_or_compile(&engine, bytes, SHA).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        assert!(meta(&entry).modified().unwrap() > long_ago);
    }

    #[test]
    fn a_file_changed_just_now_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let file = dir.path().join("step.wasm");
        std::fs::write(&file, b"\0asm").unwrap();
        cache.remember_sha256(&file, &meta(&file), SHA);
        assert_eq!(cache.known_sha256(&file, &meta(&file)), None);
    }

    #[test]
    fn a_damaged_stamp_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let file = dir.path().join("step.wasm");
        std::fs::write(&file, b"\0asm").unwrap();
        cache.remember_settled(&file, &meta(&file), SHA, Duration::ZERO);
        let stamp = cache.stamp_path(&file).unwrap();
        let text = std::fs::read_to_string(&stamp).unwrap();
        std::fs::write(&stamp, text.replace(SHA, "not-a-hash")).unwrap();
        assert_eq!(cache.known_sha256(&file, &meta(&file)), None);
    }
}
