//! The step's own inputs and results: inputs, secrets, outputs, log,
//! progress and artifacts.
//!
//! Inputs and secrets are given on the command line (`--input name=value`,
//! `--secret name=value`) or by the worker. Secret values are masked
//! (`********`) by the host wherever they appear: log, outputs, plan, audit
//! and errors.
//!
//! ```no_run
//! use stepbox_sdk::prelude::*;
//!
//! # fn demo() -> stepbox_sdk::Result<()> {
//! let release = run::require_input("release")?;
//! let replicas = run::u64_input("replicas", 2)?;
//! let dry = run::bool_input("skip-migrations", false)?;
//! run::progress(10, "inputs read");
//! info!("deploying {release} with {replicas} replicas (skip migrations: {dry})");
//! run::set_output("release", &release)?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::wit::stepbox::step::run as wit;
use crate::{Error, Result};

/// Log levels, as in `tracing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Detail for debugging a step.
    Debug,
    /// What the step did.
    Info,
    /// Something unexpected the step carried on after.
    Warn,
    /// A failure.
    Error,
}

impl From<Level> for wit::Level {
    fn from(l: Level) -> Self {
        match l {
            Level::Trace => wit::Level::Trace,
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        }
    }
}

/// Writes a line to the run log. The macros [`info!`](crate::info) and
/// friends call this with their formatted message.
pub fn log(level: Level, message: &str) {
    wit::log(level.into(), message);
}

/// The value of input `name`, if given.
pub fn input(name: &str) -> Option<String> {
    wit::input(name)
}

/// The value of input `name`, or [`Error::Invalid`] naming the input if it
/// was not given.
pub fn require_input(name: &str) -> Result<String> {
    input(name).ok_or_else(|| {
        Error::invalid(format!(
            "missing required input `{name}`: pass --input {name}=..."
        ))
    })
}

/// Every input, by name.
pub fn inputs() -> BTreeMap<String, String> {
    wit::inputs().into_iter().collect()
}

/// The value of secret `name`, if given. Never log it yourself: the host
/// masks it anyway, but the step should not rely on that.
pub fn secret(name: &str) -> Option<String> {
    wit::secret(name)
}

/// The value of secret `name`, or [`Error::Invalid`] naming the secret if it
/// was not given.
pub fn require_secret(name: &str) -> Result<String> {
    secret(name)
        .ok_or_else(|| Error::invalid(format!("missing secret `{name}`: pass --secret {name}=...")))
}

/// Input `name` as a boolean: `true`/`false`, `yes`/`no`, `1`/`0`, in any
/// case; `default` when not given. Any other value is [`Error::Invalid`]
/// naming the input and the value.
pub fn bool_input(name: &str, default: bool) -> Result<bool> {
    input(name).map_or(Ok(default), |value| parse_bool(name, &value))
}

/// Input `name` as an unsigned integer; `default` when not given. Any other
/// value is [`Error::Invalid`] naming the input and the value.
pub fn u64_input(name: &str, default: u64) -> Result<u64> {
    input(name).map_or(Ok(default), |value| parse_u64(name, &value))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(Error::invalid(format!(
            "input `{name}` must be true or false (or yes/no, 1/0), not {value:?}"
        ))),
    }
}

fn parse_u64(name: &str, value: &str) -> Result<u64> {
    value.trim().parse().map_err(|_| {
        Error::invalid(format!(
            "input `{name}` must be a whole number (0 or more), not {value:?}"
        ))
    })
}

/// Sets output `name` (a later call replaces the value). Fails with
/// [`Error::LimitExceeded`] when the run's output bytes are used up.
pub fn set_output(name: &str, value: impl AsRef<str>) -> Result<()> {
    Ok(wit::set_output(name, value.as_ref(), false)?)
}

/// Sets a sensitive output: the run's report shows it masked.
pub fn set_sensitive_output(name: &str, value: impl AsRef<str>) -> Result<()> {
    Ok(wit::set_output(name, value.as_ref(), true)?)
}

/// Reports progress with a short message. `percent` above 100 counts as 100.
pub fn progress(percent: u8, message: &str) {
    wit::progress(percent.min(100), message);
}

/// Publishes the file at `path` (under `/workspace`) as an artifact named
/// `name` of the run.
pub fn artifact(name: &str, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let path = path
        .to_str()
        .ok_or_else(|| Error::invalid(format!("artifact path {} is not UTF-8", path.display())))?;
    Ok(wit::artifact(name, path)?)
}

/// Logs at [`Level::Trace`]: `trace!("state {state:?}")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::run::log($crate::run::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Debug`]: `debug!("read {} files", n)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::run::log($crate::run::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Info`]: `info!("{name} created")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::run::log($crate::run::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Warn`]: `warn!("could not publish the artifact: {e}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::run::log($crate::run::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs at [`Level::Error`]: `error!("rollout of {name} failed: {e}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::run::log($crate::run::Level::Error, &::std::format!($($arg)+)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for v in ["true", "TRUE", "Yes", "1", " true "] {
            assert!(parse_bool("wait", v).unwrap(), "{v}");
        }
        for v in ["false", "False", "NO", "0"] {
            assert!(!parse_bool("wait", v).unwrap(), "{v}");
        }
        let e = parse_bool("wait", "maybe").unwrap_err();
        assert!(e.is_invalid());
        assert!(
            e.message().contains("wait") && e.message().contains("maybe"),
            "{e}"
        );
        assert!(parse_bool("wait", "").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("timeout", "300").unwrap(), 300);
        assert_eq!(parse_u64("timeout", " 7 ").unwrap(), 7);
        for v in ["-1", "5m", "", "1.5"] {
            let e = parse_u64("timeout", v).unwrap_err();
            assert!(e.is_invalid());
            assert!(
                e.message().contains("timeout") && e.message().contains(&format!("{v:?}")),
                "{e}"
            );
        }
    }
}
