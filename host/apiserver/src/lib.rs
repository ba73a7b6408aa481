//! `stepbox dev-cluster`: the embedded namespace ([`MemoryCluster`]) served
//! as a Kubernetes API over HTTPS on localhost, so real clients (kubectl,
//! helm, kube-rs) work against it.
//!
//! # Shape
//!
//! [`DevCluster`] is the builder: the store to serve, the port (0 picks a
//! free one), the bearer token (random unless given) and the namespace
//! kubeconfigs point at. [`DevCluster::start`] generates a fresh CA and
//! certificates (`tls`), binds `127.0.0.1`, and serves until
//! [`RunningDevCluster::shutdown`] (or drop). There is no global state: a
//! process can run several, e.g. the host serving a run's embedded
//! namespace on loopback for the `helm` binary.
//!
//! A request goes: TLS (rustls, `ring`; HTTP/2 or HTTP/1.1) →
//! `auth` (bearer token or CA-signed client certificate) → `api`
//! routes → [`MemoryCluster`]'s [requests](stepbox_cluster::memory::requests)
//! → JSON, a server-side printed `table`, or a `watch` stream. Errors
//! are Kubernetes `status` bodies.
//!
//! What it serves:
//! - discovery (`discovery`): `/version`, `/api`, `/api/v1`, `/apis`,
//!   `/apis/<group>[/<version>]`, plus the OpenAPI v3 kubectl needs;
//! - get, list (label and field selectors), watch, create, update
//!   (resourceVersion conflicts → 409), patch (JSON, merge, strategic
//!   merge, server-side apply with field managers and conflicts), delete,
//!   deletecollection, `dryRun=All` on every write, the `scale`
//!   subresource;
//! - namespaces as objects: `default`, `kube-system`, `kube-public`, the
//!   configured namespace and those of seeded objects exist from the
//!   start; writing into any other namespace first needs
//!   `kubectl create namespace`.
//!
//! Workloads get a synthesized ready status (see [`MemoryCluster`]), so
//! `kubectl rollout status` and `kubectl wait` finish.
//!
//! Every request is logged (`requests`) and listed at
//! `/debug/stepbox/requests`. With the `faults` cargo feature, faults can be
//! injected (`faults`, `DevCluster::fault`): error statuses, delays,
//! dropped connections, cut watches, a server that goes away.
//!
//! # Example
//!
//! ```no_run
//! use stepbox_cluster::MemoryCluster;
//! use stepbox_apiserver::DevCluster;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = DevCluster::new(MemoryCluster::new()).namespace("demo").start().await?;
//! server.write_kubeconfig("kubeconfig.yaml".as_ref())?;
//! println!("kubectl --kubeconfig kubeconfig.yaml get ns  # {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod access;
mod api;
mod auth;
mod body;
mod discovery;
#[cfg(feature = "faults")]
pub mod faults;
mod protobuf;
mod query;
mod requests;
mod route;
mod status;
mod table;
mod tls;
mod watch;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use stepbox_cluster::MemoryCluster;

pub use auth::Auth;
#[cfg(feature = "faults")]
pub use faults::{Fault, FaultLayer, FaultSpecError};
pub use requests::{RequestLog, RequestRecord};
pub use tls::Certificates;

/// The namespaces every dev cluster has, as a fresh Kubernetes cluster
/// does.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The field manager recorded for the namespaces the server creates.
const MANAGER: &str = "stepbox-dev-cluster";

/// How long shutdown waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Errors starting a dev cluster.
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

/// Builder of a dev cluster (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DevCluster {
    cluster: MemoryCluster,
    port: u16,
    token: Option<String>,
    namespace: String,
    #[cfg(feature = "faults")]
    faults: Vec<Fault>,
}

impl DevCluster {
    /// Serves `cluster` (shared, not copied: writes through the server are
    /// visible to every clone, and the other way round). Defaults: a free
    /// port, a random token, namespace `default`.
    pub fn new(cluster: MemoryCluster) -> Self {
        Self {
            cluster,
            port: 0,
            token: None,
            namespace: "default".to_string(),
            #[cfg(feature = "faults")]
            faults: Vec::new(),
        }
    }

    /// Adds a fault to inject (see [`faults`] for the spec grammar, e.g.
    /// `"status=429:verb=get,times=2,retry-after=1".parse()?`). Faults are
    /// tried in the order added; none by default. (With the `faults`
    /// feature only.)
    #[cfg(feature = "faults")]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// The port to listen on; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The bearer token clients must present (default: random, 256 bits).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The namespace that kubeconfigs point at by default, created at
    /// start (default `default`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Creates the start namespaces, generates certificates, binds
    /// `127.0.0.1` and starts serving in the background (on the current
    /// tokio runtime).
    ///
    /// # Errors
    /// [`DevClusterError::Namespace`] for an invalid namespace,
    /// [`DevClusterError::Bind`] when the port cannot be bound,
    /// [`DevClusterError::Tls`] when certificates cannot be made.
    pub async fn start(self) -> Result<RunningDevCluster, DevClusterError> {
        let ns_error = |name: &str, reason: String| DevClusterError::Namespace {
            name: name.to_string(),
            reason,
        };
        stepbox_k8s::names::dns1123_label(&self.namespace)
            .map_err(|r| ns_error(&self.namespace, r))?;
        let mut namespaces: Vec<String> =
            SYSTEM_NAMESPACES.iter().map(|s| (*s).to_string()).collect();
        namespaces.push(self.namespace.clone());
        namespaces.extend(self.cluster.namespaces());
        for ns in &namespaces {
            self.cluster
                .ensure_namespace(ns, MANAGER)
                .map_err(|e| ns_error(ns, e.to_string()))?;
        }

        let certs = Certificates::generate()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(certs.server_config()?));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))
            .await
            .map_err(|source| DevClusterError::Bind {
                port: self.port,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DevClusterError::Bind {
                port: self.port,
                source,
            })?;
        let token = self.token.unwrap_or_else(random_token);
        let shutdown = CancellationToken::new();
        let state = api::AppState::new(
            self.cluster.clone(),
            token.clone(),
            addr.to_string(),
            shutdown.clone(),
        );
        let front = Front {
            log: Arc::new(RequestLog::default()),
            #[cfg(feature = "faults")]
            faults: Arc::new(FaultLayer::new(self.faults)),
        };
        let task = tokio::spawn(serve(
            listener,
            acceptor,
            router(state, front.clone()),
            front.clone(),
            shutdown.clone(),
        ));
        tracing::info!(%addr, "dev-cluster: serving");
        Ok(RunningDevCluster {
            addr,
            token,
            certs,
            namespace: self.namespace,
            cluster: self.cluster,
            front,
            shutdown,
            task: Some(task),
        })
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
struct Front {
    log: Arc<RequestLog>,
    #[cfg(feature = "faults")]
    faults: Arc<FaultLayer>,
}

impl Front {
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

/// The routes of one server.
fn router(state: api::AppState, front: Front) -> Router {
    Router::new()
        .route(
            "/debug/stepbox/requests",
            get(move || {
                let front = front.clone();
                async move { status::json_response(axum::http::StatusCode::OK, &front.report()) }
            }),
        )
        .route("/version", get(api::version))
        .route("/healthz", get(api::healthz))
        .route("/livez", get(api::healthz))
        .route("/readyz", get(api::healthz))
        .route("/api", get(api::core_versions))
        .route("/apis", get(api::group_list))
        .route("/openapi/v2", any(api::openapi_v2))
        .route("/openapi/v3", get(api::openapi_root))
        .route("/openapi/v3/{*path}", get(api::openapi_group_version))
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            axum::routing::post(access::self_subject_access_review),
        )
        .route("/api/{*rest}", any(api::resource))
        .route("/apis/{*rest}", any(api::resource))
        .fallback(api::fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .with_state(state)
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
pub struct RunningDevCluster {
    addr: SocketAddr,
    token: String,
    certs: Certificates,
    namespace: String,
    cluster: MemoryCluster,
    front: Front,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RunningDevCluster {
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

    /// The store being served.
    pub fn cluster(&self) -> &MemoryCluster {
        &self.cluster
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

impl Drop for RunningDevCluster {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_writes_a_kubeconfig_and_stops() {
        let cluster = MemoryCluster::new();
        let server = DevCluster::new(cluster.clone())
            .namespace("demo")
            .token("secret")
            .start()
            .await
            .unwrap();
        assert!(server.url().starts_with("https://127.0.0.1:"));
        assert_eq!(server.token(), "secret");
        for ns in ["default", "kube-system", "kube-public", "demo"] {
            assert!(cluster.namespace_exists(ns), "{ns}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        server.write_kubeconfig(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("token: secret"), "{text}");
        assert!(text.contains("namespace: demo"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let cert = server.kubeconfig_yaml_with("x", Auth::ClientCert);
        assert!(cert.contains("client-key-data"));
        // The port is taken while it runs.
        let err = DevCluster::new(MemoryCluster::new())
            .port(server.addr().port())
            .start()
            .await
            .unwrap_err();
        assert!(err.is_port_in_use(), "{err}");
        assert!(err.to_string().contains(&server.addr().port().to_string()));
        server.shutdown().await;
        assert!(matches!(
            DevCluster::new(MemoryCluster::new())
                .namespace("Bad")
                .start()
                .await,
            Err(DevClusterError::Namespace { .. })
        ));
    }
}
