//! `http-check`: waits until a URL answers with the expected status (and,
//! optionally, a body containing some text), the smoke test after a
//! deployment. The run's policy must allow the URL (`outbound:`); a
//! refused destination fails at once, naming the allow-list.
//!
//! Inputs: `url` (required), `status` (default 200), `contains`,
//! `timeout` (default 60s), `interval` (default 2s), `token-secret` (the
//! name of a secret sent as `Authorization: Bearer ...`). Durations are
//! seconds or a number with `ms`, `s`, `m` or `h`.

use std::time::{Duration, Instant};

use stepbox_sdk::prelude::*;

/// What a healthy answer looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    status: u16,
    contains: Option<String>,
}

impl Expect {
    /// `None` when `status` and `body` are what is expected, else why not.
    fn mismatch(&self, status: u16, body: &str) -> Option<String> {
        if status != self.status {
            return Some(format!("answered {status}, expected {}", self.status));
        }
        match &self.contains {
            Some(text) if !body.contains(text.as_str()) => Some(format!(
                "answered {status}, but the body does not contain {text:?}"
            )),
            _ => None,
        }
    }
}

fn run(_ctx: &Context) -> Result<()> {
    let url = run::require_input("url")?;
    let status = run::u64_input("status", 200)?;
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| {
            Error::invalid(format!(
                "input status: {status} is not an HTTP status (100-599)"
            ))
        })?;
    let expect = Expect {
        status,
        contains: run::input("contains").filter(|c| !c.is_empty()),
    };
    let timeout = duration_input("timeout", Duration::from_secs(60))?;
    let interval = duration_input("interval", Duration::from_secs(2))?;
    let token = match run::input("token-secret") {
        Some(name) => Some(run::require_secret(&name)?),
        None => None,
    };

    let started = Instant::now();
    let mut attempts = 0u32;
    let last = loop {
        attempts += 1;
        let mut request = http::Request::get(url.clone());
        if let Some(token) = &token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let why = match request.send() {
            Ok(response) => match expect.mismatch(response.status, &response.text()) {
                None => {
                    info!(
                        "{url} answered {} after {attempts} attempt(s)",
                        response.status
                    );
                    run::set_output("status", response.status.to_string())?;
                    run::set_output("attempts", attempts.to_string())?;
                    return Ok(());
                }
                Some(why) => why,
            },
            // The policy and the run's limits will not change by waiting.
            Err(e) if e.is_forbidden() || e.is_limit_exceeded() || e.is_invalid() => {
                return Err(e.context(format!("checking {url}")));
            }
            Err(e) => e.to_string(),
        };
        info!("attempt {attempts}: {url} {why}");
        let elapsed = started.elapsed();
        if elapsed + interval >= timeout {
            break why;
        }
        std::thread::sleep(interval);
    };
    run::set_output("attempts", attempts.to_string())?;
    Err(Error::step(format!(
        "{url} did not answer {}{} within {}: the last attempt {last}",
        expect.status,
        expect
            .contains
            .as_ref()
            .map(|c| format!(" containing {c:?}"))
            .unwrap_or_default(),
        show(timeout)
    )))
}

/// A duration input: seconds, or a number with `ms`, `s`, `m` or `h`.
fn duration_input(name: &str, default: Duration) -> Result<Duration> {
    match run::input(name) {
        None => Ok(default),
        Some(text) => parse_duration(&text).ok_or_else(|| {
            Error::invalid(format!(
                "input {name}: {text:?} is not a duration; write seconds (\"30\") or a number with ms, s, m or h (\"500ms\", \"2m\")"
            ))
        }),
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

stepbox_sdk::step!(run);

// HTTP only: no Kubernetes objects, no helm. Its URL is an input, so it
// declares any destination and leaves the choice to the policy's
// `outbound` allow-list.
stepbox_sdk::needs!(
    "apiVersion: stepbox.dev/v1alpha1
kind: StepNeeds
rules: []
outbound: ['*://*:*']
"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5d"), None);
    }

    #[test]
    fn expectations() {
        let e = Expect {
            status: 200,
            contains: Some("ok".into()),
        };
        assert_eq!(e.mismatch(200, "all ok"), None);
        assert_eq!(e.mismatch(503, "ok").unwrap(), "answered 503, expected 200");
        assert!(
            e.mismatch(200, "down")
                .unwrap()
                .contains("does not contain \"ok\"")
        );
    }
}
