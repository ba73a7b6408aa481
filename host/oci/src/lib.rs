//! # stepbox-oci
//!
//! Steps and packages travel as OCI artifacts, the way Kubewarden policies,
//! Spin apps and Helm charts do: in the registry a team already runs,
//! pinned by digest, cached, and usable offline once pulled.
//!
//! - A **step** is the CNCF wasm OCI artifact: config
//!   `application/vnd.wasm.config.v0+json` (the component's imports,
//!   exports and target) and exactly one `application/wasm` layer
//!   ([`artifact`]).
//! - A **package** (what a step sees as `/packages`) is an artifact of its
//!   own: one tar layer of a stepbox media type ([`package`]).
//! - Pulled blobs live in a content-addressed cache ([`BlobCache`]) keyed
//!   by their sha256, verified by digest and size (the size checked against
//!   the limit before anything is downloaded). The runtime's compile cache
//!   is keyed by the same sha256, so a step pulled before runs with neither
//!   the network nor a compile.
//! - Registries as they are ([`registry`]): credentials from the docker
//!   config file, basic and bearer-token auth, a custom CA, plain HTTP only
//!   for loopback or registries named insecure.
//! - Signatures in cosign's key-based format ([`sign`]): ECDSA P-256 over
//!   the simple-signing payload, stored as the `sha256-<digest>.sig`
//!   artifact, so steps signed by cosign verify here and the other way round.
//!
//! ```text
//! push: component -> config (imports, exports) -> blobs -> manifest -> REF@sha256:M [-> .sig]
//! pull: REF -> (tag -> digest M) -> manifest M (cached) -> check media types and sizes
//!           -> layer blob (cached, verified) [-> verify signature of M] -> a file
//! ```
#![deny(missing_docs)]

pub mod artifact;
pub mod auth;
mod cache;
mod collect;
mod hold;
pub mod package;
pub mod reference;
pub mod registry;
pub mod sign;

pub use cache::BlobCache;
pub use collect::{CacheEntry, Collect, Collected};
pub use hold::CacheHold;
pub use reference::Reference;
pub use registry::{Distribution, PullOptions, Pulled, RegistryOptions};

/// What went wrong with a reference, a registry or an artifact. Every
/// message names the reference and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The reference is not a valid OCI reference.
    #[error(
        "{reference:?} is not an OCI reference ({reason}); write REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:DIGEST"
    )]
    Reference {
        /// As given.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// A tag where a digest is required.
    #[error(
        "{reference} names a tag, and digests are required here (--require-digest, or the policy's requireDigest): use {reference}@sha256:... (`stepbox pull {reference}` prints it)"
    )]
    TagNotAllowed {
        /// The reference.
        reference: String,
    },
    /// The registry refused the credentials, or wants some.
    #[error(
        "{reference}: the registry wants credentials: {detail} (log in with `docker login`, or name a docker config file with --registry-config)"
    )]
    Unauthorized {
        /// The reference.
        reference: String,
        /// The registry's answer.
        detail: String,
    },
    /// The registry could not be reached or failed.
    #[error("{reference}: {detail}")]
    Registry {
        /// The reference.
        reference: String,
        /// What happened.
        detail: String,
    },
    /// Not there: no such tag, digest or signature.
    #[error("{reference}: {detail}")]
    NotFound {
        /// The reference.
        reference: String,
        /// What is missing.
        detail: String,
    },
    /// The artifact is not what was asked for: another media type, too
    /// many layers, too large, a digest that does not match.
    #[error("{reference}: {detail}")]
    Artifact {
        /// The reference.
        reference: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A signature is missing, does not verify, or a key cannot be used.
    #[error("{reference}: {detail}")]
    Signature {
        /// The reference (or the key file).
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// Local files: the cache, a key, a package directory, the docker
    /// config.
    #[error("{path}: {detail}")]
    Local {
        /// The file or directory.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
