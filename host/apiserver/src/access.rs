//! `SelfSubjectAccessReview`: "may I do this?", as `stepbox check` and
//! `kubectl auth can-i` ask it.
//!
//! The answer comes from the same decision that authorizes requests
//! (`authz`): the dev cluster's administrator (its token or client
//! certificate) may do everything, so `stepbox check` against a dev
//! cluster truthfully reports cluster-wide rights a namespaced worker
//! should not hold; a service account's token is answered from the RBAC
//! objects stored in the cluster. (Behind a gateway's in-process upstream,
//! where no identity is attached, the caller is the gateway itself: the
//! administrator.)

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stepbox_k8s::rbac::Decision;
use stepbox_k8s::request::{RequestAttributes, ResourceAttributes};

use crate::api::AppState;
use crate::auth::Identity;
use crate::body::parse_body;
use crate::status::{ApiError, json_response};

/// The request a review's spec asks about.
fn asked(spec: &Value) -> Result<RequestAttributes, ApiError> {
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let some = |s: String| Some(s).filter(|s| !s.is_empty());
    if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        return Ok(RequestAttributes::Resource(ResourceAttributes {
            verb: text(r, "verb"),
            group: text(r, "group"),
            version: text(r, "version"),
            resource: text(r, "resource"),
            subresource: some(text(r, "subresource")),
            namespace: some(text(r, "namespace")),
            name: some(text(r, "name")),
        }));
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|n| n.is_object()) {
        return Ok(RequestAttributes::NonResource {
            verb: text(n, "verb"),
            path: text(n, "path"),
        });
    }
    Err(ApiError::new(
        422,
        "Invalid",
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \
         \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
    ))
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub async fn self_subject_access_review(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let review = match parse_body(&headers, &body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return ApiError::bad_request("the body is not a SelfSubjectAccessReview object")
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let request = match asked(&spec) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let identity = identity.map_or(Identity::Admin, |Extension(i)| i);
    let decision = crate::authz::decide(state.cluster(), Some(&identity), &request);
    let mut status = json!({"allowed": decision.is_allowed()});
    if !decision.reason().is_empty() {
        status["reason"] = json!(decision.reason());
    }
    if let Decision::Denied(reason) = &decision
        && !reason.is_empty()
    {
        status["evaluationError"] = json!(reason);
    }
    let answer = json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    });
    json_response(StatusCode::CREATED, &answer)
}

/// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews` (`kubectl
/// auth whoami`): who the request is authenticated as.
pub async fn self_subject_review(identity: Option<Extension<Identity>>) -> Response {
    let user = identity.map_or(Identity::Admin, |Extension(i)| i).user();
    json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {"username": user.name, "groups": user.groups}},
        }),
    )
}
