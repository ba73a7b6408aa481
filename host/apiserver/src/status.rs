//! Kubernetes `Status` bodies: what an API server answers instead of an
//! object when a request fails (and for a few successes, like a delete).
//!
//! Clients read `code`, `reason` and `details` to tell "not found" from
//! "conflict": kubectl's `Error from server (NotFound): ...` lines and
//! kube-rs' `Error::Api` come from here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use stepbox_cluster::{ClusterError, ResourceInfo};

/// A failed request, as a Kubernetes `Status` (`kind: Status`, `status:
/// Failure`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status code (also the body's `code`).
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `AlreadyExists`,
    /// `Conflict`, `Invalid`, `Forbidden`, `BadRequest`, `MethodNotAllowed`,
    /// `Gone`, `Expired`, `Unauthorized`, `UnsupportedMediaType`, ...).
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// `details`: the object the error is about (`name`, `group`, `kind`,
    /// `causes`), when known.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with a code, reason and message, and no details.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 404 NotFound for a path that names no resource.
    pub fn not_found_path(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 404 NotFound for one object.
    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} {name:?} not found", res.gr())).about(res, name)
    }

    /// 404 NotFound for a namespace that has no `Namespace` object.
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces {namespace:?} not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(what: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({what})"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// A cluster error about an object of `res` named `name` (empty when
    /// none).
    pub fn from_cluster(err: &ClusterError, res: &ResourceInfo, name: &str) -> Self {
        let e = Self::new(err.http_status(), err.reason(), err.message());
        if let ClusterError::Invalid(m) = err {
            return Self::invalid(m, res);
        }
        let e = if name.is_empty() {
            e
        } else {
            e.about(res, name)
        };
        match err {
            ClusterError::Conflict(m) if m.starts_with("Apply failed") => {
                let causes = conflict_causes(m);
                let mut details = e.details.clone().unwrap_or_else(|| json!({}));
                details["causes"] = Value::Array(causes);
                e.with_details(details)
            }
            _ => e,
        }
    }

    /// 422 Invalid. A message in the API server's field-error shape
    /// (`Kind "name" is invalid: field.path: Forbidden: why`) gets the
    /// details it would have (kind, name, a cause naming the field), which
    /// kubectl prints as `The Kind "name" is invalid: field.path: ...`;
    /// other messages go without details, which kubectl prints as `The
    /// request is invalid: message`.
    fn invalid(message: &str, res: &ResourceInfo) -> Self {
        let e = Self::new(422, "Invalid", message);
        let Some((object, fields)) = message.split_once(" is invalid: ") else {
            return e;
        };
        let (Some((kind, name)), Some((field, cause))) =
            (object.split_once(' '), fields.split_once(": "))
        else {
            return e;
        };
        let Ok(name) = serde_json::from_str::<String>(name) else {
            return e;
        };
        let reason = match cause.split(':').next().unwrap_or_default() {
            "Forbidden" => "FieldValueForbidden",
            "Required value" => "FieldValueRequired",
            "Unsupported value" => "FieldValueNotSupported",
            "Duplicate value" => "FieldValueDuplicate",
            _ => "FieldValueInvalid",
        };
        let mut details = Map::new();
        details.insert("name".into(), json!(name));
        if !res.group.is_empty() {
            details.insert("group".into(), json!(res.group));
        }
        details.insert("kind".into(), json!(kind.split('.').next().unwrap_or(kind)));
        details.insert(
            "causes".into(),
            json!([{"reason": reason, "message": cause, "field": field}]),
        );
        e.with_details(Value::Object(details))
    }

    /// Sets `details` to name the object.
    pub fn about(self, res: &ResourceInfo, name: &str) -> Self {
        let mut d = Map::new();
        d.insert("name".into(), json!(name));
        if !res.group.is_empty() {
            d.insert("group".into(), json!(res.group));
        }
        d.insert(
            "kind".into(),
            json!(res.plural.split('/').next().unwrap_or_default()),
        );
        self.with_details(Value::Object(d))
    }

    /// Sets `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s["code"] = json!(self.code);
        s
    }
}

/// `Apply failed with N conflicts: conflict with "m" using v: .path; ...`
/// as the `causes` Kubernetes lists (`FieldManagerConflict`).
fn conflict_causes(message: &str) -> Vec<Value> {
    let body = message.split_once(": ").map_or("", |(_, rest)| rest);
    let body = body.split(" (apply with force").next().unwrap_or(body);
    body.split("; ")
        .filter_map(|part| {
            let rest = part.strip_prefix("conflict with ")?;
            let (who, field) = rest.rsplit_once(": ")?;
            Some(json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {who}"),
                "field": field,
            }))
        })
        .collect()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_status())
    }
}

/// A JSON response with `Content-Type: application/json`.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The `Status` of a successful delete (`status: Success`) naming the
/// object.
pub fn deleted(res: &ResourceInfo, object: &Value) -> Value {
    let mut details = Map::new();
    details.insert(
        "name".into(),
        json!(stepbox_k8s::object::name(object).unwrap_or_default()),
    );
    if !res.group.is_empty() {
        details.insert("group".into(), json!(res.group));
    }
    details.insert("kind".into(), json!(res.plural));
    if let Some(uid) = object.pointer("/metadata/uid") {
        details.insert("uid".into(), uid.clone());
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepbox_k8s::resources::lookup;

    #[test]
    fn status_bodies() {
        let res = lookup("apps/v1", "Deployment");
        let s = ApiError::not_found(&res, "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(
            s["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let s = ApiError::unauthorized().to_status();
        assert_eq!(s["code"], 401);
        assert!(s.get("details").is_none());
        let e = ApiError::from_cluster(
            &ClusterError::Conflict(
                "Apply failed with 2 conflicts: conflict with \"a\" using apps/v1: .spec.replicas; conflict with \"b\" using apps/v1: .spec.x (apply with force to take ownership, or leave the fields out)".into(),
            ),
            &res,
            "web",
        );
        let causes = &e.to_status()["details"]["causes"];
        assert_eq!(causes[0]["field"], ".spec.replicas");
        assert_eq!(causes[1]["message"], "conflict with \"b\" using apps/v1");
        assert_eq!(e.code, 409);
        let e = ApiError::from_cluster(
            &ClusterError::Invalid(
                "Deployment.apps \"web\" is invalid: metadata.finalizers: Forbidden: no new finalizers".into(),
            ),
            &res,
            "web",
        );
        assert_eq!(
            e.to_status()["details"],
            json!({"name": "web", "group": "apps", "kind": "Deployment", "causes": [{
                "reason": "FieldValueForbidden", "message": "Forbidden: no new finalizers",
                "field": "metadata.finalizers"}]})
        );
        let e = ApiError::from_cluster(
            &ClusterError::Invalid("the patch does not apply".into()),
            &res,
            "web",
        );
        assert_eq!((e.code, e.details), (422, None));
        let ok = deleted(&res, &json!({"metadata": {"name": "web", "uid": "u"}}));
        assert_eq!(ok["status"], "Success");
        assert_eq!(ok["details"]["uid"], "u");
    }
}
