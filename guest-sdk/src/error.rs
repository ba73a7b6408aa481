//! The one error type of every SDK call.
//!
//! Capability calls fail with the host's error variant (`forbidden`,
//! `not-found`, ...), mapped 1:1 onto [`Error`]; a step's own failures are
//! [`Error::Step`]. A policy denial is an ordinary value a step may handle:
//!
//! ```no_run
//! use stepbox_sdk::prelude::*;
//! use stepbox_sdk::k8s_openapi::api::core::v1::ConfigMap;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! match kube::get::<ConfigMap>("settings") {
//!     Ok(cm) => info!("found {} keys", cm.data.map_or(0, |d| d.len())),
//!     Err(e) if e.is_not_found() => info!("no settings yet"),
//!     Err(e) => return Err(e.context("reading configmap settings")),
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt::Display;

use crate::wit::stepbox::step::types::Error as WitError;

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call (or the step) failed.
///
/// Every variant but [`Error::Step`] is a case of the WIT `error` variant and
/// carries the host's message, with secrets already masked. `Display` prints
/// `"<kind>: <message>"` for those (e.g. `forbidden: ClusterRole is
/// cluster-scoped`) and the bare message for [`Error::Step`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The run's policy does not allow the call. Nothing was changed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The object, file or input does not exist.
    #[error("not-found: {0}")]
    NotFound(String),
    /// The object was changed by someone else, or a field is owned by another
    /// field manager.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is malformed: bad YAML, missing kind, bad label selector,
    /// a bad input value, ...
    #[error("invalid: {0}")]
    Invalid(String),
    /// A wait did not finish in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The backend (API server, helm) could not be reached or failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A limit of the run was reached (output bytes, object size, ...).
    #[error("limit-exceeded: {0}")]
    LimitExceeded(String),
    /// The step's own failure, with its message.
    #[error("{0}")]
    Step(String),
}

impl Error {
    /// A failure of the step itself: `Err(Error::step("the database is not reachable"))`.
    pub fn step(message: impl Into<String>) -> Self {
        Error::Step(message.into())
    }

    /// A malformed request or input value.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// The kind of error as the WIT case name: `"forbidden"`, `"not-found"`,
    /// `"conflict"`, `"invalid"`, `"timeout"`, `"unavailable"`,
    /// `"limit-exceeded"`; `"step"` for [`Error::Step`].
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not-found",
            Error::Conflict(_) => "conflict",
            Error::Invalid(_) => "invalid",
            Error::Timeout(_) => "timeout",
            Error::Unavailable(_) => "unavailable",
            Error::LimitExceeded(_) => "limit-exceeded",
            Error::Step(_) => "step",
        }
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::Invalid(m)
            | Error::Timeout(m)
            | Error::Unavailable(m)
            | Error::LimitExceeded(m)
            | Error::Step(m) => m,
        }
    }

    fn message_mut(&mut self) -> &mut String {
        match self {
            Error::Forbidden(m)
            | Error::NotFound(m)
            | Error::Conflict(m)
            | Error::Invalid(m)
            | Error::Timeout(m)
            | Error::Unavailable(m)
            | Error::LimitExceeded(m)
            | Error::Step(m) => m,
        }
    }

    /// The same error with `context` put before its message
    /// (`"<context>: <message>"`); the kind is kept, so
    /// `is_forbidden()` still holds after adding context.
    pub fn context(mut self, context: impl Display) -> Self {
        let message = self.message_mut();
        *message = format!("{context}: {message}");
        self
    }

    /// True for [`Error::Forbidden`].
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Forbidden(_))
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// True for [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }

    /// True for [`Error::Invalid`].
    pub fn is_invalid(&self) -> bool {
        matches!(self, Error::Invalid(_))
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    /// True for [`Error::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// True for [`Error::LimitExceeded`].
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self, Error::LimitExceeded(_))
    }

    /// True for [`Error::Step`].
    pub fn is_step(&self) -> bool {
        matches!(self, Error::Step(_))
    }
}

impl From<WitError> for Error {
    fn from(e: WitError) -> Self {
        match e {
            WitError::Forbidden(m) => Error::Forbidden(m),
            WitError::NotFound(m) => Error::NotFound(m),
            WitError::Conflict(m) => Error::Conflict(m),
            WitError::Invalid(m) => Error::Invalid(m),
            WitError::Timeout(m) => Error::Timeout(m),
            WitError::Unavailable(m) => Error::Unavailable(m),
            WitError::LimitExceeded(m) => Error::LimitExceeded(m),
        }
    }
}

/// Malformed JSON (or JSON of the wrong shape) is [`Error::Invalid`].
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// Malformed YAML (or YAML of the wrong shape) is [`Error::Invalid`].
impl From<serde_yaml_ng::Error> for Error {
    fn from(e: serde_yaml_ng::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// A missing file is [`Error::NotFound`]; any other I/O failure is
/// [`Error::Step`].
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(e.to_string()),
            _ => Error::Step(e.to_string()),
        }
    }
}

/// Adds context to the error of a `Result`, keeping its kind.
///
/// ```no_run
/// use stepbox_sdk::prelude::*;
///
/// # fn demo() -> stepbox_sdk::Result<()> {
/// let text = std::fs::read_to_string("/packages/app.yaml").context("reading app.yaml")?;
/// let path = "/packages/db.yaml";
/// let db = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
/// # let _ = (text, db);
/// # Ok(())
/// # }
/// ```
pub trait ResultExt<T> {
    /// Puts `context` before the error's message.
    fn context(self, context: impl Display) -> Result<T>;

    /// Puts the context `f` makes before the error's message; `f` runs only
    /// on error.
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_errors_map_one_to_one_and_display_their_kind() {
        let cases = [
            (WitError::Forbidden("m".into()), "forbidden"),
            (WitError::NotFound("m".into()), "not-found"),
            (WitError::Conflict("m".into()), "conflict"),
            (WitError::Invalid("m".into()), "invalid"),
            (WitError::Timeout("m".into()), "timeout"),
            (WitError::Unavailable("m".into()), "unavailable"),
            (WitError::LimitExceeded("m".into()), "limit-exceeded"),
        ];
        for (wit, kind) in cases {
            let e = Error::from(wit);
            assert_eq!(e.kind(), kind);
            assert_eq!(e.message(), "m");
            assert_eq!(e.to_string(), format!("{kind}: m"));
        }
        assert!(Error::Forbidden(String::new()).is_forbidden());
        assert!(Error::NotFound(String::new()).is_not_found());
        assert!(Error::LimitExceeded(String::new()).is_limit_exceeded());
        assert!(!Error::Conflict(String::new()).is_forbidden());
    }

    #[test]
    fn step_errors_display_their_bare_message() {
        let e = Error::step("the database is not reachable");
        assert_eq!(e.to_string(), "the database is not reachable");
        assert_eq!(e.kind(), "step");
        assert!(e.is_step());
    }

    #[test]
    fn context_keeps_the_kind() {
        let e = Error::Forbidden("no".into()).context("applying a.yaml");
        assert!(e.is_forbidden());
        assert_eq!(e.to_string(), "forbidden: applying a.yaml: no");
        let r: std::result::Result<(), std::io::Error> = Err(std::io::ErrorKind::NotFound.into());
        let e = r.with_context(|| "reading x").unwrap_err();
        assert!(e.is_not_found());
        assert!(e.message().starts_with("reading x: "));
    }

    #[test]
    fn conversions() {
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(Error::from(json).is_invalid());
        let yaml = serde_yaml_ng::from_str::<serde_json::Value>("a: [").unwrap_err();
        assert!(Error::from(yaml).is_invalid());
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(Error::from(missing).is_not_found());
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(Error::from(denied).is_step());
    }
}
