//! The gateway: a Kubernetes API front end on loopback that admits every
//! request before it reaches the cluster.
//!
//! A tool that talks to Kubernetes (helm during a run, or kubectl and any
//! client through `stepbox gateway`) gets a kubeconfig pointing here, with a
//! CA of the gateway's own and a token of its own. It never sees the
//! cluster's credentials.
//!
//! ```text
//! client ──TLS, token──> gateway ──> Admit::admit (the run's one admission function)
//!                          │             refused: 403 Forbidden Status, nothing forwarded
//!                          ├─ discovery, /version, OpenAPI: forwarded as they are
//!                          ├─ reads (get, list, watch): forwarded
//!                          └─ writes: the body decoded and checked (a patch applied to the
//!                             current object first), then *that* JSON forwarded
//!                             (dryRun=All in a server dry run) ──> Admit::wrote (plan)
//!                   upstream: the embedded namespace in-process, or the real API server
//!                             through kube::Client with the run's credentials
//! ```
//!
//! What it cannot read is not forwarded: a protobuf body of a kind it
//! cannot decode is refused with 415 naming the kind. Requests for all
//! namespaces at once, paths outside the API and discovery, and connection
//! upgrades (exec, attach, port-forward) are refused.

mod forward;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stepbox_cluster::{ClusterBackend, MemoryCluster};
use stepbox_k8s::ResourceInfo;
use stepbox_k8s::patch::PatchType;
use stepbox_k8s::request::{Attributes, Route, Target, Verb, parse_path};

use crate::DevClusterError;
use crate::body::{media_type, parse_body};
use crate::server::{Front, RunningServer};
use crate::status::ApiError;

pub use forward::Upstream;

/// The run's admission, as the gateway uses it. The implementation (the
/// runtime's `Admission`) holds the policy and writes the audit.
#[async_trait::async_trait]
pub trait Admit: Send + Sync {
    /// Whether a request may be forwarded; `Err(reason)` refuses it with
    /// 403 Forbidden. `call` names it in the audit (`helm.create`). The
    /// implementation audits refusals.
    async fn admit(&self, call: &str, request: &Attributes<'_>) -> Result<(), String>;

    /// A request was forwarded and got `status`: an audit line.
    fn forwarded(&self, call: &str, request: &Attributes<'_>, status: u16);

    /// A request the gateway refused before admission could see it (a path
    /// outside the API, a connection upgrade): an audit line.
    fn rejected(&self, call: &str, what: &str, reason: &str);

    /// A write succeeded: the object before it and after it (`None`: it
    /// did not exist, or was deleted). For the plan.
    fn wrote(&self, resource: &ResourceInfo, before: Option<&Value>, after: Option<&Value>);
}

/// Builder of a gateway.
pub struct Gateway {
    upstream: Upstream,
    backend: Arc<dyn ClusterBackend>,
    admit: Arc<dyn Admit>,
    namespace: String,
    client: String,
    dry_run: bool,
    port: u16,
    token: Option<String>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream)
            .field("namespace", &self.namespace)
            .field("client", &self.client)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway forwarding to `upstream` what `admit` allows; `backend`
    /// is the same cluster, for discovery and for reading an object before
    /// it is written. Defaults: namespace `default`, client name `gateway`
    /// (the audit calls it `gateway.get`, `gateway.create`, ...), writes
    /// real, a free port, a random token.
    pub fn new(
        upstream: Upstream,
        backend: Arc<dyn ClusterBackend>,
        admit: Arc<dyn Admit>,
    ) -> Self {
        Self {
            upstream,
            backend,
            admit,
            namespace: "default".into(),
            client: "gateway".into(),
            dry_run: false,
            port: 0,
            token: None,
        }
    }

    /// A gateway in front of the embedded namespace `cluster`.
    pub fn embedded(cluster: MemoryCluster, admit: Arc<dyn Admit>) -> Self {
        Self::new(Upstream::Memory(cluster.clone()), Arc::new(cluster), admit)
    }

    /// The namespace its kubeconfigs point at.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The name of the client behind it, for the audit (`helm`).
    pub fn client(mut self, name: impl Into<String>) -> Self {
        self.client = name.into();
        self
    }

    /// Sends every write with `dryRun=All`: the cluster checks it and
    /// changes nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The port on 127.0.0.1 (0, the default: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The bearer token clients must present (default: random, 256 bits).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Generates its CA and certificates, binds `127.0.0.1` and serves
    /// until the returned server is shut down or dropped.
    ///
    /// # Errors
    /// As [`crate::DevCluster::start`].
    pub async fn start(self) -> Result<RunningServer, DevClusterError> {
        stepbox_k8s::names::dns1123_label(&self.namespace).map_err(|reason| {
            DevClusterError::Namespace {
                name: self.namespace.clone(),
                reason,
            }
        })?;
        let Gateway {
            upstream,
            backend,
            admit,
            namespace,
            client,
            dry_run,
            port,
            token,
        } = self;
        let front = Front::new(
            #[cfg(feature = "faults")]
            Vec::new(),
        );
        let server = RunningServer::start(
            port,
            token,
            namespace,
            front,
            None,
            move |addr, shutdown| {
                let shared = Arc::new(Shared {
                    upstream: upstream.connect(addr, shutdown),
                    backend,
                    admit,
                    client,
                    dry_run,
                });
                axum::Router::new().fallback(handle).with_state(shared)
            },
        )
        .await?;
        tracing::debug!(addr = %server.addr(), "gateway: serving");
        Ok(server)
    }
}

/// What every request of one gateway shares.
struct Shared {
    upstream: forward::Connected,
    backend: Arc<dyn ClusterBackend>,
    admit: Arc<dyn Admit>,
    client: String,
    dry_run: bool,
}

/// Paths outside the resource API that clients need and that name no
/// object: forwarded without admission (reads only).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/version" | "/healthz" | "/livez" | "/readyz" | "/api" | "/apis"
    ) || path.starts_with("/openapi/")
        || matches!(
            parse_path(path),
            Some(Route::Group(_) | Route::ResourceList(..))
        )
}

/// Every request.
async fn handle(State(gw): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let reject = |reason: &str| {
        gw.admit.rejected(
            &format!("{}.{}", gw.client, req.method().as_str().to_lowercase()),
            &path,
            reason,
        );
        forbidden(&path, reason)
    };
    if req.headers().contains_key(header::UPGRADE) {
        return reject(
            "the stepbox gateway does not proxy exec, attach or port-forward (connection upgrades)",
        );
    }
    if is_public(&path) {
        if req.method() != Method::GET {
            return ApiError::method_not_allowed(&path).into_response();
        }
        return gw.upstream.send(req).await;
    }
    let Some(Route::Resource(target)) = parse_path(&path) else {
        return reject("the stepbox gateway serves the resource API, discovery and /version only");
    };
    match resource_request(&gw, req, &target).await {
        Ok(response) | Err(response) => response,
    }
}

/// A request to a resource path: resolve, decode, admit, forward, record.
async fn resource_request(gw: &Shared, req: Request, t: &Target) -> Result<Response, Response> {
    let watch = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "watch" && (v == "true" || v == "1"))
    });
    let verb = Verb::of_request(req.method().as_str(), t.name.is_some(), watch)
        .ok_or_else(|| ApiError::method_not_allowed(req.uri().path()).into_response())?;
    let mut res = gw
        .backend
        .resource_by_plural(&t.group, &t.version, &t.plural)
        .await
        .map_err(|e| ApiError::new(e.http_status(), e.reason(), e.message()).into_response())?;
    if let Some(sub) = &t.subresource {
        res = res.subresource(sub);
    }
    let call = format!("{}.{verb}", gw.client);
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, crate::api::MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            ApiError::bad_request(format!("cannot read the request body: {e}")).into_response()
        })?;
    let namespace = t.namespace.as_deref();
    let write = Write::decode(
        gw,
        verb,
        &res,
        namespace,
        t.name.as_deref(),
        &parts.headers,
        &body,
    )
    .await?;
    let request = Attributes {
        verb,
        resource: &res,
        namespace,
        name: write.name.as_deref().or(t.name.as_deref()),
        object: write.object.as_ref(),
    };
    if let Err(reason) = gw.admit.admit(&call, &request).await {
        let what = match request.name {
            Some(n) => format!("{} {n:?}", res.plural),
            None => res.plural.clone(),
        };
        return Err(forbidden(&what, &reason));
    }
    let mut parts = parts;
    if gw.dry_run && verb.is_write() {
        forward::add_dry_run(&mut parts.uri);
    }
    let forwarded = match &write.forward {
        Some((content_type, bytes)) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                content_type
                    .parse()
                    .expect("a media type is a header value"),
            );
            Request::from_parts(parts, Body::from(bytes.clone()))
        }
        None => Request::from_parts(parts, Body::from(body)),
    };
    let response = gw.upstream.send(forwarded).await;
    let status = response.status();
    gw.admit.forwarded(&call, &request, status.as_u16());
    if !verb.is_write() || !status.is_success() || verb == Verb::DeleteCollection {
        return Ok(response);
    }
    // The answer of a write is the object as stored (or as it would be,
    // in a dry run): the plan entry's "after".
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let after = match verb {
        Verb::Delete => None,
        _ => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(|v| v.get("kind").and_then(Value::as_str) == Some(res.kind.as_str())),
    };
    if write.before.is_some() || after.is_some() {
        gw.admit.wrote(&res, write.before.as_ref(), after.as_ref());
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// What a request writes, decoded so it can be checked, and what to
/// forward instead of the client's body.
#[derive(Default)]
struct Write {
    /// The object as it would be stored.
    object: Option<Value>,
    /// The object's name, for a create (from its body).
    name: Option<String>,
    /// The object before the write, when the request names one.
    before: Option<Value>,
    /// The body to forward (media type, JSON): what was checked.
    forward: Option<(String, Bytes)>,
}

impl Write {
    async fn decode(
        gw: &Shared,
        verb: Verb,
        res: &ResourceInfo,
        namespace: Option<&str>,
        name: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, Response> {
        let ns = namespace.unwrap_or_default();
        let current = async {
            match name {
                Some(n) => gw.backend.get(res, ns, n).await.ok().flatten(),
                None => None,
            }
        };
        let json = |v: &Value| Bytes::from(v.to_string());
        match verb {
            Verb::Get | Verb::List | Verb::Watch | Verb::DeleteCollection => Ok(Self::default()),
            Verb::Delete => Ok(Self {
                before: current.await,
                ..Self::default()
            }),
            Verb::Create | Verb::Update => {
                let mut object = parse_body(headers, body).map_err(IntoResponse::into_response)?;
                let body_ns = stepbox_k8s::object::namespace(&object);
                if let (Some(path_ns), Some(obj_ns)) = (namespace, body_ns)
                    && path_ns != obj_ns
                {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the object ({obj_ns}) does not match the namespace on the URL ({path_ns})"
                    ))
                    .into_response());
                }
                if let (Some(path_ns), Some(meta)) = (
                    namespace,
                    object.get_mut("metadata").and_then(Value::as_object_mut),
                ) {
                    meta.insert("namespace".into(), json!(path_ns));
                }
                let before = if verb == Verb::Update {
                    current.await
                } else {
                    None
                };
                Ok(Self {
                    name: stepbox_k8s::object::name(&object).map(str::to_string),
                    forward: Some(("application/json".into(), json(&object))),
                    object: Some(object),
                    before,
                })
            }
            Verb::Patch => {
                let content_type = media_type(headers, "");
                let patch_type = PatchType::from_content_type(&content_type).ok_or_else(|| {
                    ApiError::unsupported_media_type(&content_type).into_response()
                })?;
                let patch = parse_body(headers, body).map_err(IntoResponse::into_response)?;
                let before = current.await;
                let (object, forward) = patched(res, before.as_ref(), patch, patch_type)
                    .map_err(IntoResponse::into_response)?;
                Ok(Self {
                    object,
                    name: None,
                    before,
                    forward: Some((content_type, json(&forward))),
                })
            }
        }
    }
}

/// A patch applied to the current object (what is checked), and the patch
/// to forward: the same, held to the resourceVersion that was checked, so
/// the server applies it to that object or answers 409.
fn patched(
    res: &ResourceInfo,
    current: Option<&Value>,
    mut patch: Value,
    patch_type: PatchType,
) -> Result<(Option<Value>, Value), ApiError> {
    let invalid = |e: stepbox_k8s::Error| ApiError::new(422, "Invalid", e.message().to_string());
    let rv = current.and_then(stepbox_k8s::object::resource_version);
    let object = match (patch_type, current) {
        (PatchType::Apply, None) => Some(patch.clone()),
        (PatchType::Apply, Some(cur)) => Some(
            stepbox_k8s::ssa::apply(Some(cur), &patch, "gateway-check", true, "")
                .unwrap_or_else(|_| patch.clone()),
        ),
        (_, None) => None,
        (PatchType::Json, Some(cur)) => {
            Some(stepbox_k8s::patch::json_patch(cur, &patch).map_err(invalid)?)
        }
        (PatchType::Merge, Some(cur)) => {
            let mut obj = cur.clone();
            stepbox_k8s::ssa::merge_patch(&mut obj, &patch);
            Some(obj)
        }
        (PatchType::StrategicMerge, Some(cur)) => {
            Some(stepbox_k8s::patch::strategic_merge(cur, &patch, res).map_err(invalid)?)
        }
    };
    if let Some(rv) = rv {
        match patch_type {
            PatchType::Json => {
                if let Some(ops) = patch.as_array_mut() {
                    ops.insert(
                        0,
                        json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                    );
                }
            }
            PatchType::Merge | PatchType::StrategicMerge => {
                if let Some(top) = patch.as_object_mut() {
                    let meta = top.entry("metadata").or_insert_with(|| json!({}));
                    if let Some(meta) = meta.as_object_mut() {
                        meta.entry("resourceVersion").or_insert_with(|| json!(rv));
                    }
                }
            }
            PatchType::Apply => {}
        }
    }
    Ok((object, patch))
}

/// A 403 Forbidden Status about `what`.
fn forbidden(what: &str, reason: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{what} is forbidden: {reason}"),
        "reason": "Forbidden",
        "code": 403,
    });
    crate::status::json_response(StatusCode::FORBIDDEN, &body)
}
