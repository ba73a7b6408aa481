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
//! Subresources: `status` (read), `scale` (read and write, for the kinds
//! with replicas).
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

use stepbox_cluster::memory::{DeleteOptions, WriteOptions};
use stepbox_cluster::{ClusterError, MemoryCluster, ResourceInfo};
use stepbox_k8s::object;
use stepbox_k8s::patch::PatchType;

use crate::body::{apply_defaults, media_type, parse_body};
use crate::discovery;
use crate::query::{Format, Query, field_manager};
use crate::route::{Route, Target, parse_path};
use crate::status::{self, ApiError, json_response};
use crate::table::{self, IncludeObject};
use crate::watch;

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
        }))
    }

    fn cluster(&self) -> &MemoryCluster {
        &self.0.cluster
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
            let request = ResourceRequest {
                state: &state,
                method: &method,
                headers: &headers,
                query: &query,
                body: &body,
                path,
            };
            request.handle(&t)
        }
    };
    let response = result.unwrap_or_else(IntoResponse::into_response);
    tracing::debug!(%method, %uri, status = response.status().as_u16(), "dev-cluster request");
    response
}

struct ResourceRequest<'a> {
    state: &'a AppState,
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a Query,
    body: &'a Bytes,
    path: &'a str,
}

fn with_type(res: &ResourceInfo, mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(res.api_version));
        m.insert("kind".into(), json!(res.kind));
    }
    obj
}

impl ResourceRequest<'_> {
    fn cluster(&self) -> &MemoryCluster {
        self.state.cluster()
    }

    fn format(&self) -> Format {
        let accept = self
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        Format::negotiate(
            accept,
            IncludeObject::parse(self.query.get("includeObject")),
        )
    }

    fn write_options(&self) -> Result<WriteOptions, ApiError> {
        Ok(WriteOptions {
            dry_run: self.query.dry_run()?,
            field_manager: field_manager(self.query, self.headers),
            force: self.query.flag("force"),
        })
    }

    fn handle(&self, t: &Target) -> ApiResult {
        let res = discovery::find(self.cluster(), &t.group, &t.version, &t.plural)
            .ok_or_else(|| ApiError::not_found_path(self.path))?;
        if !res.namespaced && t.namespace.is_some() {
            return Err(ApiError::not_found_path(self.path));
        }
        if res.namespaced && t.namespace.is_none() && t.name.is_some() {
            return Err(ApiError::not_found_path(self.path));
        }
        let ns = t.namespace.clone().unwrap_or_default();
        if let Some(sub) = &t.subresource {
            let name = t.name.as_deref().unwrap_or_default();
            return match sub.as_str() {
                "status" if self.method == Method::GET => self.get(&res, &ns, name),
                "status" => Err(ApiError::method_not_allowed(self.path)),
                "scale" => self.scale(&res, &ns, name),
                _ => Err(ApiError::not_found_path(self.path)),
            };
        }
        let m = self.method;
        match t.name.as_deref() {
            None if *m == Method::GET => {
                if self.query.flag("watch") {
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
            _ => Err(ApiError::method_not_allowed(self.path)),
        }
    }

    /// One object in the negotiated format.
    fn object_response(&self, res: &ResourceInfo, code: StatusCode, obj: Value) -> Response {
        let obj = with_type(res, obj);
        match self.format() {
            Format::Json => json_response(code, &obj),
            Format::Table {
                api_version,
                include,
            } => json_response(
                code,
                &table::table(res, &[obj], None, include, api_version, true),
            ),
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
            .ok_or_else(|| ApiError::not_found(res, name))?;
        Ok(self.object_response(res, StatusCode::OK, obj))
    }

    fn list(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let labels = self.query.labels()?;
        let fields = self.query.fields()?;
        let list = self
            .cluster()
            .list_with(res, ns, labels.as_ref(), fields.as_ref());
        let rv = list.resource_version;
        let items: Vec<Value> = list.items.into_iter().map(|o| with_type(res, o)).collect();
        let body = match self.format() {
            Format::Json => json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": rv.to_string()},
                "items": items,
            }),
            Format::Table {
                api_version,
                include,
            } => table::table(res, &items, Some(rv), include, api_version, true),
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
        let resource_version = match self.query.get("resourceVersion") {
            None | Some("0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {rv:?}: expected a number"))
            })?),
        };
        let timeout = self
            .query
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(watch::DEFAULT_TIMEOUT, Duration::from_secs);
        let req = watch::WatchRequest {
            res: res.clone(),
            namespace: ns.to_string(),
            labels: self.query.labels()?,
            fields: self.query.fields()?,
            resource_version,
            send_initial_events: self.query.flag("sendInitialEvents"),
            timeout,
            format: self.format(),
        };
        Ok(watch::respond(
            self.cluster(),
            req,
            self.state.0.shutdown.clone(),
        ))
    }

    fn cluster_error<'a>(
        res: &'a ResourceInfo,
        name: &'a str,
    ) -> impl Fn(ClusterError) -> ApiError + 'a {
        move |e| ApiError::from_cluster(&e, res, name)
    }

    fn create(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let opts = self.write_options()?;
        let mut obj = parse_body(self.headers, self.body)?;
        apply_defaults(res, &mut obj);
        let name = object::name(&obj).unwrap_or_default().to_string();
        self.check_body_namespace(res, ns, &obj)?;
        self.require_namespace(res, ns)?;
        let created = self
            .cluster()
            .create(res, ns, &obj, &opts)
            .map_err(Self::cluster_error(res, &name))?;
        Ok(self.object_response(res, StatusCode::CREATED, created))
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

    fn update(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        let opts = self.write_options()?;
        let mut obj = parse_body(self.headers, self.body)?;
        apply_defaults(res, &mut obj);
        if let Some(body_name) = object::name(&obj)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        self.check_body_namespace(res, ns, &obj)?;
        self.require_namespace(res, ns)?;
        let change = self
            .cluster()
            .update(res, ns, name, &obj, &opts)
            .map_err(Self::cluster_error(res, name))?;
        Ok(self.object_response(res, StatusCode::OK, change.after))
    }

    fn patch(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        let content_type = media_type(self.headers, "");
        let patch_type = PatchType::from_content_type(&content_type)
            .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
        let opts = self.write_options()?;
        if opts.force && patch_type != PatchType::Apply {
            return Err(ApiError::bad_request(
                "force is only allowed for apply patches (application/apply-patch+yaml)",
            ));
        }
        let body = parse_body(self.headers, self.body)?;
        if patch_type == PatchType::Apply {
            if let Some(body_name) = object::name(&body)
                && body_name != name
            {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
            self.check_body_namespace(res, ns, &body)?;
            if self.query.get("fieldManager").is_none() {
                return Err(ApiError::bad_request(
                    "PATCH requests with apply-patch content type require fieldManager",
                ));
            }
            if self.cluster().get_object(res, ns, name).is_none() {
                self.require_namespace(res, ns)?;
            }
        }
        let change = self
            .cluster()
            .patch(res, ns, name, patch_type, &body, &opts)
            .map_err(Self::cluster_error(res, name))?;
        let code = if change.before.is_none() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(self.object_response(res, code, change.after))
    }

    fn delete_options(&self) -> Result<DeleteOptions, ApiError> {
        let mut opts = DeleteOptions {
            dry_run: self.query.dry_run()?,
            uid: None,
            resource_version: None,
        };
        if !self.body.is_empty() {
            let body = parse_body(self.headers, self.body)?;
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
        let gone = self
            .cluster()
            .delete_with(res, ns, name, &opts)
            .map_err(Self::cluster_error(res, name))?;
        Ok(json_response(StatusCode::OK, &status::deleted(res, &gone)))
    }

    fn delete_collection(&self, res: &ResourceInfo, ns: &str) -> ApiResult {
        let opts = self.delete_options()?;
        let labels = self.query.labels()?;
        let fields = self.query.fields()?;
        let list = self
            .cluster()
            .list_with(res, ns, labels.as_ref(), fields.as_ref());
        let mut deleted = Vec::new();
        for obj in list.items {
            let name = object::name(&obj).unwrap_or_default().to_string();
            let obj_ns = object::namespace(&obj).unwrap_or(ns).to_string();
            match self.cluster().delete_with(res, &obj_ns, &name, &opts) {
                Ok(gone) => deleted.push(with_type(res, gone)),
                Err(ClusterError::NotFound(_)) => {}
                Err(e) => return Err(ApiError::from_cluster(&e, res, &name)),
            }
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": self.cluster().revision().to_string()},
                "items": deleted,
            }),
        ))
    }

    /// `.../{name}/scale` for kinds with `spec.replicas`.
    fn scale(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        if !discovery::scalable(res) {
            return Err(ApiError::not_found_path(self.path));
        }
        let obj = self
            .cluster()
            .get_object(res, ns, name)
            .ok_or_else(|| ApiError::not_found(res, name))?;
        let scale = scale_of(res, &obj);
        let m = self.method;
        let new_scale = if *m == Method::GET {
            return Ok(json_response(StatusCode::OK, &scale));
        } else if *m == Method::PUT {
            let body = parse_body(self.headers, self.body)?;
            if let Some(rv) = object::resource_version(&body)
                && !rv.is_empty()
                && Some(rv) != object::resource_version(&obj)
            {
                return Err(ApiError::from_cluster(
                    &ClusterError::Conflict(format!(
                        "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                        res.gr()
                    )),
                    res,
                    name,
                ));
            }
            body
        } else if *m == Method::PATCH {
            let content_type = media_type(self.headers, "");
            let body = parse_body(self.headers, self.body)?;
            match PatchType::from_content_type(&content_type) {
                Some(PatchType::Json) => stepbox_k8s::patch::json_patch(&scale, &body)
                    .map_err(Self::cluster_error(res, name))?,
                Some(PatchType::Merge | PatchType::StrategicMerge) => {
                    let mut s = scale.clone();
                    stepbox_k8s::ssa::merge_patch(&mut s, &body);
                    s
                }
                _ => return Err(ApiError::unsupported_media_type(&content_type)),
            }
        } else {
            return Err(ApiError::method_not_allowed(self.path));
        };
        let replicas = new_scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::new(422, "Invalid", "spec.replicas: Required value"))?;
        let opts = self.write_options()?;
        let change = self
            .cluster()
            .patch(
                res,
                ns,
                name,
                PatchType::Merge,
                &json!({"spec": {"replicas": replicas}}),
                &opts,
            )
            .map_err(Self::cluster_error(res, name))?;
        Ok(json_response(StatusCode::OK, &scale_of(res, &change.after)))
    }
}

/// The `autoscaling/v1` `Scale` of a workload.
fn scale_of(res: &ResourceInfo, obj: &Value) -> Value {
    let meta = obj.get("metadata").cloned().unwrap_or_default();
    let pick = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .or_else(|| obj.pointer("/spec/selector"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let _ = res;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"),
            "namespace": pick("namespace"),
            "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"),
            "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
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
