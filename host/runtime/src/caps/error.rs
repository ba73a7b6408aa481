//! The error of a capability call, on the host side of the boundary: an
//! error value the step sees ([`StepError`], the WIT `error` variant), or
//! something that ends the run (a limit, a host fault).
//!
//! A [`StepError`] is its kind and its message as data, so one conversion
//! maps it to the WIT variant and both sides print the same words
//! (`not-found: ...`, as the WIT case and the guest SDK name it).

use std::fmt;

use crate::bindings::types;
use crate::report::{LimitKind, LimitReached, RunRecorder};

/// The result of a capability call.
pub type Result<T, E = CapError> = std::result::Result<T, E>;

/// The error of a capability call: either a WIT `error` value handed to the
/// step, or a trap that ends the run.
#[derive(Debug)]
pub enum CapError {
    /// Returned to the step as `stepbox:step/types.error`.
    Step(StepError),
    /// Ends the run: a limit was reached.
    Limit(LimitKind),
    /// Ends the run: the host failed in a way the step cannot act on.
    Trap(wasmtime::Error),
}

/// The cases of the WIT `error` variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Refused by the run's policy; nothing was changed.
    Forbidden,
    /// The object (or file, or release) does not exist.
    NotFound,
    /// Changed concurrently, or a field owned by another manager.
    Conflict,
    /// A malformed request.
    Invalid,
    /// A wait did not finish in time.
    Timeout,
    /// The backend could not be reached or failed.
    Unavailable,
    /// A per-call limit was reached.
    LimitExceeded,
}

impl ErrorKind {
    /// The WIT case name: `forbidden`, `not-found`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::LimitExceeded => "limit-exceeded",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The WIT `error` value, on the host side: a kind and a message. It prints
/// as `kind: message`, in the WIT's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct StepError {
    /// Which case.
    pub kind: ErrorKind,
    /// What happened, for people (masked before it reaches the step).
    pub message: String,
}

impl StepError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Refused by the run's policy.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    /// The object does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Changed concurrently, or owned by another manager.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// A malformed request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// A wait did not finish in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// The backend could not be reached or failed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// A per-call limit was reached.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, message)
    }

    /// The WIT case name ("forbidden", "not-found", ...).
    pub fn kind(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the error is of `kind`.
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
}

impl From<StepError> for CapError {
    fn from(e: StepError) -> Self {
        CapError::Step(e)
    }
}

impl From<LimitReached> for CapError {
    fn from(e: LimitReached) -> Self {
        CapError::Limit(e.0)
    }
}

impl From<stepbox_cluster::ClusterError> for StepError {
    fn from(e: stepbox_cluster::ClusterError) -> Self {
        use stepbox_cluster::ClusterError as C;
        let kind = match &e {
            C::NotFound(_) => ErrorKind::NotFound,
            C::AlreadyExists(_) | C::Conflict(_) => ErrorKind::Conflict,
            C::Invalid(_) => ErrorKind::Invalid,
            C::Forbidden(_) => ErrorKind::Forbidden,
            C::Unavailable(_) => ErrorKind::Unavailable,
            C::Timeout(_) => ErrorKind::Timeout,
        };
        StepError::new(kind, e.message())
    }
}

impl From<stepbox_cluster::ClusterError> for CapError {
    fn from(e: stepbox_cluster::ClusterError) -> Self {
        CapError::Step(e.into())
    }
}

/// The trap payload when a limit ends the run inside a host call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LimitTrap(pub LimitKind);

/// Turns a [`CapError`] into what the guest sees: a WIT error value, or a
/// trap. Every message is masked by the caller's recorder before this.
pub(crate) fn to_wit(err: CapError) -> wasmtime::Result<types::Error> {
    match err {
        CapError::Step(StepError { kind, message: m }) => Ok(match kind {
            ErrorKind::Forbidden => types::Error::Forbidden(m),
            ErrorKind::NotFound => types::Error::NotFound(m),
            ErrorKind::Conflict => types::Error::Conflict(m),
            ErrorKind::Invalid => types::Error::Invalid(m),
            ErrorKind::Timeout => types::Error::Timeout(m),
            ErrorKind::Unavailable => types::Error::Unavailable(m),
            ErrorKind::LimitExceeded => types::Error::LimitExceeded(m),
        }),
        CapError::Limit(l) => Err(wasmtime::Error::new(LimitTrap(l))),
        CapError::Trap(e) => Err(e),
    }
}

/// Masks the message of a step error with the run's masker.
pub(crate) fn masked(err: CapError, recorder: &RunRecorder) -> CapError {
    match err {
        CapError::Step(mut e) => {
            e.message = recorder.mask(&e.message);
            CapError::Step(e)
        }
        other => other,
    }
}

/// The `Host` impl of the `types` interface, which has no functions but
/// owns the error conversion.
pub(crate) struct TypesView;

impl types::Host for TypesView {
    fn convert_error(&mut self, err: CapError) -> wasmtime::Result<types::Error> {
        to_wit(err)
    }
}

/// `HasData` marker for [`TypesView`].
struct HasTypes;

impl wasmtime::component::HasData for HasTypes {
    type Data<'a> = TypesView;
}

/// Adds the `types` interface (the error conversion) to `linker`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasTypes>(linker, |_| TypesView)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_print_in_the_wit_words() {
        let e = StepError::not_found("ConfigMap \"a\"");
        assert_eq!(e.to_string(), "not-found: ConfigMap \"a\"");
        assert_eq!(e.kind(), "not-found");
        assert_eq!(
            StepError::limit_exceeded("x").to_string(),
            "limit-exceeded: x"
        );
    }
}
