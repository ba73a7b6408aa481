//! The routes: discovery, OpenAPI, and every resource path of the
//! Kubernetes API, mapped onto [`MemoryCluster`]'s requests.
//!
//! | path | what |
//! |---|---|
//! | `/api/v1/{plural}[/{name}[/{sub}]]` | core kinds: cluster-scoped objects, or namespaced kinds across namespaces (list, watch) |
//! | `/api/v1/namespaces/{ns}/{plural}[/{name}[/{sub}]]` | core namespaced objects |
//! | `/apis/{group}/{version}/...` | the same for named groups |
//!
//! Verbs by method: `GET` get / list / watch (`watch=true`), `POST` create,
//! `PUT` update, `PATCH` patch (by `Content-Type`), `DELETE` delete or, on a
//! collection, deletecollection. Query parameters: `dryRun=All`,
//! `fieldManager`, `force`, `labelSelector`, `fieldSelector`, `watch`,
//! `resourceVersion`, `timeoutSeconds`, `sendInitialEvents`,
//! `includeObject`; others are accepted and ignored (`fieldValidation`,
//! `limit`: every list is complete, with no `continue` token).
//!
//! Subresources (`subresource`): `status` (read, replace and patch, for the
//! kinds that have one: writes change status alone), `scale` (read and
//! write, for the kinds with replicas), and `token` of a ServiceAccount (a
//! `TokenRequest`, see [`crate::tokens`]).
//!
//! `events.k8s.io/v1` Events are served from the `core/v1` Events stored
//! (see [`View`]). A delete of an object with finalizers answers the
//! object, marked with `deletionTimestamp`; `propagationPolicy` decides
//! about its dependents.
//!
//! Writing into a namespace needs its `Namespace` object, as in Kubernetes:
//! otherwise `404 namespaces "x" not found`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use stepbox_cluster::memory::{DeleteOptions, DeleteOutcome, Propagation, WriteOptions};
use stepbox_cluster::{ClusterError, MemoryCluster, ResourceInfo};
use stepbox_k8s::object;
use stepbox_k8s::patch::PatchType;

use crate::body::{apply_defaults, media_type, parse_body};
use crate::discovery;
use crate::query::{Format, Query, field_manager};
use crate::route::{Route, Target, parse_path};
use crate::status::{self, ApiError, json_response};
use crate::table::{self, IncludeObject};
use crate::tokens::ServiceAccountTokens;
use crate::view::View;
use crate::watch;

mod subresource;

/// The routes of the Kubernetes API over `state`'s store (authentication,
/// the request log and the body limit are the server's: see
/// [`crate::server`]).
pub(crate) fn router(state: AppState) -> axum::Router {
    use axum::routing::{any, get, post};
    axum::Router::new()
        .route("/version", get(version))
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(healthz))
        .route("/api", get(core_versions))
        .route("/apis", get(group_list))
        .route("/openapi/v2", any(openapi_v2))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*path}", get(openapi_group_version))
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(crate::access::self_subject_access_review),
        )
        .route(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            post(crate::access::self_subject_review),
        )
        .route("/api/{*rest}", any(resource))
        .route("/apis/{*rest}", any(resource))
        .fallback(fallback)
        .with_state(state)
}

/// The largest request body accepted (Kubernetes' limit is 3 MiB per object).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// State shared by every request of one server.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    cluster: MemoryCluster,
    server_address: String,
    shutdown: CancellationToken,
    tokens: Option<Arc<ServiceAccountTokens>>,
}

impl AppState {
    /// State for a server of `cluster` at `server_address` (`host:port`).
    pub fn new(
        cluster: MemoryCluster,
        server_address: String,
        shutdown: CancellationToken,
    ) -> Self {
        Self(Arc::new(Shared {
            cluster,
            server_address,
            shutdown,
            tokens: None,
        }))
    }

    /// State that also issues service-account tokens from `tokens` (a dev
    /// cluster's).
    pub(crate) fn with_tokens(
        cluster: MemoryCluster,
        server_address: String,
        shutdown: CancellationToken,
        tokens: Arc<ServiceAccountTokens>,
    ) -> Self {
        Self(Arc::new(Shared {
            cluster,
            server_address,
            shutdown,
            tokens: Some(tokens),
        }))
    }

    pub(crate) fn cluster(&self) -> &MemoryCluster {
        &self.0.cluster
    }

    fn tokens(&self) -> Option<&ServiceAccountTokens> {
        self.0.tokens.as_deref()
    }
}

type ApiResult = Result<Response, ApiError>;

/// `GET /version`.
pub async fn version() -> Response {
    json_response(StatusCode::OK, &discovery::version())
}

/// `GET /healthz`, `/livez`, `/readyz`.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// `GET /api`.
pub async fn core_versions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = aggregated(&state, &headers, true) {
        return r;
    }
    json_response(
        StatusCode::OK,
        &discovery::core_versions(&state.0.server_address),
    )
}

/// `GET /apis`.
pub async fn group_list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = aggregated(&state, &headers, false) {
        return r;
    }
    json_response(
        StatusCode::OK,
        &discovery::group_list(&discovery::served(state.cluster())),
    )
}

/// Aggregated discovery, when the request prefers it.
fn aggregated(state: &AppState, headers: &HeaderMap, core: bool) -> Option<Response> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !discovery::wants_aggregated(accept) {
        return None;
    }
    let body = discovery::aggregated(&discovery::served(state.cluster()), core);
    let mut r = json_response(StatusCode::OK, &body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(discovery::AGGREGATED_MEDIA_TYPE),
    );
    Some(r)
}

/// `GET /openapi/v2`: not served (kubectl copes, see [`discovery`]).
pub async fn openapi_v2() -> Response {
    ApiError::not_found_path("/openapi/v2").into_response()
}

/// `GET /openapi/v3`.
pub async fn openapi_root(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        &discovery::openapi_root(&discovery::served(state.cluster())),
    )
}

/// `GET /openapi/v3/{path}`.
pub async fn openapi_group_version(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Response {
    match discovery::openapi_group_version(&discovery::served(state.cluster()), &path) {
        Some(doc) => json_response(StatusCode::OK, &doc),
        None => ApiError::not_found_path(&format!("/openapi/v3/{path}")).into_response(),
    }
}

/// Anything else.
pub async fn fallback(uri: Uri) -> Response {
    ApiError::not_found_path(uri.path()).into_response()
}

/// Every path under `/api/` and `/apis/`.
pub async fn resource(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let query = Query::parse(uri.query());
    let result = match parse_path(path) {
        None => Err(ApiError::not_found_path(path)),
        Some(Route::Group(g)) => match discovery::group(&discovery::served(state.cluster()), &g) {
            Some(doc) if method == Method::GET => Ok(json_response(StatusCode::OK, &doc)),
            Some(_) => Err(ApiError::method_not_allowed(path)),
            None => Err(ApiError::not_found_path(path)),
        },
        Some(Route::ResourceList(g, v)) => {
            match discovery::resource_list(&discovery::served(state.cluster()), &g, &v) {
                Some(doc) if method == Method::GET => Ok(json_response(StatusCode::OK, &doc)),
                Some(_) => Err(ApiError::method_not_allowed(path)),
                None => Err(ApiError::not_found_path(path)),
            }
        }
        Some(Route::Resource(t)) => {
            let call = Call {
                state: &state,
                method: &method,
                headers: &headers,
                query: &query,
                body: &body,
                path,
            };
            ResourceRequest::new(call, &t).and_then(|r| r.handle(&t))
        }
    };
    let response = result.unwrap_or_else(IntoResponse::into_response);
    tracing::debug!(%method, %uri, status = response.status().as_u16(), "dev-cluster request");
    response
}

/// What arrived: the request's parts.
struct Call<'a> {
    state: &'a AppState,
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a Query,
    body: &'a Bytes,
    path: &'a str,
}

/// A request to a resource path, with the resource it names.
struct ResourceRequest<'a> {
    call: Call<'a>,
    /// The resource as the path names it.
    served: ResourceInfo,
    /// How it is stored (see [`View`]).
    view: View,
}

impl<'a> ResourceRequest<'a> {
    /// Resolves the resource `t` names; 404 for one not served, or a path
    /// of the wrong scope.
    fn new(call: Call<'a>, t: &Target) -> Result<Self, ApiError> {
        let served = discovery::find(call.state.cluster(), &t.group, &t.version, &t.plural)
            .ok_or_else(|| ApiError::not_found_path(call.path))?;
        if (!served.namespaced && t.namespace.is_some())
            || (served.namespaced && t.namespace.is_none() && t.name.is_some())
        {
            return Err(ApiError::not_found_path(call.path));
        }
        let (_, view) = View::of(&served);
        Ok(Self { call, served, view })
    }

    fn cluster(&self) -> &MemoryCluster {
        self.call.state.cluster()
    }

    fn format(&self) -> Format {
        let accept = self
            .call
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        Format::negotiate(
            accept,
            IncludeObject::parse(self.call.query.get("includeObject")),
        )
    }

    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        Ok(WriteOptions {
            dry_run: self.call.query.dry_run()?,
            field_manager: field_manager(self.call.query, self.call.headers),
            force: self.call.query.flag("force"),
        })
    }

    fn handle(&self, t: &Target) -> ApiResult {
        let (res, _) = View::of(&self.served);
        let ns = t.namespace.clone().unwrap_or_default();
        if let Some(sub) = &t.subresource {
            let name = t.name.as_deref().unwrap_or_default();
            return match sub.as_str() {
                "status" => self.status(&res, &ns, name),
                "scale" => self.scale(&res, &ns, name),
                "log" if res.is("", "Pod") => self.log(&ns, name),
                "token" if res.is("", "ServiceAccount") && *self.call.method == Method::POST => {
                    crate::tokens::create_token(
                        self.call.state.tokens(),
                        &ns,
                        name,
                        self.call.headers,
                        self.call.body,
                    )
                }
                _ => Err(ApiError::not_found_path(self.call.path)),
            };
        }
        let m = self.call.method;
        match t.name.as_deref() {
            None if *m == Method::GET => {
                if self.call.query.flag("watch") {
                    self.watch(&res, &ns)
                } else {
                    self.list(&res, &ns)
                }
            }
            None if *m == Method::POST => self.create(&res, &ns),
            None if *m == Method::DELETE => self.delete_collection(&res, &ns),
            Some(name) if *m == Method::GET => self.get(&res, &ns, name),
            Some(name) if *m == Method::PUT => self.update(&res, &ns, name),
            Some(name) if *m == Method::PATCH => self.patch(&res, &ns, name),
            Some(name) if *m == Method::DELETE => self.delete(&res, &ns, name),
            _ => Err(ApiError::method_not_allowed(self.call.path)),
        }
    }

    /// A stored object as the client sees it.
    fn present(&self, obj: &Value) -> Value {
        self.view.present(&self.served, obj)
    }

    /// One stored object in the negotiated format.
    fn object_response(&self, code: StatusCode, obj: &Value) -> Response {
        let obj = self.present(obj);
        match self.format() {
            Format::Json => json_response(code, &obj),
            Format::Table {
                api_version,
                include,
            } => {
                let columns = table::Columns::of(self.cluster(), &self.served);
                json_response(
                    code,
                    &table::table(&columns, &[obj], None, include, api_version, true),
                )
            }
            Format::Metadata { api_version } => {
                json_response(code, &table::partial_metadata(&obj, api_version))
            }
        }
    }

    fn require_namespace(&self, res: &ResourceInfo, ns: &str) -> Result<(), ApiError> {
        if res.namespaced && !self.cluster().namespace_exists(ns) {
            return Err(ApiError::namespace_not_found(ns));
        }
        Ok(())
    }

    fn get(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        let obj = self
            .cluster()
            .get_object(res, ns, name)
            .ok_or_else(|| ApiError::not_found(&self.served, name))?;
        Ok(self.object_response(StatusCode::OK, &obj))
    }

    /// The objects of a list, as the client sees them. Field selectors of
    /// a view apply to what the client sees (`regarding.name` of
    /// `events.k8s.io` Events).
    fn listed(&self, res: &ResourceInfo, ns: &str) -> Result<(Vec<Value>, u64), ApiError> {
        let labels = self.call.query.labels()?;
        let fields = self.call.query.fields()?;
        let stored_fields = fields.as_ref().filter(|_| self.view == View::Stored);
        let list = self
            .cluster()
            .list_with(res, ns, labels.as_ref(), stored_fields);
        let items = list
            .items
            .iter()
            .map(|o| self.present(o))
            .filter(|o| fields.as_ref().is_none_or(|f| f.matches_value(o)))
            .collect();
        Ok((items, list.resource_version))
    }

    fn list(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let (items, rv) = self.listed(res, ns)?;
        let served = &self.served;
        let body = match self.format() {
            Format::Json => json!({
                "kind": format!("{}List", served.kind),
                "apiVersion": served.api_version,
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            }),
            Format::Table {
                api_version,
                include,
            } => {
                let columns = table::Columns::of(self.cluster(), served);
                table::table(&columns, &items, Some(rv), include, api_version, true)
            }
            Format::Metadata { api_version } => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items.iter().map(|o| table::partial_metadata(o, api_version)).collect::<Vec<_>>(),
            }),
        };
        Ok(json_response(StatusCode::OK, &body))
    }

    fn watch(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let resource_version = match self.call.query.get("resourceVersion") {
            None | Some("0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {rv:?}: expected a number"))
            })?),
        };
        let timeout = self
            .call
            .query
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(watch::DEFAULT_TIMEOUT, Duration::from_secs);
        let req = watch::WatchRequest {
            res: res.clone(),
            served: self.served.clone(),
            view: self.view,
            columns: table::Columns::of(self.cluster(), &self.served),
            namespace: ns.to_string(),
            labels: self.call.query.labels()?,
            fields: self.call.query.fields()?,
            resource_version,
            send_initial_events: self.call.query.flag("sendInitialEvents"),
            timeout,
            format: self.format(),
        };
        Ok(watch::respond(
            self.cluster(),
            req,
            self.call.state.0.shutdown.clone(),
        ))
    }

    fn cluster_error<'b>(&'b self, name: &'b str) -> impl Fn(ClusterError) -> ApiError + 'b {
        move |e| ApiError::from_cluster(&e, &self.served, name)
    }

    /// The request's body as it is stored.
    fn stored_body(&self) -> Result<Value, ApiError> {
        Ok(self
            .view
            .to_storage(&parse_body(self.call.headers, self.call.body)?))
    }

    fn create(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let opts = self.write_options()?;
        let mut obj = self.stored_body()?;
        apply_defaults(res, &mut obj);
        let name = object::name(&obj).unwrap_or_default().to_string();
        self.check_body_namespace(res, ns, &obj)?;
        self.require_namespace(res, ns)?;
        let created = self
            .cluster()
            .create(res, ns, &obj, &opts)
            .map_err(self.cluster_error(&name))?;
        Ok(self.object_response(StatusCode::CREATED, &created))
    }

    fn check_body_namespace(
        &self,
        res: &ResourceInfo,
        ns: &str,
        obj: &Value,
    ) -> Result<(), ApiError> {
        if let Some(o) = object::namespace(obj)
            && res.namespaced
            && o != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }

    fn check_body_name(&self, obj: &Value, name: &str) -> Result<(), ApiError> {
        if let Some(body_name) = object::name(obj)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        Ok(())
    }

    fn update(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        let opts = self.write_options()?;
        let mut obj = self.stored_body()?;
        apply_defaults(res, &mut obj);
        self.check_body_name(&obj, name)?;
        self.check_body_namespace(res, ns, &obj)?;
        self.require_namespace(res, ns)?;
        let change = self
            .cluster()
            .update(res, ns, name, &obj, &opts)
            .map_err(self.cluster_error(name))?;
        Ok(self.object_response(StatusCode::OK, &change.after))
    }

    /// The patch type of the request, with the checks every patch shares.
    fn patch_type(&self, opts: &WriteOptions) -> Result<PatchType, ApiError> {
        let content_type = media_type(self.call.headers, "");
        let patch_type = PatchType::from_content_type(&content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
        if opts.force && patch_type != PatchType::Apply {
            return Err(ApiError::bad_request(
                "force is only allowed for apply patches (application/apply-patch+yaml)",
            ));
        }
        if patch_type == PatchType::Apply && self.call.query.get("fieldManager").is_none() {
            return Err(ApiError::bad_request(
                "PATCH requests with apply-patch content type require fieldManager",
            ));
        }
        Ok(patch_type)
    }

    fn patch(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        let opts = self.write_options()?;
        let patch_type = self.patch_type(&opts)?;
        let body = parse_body(self.call.headers, self.call.body)?;
        if patch_type == PatchType::Apply {
            self.check_body_name(&body, name)?;
            self.check_body_namespace(res, ns, &body)?;
            if self.cluster().get_object(res, ns, name).is_none() {
                self.require_namespace(res, ns)?;
            }
        }
        let change = match (self.view, patch_type) {
            (View::Stored, _) | (_, PatchType::Apply) => self.cluster().patch(
                res,
                ns,
                name,
                patch_type,
                &self.view.to_storage(&body),
                &opts,
            ),
            _ => self.patch_through_view(res, ns, name, patch_type, &body, &opts),
        }
        .map_err(self.cluster_error(name))?;
        let code = if change.before.is_none() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(self.object_response(code, &change.after))
    }

    /// A patch of an object as the client sees it: applied to the shown
    /// object, stored converted back, with the object read as the
    /// precondition (a few tries when it changes meanwhile, as the API
    /// server retries patches).
    fn patch_through_view(
        &self,
        res: &ResourceInfo,
        ns: &str,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        opts: &WriteOptions,
    ) -> Result<stepbox_cluster::Change, ClusterError> {
        let mut tries = 0;
        loop {
            let live = self.cluster().get_object(res, ns, name).ok_or_else(|| {
                ClusterError::NotFound(format!("{} {name:?} not found", self.served.gr()))
            })?;
            let shown = self.present(&live);
            let patched = match patch_type {
                PatchType::Json => stepbox_k8s::patch::json_patch(&shown, patch)?,
                PatchType::StrategicMerge => {
                    stepbox_k8s::patch::strategic_merge(&shown, patch, &self.served)?
                }
                _ => {
                    let mut obj = shown.clone();
                    stepbox_k8s::ssa::merge_patch(&mut obj, patch);
                    obj
                }
            };
            let mut stored = self.view.to_storage(&patched);
            let pinned = object::resource_version(&patched) != object::resource_version(&shown);
            if !pinned && let Some(meta) = stored.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert(
                    "resourceVersion".into(),
                    live["metadata"]["resourceVersion"].clone(),
                );
            }
            match self.cluster().update(res, ns, name, &stored, opts) {
                Err(ClusterError::Conflict(_)) if !pinned && tries < 5 => tries += 1,
                other => return other,
            }
        }
    }

    fn delete_options(&self) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            dry_run: self.call.query.dry_run()?,
            ..DeleteOptions::default()
        };
        let mut policy = self.call.query.get("propagationPolicy").map(str::to_string);
        if !self.call.body.is_empty() {
            let body = parse_body(self.call.headers, self.call.body)?;
            if let Some(modes) = body.get("dryRun").and_then(Value::as_array) {
                for m in modes {
                    match m.as_str() {
                        Some("All") => opts.dry_run = true,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "Invalid dry run value: {other:?}: supported values: \"All\""
                            )));
                        }
                    }
                }
            }
            let pre = |k: &str| {
                body.pointer(&format!("/preconditions/{k}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            opts.uid = pre("uid");
            opts.resource_version = pre("resourceVersion");
            if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
                policy = Some(p.to_string());
            } else if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                policy = Some("Orphan".to_string());
            }
        }
        if let Some(p) = policy.filter(|p| !p.is_empty()) {
            opts.propagation = Propagation::parse(&p).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid propagationPolicy {p:?}: supported values: \"Orphan\", \"Background\", \"Foreground\""
                ))
            })?;
        }
        Ok(opts)
    }

    fn delete(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        if res.is("", "Namespace") && super::SYSTEM_NAMESPACES.contains(&name) {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!("namespaces {name:?} is forbidden: this namespace may not be deleted"),
            )
            .about(res, name));
        }
        let opts = self.delete_options()?;
        let outcome = self
            .cluster()
            .delete_with(res, ns, name, &opts)
            .map_err(self.cluster_error(name))?;
        Ok(match outcome {
            // Kept for its finalizers: the object, as the API server answers.
            DeleteOutcome::Finalizing(obj) => self.object_response(StatusCode::OK, &obj),
            DeleteOutcome::Deleted(gone) => {
                json_response(StatusCode::OK, &status::deleted(&self.served, &gone))
            }
        })
    }

    fn delete_collection(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let opts = self.delete_options()?;
        let (list, _) = self.listed(res, ns)?;
        let mut deleted = Vec::new();
        for obj in list {
            let name = object::name(&obj).unwrap_or_default().to_string();
            let obj_ns = object::namespace(&obj).unwrap_or(ns).to_string();
            match self.cluster().delete_with(res, &obj_ns, &name, &opts) {
                Ok(outcome) => deleted.push(self.present(outcome.object())),
                Err(ClusterError::NotFound(_)) => {}
                Err(e) => return Err(ApiError::from_cluster(&e, &self.served, &name)),
            }
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": format!("{}List", self.served.kind),
                "apiVersion": self.served.api_version,
                "metadata": {"resourceVersion": self.cluster().revision().to_string()},
                "items": deleted,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(
        ns: Option<&str>,
        plural: &str,
        name: Option<&str>,
        sub: Option<&str>,
        group: &str,
        version: &str,
    ) -> Route {
        Route::Resource(Target {
            group: group.into(),
            version: version.into(),
            namespace: ns.map(Into::into),
            plural: plural.into(),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        })
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/api/v1"),
            Some(Route::ResourceList("".into(), "v1".into()))
        );
        assert_eq!(parse_path("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse_path("/apis/apps/v1"),
            Some(Route::ResourceList("apps".into(), "v1".into()))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces"),
            Some(target(None, "namespaces", None, None, "", "v1"))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/dev"),
            Some(target(None, "namespaces", Some("dev"), None, "", "v1"))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/dev/status"),
            Some(target(
                None,
                "namespaces",
                Some("dev"),
                Some("status"),
                "",
                "v1"
            ))
        );
        assert_eq!(
            parse_path("/api/v1/namespaces/dev/pods"),
            Some(target(Some("dev"), "pods", None, None, "", "v1"))
        );
        assert_eq!(
            parse_path("/apis/apps/v1/namespaces/dev/deployments/web/scale"),
            Some(target(
                Some("dev"),
                "deployments",
                Some("web"),
                Some("scale"),
                "apps",
                "v1"
            ))
        );
        assert_eq!(
            parse_path("/apis/apps/v1/deployments"),
            Some(target(None, "deployments", None, None, "apps", "v1"))
        );
        assert_eq!(parse_path("/api/v1/namespaces/a/b/c/d/e"), None);
        assert_eq!(parse_path("/api//v1"), None);
        assert_eq!(parse_path("/other"), None);
    }

    #[test]
    fn negotiation() {
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            Format::negotiate(Some(kubectl_get), IncludeObject::Metadata),
            Format::Table {
                api_version: "meta.k8s.io/v1",
                include: IncludeObject::Metadata
            }
        );
        assert_eq!(
            Format::negotiate(Some("application/json"), IncludeObject::Metadata),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(None, IncludeObject::Metadata),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(
                Some("application/vnd.kubernetes.protobuf, application/json"),
                IncludeObject::Metadata
            ),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(
                Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
                IncludeObject::Metadata
            ),
            Format::Metadata {
                api_version: "meta.k8s.io/v1"
            }
        );
        assert_eq!(
            Format::negotiate(
                Some("application/json;as=Other;g=x;v=y"),
                IncludeObject::Metadata
            ),
            Format::Json
        );
    }

    #[test]
    fn queries() {
        let q = Query::parse(Some(
            "dryRun=All&labelSelector=app%3Dweb&watch=1&fieldManager=kubectl",
        ));
        assert!(q.dry_run().unwrap());
        assert!(q.flag("watch"));
        assert_eq!(q.labels().unwrap().unwrap().to_string(), "app=web");
        assert!(Query::parse(Some("dryRun=Some")).dry_run().is_err());
        assert!(Query::parse(Some("labelSelector=a%20in")).labels().is_err());
        let h = HeaderMap::new();
        assert_eq!(field_manager(&q, &h).as_deref(), Some("kubectl"));
        let mut h = HeaderMap::new();
        h.insert(
            header::USER_AGENT,
            "kubectl/v1.33.9 (linux/amd64)".parse().unwrap(),
        );
        assert_eq!(
            field_manager(&Query::default(), &h).as_deref(),
            Some("kubectl")
        );
    }
}
