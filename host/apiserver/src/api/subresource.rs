//! Subresources: `status` (read, replace, patch, for the kinds that have
//! one), `scale` (for the kinds with replicas), a pod's `log` (what its
//! `logs.stepbox.dev/CONTAINER` annotation seeds, see
//! [`MemoryCluster::pod_log`](stepbox_cluster::MemoryCluster::pod_log))
//! and a service account's `token` (in [`crate::tokens`]).

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use stepbox_cluster::{ClusterError, ResourceInfo};
use stepbox_k8s::object;
use stepbox_k8s::patch::PatchType;

use super::{ApiResult, ResourceRequest};
use crate::body::{media_type, parse_body};
use crate::discovery;
use crate::status::{ApiError, json_response};

impl ResourceRequest<'_> {
    /// `.../{name}/status`: the object (GET); its status replaced (PUT) or
    /// patched (PATCH, every patch type) through
    /// [`MemoryCluster::update_status`](stepbox_cluster::MemoryCluster::update_status)
    /// and `patch_status`, which change status alone. 404 for kinds
    /// without a status subresource, as in Kubernetes.
    pub(super) fn status(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        if !self.cluster().has_status_subresource(res) {
            return Err(ApiError::not_found_path(self.call.path));
        }
        let m = self.call.method;
        let change = if *m == Method::GET {
            return self.get(res, ns, name);
        } else if *m == Method::PUT {
            let opts = self.write_options()?;
            let body = self.stored_body()?;
            self.check_body_name(&body, name)?;
            self.check_body_namespace(res, ns, &body)?;
            self.cluster().update_status(res, ns, name, &body, &opts)
        } else if *m == Method::PATCH {
            let opts = self.write_options()?;
            let patch_type = self.patch_type(&opts)?;
            let body = parse_body(self.call.headers, self.call.body)?;
            if patch_type == PatchType::Apply {
                self.check_body_name(&body, name)?;
                self.check_body_namespace(res, ns, &body)?;
            }
            self.cluster().patch_status(
                res,
                ns,
                name,
                patch_type,
                &self.view.to_storage(&body),
                &opts,
            )
        } else {
            return Err(ApiError::method_not_allowed(self.call.path));
        };
        let change = change.map_err(self.cluster_error(name))?;
        Ok(self.object_response(StatusCode::OK, &change.after))
    }

    /// `GET .../pods/{name}/log` with kubectl's query parameters
    /// (`container`, `tailLines`, `sinceSeconds`, `previous`), as text.
    pub(super) fn log(&self, ns: &str, name: &str) -> ApiResult {
        if *self.call.method != Method::GET {
            return Err(ApiError::method_not_allowed(self.call.path));
        }
        let number = |key: &str| -> Result<Option<u32>, ApiError> {
            self.call
                .query
                .get(key)
                .map(|v| {
                    v.parse::<u32>().map_err(|_| {
                        ApiError::bad_request(format!("{key}={v:?}: expected a whole number"))
                    })
                })
                .transpose()
        };
        let options = stepbox_cluster::LogOptions {
            container: self.call.query.get("container").map(str::to_string),
            tail_lines: number("tailLines")?,
            since_seconds: number("sinceSeconds")?,
            previous: self.call.query.flag("previous"),
        };
        let log = self
            .cluster()
            .pod_log(ns, name, &options)
            .map_err(self.cluster_error(name))?;
        let mut response = (StatusCode::OK, log.text).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/plain"),
        );
        Ok(response)
    }

    /// `.../{name}/scale` for kinds with `spec.replicas`.
    pub(super) fn scale(&self, res: &ResourceInfo, ns: &str, name: &str) -> ApiResult {
        if !discovery::scalable(res) {
            return Err(ApiError::not_found_path(self.call.path));
        }
        let obj = self
            .cluster()
            .get_object(res, ns, name)
            .ok_or_else(|| ApiError::not_found(res, name))?;
        let scale = scale_of(res, &obj);
        let m = self.call.method;
        let new_scale = if *m == Method::GET {
            return Ok(json_response(StatusCode::OK, &scale));
        } else if *m == Method::PUT {
            let body = parse_body(self.call.headers, self.call.body)?;
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
            let content_type = media_type(self.call.headers, "");
            let body = parse_body(self.call.headers, self.call.body)?;
            match PatchType::from_content_type(&content_type) {
                Some(PatchType::Json) => stepbox_k8s::patch::json_patch(&scale, &body)
                    .map_err(self.cluster_error(name))?,
                Some(PatchType::Merge | PatchType::StrategicMerge) => {
                    let mut s = scale.clone();
                    stepbox_k8s::ssa::merge_patch(&mut s, &body);
                    s
                }
                _ => return Err(ApiError::unsupported_media_type(&content_type)),
            }
        } else {
            return Err(ApiError::method_not_allowed(self.call.path));
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
            .map_err(self.cluster_error(name))?;
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
