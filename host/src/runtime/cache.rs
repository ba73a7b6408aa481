//! The on-disk compile cache: precompiled components keyed by content and
//! engine settings.
//!
//! The key is the sha256 of the component bytes together with
//! [`Engine::precompile_compatibility_hash`], so a change of wasmtime
//! version or of any setting that affects code generation (such as
//! `memory_reservation`) misses the cache instead of loading incompatible
//! code. Entries are written to a temp file and renamed into place, so a
//! crash or a concurrent writer never leaves a torn entry.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

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
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
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

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.persist(path)?;
        Ok(())
    }
}
