//! Outbound HTTP: `wasi:http/outgoing-handler`, to the destinations the
//! run's policy allows and nowhere else.
//!
//! wasmtime's `wasmtime-wasi-http` implements the WASI interfaces (request
//! and response resources, streams, fields); this module is its
//! [`WasiHttpHooks`], the one place a request leaves the host:
//!
//! ```text
//! guest: outgoing-handler.handle(request)
//!   -> destination (scheme, host, port) against the policy's `outbound` list
//!        none matches: error "forbidden: ... the policy's outbound allow-list is [...]"
//!      and against the step's declared `outbound` needs, if it declares any
//!        none matches: error "forbidden: ... is not among the needs the step declares"
//!   -> the name resolved once; every address checked (loopback, link-local,
//!      metadata, the API server: only an entry naming that host exactly)
//!   -> connect to a checked address (no second lookup), TLS with the
//!      system's roots, HTTP/1.1; redirects are not followed (the guest sees 3xx)
//!   -> request and response bodies held to `limits.httpRequestBytes` and
//!      `httpResponseBytes`, the whole exchange to `limits.httpTimeout`
//!   -> one audit line: method, URL, status, bytes, headers (secrets masked)
//! ```
//!
//! A refused request is an error value the guest sees
//! (`error-code.internal-error` with a message starting `forbidden:` or
//! `limit-exceeded:`, which the SDKs turn into their `forbidden` and
//! `limit-exceeded` errors), never a trap, and an audit line with
//! decision `denied`.

mod display;
mod send;

use std::net::IpAddr;
use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpHooks, WasiHttpView};

use crate::needs::StepNeeds;
use crate::policy::{Limits, Outbound};
use crate::report::RunRecorder;

/// What the HTTP capability of one run may use: its allow-list, limits,
/// recorder and the cluster's API server (refused unless named).
#[derive(Clone)]
pub struct HttpRules {
    /// Allowed destinations.
    pub outbound: Outbound,
    /// Size and time limits of each request.
    pub limits: Limits,
    /// Audit and masking.
    pub recorder: RunRecorder,
    /// The URL of the cluster's API server (`https://10.96.0.1:443`), if
    /// the run has one: only an entry naming it reaches it.
    pub api_server: Option<String>,
    /// What the step declares it needs: a request must match its
    /// `outbound` list too (`None`: an undeclared step, the policy alone).
    pub needs: Option<Arc<StepNeeds>>,
}

impl std::fmt::Debug for HttpRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRules")
            .field("outbound", &self.outbound)
            .field("api_server", &self.api_server)
            .finish_non_exhaustive()
    }
}

/// The HTTP capability of one run: wasmtime's per-store context and the
/// hooks that send (or refuse) each request.
pub struct HttpCtx {
    pub(crate) wasi: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
}

impl HttpCtx {
    /// The capability of a run under `rules`.
    pub fn new(rules: HttpRules) -> Self {
        Self {
            wasi: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                rules: Arc::new(send::Sender::new(rules)),
            },
        }
    }
}

/// The [`WasiHttpHooks`] of a run: every request passes [`send::Sender`].
pub(crate) struct OutboundHooks {
    rules: Arc<send::Sender>,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let sender = self.rules.clone();
        Box::new(async move { sender.send(request, options).await })
    }
}

/// Adds `wasi:http/outgoing-handler` and `wasi:http/types` to `linker`.
pub(crate) fn add_to_linker<T: WasiHttpView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

/// The addresses `url`'s host resolves to (none when it cannot be
/// resolved: then nothing is refused for being the API server, and the
/// run cannot reach it by that address either way).
async fn resolve_url(url: &str) -> Vec<IpAddr> {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Vec::new();
    };
    let Some(host) = uri.host() else {
        return Vec::new();
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    let port = uri.port_u16().unwrap_or(443);
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        _ => Vec::new(),
    }
}
