//! What a request names ([`stepbox_k8s::request`]) and its Kubernetes
//! attributes: as authorization sees them ([`attributes`]), and as the
//! request log and the fault matchers see them ([`RequestInfo`]), both
//! derived once, by [`RequestAttributes::of`].

use axum::http::{Method, Uri};
use serde::Serialize;
use stepbox_k8s::request::RequestAttributes;
pub use stepbox_k8s::request::{Route, Target, parse_path};

/// The attributes of a request: its method, path and the query's `watch`
/// and `fieldSelector`.
pub fn attributes(method: &Method, uri: &Uri) -> RequestAttributes {
    let (mut watch, mut fields) = (false, None);
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "watch" => watch = v == "true" || v == "1",
            "fieldSelector" => fields = Some(v.into_owned()),
            _ => {}
        }
    }
    RequestAttributes::of(method.as_str(), uri.path(), watch, fields.as_deref())
}

/// The Kubernetes attributes of a request, as the request log shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestInfo {
    /// The Kubernetes verb (the lowercased method for non-resource paths
    /// such as discovery).
    pub verb: String,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The resource plural; `""` for non-resource paths.
    pub resource: String,
    /// The namespace in the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object name in the path (or in an exact `metadata.name` field
    /// selector of a list or watch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl RequestInfo {
    /// Classifies a request as the API server's request-info filter does.
    pub fn of(method: &Method, uri: &Uri) -> Self {
        match attributes(method, uri) {
            RequestAttributes::Resource(r) => Self {
                verb: r.verb,
                group: r.group,
                resource: r.resource,
                namespace: r.namespace,
                name: r.name,
            },
            RequestAttributes::NonResource { verb, .. } => Self {
                verb,
                group: String::new(),
                resource: String::new(),
                namespace: None,
                name: None,
            },
        }
    }

    /// True for create, update, patch, delete and deletecollection.
    pub fn is_write(&self) -> bool {
        stepbox_k8s::request::Verb::parse(&self.verb)
            .is_some_and(stepbox_k8s::request::Verb::is_write)
    }
}
