//! The capabilities a step imports, one module each, all the same shape:
//! a context type holding what the run may use, a `host` module that is the
//! only code touching the generated WIT traits, and every call going
//! *policy check → backend call → audit record*.
//!
//! | WIT interface        | module          | backend                    |
//! |----------------------|-----------------|----------------------------|
//! | `stepbox:step/kube`  | [`kube`]        | [`crate::cluster`]         |
//! | `stepbox:step/helm`  | [`helm`]        | the `helm` binary          |
//! | `stepbox:step/run`   | [`run`]         | the run's [`RunRecorder`]  |
//! | `wasi:filesystem`    | [`fs`]          | cap-std preopens           |
//!
//! A policy breach is a WIT `error::forbidden` value the step can handle;
//! only limits and host faults become traps.
//!
//! [`RunRecorder`]: crate::report::RunRecorder

pub mod fs;
pub mod helm;
pub mod kube;
pub mod run;

use crate::bindings::types;
use crate::report::LimitKind;

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

/// The WIT `error` variant, on the host side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Refused by the run's policy.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Changed concurrently, or a field owned by another manager.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Malformed request.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A wait did not finish in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The backend could not be reached or failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A per-call limit was reached.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
}

impl StepError {
    /// The WIT case name ("forbidden", "not-found", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Forbidden(_) => "forbidden",
            StepError::NotFound(_) => "not-found",
            StepError::Conflict(_) => "conflict",
            StepError::Invalid(_) => "invalid",
            StepError::Timeout(_) => "timeout",
            StepError::Unavailable(_) => "unavailable",
            StepError::LimitExceeded(_) => "limit-exceeded",
        }
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            StepError::Forbidden(m)
            | StepError::NotFound(m)
            | StepError::Conflict(m)
            | StepError::Invalid(m)
            | StepError::Timeout(m)
            | StepError::Unavailable(m)
            | StepError::LimitExceeded(m) => m,
        }
    }

    fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            StepError::Forbidden(m) => StepError::Forbidden(f(m)),
            StepError::NotFound(m) => StepError::NotFound(f(m)),
            StepError::Conflict(m) => StepError::Conflict(f(m)),
            StepError::Invalid(m) => StepError::Invalid(f(m)),
            StepError::Timeout(m) => StepError::Timeout(f(m)),
            StepError::Unavailable(m) => StepError::Unavailable(f(m)),
            StepError::LimitExceeded(m) => StepError::LimitExceeded(f(m)),
        }
    }
}

impl From<StepError> for CapError {
    fn from(e: StepError) -> Self {
        CapError::Step(e)
    }
}

impl From<crate::report::LimitReached> for CapError {
    fn from(e: crate::report::LimitReached) -> Self {
        CapError::Limit(e.0)
    }
}

impl From<crate::cluster::ClusterError> for StepError {
    fn from(e: crate::cluster::ClusterError) -> Self {
        use crate::cluster::ClusterError as C;
        match e {
            C::NotFound(m) => StepError::NotFound(m),
            C::AlreadyExists(m) | C::Conflict(m) => StepError::Conflict(m),
            C::Invalid(m) => StepError::Invalid(m),
            C::Forbidden(m) => StepError::Forbidden(m),
            C::Unavailable(m) => StepError::Unavailable(m),
            C::Timeout(m) => StepError::Timeout(m),
        }
    }
}

impl From<crate::cluster::ClusterError> for CapError {
    fn from(e: crate::cluster::ClusterError) -> Self {
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
        CapError::Step(e) => Ok(match e {
            StepError::Forbidden(m) => types::Error::Forbidden(m),
            StepError::NotFound(m) => types::Error::NotFound(m),
            StepError::Conflict(m) => types::Error::Conflict(m),
            StepError::Invalid(m) => types::Error::Invalid(m),
            StepError::Timeout(m) => types::Error::Timeout(m),
            StepError::Unavailable(m) => types::Error::Unavailable(m),
            StepError::LimitExceeded(m) => types::Error::LimitExceeded(m),
        }),
        CapError::Limit(l) => Err(wasmtime::Error::new(LimitTrap(l))),
        CapError::Trap(e) => Err(e),
    }
}

/// Masks the message of a step error with the run's masker.
pub(crate) fn masked(err: CapError, recorder: &crate::report::RunRecorder) -> CapError {
    match err {
        CapError::Step(e) => CapError::Step(e.map_message(|m| recorder.mask(&m))),
        other => other,
    }
}

/// Marker and `Host` impl for the `types` interface, which has no functions
/// but owns the error conversion.
pub(crate) struct TypesView;

impl types::Host for TypesView {
    fn convert_error(&mut self, err: CapError) -> wasmtime::Result<types::Error> {
        to_wit(err)
    }
}

/// `HasData` marker for [`TypesView`].
pub(crate) struct HasTypes;

impl wasmtime::component::HasData for HasTypes {
    type Data<'a> = TypesView;
}
