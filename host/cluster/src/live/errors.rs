//! What went wrong with a request to the API server, in the words a step
//! (and the person reading its report) can act on: whether to retry, and
//! whether a write may have been applied.

use std::time::Duration;

use crate::ClusterError;

/// How one attempt failed.
pub(super) enum Failure {
    /// The client or the server said so.
    Kube(kube::Error),
    /// No answer within the request time limit.
    TimedOut,
}

impl Failure {
    /// Worth another try for a read.
    pub(super) fn retryable(&self) -> bool {
        match self {
            Failure::Kube(e) => retryable(e),
            Failure::TimedOut => true,
        }
    }

    /// Certainly not handled by the server: a 429, or no connection at all.
    pub(super) fn not_applied(&self) -> bool {
        match self {
            Failure::Kube(kube::Error::Api(s)) => s.code == 429,
            Failure::Kube(e) => {
                let chain = format!("{e} {}", error_chain(e));
                chain.contains("Connection refused") || chain.contains("ConnectionRefused")
            }
            Failure::TimedOut => false,
        }
    }

    /// The server may have applied a write that ended like this.
    pub(super) fn outcome_unknown(&self) -> bool {
        match self {
            Failure::Kube(kube::Error::Api(s)) => s.code >= 500,
            Failure::Kube(_) => !self.not_applied(),
            Failure::TimedOut => true,
        }
    }

    /// The server's Retry-After, from the Status details.
    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Kube(kube::Error::Api(s)) => s
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s))),
            _ => None,
        }
    }

    /// A few words for the audit, e.g. `429 TooManyRequests (Retry-After 1s)`.
    pub(super) fn describe(&self, timeout: Duration) -> String {
        match self {
            Failure::Kube(kube::Error::Api(s)) => {
                let mut d = format!("{} {}", s.code, s.reason);
                if let Some(after) = self.retry_after() {
                    d.push_str(&format!(
                        " (Retry-After {})",
                        humantime::format_duration(after)
                    ));
                }
                d
            }
            Failure::Kube(e) => {
                let chain = error_chain(e);
                if chain.contains("Connection refused") || chain.contains("ConnectionRefused") {
                    "connection refused".into()
                } else {
                    format!("a connection failure ({e})")
                }
            }
            Failure::TimedOut => {
                format!("no answer within {}", humantime::format_duration(timeout))
            }
        }
    }

    pub(super) fn into_error(self, server: &str, what: &str, timeout: Duration) -> ClusterError {
        match self {
            Failure::Kube(e) => map_error(e, server, what),
            Failure::TimedOut => ClusterError::Timeout(format!(
                "{what}: the API server at {server} did not answer within {} (the request time limit)",
                humantime::format_duration(timeout)
            )),
        }
    }
}

pub(super) fn with_suffix(e: ClusterError, suffix: &str) -> ClusterError {
    use ClusterError as C;
    match e {
        C::NotFound(m) => C::NotFound(m + suffix),
        C::AlreadyExists(m) => C::AlreadyExists(m + suffix),
        C::Conflict(m) => C::Conflict(m + suffix),
        C::Invalid(m) => C::Invalid(m + suffix),
        C::Forbidden(m) => C::Forbidden(m + suffix),
        C::Unavailable(m) => C::Unavailable(m + suffix),
        C::Timeout(m) => C::Timeout(m + suffix),
    }
}

fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Maps a kube error to a [`ClusterError`] with the server's message and
/// what to do about it.
pub fn map_error(e: kube::Error, server: &str, what: &str) -> ClusterError {
    match e {
        kube::Error::Api(s) => {
            let msg = format!("{what}: {} ({} {})", s.message, s.code, s.reason);
            match s.code {
                401 => ClusterError::Unavailable(format!(
                    "{what}: the API server at {server} rejected the credentials (401 Unauthorized: {}); the token may have expired: refresh the kubeconfig",
                    s.message
                )),
                403 => ClusterError::Forbidden(format!(
                    "{msg}; the credentials lack this right in Kubernetes RBAC (see `stepbox check`)"
                )),
                404 => ClusterError::NotFound(msg),
                409 if s.reason == "AlreadyExists" => ClusterError::AlreadyExists(msg),
                409 => ClusterError::Conflict(format!(
                    "{msg}; the object changed while the step wrote it: re-run the step to apply over the current version"
                )),
                400 | 422 => ClusterError::Invalid(msg),
                429 => ClusterError::Unavailable(format!(
                    "{msg}: the API server is throttling requests"
                )),
                504 => ClusterError::Timeout(msg),
                _ => ClusterError::Unavailable(msg),
            }
        }
        other => {
            let text = format!("{other}");
            let chain = error_chain(&other);
            let hint = if chain.contains("close_notify")
                || chain.contains("connection closed before message completed")
                || chain.contains("Connection reset")
            {
                // A dropped connection; TLS reports it as a missing
                // close_notify, which is no certificate problem.
                "the connection was closed before the API server answered"
            } else if chain.contains("certificate")
                || chain.contains("UnknownIssuer")
                || chain.contains("tls")
            {
                "the server's TLS certificate was not accepted: check certificate-authority(-data) in the kubeconfig"
            } else if chain.contains("Connection refused") || chain.contains("ConnectionRefused") {
                "connection refused: is the API server running and the address right?"
            } else if chain.contains("dns error") || chain.contains("failed to lookup") {
                "the API server's host name does not resolve"
            } else if chain.contains("timed out") || chain.contains("Timeout") {
                "the API server did not answer in time"
            } else {
                "the API server could not be reached"
            };
            let detail = if chain.is_empty() || text.contains(&chain) {
                text
            } else {
                format!("{text}: {chain}")
            };
            ClusterError::Unavailable(format!("{what}: {hint} ({server}): {detail}"))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{LiveCluster, MAX_RETRY_AFTER, READ_BACKOFF};

    #[test]
    fn writes_are_repeated_only_when_they_cannot_have_been_applied() {
        let api = |code: u16, retry_after: u32| {
            let mut s = kube::core::Status::failure("boom", "X").with_code(code);
            s.details = Some(kube::core::response::StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: retry_after,
            });
            Failure::Kube(kube::Error::Api(s.boxed()))
        };
        let throttled = api(429, 1);
        assert!(throttled.not_applied() && !throttled.outcome_unknown());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(
            LiveCluster::pause(READ_BACKOFF, &throttled),
            Duration::from_secs(1)
        );
        assert_eq!(
            LiveCluster::pause(READ_BACKOFF, &api(429, 3600)),
            MAX_RETRY_AFTER,
            "capped"
        );
        assert_eq!(LiveCluster::pause(READ_BACKOFF, &api(500, 0)), READ_BACKOFF);
        let failed = api(500, 0);
        assert!(!failed.not_applied() && failed.outcome_unknown() && failed.retryable());
        let conflict = api(409, 0);
        assert!(!conflict.not_applied() && !conflict.outcome_unknown() && !conflict.retryable());
        assert!(Failure::TimedOut.outcome_unknown() && Failure::TimedOut.retryable());
        assert!(!Failure::TimedOut.not_applied());
        assert_eq!(
            throttled.describe(Duration::from_secs(1)),
            "429 X (Retry-After 1s)"
        );
    }

    #[test]
    fn api_errors_map_to_wit_cases() {
        let api = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("boom", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(
            matches!(map_error(api(401, "Unauthorized"), "s", "get"), ClusterError::Unavailable(m) if m.contains("expired"))
        );
        assert!(matches!(
            map_error(api(403, "Forbidden"), "s", "get"),
            ClusterError::Forbidden(_)
        ));
        assert!(matches!(
            map_error(api(404, "NotFound"), "s", "get"),
            ClusterError::NotFound(_)
        ));
        assert!(matches!(
            map_error(api(409, "Conflict"), "s", "get"),
            ClusterError::Conflict(_)
        ));
        assert!(matches!(
            map_error(api(409, "AlreadyExists"), "s", "get"),
            ClusterError::AlreadyExists(_)
        ));
        assert!(matches!(
            map_error(api(422, "Invalid"), "s", "get"),
            ClusterError::Invalid(_)
        ));
        assert!(matches!(
            map_error(api(429, "TooManyRequests"), "s", "get"),
            ClusterError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(api(500, "InternalError"), "s", "get"),
            ClusterError::Unavailable(_)
        ));
        assert!(retryable(&api(429, "TooManyRequests")));
        assert!(
            matches!(map_error(api(409, "Conflict"), "s", "apply"), ClusterError::Conflict(m) if m.contains("re-run the step"))
        );
        assert!(retryable(&api(503, "ServiceUnavailable")));
        assert!(!retryable(&api(409, "Conflict")));
    }
}
