//! `SelfSubjectAccessReview`: "may I do this?", as `stepbox check` and
//! `kubectl auth can-i` ask it.
//!
//! The dev cluster has one kind of client: whoever holds its token or its
//! client certificate, and that client may do everything (it is the
//! cluster's administrator). The review answers accordingly, so
//! `stepbox check` against a dev cluster truthfully reports cluster-wide
//! rights a namespaced worker should not hold.

use axum::Json;
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::status::ApiError;

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub async fn self_subject_access_review(body: Bytes) -> Response {
    let review: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return ApiError::bad_request("the body is not a SelfSubjectAccessReview object")
                .into_response();
        }
    };
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    if spec.get("resourceAttributes").is_none() && spec.get("nonResourceAttributes").is_none() {
        return ApiError::bad_request(
            "spec.resourceAttributes or spec.nonResourceAttributes is required",
        )
        .into_response();
    }
    let answer = json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": {
            "allowed": true,
            "reason": "stepbox dev-cluster: its token and client certificate are the cluster administrator",
        },
    });
    (axum::http::StatusCode::CREATED, Json(answer)).into_response()
}
