//! The live backend: a real Kubernetes API server through `kube::Client`.
//!
//! - Credentials come from a kubeconfig (token, client certificate, basic
//!   auth, exec plugins, custom CA, skip-TLS; `--kubeconfig`, `--context`)
//!   or from an in-cluster service account (token file re-read as it
//!   rotates, CA, namespace file); see [`LiveConfig`].
//! - Kinds are resolved by discovery, so anything the server serves works,
//!   CRDs included; the policy then applies on group/resource/verb.
//! - Writes are server-side applies as field manager `stepbox`, and with
//!   [`LiveCluster::dry_run`] every write carries `dryRun=All`: the plan is
//!   built from the server's answers and nothing is persisted.
//! - Reads (get, list, discovery) are retried with backoff on 429, 5xx and
//!   connection failures. Writes are never repeated blindly: a write whose
//!   outcome is unknown fails with a message saying so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Client, Config};
use serde_json::Value;

use super::resources::split_api_version;
use super::selector::LabelSelector;
use super::{Change, ClusterBackend, ClusterError, ResourceInfo, Result};

/// The standard mount of a pod's service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How many times a read is tried before it fails.
const READ_ATTEMPTS: u32 = 4;
/// First backoff between read attempts (doubles each time).
const READ_BACKOFF: Duration = Duration::from_millis(200);

/// Where the credentials of a live run come from.
#[derive(Debug, Clone, Default)]
pub enum LiveConfig {
    /// `$KUBECONFIG` / `~/.kube/config`, else in-cluster (kube's inference).
    #[default]
    Infer,
    /// A kubeconfig file, optionally with a context.
    Kubeconfig {
        /// The file; `None` means `$KUBECONFIG` / `~/.kube/config`.
        path: Option<PathBuf>,
        /// The context; `None` means the current context.
        context: Option<String>,
    },
    /// A pod's service account: token, CA and namespace files in `dir`
    /// (normally [`SERVICE_ACCOUNT_DIR`]), the API server from
    /// `KUBERNETES_SERVICE_HOST` / `KUBERNETES_SERVICE_PORT`.
    InCluster {
        /// The service account directory.
        dir: PathBuf,
    },
}

/// Errors building a client. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file (or "default" for $KUBECONFIG / ~/.kube/config).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// In-cluster credentials are missing or unreadable.
    #[error("in-cluster credentials: {0}")]
    InCluster(String),
    /// The client could not be built (TLS settings, proxy, ...).
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
}

impl LiveConfig {
    /// Resolves the configuration into a kube `Config`.
    pub async fn load(&self) -> std::result::Result<Config, ConnectError> {
        let mut config = match self {
            LiveConfig::Infer => Config::infer()
                .await
                .map_err(|e| ConnectError::Kubeconfig {
                    path: "default".into(),
                    reason: format!("{e} (pass --kubeconfig FILE, or --in-cluster inside a pod)"),
                })?,
            LiveConfig::Kubeconfig { path, context } => {
                let options = KubeConfigOptions {
                    context: context.clone(),
                    ..Default::default()
                };
                match path {
                    Some(p) => {
                        let kc =
                            Kubeconfig::read_from(p).map_err(|e| ConnectError::Kubeconfig {
                                path: p.display().to_string(),
                                reason: format!("{e}"),
                            })?;
                        Config::from_custom_kubeconfig(kc, &options)
                            .await
                            .map_err(|e| ConnectError::Kubeconfig {
                                path: p.display().to_string(),
                                reason: kubeconfig_hint(&e.to_string()),
                            })?
                    }
                    None => Config::from_kubeconfig(&options).await.map_err(|e| {
                        ConnectError::Kubeconfig {
                            path: "default ($KUBECONFIG or ~/.kube/config)".into(),
                            reason: kubeconfig_hint(&e.to_string()),
                        }
                    })?,
                }
            }
            LiveConfig::InCluster { dir } => in_cluster(dir)?,
        };
        // Retries are ours: reads only (kube's layer would also repeat writes).
        config.default_retry = false;
        config
            .connect_timeout
            .get_or_insert(Duration::from_secs(10));
        Ok(config)
    }
}

fn kubeconfig_hint(reason: &str) -> String {
    if reason.contains("context") {
        format!("{reason} (list contexts with `kubectl config get-contexts`)")
    } else {
        reason.to_string()
    }
}

/// Builds an in-cluster config from a service account directory, the way
/// client-go does, but with the directory as a parameter so it can be
/// pointed elsewhere (tests, sidecars).
fn in_cluster(dir: &Path) -> std::result::Result<Config, ConnectError> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
        ConnectError::InCluster(
            "KUBERNETES_SERVICE_HOST is not set: --in-cluster only works inside a pod".into(),
        )
    })?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    let url: http::Uri = format!("https://{host}:{port}")
        .parse()
        .map_err(|e| ConnectError::InCluster(format!("bad KUBERNETES_SERVICE_HOST/PORT: {e}")))?;
    let token_file = dir.join("token");
    let ca_file = dir.join("ca.crt");
    let ns_file = dir.join("namespace");
    let read = |p: &Path| {
        std::fs::read(p)
            .map_err(|e| ConnectError::InCluster(format!("cannot read {}: {e}", p.display())))
    };
    read(&token_file)?;
    let ca = pem_certs(&read(&ca_file)?)
        .map_err(|e| ConnectError::InCluster(format!("{}: {e}", ca_file.display())))?;
    let namespace = std::fs::read_to_string(&ns_file)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "default".into());
    let mut config = Config::new(url);
    config.default_namespace = namespace;
    config.root_cert = Some(ca);
    config.root_cert_file = Some(ca_file);
    // kube re-reads a token file periodically, so rotated tokens are used.
    config.auth_info.token_file = Some(token_file.display().to_string());
    Ok(config)
}

/// DER certificates from PEM text.
fn pem_certs(pem: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).map_err(|_| "the CA file is not PEM text".to_string())?;
    let mut certs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b64 = current.take().ok_or("END without BEGIN")?;
            certs.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| e.to_string())?,
            );
        } else if let Some(c) = current.as_mut() {
            c.push_str(line);
        }
    }
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// A real cluster behind [`ClusterBackend`].
pub struct LiveCluster {
    client: Client,
    server: String,
    default_namespace: String,
    dry_run: bool,
    kinds: Mutex<HashMap<(String, String), (ResourceInfo, ApiResource)>>,
}

impl std::fmt::Debug for LiveCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCluster")
            .field("server", &self.server)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

impl LiveCluster {
    /// Connects (lazily: no request is made until the first call).
    pub async fn connect(
        config: &LiveConfig,
        dry_run: bool,
    ) -> std::result::Result<Self, ConnectError> {
        let config = config.load().await?;
        Self::from_config(config, dry_run)
    }

    /// A backend over an already resolved kube `Config`.
    pub fn from_config(config: Config, dry_run: bool) -> std::result::Result<Self, ConnectError> {
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let default_namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| ConnectError::Client(e.to_string()))?;
        Ok(Self {
            client,
            server,
            default_namespace,
            dry_run,
            kinds: Mutex::default(),
        })
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The namespace of the kubeconfig context, or of the pod.
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api(&self, ar: &ApiResource, namespaced: bool, namespace: &str) -> Api<DynamicObject> {
        if namespaced {
            Api::namespaced_with(self.client.clone(), namespace, ar)
        } else {
            Api::all_with(self.client.clone(), ar)
        }
    }

    fn cached(&self, res: &ResourceInfo) -> ApiResource {
        let key = (res.api_version.clone(), res.kind.clone());
        if let Some((_, ar)) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return ar.clone();
        }
        ApiResource {
            group: res.group.clone(),
            version: res.version.clone(),
            api_version: res.api_version.clone(),
            kind: res.kind.clone(),
            plural: res.plural.clone(),
        }
    }

    /// Runs a read, retrying on 429, 5xx and connection failures.
    async fn read<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
    {
        let mut delay = READ_BACKOFF;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < READ_ATTEMPTS && retryable(&e) => {
                    tracing::debug!(attempt, "retrying {what} after {e}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    let mut err = map_error(e, &self.server, what);
                    if attempt > 1 {
                        err = with_suffix(err, &format!(" (after {attempt} attempts)"));
                    }
                    return Err(err);
                }
            }
        }
    }

    /// A write: never retried.
    fn write_error(&self, e: kube::Error, what: &str) -> ClusterError {
        let unknown_outcome = matches!(&e, kube::Error::Api(s) if s.code >= 500)
            || !matches!(&e, kube::Error::Api(_));
        let err = map_error(e, &self.server, what);
        if unknown_outcome {
            with_suffix(
                err,
                "; the write was not repeated because it may have been applied: check the object and re-run the step",
            )
        } else {
            err
        }
    }
}

fn with_suffix(e: ClusterError, suffix: &str) -> ClusterError {
    use ClusterError as C;
    match e {
        C::NotFound(m) => C::NotFound(m + suffix),
        C::AlreadyExists(m) => C::AlreadyExists(m + suffix),
        C::Conflict(m) => C::Conflict(m + suffix),
        C::Invalid(m) => C::Invalid(m + suffix),
        C::Forbidden(m) => C::Forbidden(m + suffix),
        C::Unavailable(m) => C::Unavailable(m + suffix),
        C::Timeout(m) => C::Timeout(m + suffix),
    }
}

fn retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Maps a kube error to a [`ClusterError`] with the server's message and
/// what to do about it.
pub fn map_error(e: kube::Error, server: &str, what: &str) -> ClusterError {
    match e {
        kube::Error::Api(s) => {
            let msg = format!("{what}: {} ({} {})", s.message, s.code, s.reason);
            match s.code {
                401 => ClusterError::Unavailable(format!(
                    "{what}: the API server at {server} rejected the credentials (401 Unauthorized: {}); the token may have expired: refresh the kubeconfig",
                    s.message
                )),
                403 => ClusterError::Forbidden(format!(
                    "{msg}; the credentials lack this right in Kubernetes RBAC (see `stepbox check`)"
                )),
                404 => ClusterError::NotFound(msg),
                409 if s.reason == "AlreadyExists" => ClusterError::AlreadyExists(msg),
                409 => ClusterError::Conflict(msg),
                400 | 422 => ClusterError::Invalid(msg),
                429 => ClusterError::Unavailable(format!(
                    "{msg}: the API server is throttling requests"
                )),
                504 => ClusterError::Timeout(msg),
                _ => ClusterError::Unavailable(msg),
            }
        }
        other => {
            let text = format!("{other}");
            let chain = error_chain(&other);
            let hint = if chain.contains("certificate")
                || chain.contains("UnknownIssuer")
                || chain.contains("tls")
            {
                "the server's TLS certificate was not accepted: check certificate-authority(-data) in the kubeconfig"
            } else if chain.contains("Connection refused") || chain.contains("ConnectionRefused") {
                "connection refused: is the API server running and the address right?"
            } else if chain.contains("dns error") || chain.contains("failed to lookup") {
                "the API server's host name does not resolve"
            } else if chain.contains("timed out") || chain.contains("Timeout") {
                "the API server did not answer in time"
            } else {
                "the API server could not be reached"
            };
            let detail = if chain.is_empty() || text.contains(&chain) {
                text
            } else {
                format!("{text}: {chain}")
            };
            ClusterError::Unavailable(format!("{what}: {hint} ({server}): {detail}"))
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn to_value(obj: DynamicObject) -> Result<Value> {
    serde_json::to_value(obj).map_err(|e| {
        ClusterError::Invalid(format!("the server sent an object that is not JSON: {e}"))
    })
}

#[async_trait::async_trait]
impl ClusterBackend for LiveCluster {
    fn name(&self) -> &str {
        "live"
    }

    fn dry_run(&self) -> bool {
        self.dry_run
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ResourceInfo> {
        if kind.is_empty() || api_version.is_empty() {
            return Err(ClusterError::Invalid(
                "an object needs apiVersion and kind".into(),
            ));
        }
        let key = (api_version.to_string(), kind.to_string());
        if let Some((info, _)) = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(info.clone());
        }
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let what = format!("discovery of {kind} in {api_version}");
        let (ar, caps): (ApiResource, ApiCapabilities) = match self
            .read(&what, || kube::discovery::pinned_kind(&self.client, &gvk))
            .await
        {
            Ok(found) => found,
            Err(ClusterError::NotFound(_)) => {
                return Err(ClusterError::NotFound(format!(
                    "the server at {} does not serve kind {kind} in {api_version} (is its CRD installed?)",
                    self.server
                )));
            }
            Err(e) => return Err(e),
        };
        let info = ResourceInfo {
            api_version: ar.api_version.clone(),
            group: ar.group.clone(),
            version: ar.version.clone(),
            kind: ar.kind.clone(),
            plural: ar.plural.clone(),
            namespaced: caps.scope == Scope::Namespaced,
        };
        self.kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (info.clone(), ar));
        Ok(info)
    }

    async fn get(&self, res: &ResourceInfo, namespace: &str, name: &str) -> Result<Option<Value>> {
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let what = format!("get {} {name}", res.kind);
        match self.read(&what, || api.get_opt(name)).await? {
            Some(o) => Ok(Some(to_value(o)?)),
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Value>> {
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let mut params = ListParams::default();
        if let Some(s) = selector.filter(|s| !s.is_empty()) {
            params = params.labels(&s.to_string());
        }
        let what = format!("list {}", res.plural);
        let list = self.read(&what, || api.list(&params)).await?;
        let mut items = list
            .items
            .into_iter()
            .map(to_value)
            .collect::<Result<Vec<_>>>()?;
        items.sort_by(|a, b| {
            let n = |v: &Value| {
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            n(a).cmp(&n(b))
        });
        Ok(items)
    }

    async fn apply(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        object: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Change> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let before = self.get(res, namespace, &name).await?;
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let mut params = PatchParams::apply(field_manager);
        params.force = force;
        params.dry_run = self.dry_run;
        let after = api
            .patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| self.write_error(e, &format!("apply {} {name}", res.kind)))?;
        Ok(Change {
            before,
            after: to_value(after)?,
        })
    }

    async fn merge_patch(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Change> {
        let before = self.get(res, namespace, name).await?;
        if before.is_none() {
            return Err(ClusterError::NotFound(format!(
                "{} {name:?} not found in namespace {namespace:?}",
                res.kind
            )));
        }
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let params = PatchParams {
            dry_run: self.dry_run,
            field_manager: Some("stepbox".into()),
            ..Default::default()
        };
        let after = api
            .patch(name, &params, &Patch::Merge(patch))
            .await
            .map_err(|e| self.write_error(e, &format!("patch {} {name}", res.kind)))?;
        Ok(Change {
            before,
            after: to_value(after)?,
        })
    }

    async fn delete(
        &self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let Some(before) = self.get(res, namespace, name).await? else {
            return Ok(None);
        };
        let api = self.api(&self.cached(res), res.namespaced, namespace);
        let params = DeleteParams {
            dry_run: self.dry_run,
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(Some(before)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(self.write_error(e, &format!("delete {} {name}", res.kind))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certs(pem).unwrap(), vec![vec![0u8, 1, 2]]);
        assert!(pem_certs(b"nothing").is_err());
    }

    #[test]
    fn api_errors_map_to_wit_cases() {
        let api = |code: u16, reason: &str| {
            kube::Error::Api(
                kube::core::Status::failure("boom", reason)
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(
            matches!(map_error(api(401, "Unauthorized"), "s", "get"), ClusterError::Unavailable(m) if m.contains("expired"))
        );
        assert!(matches!(
            map_error(api(403, "Forbidden"), "s", "get"),
            ClusterError::Forbidden(_)
        ));
        assert!(matches!(
            map_error(api(404, "NotFound"), "s", "get"),
            ClusterError::NotFound(_)
        ));
        assert!(matches!(
            map_error(api(409, "Conflict"), "s", "get"),
            ClusterError::Conflict(_)
        ));
        assert!(matches!(
            map_error(api(409, "AlreadyExists"), "s", "get"),
            ClusterError::AlreadyExists(_)
        ));
        assert!(matches!(
            map_error(api(422, "Invalid"), "s", "get"),
            ClusterError::Invalid(_)
        ));
        assert!(matches!(
            map_error(api(429, "TooManyRequests"), "s", "get"),
            ClusterError::Unavailable(_)
        ));
        assert!(matches!(
            map_error(api(500, "InternalError"), "s", "get"),
            ClusterError::Unavailable(_)
        ));
        assert!(retryable(&api(429, "TooManyRequests")));
        assert!(retryable(&api(503, "ServiceUnavailable")));
        assert!(!retryable(&api(409, "Conflict")));
    }
}
