//! References to artifacts: `REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`,
//! with an optional `oci://` prefix, and telling a reference from a path.
//!
//! ```
//! use stepbox_oci::Reference;
//!
//! let r = Reference::parse("oci://127.0.0.1:5000/steps/deploy:1")?;
//! assert_eq!(r.registry(), "127.0.0.1:5000");
//! assert_eq!(r.repository(), "steps/deploy");
//! assert_eq!(r.tag(), Some("1"));
//! assert!(r.digest().is_none());
//! let pinned = r.with_digest("sha256:0123");
//! assert_eq!(pinned.to_string(), "127.0.0.1:5000/steps/deploy@sha256:0123");
//! # Ok::<(), stepbox_oci::Error>(())
//! ```

use std::fmt;
use std::path::Path;

use crate::{Error, Result};

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    inner: oci_client::Reference,
    /// As the user wrote it (without `oci://`), for messages.
    given: String,
}

/// The prefix that marks a reference where a path could be meant.
pub const SCHEME: &str = "oci://";

impl Reference {
    /// Parses a reference. A registry is required (`HOST[:PORT]/...`): a
    /// bare `name:tag` would silently mean Docker Hub.
    ///
    /// # Errors
    /// [`Error::Reference`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let given = text.strip_prefix(SCHEME).unwrap_or(text).trim().to_string();
        let bad = |reason: &str| Error::Reference {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let first = given.split('/').next().unwrap_or_default();
        let has_registry = given.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if !has_registry {
            return Err(bad("it names no registry host"));
        }
        let inner: oci_client::Reference = given.parse().map_err(|e| bad(&format!("{e}")))?;
        if let Some(d) = inner.digest()
            && !is_sha256_digest(d)
        {
            return Err(bad("only sha256 digests are supported"));
        }
        Ok(Self { inner, given })
    }

    /// Whether a command-line argument means a reference rather than a
    /// file or directory: it starts with `oci://`, or it is not an existing
    /// path and parses as a reference.
    pub fn is_reference(arg: &str) -> bool {
        arg.starts_with(SCHEME) || (!Path::new(arg).exists() && Self::parse(arg).is_ok())
    }

    /// `HOST[:PORT]`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if one was given (`sha256:<hex>`).
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The same repository pinned to `digest` (the tag dropped).
    pub fn with_digest(&self, digest: &str) -> Self {
        let inner = oci_client::Reference::with_digest(
            self.registry().to_string(),
            self.repository().to_string(),
            digest.to_string(),
        );
        Self {
            given: inner.whole(),
            inner,
        }
    }

    /// The same repository with `tag`.
    pub fn with_tag(&self, tag: &str) -> Self {
        let inner = oci_client::Reference::with_tag(
            self.registry().to_string(),
            self.repository().to_string(),
            tag.to_string(),
        );
        Self {
            given: inner.whole(),
            inner,
        }
    }

    /// The repository's last segment: the name a step pulled from it runs
    /// as (`deploy` for `registry.example/steps/deploy@sha256:…`).
    pub fn name(&self) -> &str {
        let repo = self.repository();
        repo.rsplit('/').next().unwrap_or(repo)
    }

    /// `REGISTRY/REPOSITORY`, as cosign's payload names it.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    pub(crate) fn oci(&self) -> &oci_client::Reference {
        &self.inner
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_a_registry() {
        assert!(Reference::parse("deploy:1").is_err());
        assert!(Reference::parse("steps/deploy:1").is_err());
        assert!(Reference::parse("localhost/steps/deploy:1").is_ok());
        assert!(Reference::parse("registry.example.com/steps/deploy").is_ok());
        let err = Reference::parse("127.0.0.1:5000/steps/deploy@md5:00").unwrap_err();
        assert!(err.to_string().contains("md5"), "{err}");
    }

    #[test]
    fn paths_are_not_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wasm");
        std::fs::write(&path, b"x").unwrap();
        assert!(!Reference::is_reference(path.to_str().unwrap()));
        assert!(!Reference::is_reference("steps/deploy-manifests"));
        assert!(Reference::is_reference("oci://steps.example/deploy:1"));
        assert!(Reference::is_reference("127.0.0.1:5000/steps/deploy:1"));
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(is_sha256_digest(&d));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest(&d.to_uppercase()));
    }
}
