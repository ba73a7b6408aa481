//! Request bodies: decoding them into objects (JSON, YAML, or protobuf for
//! the kinds kubectl's typed commands send) and the defaults the API server
//! fills in.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::{Value, json};
use stepbox_k8s::ResourceInfo;

use crate::protobuf;
use crate::status::ApiError;

/// The media type of a request's `Content-Type` (lowercase, without
/// parameters); `default` when it has none.
pub fn media_type(headers: &HeaderMap, default: &str) -> String {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default);
    stepbox_k8s::patch::media_type(content_type)
}

/// The body of a request as JSON: JSON, YAML for the YAML media types, or
/// [protobuf](crate::protobuf) for the kinds kubectl's typed commands send.
pub(crate) fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let mime = media_type(headers, "application/json");
    if body.is_empty() {
        return Err(ApiError::bad_request("the request has no body"));
    }
    match mime.as_str() {
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the YAML body is not UTF-8"))?;
            let mut docs = stepbox_k8s::manifest::parse_documents(text)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            match docs.len() {
                1 => Ok(docs.remove(0)),
                n => Err(ApiError::bad_request(format!(
                    "expected one YAML document in the body, found {n}"
                ))),
            }
        }
        "application/json"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/apply-patch+json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"))),
        protobuf::MEDIA_TYPE => protobuf::decode(body).map_err(|e| match e {
            protobuf::ProtobufError::Unsupported { .. } => {
                ApiError::new(415, "UnsupportedMediaType", e.to_string())
            }
            protobuf::ProtobufError::Malformed(_) => ApiError::bad_request(e.to_string()),
        }),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// The defaults the API server fills in on writes that the rest of the
/// server relies on: a Secret's `type` is `Opaque` unless set.
pub(crate) fn apply_defaults(res: &ResourceInfo, obj: &mut Value) {
    if res.is("", "Secret")
        && let Some(m) = obj.as_object_mut()
        && m.get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        m.insert("type".into(), json!("Opaque"));
    }
}
