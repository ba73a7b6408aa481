//! The content-addressed blob cache: every manifest, config and layer
//! pulled is kept by its sha256, written whole (a temporary file, then a
//! rename) and only after its digest and size were checked, so what is in
//! the cache is what the registry's digest promised. Packages are unpacked
//! once, next to their layer.
//!
//! ```text
//! <root>/blobs/sha256/<hex>            manifests, configs, layers
//! <root>/packages/sha256-<hex>/        unpacked package layers
//! <root>/tags/<registry>/<repo>/<tag>  the digest a tag last resolved to
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::reference::is_sha256_digest;
use crate::{Error, Reference, Result};

/// A blob cache directory.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

fn local(path: &Path, detail: impl Into<String>) -> Error {
    Error::Local {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

impl BlobCache {
    /// A cache in `root` (created when first written).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$STEPBOX_OCI_CACHE`, else `~/.cache/stepbox/oci`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("STEPBOX_OCI_CACHE").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("stepbox")
            .join("oci")
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is (or would be) kept.
    pub fn path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    /// The blob's file, if it is cached.
    pub fn get(&self, digest: &str) -> Option<PathBuf> {
        let p = self.path(digest);
        (is_sha256_digest(digest) && p.is_file()).then_some(p)
    }

    /// A small cached blob (a manifest, a config), read and checked
    /// against its digest again: a file changed in the cache is not used.
    pub fn read(&self, digest: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.get(digest)?).ok()?;
        (crate::digest_of(&bytes) == digest).then_some(bytes)
    }

    /// Keeps `bytes` as blob `digest`, after checking they hash to it.
    ///
    /// # Errors
    /// [`Error::Artifact`] when they do not; [`Error::Local`] when the
    /// cache cannot be written.
    pub fn put(&self, reference: &Reference, digest: &str, bytes: &[u8]) -> Result<PathBuf> {
        let actual = crate::digest_of(bytes);
        if actual != digest {
            return Err(Error::Artifact {
                reference: reference.to_string(),
                detail: format!(
                    "the registry sent content of digest {actual} for {digest}: refused"
                ),
            });
        }
        let path = self.path(digest);
        self.write_whole(&path, |f| f.write_all(bytes))?;
        Ok(path)
    }

    /// Downloads `stream` into the cache as blob `digest` of `size`
    /// bytes, hashing and counting as it goes: more bytes than `size`, or
    /// content of another digest, and nothing is kept.
    ///
    /// # Errors
    /// [`Error::Artifact`] for a size or digest mismatch;
    /// [`Error::Registry`] when the download fails.
    pub async fn put_stream<S, E>(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        mut stream: S,
    ) -> Result<PathBuf>
    where
        S: Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let path = self.path(digest);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| local(&dir, format!("cannot create the blob cache: {e}")))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| local(&dir, format!("cannot write to the blob cache: {e}")))?;
        let mut hasher = Sha256::new();
        let mut got: u64 = 0;
        let artifact = |detail: String| Error::Artifact {
            reference: reference.to_string(),
            detail,
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let text = e.to_string();
                if text.to_lowercase().contains("digest") {
                    artifact(format!("blob {digest} does not match its digest: {text}"))
                } else {
                    Error::Registry {
                        reference: reference.to_string(),
                        detail: format!("downloading blob {digest} failed: {text}"),
                    }
                }
            })?;
            got += chunk.len() as u64;
            if got > size {
                return Err(artifact(format!(
                    "blob {digest} is longer than the {size} bytes its manifest says: refused"
                )));
            }
            hasher.update(&chunk);
            tmp.write_all(&chunk)
                .map_err(|e| local(tmp.path(), format!("cannot write the blob: {e}")))?;
        }
        if got != size {
            return Err(artifact(format!(
                "blob {digest} is {got} bytes, its manifest says {size}: refused"
            )));
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            return Err(artifact(format!(
                "blob {digest} does not match its digest (the registry sent content of digest {actual}): refused"
            )));
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| local(tmp.path(), format!("cannot write the blob: {e}")))?;
        tmp.persist(&path)
            .map_err(|e| local(&path, format!("cannot keep the blob: {}", e.error)))?;
        Ok(path)
    }

    fn write_whole(
        &self,
        path: &Path,
        write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
    ) -> Result<()> {
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)
            .map_err(|e| local(dir, format!("cannot create the blob cache: {e}")))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| local(dir, format!("cannot write to the blob cache: {e}")))?;
        write(tmp.as_file_mut())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| local(path, format!("cannot write: {e}")))?;
        tmp.persist(path)
            .map_err(|e| local(path, format!("cannot keep: {}", e.error)))?;
        Ok(())
    }

    fn tag_path(&self, reference: &Reference) -> Option<PathBuf> {
        let tag = reference.tag()?;
        let registry = reference.registry().replace(':', "_");
        Some(
            self.root
                .join("tags")
                .join(registry)
                .join(reference.repository())
                .join(tag),
        )
    }

    /// Remembers that `reference`'s tag resolved to `digest`.
    pub fn remember_tag(&self, reference: &Reference, digest: &str) {
        if let Some(path) = self.tag_path(reference) {
            let _ = self.write_whole(&path, |f| f.write_all(digest.as_bytes()));
        }
    }

    /// The digest `reference`'s tag last resolved to, if it did here.
    pub fn tag(&self, reference: &Reference) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_path(reference)?).ok()?;
        let d = text.trim().to_string();
        is_sha256_digest(&d).then_some(d)
    }

    /// Where the package layer `digest` is (or would be) unpacked.
    pub fn package_dir(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("packages").join(format!("sha256-{hex}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Reference {
        Reference::parse("127.0.0.1:5000/steps/deploy:1").unwrap()
    }

    #[tokio::test]
    async fn blobs_are_kept_only_when_they_match() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let data = b"hello".to_vec();
        let digest = crate::digest_of(&data);
        let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from(data.clone()))];
        let path = cache
            .put_stream(&r(), &digest, 5, futures::stream::iter(chunks))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
        assert_eq!(cache.read(&digest).unwrap(), data);

        let other = crate::digest_of(b"other");
        let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"evil!"))];
        let err = cache
            .put_stream(&r(), &other, 5, futures::stream::iter(chunks))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );
        assert!(cache.get(&other).is_none());

        let chunks = vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(
            b"toolong",
        ))];
        let err = cache
            .put_stream(&r(), &other, 3, futures::stream::iter(chunks))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("longer than the 3 bytes"), "{err}");
    }

    #[test]
    fn tags_remember_digests() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let d = crate::digest_of(b"m");
        cache.remember_tag(&r(), &d);
        assert_eq!(cache.tag(&r()).as_deref(), Some(d.as_str()));
        // A cached blob changed on disk is not used.
        cache.put(&r(), &d, b"m").unwrap();
        std::fs::write(cache.path(&d), b"changed").unwrap();
        assert!(cache.read(&d).is_none());
    }
}
