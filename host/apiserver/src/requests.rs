//! The request log: every request to the API is kept (the last
//! `MAX_RECORDS`), with what happened to it, and served as JSON at
//! `GET /debug/stepbox/requests` (authenticated like the API: `kubectl get
//! --raw /debug/stepbox/requests`), so tests can count the writes a client
//! really sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::response::Response;
use serde::Serialize;

use crate::route::RequestInfo;

/// How many requests the request log keeps (the oldest are dropped).
pub const MAX_RECORDS: usize = 10_000;

/// The prefix of the server's own paths, which are neither logged nor
/// faulted.
pub const DEBUG_PREFIX: &str = "/debug/stepbox/";

/// One request the server received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// 1, 2, ... in arrival order.
    pub seq: u64,
    /// The HTTP version the client spoke (`HTTP/1.1`, `HTTP/2.0`): TLS
    /// offers both by ALPN.
    pub http: String,
    /// The HTTP method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Verb, resource, namespace, name.
    #[serde(flatten)]
    pub info: RequestInfo,
    /// True when the request was handled (its write, if any, applied or
    /// refused by the store); false when a fault answered or dropped it
    /// first.
    pub handled: bool,
    /// The fault that fired on it, as its spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The status the client received; `None` when the connection was
    /// dropped instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// The error a dropped request ends with: hyper then closes the connection
/// (HTTP/1.1) or resets the stream (HTTP/2) without a response.
#[derive(Debug, thiserror::Error)]
#[error("request dropped by fault {0:?}")]
pub struct Dropped(pub(crate) String);

/// The requests one server received.
#[derive(Debug, Default)]
pub struct RequestLog {
    seq: AtomicU64,
    log: Mutex<VecDeque<RequestRecord>>,
}

impl RequestLog {
    /// The requests received so far (the last `MAX_RECORDS`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<RequestRecord>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of a request that just arrived (not yet logged: see
    /// [`RequestLog::record`]).
    pub(crate) fn begin<B>(&self, req: &hyper::Request<B>) -> RequestRecord {
        RequestRecord {
            seq: self.seq.fetch_add(1, Ordering::SeqCst) + 1,
            http: format!("{:?}", req.version()),
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            info: RequestInfo::of(req.method(), req.uri()),
            handled: false,
            fault: None,
            status: None,
        }
    }

    /// Logs a request (on arrival, so one still waiting shows).
    pub(crate) fn record(&self, record: RequestRecord) {
        let mut log = self.lock();
        if log.len() >= MAX_RECORDS {
            log.pop_front();
        }
        log.push_back(record);
    }

    /// Completes the log entry of request `seq`.
    pub(crate) fn finish(&self, seq: u64, handled: bool, status: Option<u16>) {
        if let Some(r) = self.lock().iter_mut().rev().find(|r| r.seq == seq) {
            r.handled = handled;
            r.status = status;
        }
    }

    /// Serves one request through `router` and logs it. (With the `faults`
    /// feature the fault layer does this, faults included.)
    #[cfg(not(feature = "faults"))]
    pub(crate) async fn serve(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        router: axum::Router,
    ) -> Response {
        use tower::ServiceExt;
        if req.uri().path().starts_with(DEBUG_PREFIX) {
            return into_ok(router.oneshot(req).await);
        }
        let record = self.begin(&req);
        let seq = record.seq;
        self.record(record);
        let response = into_ok(router.oneshot(req).await);
        self.finish(seq, true, Some(response.status().as_u16()));
        response
    }
}

/// The response of an infallible service.
pub(crate) fn into_ok(r: Result<Response, Infallible>) -> Response {
    match r {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// A request in a log line: method, path and what it names.
#[cfg(feature = "faults")]
pub(crate) fn describe(r: &RequestRecord) -> String {
    let mut s = format!("{} {}", r.method, r.path);
    if !r.info.resource.is_empty() {
        s.push_str(&format!(" ({} {}", r.info.verb, r.info.resource));
        if let Some(n) = &r.info.name {
            s.push('/');
            s.push_str(n);
        }
        s.push(')');
    }
    s
}
