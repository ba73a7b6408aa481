//! Where the gateway sends what it admits: the embedded namespace, served
//! in-process by this crate's API (no socket, no token), or a real API
//! server through `kube::Client`, which holds the run's credentials (token,
//! client certificate, exec plugin) so the tool behind the gateway never
//! sees them.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, Uri, header};
use axum::response::{IntoResponse, Response};
use stepbox_cluster::MemoryCluster;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::status::ApiError;

/// The cluster behind a gateway.
#[derive(Clone)]
pub enum Upstream {
    /// The embedded namespace.
    Memory(MemoryCluster),
    /// A real API server, through a client holding the run's credentials.
    Live(kube::Client),
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("Memory"),
            Self::Live(_) => f.write_str("Live"),
        }
    }
}

/// An upstream ready to take requests.
pub(super) enum Connected {
    /// The API routes over the embedded namespace.
    Memory(axum::Router),
    /// The client.
    Live(kube::Client),
}

/// The request headers passed on: what says what the body is and what the
/// client accepts. (Never `Authorization`: the upstream has its own.)
const PASSED_HEADERS: [HeaderName; 3] = [header::ACCEPT, header::CONTENT_TYPE, header::USER_AGENT];

impl Upstream {
    /// Ready to serve the gateway at `addr` until `shutdown`.
    pub(super) fn connect(self, addr: &SocketAddr, shutdown: &CancellationToken) -> Connected {
        match self {
            Self::Memory(cluster) => Connected::Memory(crate::api::router(
                crate::api::AppState::new(cluster, addr.to_string(), shutdown.clone()),
            )),
            Self::Live(client) => Connected::Live(client),
        }
    }
}

impl Connected {
    /// Sends `req` on and returns the answer (a 503 Status when the
    /// cluster cannot be reached).
    pub(super) async fn send(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut out = http::Request::builder()
            .method(parts.method.clone())
            .uri(&path);
        for name in &PASSED_HEADERS {
            if let Some(v) = parts.headers.get(name) {
                out = out.header(name, v);
            }
        }
        match self {
            Self::Memory(router) => {
                let req = match out.body(body) {
                    Ok(r) => r,
                    Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
                };
                match router.clone().oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }
            Self::Live(client) => {
                let bytes = match axum::body::to_bytes(body, crate::api::MAX_BODY_BYTES).await {
                    Ok(b) => b,
                    Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
                };
                let req = match out.body(kube::client::Body::from(bytes.to_vec())) {
                    Ok(r) => r,
                    Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
                };
                match client.send(req).await {
                    Ok(r) => r.map(Body::new),
                    Err(e) => ApiError::new(
                        503,
                        "ServiceUnavailable",
                        format!("the gateway could not reach the cluster: {e}"),
                    )
                    .into_response(),
                }
            }
        }
    }
}

/// Adds `dryRun=All` to a request's query.
pub(super) fn add_dry_run(uri: &mut Uri) {
    let path = uri.path();
    let query = match uri.query() {
        Some(q) if !q.is_empty() => format!("{q}&dryRun=All"),
        _ => "dryRun=All".to_string(),
    };
    if let Ok(new) = format!("{path}?{query}").parse() {
        *uri = new;
    }
}
