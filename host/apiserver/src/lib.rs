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
//! [`RunningServer::shutdown`] (or drop). There is no global state: a
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
mod authz;
mod body;
mod discovery;
#[cfg(feature = "faults")]
pub mod faults;
pub mod gateway;
mod protobuf;
mod query;
mod requests;
mod route;
mod server;
mod status;
mod table;
mod tls;
mod tokens;
mod view;
mod watch;

use std::sync::Arc;

use stepbox_cluster::MemoryCluster;

pub use auth::Auth;
#[cfg(feature = "faults")]
pub use faults::{Fault, FaultLayer, FaultSpecError};
pub use gateway::{Admit, Gateway, Upstream};
pub use requests::{RequestLog, RequestRecord};
pub use server::{DevClusterError, RunningServer};
pub use tls::Certificates;

use server::Front;

/// The namespaces every dev cluster has, as a fresh Kubernetes cluster
/// does.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The field manager recorded for the namespaces the server creates.
const MANAGER: &str = "stepbox-dev-cluster";

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
    pub async fn start(self) -> Result<RunningServer, DevClusterError> {
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

        let cluster = self.cluster.clone();
        let front = Front::new(
            #[cfg(feature = "faults")]
            self.faults,
        );
        let tokens = Arc::new(tokens::ServiceAccountTokens::new(cluster.clone()));
        let server = RunningServer::start(
            self.port,
            self.token,
            self.namespace,
            front,
            Some(tokens.clone()),
            move |addr, shutdown| {
                let state = api::AppState::with_tokens(
                    cluster.clone(),
                    addr.to_string(),
                    shutdown.clone(),
                    tokens,
                );
                api::router(state).layer(axum::middleware::from_fn_with_state(
                    cluster,
                    authz::authorize,
                ))
            },
        )
        .await?;
        tracing::info!(addr = %server.addr(), "dev-cluster: serving");
        Ok(server)
    }
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
