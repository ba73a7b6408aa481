//! Fault injection: make the dev cluster fail the way real API servers do,
//! so clients (stepbox's live backend, kubectl, helm) can be tested against
//! throttling, errors, slowness, dropped connections and cut watches.
//!
//! Faults are given as specs, on the command line (`stepbox dev-cluster
//! --fault SPEC`, repeatable) or with [`DevCluster::fault`](crate::DevCluster::fault).
//!
//! # Spec grammar
//!
//! ```text
//! SPEC   = KIND [":" OPTION ("," OPTION)*]
//! KIND   = "status=" CODE     answer CODE (400-599) with a Kubernetes Status body;
//!                             the request is not handled (nothing is written)
//!        | "delay=" DURATION  wait DURATION (e.g. 500ms, 3s), then handle the request
//!        | "drop"             close the connection without answering; the request
//!                             is not handled
//!        | "drop-after"       handle the request (a write is applied), then close
//!                             the connection without answering: the client cannot
//!                             know whether its write happened
//!        | "cut-watch"        start a watch normally, then cut its stream (the
//!                             connection ends mid-body) after `after-events` events
//!                             (default 0) or `after` a duration
//!        | "down-after=" N    handle N matching requests, then drop every later
//!                             request to the API: the server is gone mid-run
//! OPTION = "verb=" VERB ("|" VERB)*   get, list, watch, create, update, patch,
//!                                     delete, deletecollection (default: any)
//!        | "resource=" PLURAL         e.g. deployments, or deployments.apps
//!                                     (default: any, discovery included)
//!        | "name=" NAME               the object's name
//!        | "skip=" N                  let the first N matching requests through
//!        | "times=" N                 fire N times, then let requests through
//!                                     (default: every time)
//!        | "retry-after=" SECONDS     status only: the Retry-After header and
//!                                     details.retryAfterSeconds, as the API
//!                                     server sends with 429
//!        | "after-events=" N          cut-watch only
//!        | "after=" DURATION          cut-watch only
//! ```
//!
//! Examples: `status=429:verb=get,resource=deployments,times=2,retry-after=1`,
//! `status=409:verb=patch,resource=configmaps,name=web-config`,
//! `delay=30s:verb=get`, `drop-after:verb=patch,resource=deployments,times=1`,
//! `cut-watch:after-events=0,times=2`, `down-after=10`.
//!
//! A request meets at most one fault: the first spec (in the order given)
//! that matches it and has not used up its `times`. `down-after` counts the
//! requests it matches whether or not another fault fired on them. Paths
//! under `/debug/stepbox/` are never faulted.
//!
//! Faults act before authentication, as a broken load balancer in front
//! of an API server would. A `delay`ed request is handled even if the
//! client stops waiting (as an API server does), so a write that timed out
//! on the client can still land. `cut-watch` with `after-events=0` aborts
//! the response before its headers leave the server, so clients see the
//! watch fail to start; `after=DURATION` cuts an established stream.
//!
//! # What the server records
//!
//! Every fault that fires is logged on stderr (a `WARN` line naming the
//! spec and the request). The request log notes the
//! fault each request met, and `GET /debug/stepbox/requests` lists how
//! often each fault fired.
//!
//! Fault injection is compiled in with the `faults` cargo feature only: a
//! server built without it cannot be made to misbehave.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
#[cfg(test)]
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;
use stepbox_k8s::resources::REQUEST_VERBS;
use tower::ServiceExt;

use crate::requests::{DEBUG_PREFIX, Dropped, RequestLog, describe, into_ok};
use crate::route::RequestInfo;
use crate::status::json_response;

/// An invalid fault spec: what is wrong and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault {spec:?}: {problem}; {hint}")]
pub struct FaultSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
    /// What to write instead.
    pub hint: String,
}

/// What a fault does to the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer this status (a Kubernetes Status body), without handling the
    /// request.
    Status {
        /// The HTTP status code, 400-599.
        code: u16,
        /// Seconds for `Retry-After` and `details.retryAfterSeconds`.
        retry_after: Option<u64>,
    },
    /// Wait, then handle the request.
    Delay(Duration),
    /// Close the connection without answering, the request unhandled.
    Drop,
    /// Handle the request, then close the connection without answering.
    DropAfter,
    /// Cut a watch's stream after some events or some time.
    CutWatch {
        /// Cut after this many events (0: right after the headers).
        after_events: Option<u64>,
        /// Cut after this long.
        after: Option<Duration>,
    },
    /// Handle this many matching requests, then drop every request.
    DownAfter(u64),
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatcher {
    /// Kubernetes verbs; empty means any.
    pub verbs: Vec<String>,
    /// Resource plural (`deployments`) or plural.group (`deployments.apps`).
    pub resource: Option<String>,
    /// Object name.
    pub name: Option<String>,
}

impl RequestMatcher {
    /// True when `req` is one of the requests this matcher names.
    pub fn matches(&self, req: &RequestInfo) -> bool {
        (self.verbs.is_empty() || self.verbs.contains(&req.verb))
            && self
                .resource
                .as_deref()
                .is_none_or(|r| match r.split_once('.') {
                    Some((plural, group)) => plural == req.resource && group == req.group,
                    None => r == req.resource,
                })
            && self
                .name
                .as_deref()
                .is_none_or(|n| req.name.as_deref() == Some(n))
    }
}

/// One fault: what it does, to which requests, how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The spec it was parsed from (for logs).
    pub spec: String,
    /// What it does.
    pub kind: FaultKind,
    /// Which requests.
    pub matcher: RequestMatcher,
    /// Matching requests let through before it fires.
    pub skip: u64,
    /// How many times it fires; `None`: every time.
    pub times: Option<u64>,
}

const KINDS_HINT: &str = "write one of status=CODE, delay=DURATION, drop, drop-after, cut-watch, down-after=N, optionally followed by :OPTION,... (see `stepbox dev-cluster --help`)";

impl FromStr for Fault {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let err = |problem: String, hint: &str| FaultSpecError {
            spec: spec.to_string(),
            problem,
            hint: hint.to_string(),
        };
        let (kind_text, options) = match spec.trim().split_once(':') {
            Some((k, o)) => (k.trim(), Some(o)),
            None => (spec.trim(), None),
        };
        let (kind_key, kind_value) = match kind_text.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (kind_text, None),
        };
        let number = |key: &str, v: Option<&str>, hint: &str| -> Result<u64, FaultSpecError> {
            let v = v.ok_or_else(|| err(format!("{key} needs a value"), hint))?;
            v.parse::<u64>()
                .map_err(|_| err(format!("{key}={v:?} is not a whole number"), hint))
        };
        let duration =
            |key: &str, v: Option<&str>, hint: &str| -> Result<Duration, FaultSpecError> {
                let v = v.ok_or_else(|| err(format!("{key} needs a value"), hint))?;
                humantime::parse_duration(v)
                    .map_err(|e| err(format!("{key}={v:?} is not a duration ({e})"), hint))
            };
        let mut kind = match (kind_key, kind_value) {
            ("status", v) => {
                let hint =
                    "write status=CODE with a code from 400 to 599, e.g. status=429:retry-after=1";
                let code = number("status", v, hint)?;
                if !(400..=599).contains(&code) {
                    return Err(err(format!("status {code} is not an error code"), hint));
                }
                FaultKind::Status {
                    code: u16::try_from(code).unwrap_or(500),
                    retry_after: None,
                }
            }
            ("delay", v) => FaultKind::Delay(duration(
                "delay",
                v,
                "write delay=DURATION, e.g. delay=500ms or delay=3s",
            )?),
            ("drop", None) => FaultKind::Drop,
            ("drop-after", None) => FaultKind::DropAfter,
            ("cut-watch", None) => FaultKind::CutWatch {
                after_events: None,
                after: None,
            },
            ("down-after", v) => FaultKind::DownAfter(number(
                "down-after",
                v,
                "write down-after=N, the number of requests answered before the server goes down",
            )?),
            (k @ ("drop" | "drop-after" | "cut-watch"), Some(_)) => {
                return Err(err(
                    format!("{k} takes no value"),
                    &format!("write {k}, with options after a colon, e.g. {k}:verb=get,times=1"),
                ));
            }
            ("", _) => return Err(err("the spec is empty".into(), KINDS_HINT)),
            (other, _) => {
                return Err(err(format!("unknown fault kind {other:?}"), KINDS_HINT));
            }
        };
        let mut fault = Fault {
            spec: spec.trim().to_string(),
            kind: FaultKind::Drop,
            matcher: RequestMatcher::default(),
            skip: 0,
            times: None,
        };
        for option in options.unwrap_or_default().split(',') {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            let Some((key, value)) = option.split_once('=') else {
                return Err(err(
                    format!("option {option:?} has no value"),
                    "write options as key=value, e.g. verb=get,times=2",
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "verb" => {
                    for verb in value.split('|') {
                        let verb = verb.trim().to_ascii_lowercase();
                        if !REQUEST_VERBS.contains(&verb.as_str()) {
                            return Err(err(
                                format!("unknown verb {verb:?}"),
                                &format!(
                                    "write verb= with one or more of {} joined by |, e.g. verb=get|list",
                                    REQUEST_VERBS.join(", ")
                                ),
                            ));
                        }
                        fault.matcher.verbs.push(verb);
                    }
                }
                "resource" if !value.is_empty() => {
                    fault.matcher.resource = Some(value.to_ascii_lowercase());
                }
                "name" if !value.is_empty() => fault.matcher.name = Some(value.to_string()),
                "skip" => fault.skip = number("skip", Some(value), "write skip=N, e.g. skip=1")?,
                "times" => {
                    let n = number(
                        "times",
                        Some(value),
                        "write times=N with N at least 1, or leave it out for every time",
                    )?;
                    if n == 0 {
                        return Err(err(
                            "times=0 would never fire".into(),
                            "write times=N with N at least 1, or leave it out for every time",
                        ));
                    }
                    fault.times = Some(n);
                }
                "retry-after" => match &mut kind {
                    FaultKind::Status { retry_after, .. } => {
                        *retry_after = Some(number(
                            "retry-after",
                            Some(value),
                            "write retry-after=SECONDS, e.g. status=429:retry-after=1",
                        )?);
                    }
                    _ => {
                        return Err(err(
                            "retry-after only applies to status faults".into(),
                            "write e.g. status=429:retry-after=1",
                        ));
                    }
                },
                "after-events" | "after" => match &mut kind {
                    FaultKind::CutWatch {
                        after_events,
                        after,
                    } => {
                        if key == "after" {
                            *after = Some(duration(
                                "after",
                                Some(value),
                                "write after=DURATION, e.g. cut-watch:after=2s",
                            )?);
                        } else {
                            *after_events = Some(number(
                                "after-events",
                                Some(value),
                                "write after-events=N, e.g. cut-watch:after-events=1",
                            )?);
                        }
                    }
                    _ => {
                        return Err(err(
                            format!("{key} only applies to cut-watch"),
                            "write e.g. cut-watch:after-events=1 or cut-watch:after=2s",
                        ));
                    }
                },
                other => {
                    return Err(err(
                        format!("unknown option {other:?}"),
                        "options are verb=, resource=, name=, skip=, times=, retry-after= (status), after-events= and after= (cut-watch)",
                    ));
                }
            }
        }
        if let FaultKind::CutWatch {
            after_events: None,
            after: None,
        } = kind
        {
            kind = FaultKind::CutWatch {
                after_events: Some(0),
                after: None,
            };
        }
        if matches!(kind, FaultKind::CutWatch { .. })
            && fault.matcher.verbs.iter().any(|v| v != "watch")
        {
            return Err(err(
                "cut-watch only applies to watches".into(),
                "leave verb= out, or write verb=watch",
            ));
        }
        fault.kind = kind;
        Ok(fault)
    }
}

struct Armed {
    fault: Fault,
    matched: AtomicU64,
    fired: AtomicU64,
}

/// The faults of one server.
pub struct FaultLayer {
    faults: Vec<Armed>,
    down: AtomicBool,
}

impl std::fmt::Debug for FaultLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultLayer")
            .field(
                "faults",
                &self
                    .faults
                    .iter()
                    .map(|a| &a.fault.spec)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

enum Action {
    Pass,
    Fire(usize),
    Down,
}

impl FaultLayer {
    /// A layer with these faults (none: every request passes).
    pub fn new(faults: Vec<Fault>) -> Self {
        Self {
            faults: faults
                .into_iter()
                .map(|fault| Armed {
                    fault,
                    matched: AtomicU64::new(0),
                    fired: AtomicU64::new(0),
                })
                .collect(),
            down: AtomicBool::new(false),
        }
    }

    /// How often each fault fired, in the order given: `(spec, count)`.
    pub fn fired(&self) -> Vec<(String, u64)> {
        self.faults
            .iter()
            .map(|a| (a.fault.spec.clone(), a.fired.load(Ordering::SeqCst)))
            .collect()
    }

    fn decide(&self, info: &RequestInfo) -> Action {
        let mut down = self.down.load(Ordering::SeqCst);
        for armed in &self.faults {
            if let FaultKind::DownAfter(n) = armed.fault.kind
                && armed.fault.matcher.matches(info)
                && armed.matched.fetch_add(1, Ordering::SeqCst) >= n
            {
                if !self.down.swap(true, Ordering::SeqCst) {
                    armed.fired.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(fault = %armed.fault.spec, "dev-cluster: fault fired: the server is down from now on");
                }
                down = true;
            }
        }
        if down {
            return Action::Down;
        }
        for (i, armed) in self.faults.iter().enumerate() {
            let fault = &armed.fault;
            if matches!(fault.kind, FaultKind::DownAfter(_))
                || (matches!(fault.kind, FaultKind::CutWatch { .. }) && info.verb != "watch")
                || !fault.matcher.matches(info)
            {
                continue;
            }
            let seen = armed.matched.fetch_add(1, Ordering::SeqCst);
            if seen < fault.skip {
                continue;
            }
            let fired = armed.fired.fetch_add(1, Ordering::SeqCst);
            if fault.times.is_some_and(|t| fired >= t) {
                armed.fired.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            return Action::Fire(i);
        }
        Action::Pass
    }

    /// Serves one request through the faults and `router`, recording it in
    /// `log`.
    ///
    /// # Errors
    /// [`Dropped`] when a fault drops the request (the server then closes
    /// the connection without a response).
    pub(crate) async fn serve(
        self: Arc<Self>,
        log: Arc<RequestLog>,
        req: hyper::Request<hyper::body::Incoming>,
        router: Router,
    ) -> Result<Response, Dropped> {
        if req.uri().path().starts_with(DEBUG_PREFIX) {
            return Ok(into_ok(router.oneshot(req).await));
        }
        let mut record = log.begin(&req);
        let what = describe(&record);
        let seq = record.seq;
        let action = self.decide(&record.info);
        let fault = match action {
            Action::Pass => None,
            Action::Down => {
                record.fault = Some("down".into());
                tracing::warn!("dev-cluster: down: dropped {what}");
                log.record(record);
                return Err(Dropped("down".into()));
            }
            Action::Fire(i) => Some(&self.faults[i]),
        };
        // Logged on arrival (so a request still waiting shows), completed
        // below.
        record.fault = fault.map(|a| a.fault.spec.clone());
        log.record(record);
        let Some(armed) = fault else {
            let response = into_ok(router.oneshot(req).await);
            log.finish(seq, true, Some(response.status().as_u16()));
            return Ok(response);
        };
        let spec = armed.fault.spec.clone();
        tracing::warn!(fault = %spec, "dev-cluster: fault fired on {what} ({} so far)", armed.fired.load(Ordering::SeqCst));
        match &armed.fault.kind {
            FaultKind::Status { code, retry_after } => {
                let info = RequestInfo::of(req.method(), req.uri());
                log.finish(seq, false, Some(*code));
                Ok(status_response(*code, *retry_after, &info))
            }
            FaultKind::Drop => Err(Dropped(spec)),
            FaultKind::Delay(d) => {
                // As in an API server, the request is handled even when the
                // client stops waiting: read it whole, then handle it in a
                // task of its own that outlives the connection.
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(Body::new(body), super::api::MAX_BODY_BYTES)
                    .await
                    .map_err(|_| Dropped(spec.clone()))?;
                let req = hyper::Request::from_parts(parts, Body::from(body));
                let delay = *d;
                let log = log.clone();
                let task = tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let response = into_ok(router.oneshot(req).await);
                    log.finish(seq, true, Some(response.status().as_u16()));
                    response
                });
                task.await.map_err(|_| Dropped(spec))
            }
            FaultKind::DropAfter => {
                let response = into_ok(router.oneshot(req).await);
                // The handler has run (a write is applied); collect the body
                // so nothing of it is left running, then drop the answer.
                let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
                log.finish(seq, true, None);
                Err(Dropped(spec))
            }
            FaultKind::CutWatch {
                after_events,
                after,
            } => {
                let response = into_ok(router.oneshot(req).await);
                log.finish(seq, true, Some(response.status().as_u16()));
                if !response.status().is_success() {
                    return Ok(response);
                }
                Ok(cut_body(response, *after_events, *after))
            }
            FaultKind::DownAfter(_) => unreachable!("down-after faults are decided above"),
        }
    }
}

fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A Status body like the API server's for `code`.
fn status_response(code: u16, retry_after: Option<u64>, info: &RequestInfo) -> Response {
    let reason = reason_of(code);
    let object = match (&info.name, info.group.as_str()) {
        (Some(n), "") => format!("{} {n:?}", info.resource),
        (Some(n), g) => format!("{}.{g} {n:?}", info.resource),
        (None, _) => info.resource.clone(),
    };
    let message = match code {
        409 => format!(
            "Operation cannot be fulfilled on {object}: the object has been modified; please apply your changes to the latest version and try again (injected fault)"
        ),
        429 => "Too many requests, please try again later. (injected fault)".to_string(),
        _ => format!("injected fault: {code} {reason}"),
    };
    let mut details = json!({});
    if let Some(name) = &info.name {
        details["name"] = json!(name);
    }
    if !info.resource.is_empty() {
        details["kind"] = json!(info.resource);
    }
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    if let Some(s) = retry_after {
        details["retryAfterSeconds"] = json!(s);
    }
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    });
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &body);
    if let Some(s) = retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The watch response, its body cut after `after_events` events or after
/// `after`: the stream then fails, so the connection ends mid-body.
fn cut_body(response: Response, after_events: Option<u64>, after: Option<Duration>) -> Response {
    let (parts, body) = response.into_parts();
    let deadline = after.map(|d| tokio::time::Instant::now() + d);
    struct Cut {
        inner: axum::body::BodyDataStream,
        events: u64,
        done: bool,
    }
    let state = Cut {
        inner: body.into_data_stream(),
        events: 0,
        done: false,
    };
    let cut = || {
        std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "watch cut by an injected fault",
        )
    };
    let stream = futures::stream::unfold(state, move |mut st| async move {
        use futures::StreamExt;
        if st.done {
            return None;
        }
        if after_events.is_some_and(|n| st.events >= n) {
            st.done = true;
            return Some((Err(cut()), st));
        }
        let next = match deadline {
            Some(d) => tokio::select! {
                next = st.inner.next() => next,
                () = tokio::time::sleep_until(d) => {
                    st.done = true;
                    return Some((Err(cut()), st));
                }
            },
            None => st.inner.next().await,
        };
        match next {
            Some(Ok(chunk)) => {
                st.events += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                Some((Ok::<Bytes, std::io::Error>(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(std::io::Error::other(e)), st))
            }
            None => None,
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Fault {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn info(method: Method, uri: &str) -> RequestInfo {
        RequestInfo::of(&method, &uri.parse().unwrap())
    }

    #[test]
    fn parses_every_kind() {
        let f = parse("status=429:verb=get|list,resource=deployments,times=2,retry-after=1");
        assert_eq!(
            f.kind,
            FaultKind::Status {
                code: 429,
                retry_after: Some(1)
            }
        );
        assert_eq!(f.matcher.verbs, ["get", "list"]);
        assert_eq!(f.matcher.resource.as_deref(), Some("deployments"));
        assert_eq!(f.times, Some(2));
        assert_eq!(
            parse("delay=1500ms").kind,
            FaultKind::Delay(Duration::from_millis(1500))
        );
        assert_eq!(parse("drop:name=web,skip=1").skip, 1);
        assert_eq!(parse("drop-after").kind, FaultKind::DropAfter);
        assert_eq!(
            parse("cut-watch").kind,
            FaultKind::CutWatch {
                after_events: Some(0),
                after: None
            }
        );
        assert_eq!(
            parse("cut-watch:after=2s").kind,
            FaultKind::CutWatch {
                after_events: None,
                after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(parse("down-after=3").kind, FaultKind::DownAfter(3));
    }

    #[test]
    fn invalid_specs_say_what_to_write() {
        for (spec, problem, hint) in [
            ("explode", "unknown fault kind \"explode\"", "status=CODE"),
            ("status=abc", "not a whole number", "status=429"),
            ("status=200", "not an error code", "400 to 599"),
            ("delay=soon", "not a duration", "delay=500ms"),
            ("drop:verb=fetch", "unknown verb \"fetch\"", "verb=get|list"),
            ("drop:verbs=get", "unknown option \"verbs\"", "verb="),
            ("drop:times=0", "never fire", "times=N"),
            ("drop:retry-after=1", "only applies to status", "status=429"),
            (
                "cut-watch:verb=get",
                "only applies to watches",
                "verb=watch",
            ),
            ("drop=1", "takes no value", "drop:verb=get"),
            ("down-after", "needs a value", "down-after=N"),
            ("drop:get", "has no value", "key=value"),
        ] {
            let e = spec.parse::<Fault>().unwrap_err();
            let text = e.to_string();
            assert!(text.contains(problem), "{spec}: {text}");
            assert!(text.contains(hint), "{spec}: {text}");
            assert!(
                text.starts_with(&format!("invalid fault {spec:?}")),
                "{text}"
            );
        }
    }

    #[test]
    fn classifies_requests() {
        let i = info(Method::GET, "/apis/apps/v1/namespaces/d/deployments/web");
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str()),
            ("get", "deployments")
        );
        assert_eq!(i.name.as_deref(), Some("web"));
        assert_eq!(i.group, "apps");
        assert_eq!(
            info(Method::GET, "/api/v1/namespaces/d/configmaps").verb,
            "list"
        );
        assert_eq!(
            info(
                Method::GET,
                "/api/v1/namespaces/d/configmaps?watch=true&resourceVersion=3"
            )
            .verb,
            "watch"
        );
        assert_eq!(
            info(Method::PATCH, "/api/v1/namespaces/d/configmaps/x").verb,
            "patch"
        );
        assert_eq!(
            info(Method::POST, "/api/v1/namespaces/d/configmaps").verb,
            "create"
        );
        assert_eq!(
            info(Method::DELETE, "/api/v1/namespaces/d/configmaps").verb,
            "deletecollection"
        );
        let v = info(Method::GET, "/version");
        assert_eq!((v.verb.as_str(), v.resource.as_str()), ("get", ""));
        let m = parse("drop:verb=get,resource=deployments.apps,name=web").matcher;
        assert!(m.matches(&i));
        assert!(!m.matches(&info(
            Method::GET,
            "/apis/apps/v1/namespaces/d/deployments/other"
        )));
        assert!(!parse("drop:resource=deployments.batch").matcher.matches(&i));
    }

    #[test]
    fn counts_skip_times_and_down() {
        let layer = FaultLayer::new(vec![
            parse("status=500:verb=get,skip=1,times=2"),
            parse("down-after=5"),
        ]);
        let get = info(Method::GET, "/api/v1/namespaces/d/configmaps/x");
        let fired: Vec<bool> = (0..6)
            .map(|_| matches!(layer.decide(&get), Action::Fire(0)))
            .collect();
        // skip 1, fire 2, then pass; the 6th request finds the server down.
        assert_eq!(fired, [false, true, true, false, false, false]);
        assert!(matches!(layer.decide(&get), Action::Down));
        assert_eq!(
            layer.fired(),
            [
                ("status=500:verb=get,skip=1,times=2".to_string(), 2),
                ("down-after=5".to_string(), 1)
            ]
        );
    }
}
