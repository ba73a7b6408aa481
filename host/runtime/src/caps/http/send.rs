//! Sending one outbound request: the allow-list, the resolved addresses,
//! the connection (TCP, TLS, HTTP/1.1), the limits, and the audit line.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::{HttpRules, display};
use crate::policy::Outbound;
use crate::policy::outbound::{Destination, OutboundRule, SpecialAddress};
use crate::report::{Decision, Level, LogSource, RunRecorder};

/// The audit call name of every outbound request.
const CALL: &str = "http.request";

type HttpResult<T> = wasmtime_wasi_http::Result<T>;
type IoFuture = Box<dyn Future<Output = HttpResult<()>> + Send>;

/// A connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends a run's requests (shared by the requests of one run).
pub(super) struct Sender {
    rules: HttpRules,
    /// The API server's addresses, resolved at the first request.
    api_server: tokio::sync::OnceCell<Vec<IpAddr>>,
    /// The TLS client configuration, made at the first https request.
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

/// The guest-visible error for a refusal or a failure the host explains:
/// `internal-error` with the message, which starts with the WIT error
/// kind the SDKs map it to (`forbidden: ...`).
fn explained(kind: &str, message: &str) -> HttpError {
    HttpError::InternalError(Some(format!("{kind}: {message}")))
}

impl Sender {
    pub(super) fn new(rules: HttpRules) -> Self {
        Self {
            rules,
            api_server: tokio::sync::OnceCell::new(),
            tls: OnceLock::new(),
        }
    }

    fn recorder(&self) -> &RunRecorder {
        &self.rules.recorder
    }

    /// [`Self::fail`] with the error the guest sees spelled as WIT kind
    /// `kind` and `what: why`.
    fn refuse(&self, what: &str, decision: Decision, kind: &str, why: &str) -> HttpError {
        self.fail(
            what,
            decision,
            why,
            explained(kind, &format!("{what}: {why}")),
        )
    }

    /// Audits a request that never got an answer and returns `error`
    /// (messages masked: they go to the guest).
    fn fail(&self, what: &str, decision: Decision, why: &str, error: HttpError) -> HttpError {
        self.recorder().audit(CALL, what, decision, why);
        if decision == Decision::Denied {
            // Not every guest shows the error value: a JavaScript `fetch`
            // rejects with a bare "NetworkError". The run's log keeps why.
            let line = self
                .recorder()
                .mask(&format!("outbound request refused: {what}: {why}"));
            let _ = self.recorder().log(Level::Warn, LogSource::Host, &line);
        }
        match error {
            HttpError::InternalError(Some(m)) => {
                HttpError::InternalError(Some(self.recorder().mask(&m)))
            }
            other => other,
        }
    }

    /// Sends `request` if the policy allows it, within the limits.
    pub(super) async fn send(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> HttpResult<(http::Response<WasiBody>, IoFuture)> {
        let limits = self.rules.limits;
        let deadline = Instant::now() + limits.http_timeout;
        let uri = request.uri().clone();
        let what = format!("{} {}", request.method(), display::url(&uri));
        let headers = display::headers(request.headers());
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let to = Destination {
            https,
            host: &host,
            port,
        };
        let Some(rule) = self.rules.outbound.rule_for(&to).cloned() else {
            let why = format!("{to} is not allowed: {}", self.rules.outbound.describe());
            return Err(self.refuse(&what, Decision::Denied, "forbidden", &why));
        };
        if let Some(needs) = &self.rules.needs
            && let crate::policy::Decision::Deny(why) = needs.check_outbound(&to)
        {
            return Err(self.refuse(&what, Decision::Denied, "forbidden", &why));
        }
        if let Some(len) = content_length(request.headers())
            && len > limits.http_request_bytes
        {
            let why = format!(
                "the request body is {len} bytes, more than the run's limit limits.httpRequestBytes ({} bytes)",
                limits.http_request_bytes
            );
            return Err(self.refuse(&what, Decision::Denied, "limit-exceeded", &why));
        }

        let addrs = match self.resolve(&host, port, deadline).await {
            Ok(a) => a,
            Err(why) => {
                return Err(self.refuse(&what, Decision::Allowed, "unavailable", &why));
            }
        };
        if let Err(why) = self.check_addresses(&rule, &host, &addrs).await {
            return Err(self.refuse(&what, Decision::Denied, "forbidden", &why));
        }

        let opt = |f: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(f).map(|d| Instant::now() + d)
        };
        let connect_by = opt(|o| o.connect_timeout).map_or(deadline, |d| d.min(deadline));
        let stream = match self.connect(&addrs, https, &host, connect_by).await {
            Ok(s) => s,
            Err((why, error)) => return Err(self.fail(&what, Decision::Allowed, &why, error)),
        };
        let (mut sender, conn) = match tokio::time::timeout_at(
            connect_by,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                let why = format!("HTTP handshake failed: {e}");
                return Err(self.fail(&what, Decision::Allowed, &why, HttpError::from(e)));
            }
            Err(_) => {
                let why = "no HTTP handshake before the time limit".to_string();
                return Err(self.fail(
                    &what,
                    Decision::Allowed,
                    &why,
                    HttpError::ConnectionTimeout,
                ));
            }
        };
        // The connection is driven on its own until the exchange is over or
        // the request's time is up.
        tokio::spawn(async move {
            let _ = tokio::time::timeout_at(deadline, conn).await;
        });

        let sent = Arc::new(AtomicU64::new(0));
        let (mut parts, body) = request.into_parts();
        // HTTP/1.1 origin form; the Host header is already set.
        parts.uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("/"));
        let body = LimitedRequest {
            inner: body,
            sent: sent.clone(),
            limit: limits.http_request_bytes,
        };
        let request = http::Request::from_parts(parts, body);
        let first_byte_by = opt(|o| o.first_byte_timeout).map_or(deadline, |d| d.min(deadline));
        let response = match tokio::time::timeout_at(first_byte_by, sender.send_request(request))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let why = format!("{e}");
                let error = if sent.load(Ordering::Relaxed) > limits.http_request_bytes {
                    explained(
                        "limit-exceeded",
                        &format!(
                            "{what}: the request body is more than the run's limit limits.httpRequestBytes ({} bytes)",
                            limits.http_request_bytes
                        ),
                    )
                } else {
                    HttpError::from(e)
                };
                return Err(self.fail(&what, Decision::Allowed, &why, error));
            }
            Err(_) => {
                let waited = humantime::format_duration(round(limits.http_timeout));
                let why = format!("no answer within {waited} (limits.httpTimeout)");
                return Err(self.refuse(&what, Decision::Allowed, "timeout", &why));
            }
        };
        let status = response.status().as_u16();
        if let Some(len) = content_length(response.headers())
            && len > limits.http_response_bytes
        {
            let why = format!(
                "{status}: the response body is {len} bytes, more than the run's limit limits.httpResponseBytes ({} bytes)",
                limits.http_response_bytes
            );
            return Err(self.refuse(&what, Decision::Allowed, "limit-exceeded", &why));
        }
        let exchange = Exchange {
            recorder: self.rules.recorder.clone(),
            what,
            headers,
            status,
            sent,
            received: 0,
            limit: limits.http_response_bytes,
            timeout: limits.http_timeout,
            ending: None,
        };
        let response = response.map(|incoming| {
            ResponseBody {
                incoming,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                exchange,
            }
            .boxed_unsync()
        });
        Ok((response, Box::new(async { Ok(()) })))
    }

    /// The addresses `host` resolves to (it, when it is an address).
    async fn resolve(
        &self,
        host: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(format!("{host} resolves to no address"))
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
            Err(_) => Err(format!("resolving {host} took longer than the time limit")),
        }
    }

    /// Refuses addresses only an entry naming them reaches (see
    /// [`Outbound::special_address`]): every address the name resolves
    /// to is checked, so a name that resolves to a public address and to
    /// 127.0.0.1 is refused whichever would be used.
    async fn check_addresses(
        &self,
        rule: &OutboundRule,
        host: &str,
        addrs: &[SocketAddr],
    ) -> Result<(), String> {
        let api_server = self
            .api_server
            .get_or_init(|| async {
                match &self.rules.api_server {
                    Some(url) => super::resolve_url(url).await,
                    None => Vec::new(),
                }
            })
            .await;
        let api_host = self
            .rules
            .api_server
            .as_deref()
            .and_then(|u| u.parse::<http::Uri>().ok())
            .and_then(|u| {
                u.host()
                    .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            });
        for addr in addrs {
            let ip = addr.ip();
            let Some(kind) = Outbound::special_address(ip, api_server) else {
                continue;
            };
            let named = rule.is_literal()
                && match kind {
                    SpecialAddress::ApiServer => {
                        host.parse::<IpAddr>().is_ok_and(|h| h == ip)
                            || api_host.as_deref() == Some(host)
                    }
                    SpecialAddress::Loopback => {
                        host.parse::<IpAddr>().is_ok_and(|h| h == ip) || host == "localhost"
                    }
                    _ => host.parse::<IpAddr>().is_ok_and(|h| h == ip),
                };
            if !named {
                let example = if kind == SpecialAddress::ApiServer {
                    "its exact address or name"
                } else {
                    "the address itself"
                };
                return Err(format!(
                    "{host} resolves to {ip}, {kind}, which is reached only through an outbound entry naming {example} \
                     (entry {:?} does not)",
                    rule.text
                ));
            }
        }
        Ok(())
    }

    /// Connects to the first address that answers, with TLS for https.
    async fn connect(
        &self,
        addrs: &[SocketAddr],
        https: bool,
        host: &str,
        by: Instant,
    ) -> Result<Box<dyn Stream>, (String, HttpError)> {
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match tokio::time::timeout_at(by, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => last = Some(format!("cannot connect to {addr}: {e}")),
                Err(_) => {
                    return Err((
                        format!("connecting to {addr} took longer than the time limit"),
                        HttpError::ConnectionTimeout,
                    ));
                }
            }
        }
        let Some(tcp) = tcp else {
            let why = last.unwrap_or_else(|| "no address to connect to".into());
            return Err((why, HttpError::ConnectionRefused));
        };
        if !https {
            return Ok(Box::new(tcp));
        }
        let config = self
            .tls
            .get_or_init(tls_config)
            .clone()
            .map_err(|e| (e.clone(), explained("unavailable", &e)))?;
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                let why = format!("{host} is not a valid TLS server name: {e}");
                (why.clone(), explained("invalid", &why))
            })?,
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        match tokio::time::timeout_at(by, connector.connect(name, tcp)).await {
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(e)) => Err((format!("TLS with {host} failed: {e}"), HttpError::Tls(e))),
            Err(_) => Err((
                format!("TLS with {host} took longer than the time limit"),
                HttpError::ConnectionTimeout,
            )),
        }
    }
}

/// TLS as the host's own tools do it: the system's trusted roots, ring.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(
            "the host has no trusted TLS root certificates (install ca-certificates)".into(),
        );
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Whole seconds for messages (sub-second limits as they are).
fn round(d: Duration) -> Duration {
    if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_secs())
    } else {
        d
    }
}

/// The guest's request body, counted and cut at the limit.
struct LimitedRequest {
    inner: WasiBody,
    sent: Arc<AtomicU64>,
    limit: u64,
}

impl Body for LimitedRequest {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                let total = this.sent.fetch_add(n, Ordering::Relaxed) + n;
                if total > this.limit {
                    return Poll::Ready(Some(Err(HttpError::HttpRequestBodySize(Some(
                        this.limit,
                    )))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// What the audit line of an answered request says; written when the
/// response body is finished or dropped.
struct Exchange {
    recorder: RunRecorder,
    what: String,
    headers: String,
    status: u16,
    sent: Arc<AtomicU64>,
    received: u64,
    limit: u64,
    timeout: Duration,
    /// How the body ended, when not at its end.
    ending: Option<String>,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let mut reason = format!(
            "{}, {} bytes received, {} bytes sent",
            self.status,
            self.received,
            self.sent.load(Ordering::Relaxed)
        );
        if let Some(ending) = &self.ending {
            reason.push_str(&format!(" ({ending})"));
        }
        if !self.headers.is_empty() {
            reason.push_str(&format!("; headers: {}", self.headers));
        }
        self.recorder
            .audit(CALL, &self.what, Decision::Allowed, &reason);
    }
}

/// The response body the guest reads: counted, cut at the size limit and
/// at the request's time limit.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    exchange: Exchange,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.exchange.ending.is_some() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.exchange.ending = Some(format!(
                "cut: the body did not end within {} (limits.httpTimeout)",
                humantime::format_duration(round(this.exchange.timeout))
            ));
            return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
        }
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                this.exchange.received += n;
                if this.exchange.received > this.exchange.limit {
                    this.exchange.ending = Some(format!(
                        "cut: more than the run's limit limits.httpResponseBytes ({} bytes)",
                        this.exchange.limit
                    ));
                    return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                        this.exchange.limit,
                    )))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.exchange.ending = Some(format!("failed: {e}"));
                Poll::Ready(Some(Err(HttpError::from(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.exchange.ending.is_some() || self.incoming.is_end_stream()
    }
}
