//! The HTTPS server every API front end of this crate runs on: a fresh CA
//! and certificates, `127.0.0.1`, bearer-token (or client-certificate)
//! authentication, the request log (and faults, with the `faults`
//! feature), graceful shutdown, and kubeconfigs that point at it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Auth, Authenticator, Identity};
#[cfg(feature = "faults")]
use crate::faults::{Fault, FaultLayer};
use crate::requests::{self, RequestLog, RequestRecord};
use crate::tls::Certificates;
use crate::tokens::ServiceAccountTokens;

/// How long shutdown waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Errors starting a server (a dev cluster or a gateway).
#[derive(Debug, thiserror::Error)]
pub enum DevClusterError {
    /// The port could not be bound (in use, or not allowed).
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificates could not be made or loaded.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The namespace is not a valid namespace name.
    #[error("invalid namespace {name:?}: {reason}")]
    Namespace {
        /// The namespace.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
}

impl DevClusterError {
    /// True when the port is already in use.
    pub fn is_port_in_use(&self) -> bool {
        matches!(self, Self::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
    }
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What every request passes before the router: the request log, and the
/// faults when they are compiled in.
#[derive(Clone, Debug)]
pub(crate) struct Front {
    log: Arc<RequestLog>,
    #[cfg(feature = "faults")]
    faults: Arc<FaultLayer>,
}

impl Front {
    /// A request log, and these faults.
    pub(crate) fn new(#[cfg(feature = "faults")] faults: Vec<Fault>) -> Self {
        Self {
            log: Arc::new(RequestLog::default()),
            #[cfg(feature = "faults")]
            faults: Arc::new(FaultLayer::new(faults)),
        }
    }

    async fn serve(
        self,
        req: hyper::Request<hyper::body::Incoming>,
        router: Router,
    ) -> Result<axum::response::Response, requests::Dropped> {
        #[cfg(feature = "faults")]
        return self.faults.serve(self.log, req, router).await;
        #[cfg(not(feature = "faults"))]
        return Ok(self.log.serve(req, router).await);
    }

    /// The JSON served at `/debug/stepbox/requests`.
    fn report(&self) -> serde_json::Value {
        #[cfg(feature = "faults")]
        let faults: Vec<serde_json::Value> = self
            .faults
            .fired()
            .into_iter()
            .map(|(spec, fired)| json!({"spec": spec, "fired": fired}))
            .collect();
        #[cfg(not(feature = "faults"))]
        let faults: Vec<serde_json::Value> = Vec::new();
        json!({"faults": faults, "requests": self.log.requests()})
    }
}

/// `routes` behind what every server of this crate has: the request log
/// at `/debug/stepbox/requests` (for the administrator), authentication,
/// and the body limit.
fn wrap(routes: Router, authn: Arc<Authenticator>, front: Front) -> Router {
    Router::new()
        .route(
            "/debug/stepbox/requests",
            get(move |identity: Option<axum::Extension<Identity>>| {
                let front = front.clone();
                async move {
                    if !matches!(identity, Some(axum::Extension(Identity::Admin))) {
                        return crate::status::ApiError::new(
                            403,
                            "Forbidden",
                            "forbidden: the request log is for the dev cluster's administrator (its token or client certificate)",
                        )
                        .into_response();
                    }
                    crate::status::json_response(axum::http::StatusCode::OK, &front.report())
                }
            }),
        )
        .merge(routes)
        .layer(axum::middleware::from_fn_with_state(
            authn,
            crate::auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(crate::api::MAX_BODY_BYTES))
}

/// Accepts connections until `shutdown`, then lets open ones finish (at
/// most [`SHUTDOWN_GRACE`]).
async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    front: Front,
    shutdown: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("dev-cluster: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let front = front.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "dev-cluster: TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    if client_cert {
                        req.extensions_mut().insert(auth::ClientCertificate);
                    }
                    let router = router.clone();
                    let front = front.clone();
                    async move { front.serve(req, router).await }
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, "dev-cluster: connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("dev-cluster: connections still open after the grace period");
    }
}

/// A serving dev cluster. Dropping it stops serving (without waiting);
/// [`shutdown`](Self::shutdown) stops and waits.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    token: String,
    certs: Certificates,
    namespace: String,
    front: Front,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Generates certificates, binds `127.0.0.1:port` (0: a free port) and
    /// serves the routes `routes` makes (given the address and the shutdown
    /// signal) behind authentication by `token` (random unless given) and
    /// the `service_accounts` tokens, if any, on the current tokio runtime.
    ///
    /// # Errors
    /// [`DevClusterError::Bind`] when the port cannot be bound,
    /// [`DevClusterError::Tls`] when certificates cannot be made.
    pub(crate) async fn start(
        port: u16,
        token: Option<String>,
        namespace: String,
        front: Front,
        service_accounts: Option<Arc<ServiceAccountTokens>>,
        routes: impl FnOnce(&SocketAddr, &CancellationToken) -> Router,
    ) -> Result<Self, DevClusterError> {
        let certs = Certificates::generate()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(certs.server_config()?));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|source| DevClusterError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DevClusterError::Bind { port, source })?;
        let token = token.unwrap_or_else(random_token);
        let shutdown = CancellationToken::new();
        let authn = Arc::new(Authenticator {
            token: token.clone(),
            service_accounts,
        });
        let router = wrap(routes(&addr, &shutdown), authn, front.clone());
        let task = tokio::spawn(serve(
            listener,
            acceptor,
            router,
            front.clone(),
            shutdown.clone(),
        ));
        Ok(Self {
            addr,
            token,
            certs,
            namespace,
            front,
            shutdown,
            task: Some(task),
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.certs.ca_pem
    }

    /// The certificates (CA, client certificate and key).
    pub fn certificates(&self) -> &Certificates {
        &self.certs
    }

    /// The namespace kubeconfigs point at by default.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The requests received so far and the faults that met them (also
    /// served at `/debug/stepbox/requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.front.log.requests()
    }

    /// The fault layer: what fired how often.
    #[cfg(feature = "faults")]
    pub fn faults(&self) -> &FaultLayer {
        &self.front.faults
    }

    /// A kubeconfig for this server with token authentication, its context
    /// set to `namespace`.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        self.kubeconfig_yaml_with(namespace, Auth::Token)
    }

    /// A kubeconfig for this server authenticating by `auth`, its context
    /// set to `namespace`. Cluster, user and context are named
    /// `stepbox-dev`.
    pub fn kubeconfig_yaml_with(&self, namespace: &str, auth: Auth) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let user = match auth {
            Auth::Token => json!({"token": self.token}),
            Auth::ClientCert => json!({
                "client-certificate-data": b64(&self.certs.client_cert_pem),
                "client-key-data": b64(&self.certs.client_key_pem),
            }),
        };
        self.kubeconfig_yaml_for(namespace, user)
    }

    /// A kubeconfig for this server presenting `token` (e.g. a service
    /// account's, from `kubectl create token` or kube-rs'
    /// `Api::<ServiceAccount>::create_token_request` against a dev
    /// cluster), its context set to `namespace`.
    pub fn kubeconfig_yaml_with_token(&self, namespace: &str, token: &str) -> String {
        self.kubeconfig_yaml_for(namespace, json!({"token": token}))
    }

    fn kubeconfig_yaml_for(&self, namespace: &str, user: serde_json::Value) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stepbox-dev", "cluster": {
                "server": self.url(),
                "certificate-authority-data": b64(&self.certs.ca_pem),
            }}],
            "users": [{"name": "stepbox-dev", "user": user}],
            "contexts": [{"name": "stepbox-dev", "context": {
                "cluster": "stepbox-dev",
                "user": "stepbox-dev",
                "namespace": namespace,
            }}],
            "current-context": "stepbox-dev",
            "preferences": {},
        });
        serde_yaml_ng::to_string(&config).unwrap_or_default()
    }

    /// Writes [`kubeconfig_yaml`](Self::kubeconfig_yaml) for the default
    /// namespace to `path`, readable by the owner only (0600 on Unix). The
    /// file appears whole (written aside, then renamed), so a watcher never
    /// reads half of it.
    ///
    /// # Errors
    /// Any I/O error writing or renaming the file.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        write_private(path, &self.kubeconfig_yaml(&self.namespace))
    }

    /// Stops accepting connections, ends watches and waits (a few seconds
    /// at most) for open connections to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
