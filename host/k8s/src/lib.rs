//! # stepbox-k8s
//!
//! Kubernetes object machinery as pure functions on `serde_json::Value`: no
//! I/O, no async runtime, no HTTP client, no wasmtime. It plays the role
//! kube-core plays for kube-rs: both cluster backends, the API front end and
//! the runtime's policy reuse it, and it is tested without a runtime.
//!
//! - [`resources`]: the built-in table of kinds ([`ResourceInfo`]), API
//!   groups and request verbs.
//! - [`object`]: identity of objects ([`ObjectRef`]) and JSON path helpers.
//! - [`names`]: name validation with the API server's wording.
//! - [`selector`]: label and field selectors.
//! - [`ssa`]: server-side apply (field sets, `managedFields`) and JSON
//!   merge patch.
//! - [`patch`]: JSON patch and strategic merge patch.
//! - [`readiness`]: `kubectl rollout status` logic.
//! - [`request`]: the verb of a request and what its path names, and its
//!   attributes as authorization sees them.
//! - [`rbac`]: RBAC rules and the authorizer's decision, in the API
//!   server's words.
//! - [`events`]: Events through `core/v1` and `events.k8s.io/v1`.
//! - [`pod_security`]: the Pod Security Standards, checked on anything
//!   that carries a pod, in Pod Security Admission's words.
//! - [`manifest`]: strict, bounded parsing of multi-document YAML or JSON.
//! - [`plan`]: what a write changed, in `kubectl diff`'s words.
//!
//! Errors are shaped like the API server's status reasons ([`Error`]), so
//! every layer above speaks the same vocabulary.
#![deny(missing_docs)]

pub mod events;
pub mod manifest;
pub mod names;
pub mod object;
pub mod patch;
pub mod plan;
pub mod pod_security;
pub mod rbac;
pub mod readiness;
pub mod request;
pub mod resources;
pub mod selector;
pub mod ssa;

pub use object::ObjectRef;
pub use readiness::Readiness;
pub use resources::ResourceInfo;
pub use selector::LabelSelector;

/// Errors of cluster operations, shaped like the Kubernetes API's status
/// reasons. Each carries a human-readable message (no secrets masked here:
/// masking is the caller's job).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The object (or kind) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A create found the object already there.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object changed underneath (resourceVersion precondition) or a
    /// server-side apply touched fields owned by another field manager.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed: missing apiVersion/kind/name, a bad name, a
    /// bad label selector, a patch that is not an object, ...
    #[error("{0}")]
    Invalid(String),
    /// The backend refused the call (e.g. Kubernetes RBAC).
    #[error("{0}")]
    Forbidden(String),
    /// The backend could not be reached or failed.
    #[error("{0}")]
    Unavailable(String),
    /// The backend did not answer in time.
    #[error("{0}")]
    Timeout(String),
}

impl Error {
    /// The message carried by the error, whatever its kind.
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m)
            | Self::AlreadyExists(m)
            | Self::Conflict(m)
            | Self::Invalid(m)
            | Self::Forbidden(m)
            | Self::Unavailable(m)
            | Self::Timeout(m) => m,
        }
    }

    /// The Kubernetes status reason this error corresponds to
    /// (`"NotFound"`, `"AlreadyExists"`, `"Conflict"`, `"Invalid"`,
    /// `"Forbidden"`, `"ServiceUnavailable"`, `"Timeout"`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "NotFound",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Conflict(_) => "Conflict",
            Self::Invalid(_) => "Invalid",
            Self::Forbidden(_) => "Forbidden",
            Self::Unavailable(_) => "ServiceUnavailable",
            Self::Timeout(_) => "Timeout",
        }
    }

    /// The HTTP status code a Kubernetes API server would answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::AlreadyExists(_) | Self::Conflict(_) => 409,
            Self::Invalid(_) => 422,
            Self::Forbidden(_) => 403,
            Self::Unavailable(_) => 503,
            Self::Timeout(_) => 504,
        }
    }
}

/// Result of the object machinery.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_accessors() {
        let e = Error::Conflict("x".into());
        assert_eq!(e.message(), "x");
        assert_eq!(e.reason(), "Conflict");
        assert_eq!(e.http_status(), 409);
        assert_eq!(e.to_string(), "x");
        assert_eq!(
            Error::Unavailable(String::new()).reason(),
            "ServiceUnavailable"
        );
    }
}
