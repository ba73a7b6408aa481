//! Watches: a streaming response of newline-separated JSON events.
//!
//! `GET ...?watch=true` answers `200` and keeps writing
//! `{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR","object":{...}}`
//! lines until `timeoutSeconds` pass, the client goes away or the server
//! shuts down. Where it starts:
//!
//! - no `resourceVersion` (or `"0"`): an `ADDED` event for every matching
//!   object, then the changes after them;
//! - `resourceVersion=N`: the changes after `N`, replayed from the
//!   [event log](stepbox_cluster::memory::watch_log); if they are no longer
//!   kept, one `ERROR` event with a `410 Expired` status ("too old resource
//!   version"), which tells clients to list again;
//! - `sendInitialEvents=true`: like no resourceVersion, then a `BOOKMARK`
//!   annotated `k8s.io/initial-events-end` (the watch-list protocol).
//!
//! Events are filtered by namespace and by the label and field selectors,
//! as in Kubernetes: an object that starts matching a selector arrives as
//! `ADDED`, one that stops matching as `DELETED`. (For a watch from a
//! resourceVersion, "matching before" is judged by the objects as they are
//! when the watch starts.)

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::watch as signal;
use tokio_util::sync::CancellationToken;

use stepbox_cluster::{LabelSelector, MemoryCluster, ResourceInfo};
use stepbox_k8s::selector::FieldSelector;

use super::status::ApiError;
use super::table;
use crate::query::Format;
use crate::view::View;

/// The longest a watch runs without `timeoutSeconds` (Kubernetes picks
/// 30-60 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What one watch asks for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// The kind watched, as stored.
    pub res: ResourceInfo,
    /// The kind as the client named it (another API of `res`, for a
    /// [`View`] other than `Stored`).
    pub served: ResourceInfo,
    /// How `served` relates to `res`.
    pub view: View,
    /// The columns of Table events.
    pub columns: table::Columns,
    /// The namespace (`""`: all, or cluster-scoped).
    pub namespace: String,
    /// Label selector.
    pub labels: Option<LabelSelector>,
    /// Field selector.
    pub fields: Option<FieldSelector>,
    /// Where to start (see the module docs); `None` for "now, with the
    /// current objects".
    pub resource_version: Option<u64>,
    /// The watch-list protocol: initial events, then a bookmark.
    pub send_initial_events: bool,
    /// When the watch ends.
    pub timeout: Duration,
    /// How objects are encoded (JSON, Table rows, metadata only).
    pub format: Format,
}

struct WatchState {
    cluster: MemoryCluster,
    req: WatchRequest,
    revisions: signal::Receiver<u64>,
    last: u64,
    pending: VecDeque<Bytes>,
    done: bool,
    deadline: tokio::time::Instant,
    shutdown: CancellationToken,
    sent_columns: bool,
    /// With selectors: the objects (namespace, name) the client was told
    /// match.
    matching: Option<HashSet<(String, String)>>,
}

fn ident(obj: &Value) -> (String, String) {
    (
        stepbox_k8s::object::namespace(obj)
            .unwrap_or_default()
            .to_string(),
        stepbox_k8s::object::name(obj)
            .unwrap_or_default()
            .to_string(),
    )
}

impl WatchState {
    fn matches(&self, obj: &Value) -> bool {
        self.req
            .labels
            .as_ref()
            .is_none_or(|s| s.matches_value(obj))
            && self
                .req
                .fields
                .as_ref()
                .is_none_or(|s| s.matches_value(obj))
    }

    /// The event type the client sees for a stored event, if any.
    fn translate(&mut self, event_type: &'static str, obj: &Value) -> Option<&'static str> {
        let now = self.matches(obj);
        let Some(matching) = self.matching.as_mut() else {
            return now.then_some(event_type);
        };
        let key = ident(obj);
        let was = matching.contains(&key);
        match (event_type, was, now) {
            ("DELETED", true, _) | ("DELETED", false, true) => {
                matching.remove(&key);
                Some("DELETED")
            }
            ("DELETED", false, false) => None,
            (_, true, true) => Some(event_type),
            (_, false, true) => {
                matching.insert(key);
                Some("ADDED")
            }
            (_, true, false) => {
                matching.remove(&key);
                Some("DELETED")
            }
            (_, false, false) => None,
        }
    }

    /// A stored object as the client sees it.
    fn present(&self, obj: &Value) -> Value {
        self.req.view.present(&self.req.served, obj)
    }

    /// Encodes an event of an object already [presented](Self::present).
    fn encode(&mut self, event_type: &str, obj: Value) -> Bytes {
        let object = match self.req.format {
            Format::Json => obj,
            Format::Table {
                api_version,
                include,
            } => {
                let with_columns = !self.sent_columns;
                self.sent_columns = true;
                table::table(
                    &self.req.columns,
                    &[obj],
                    None,
                    include,
                    api_version,
                    with_columns,
                )
            }
            Format::Metadata { api_version } => table::partial_metadata(&obj, api_version),
        };
        line(&json!({"type": event_type, "object": object}))
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Starts a watch: the streaming `200` response.
pub fn respond(
    cluster: &MemoryCluster,
    req: WatchRequest,
    shutdown: CancellationToken,
) -> Response {
    let mut revisions = cluster.subscribe();
    revisions.borrow_and_update();
    let mut state = WatchState {
        cluster: cluster.clone(),
        deadline: tokio::time::Instant::now() + req.timeout,
        revisions,
        last: 0,
        pending: VecDeque::new(),
        done: false,
        shutdown,
        sent_columns: false,
        matching: None,
        req,
    };
    let selective = state.req.labels.as_ref().is_some_and(|l| !l.is_empty())
        || state.req.fields.as_ref().is_some_and(|f| !f.is_empty());
    // The matching objects as the client sees them, and the list's
    // resourceVersion.
    let listed = |state: &WatchState| {
        let list = cluster.list_with(&state.req.res, &state.req.namespace, None, None);
        let items: Vec<Value> = list
            .items
            .iter()
            .map(|o| state.present(o))
            .filter(|o| state.matches(o))
            .collect();
        (items, list.resource_version)
    };
    match state.req.resource_version {
        Some(rv) if !state.req.send_initial_events => {
            state.last = rv;
            if selective {
                let (items, _) = listed(&state);
                state.matching = Some(items.iter().map(ident).collect());
            }
        }
        _ => {
            let (items, resource_version) = listed(&state);
            state.last = resource_version;
            if selective {
                state.matching = Some(items.iter().map(ident).collect());
            }
            for obj in items {
                let b = state.encode("ADDED", obj);
                state.pending.push_back(b);
            }
            if state.req.send_initial_events {
                let bookmark = json!({
                    "type": "BOOKMARK",
                    "object": {
                        "kind": state.req.served.kind,
                        "apiVersion": state.req.served.api_version,
                        "metadata": {
                            "resourceVersion": resource_version.to_string(),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                });
                state.pending.push_back(line(&bookmark));
            }
        }
    }
    let stream = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.pending.pop_front() {
                return Some((Ok::<Bytes, Infallible>(b), st));
            }
            if st.done {
                return None;
            }
            st.revisions.borrow_and_update();
            match st.cluster.events_since(st.last) {
                Err(expired) => {
                    let status = ApiError::new(410, "Expired", expired.to_string()).to_status();
                    st.pending
                        .push_back(line(&json!({"type": "ERROR", "object": status})));
                    st.done = true;
                    continue;
                }
                Ok(events) => {
                    for ev in events {
                        st.last = ev.revision;
                        if !ev.is_about(&st.req.res, &st.req.namespace) {
                            continue;
                        }
                        let obj = st.present(&ev.object);
                        if let Some(t) = st.translate(ev.event_type.as_str(), &obj) {
                            let b = st.encode(t, obj);
                            st.pending.push_back(b);
                        }
                    }
                    if !st.pending.is_empty() {
                        continue;
                    }
                }
            }
            tokio::select! {
                changed = st.revisions.changed() => {
                    if changed.is_err() {
                        st.done = true;
                    }
                }
                () = tokio::time::sleep_until(st.deadline) => st.done = true,
                () = st.shutdown.cancelled() => st.done = true,
            }
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}
