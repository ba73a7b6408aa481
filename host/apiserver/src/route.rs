//! What a request names ([`stepbox_k8s::request`]) and its Kubernetes
//! attributes as the request log and the fault matchers see them
//! ([`RequestInfo`]).

use axum::http::{Method, Uri};
use serde::Serialize;
use stepbox_k8s::request::Verb;
pub use stepbox_k8s::request::{Route, Target, parse_path};

/// The Kubernetes attributes of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestInfo {
    /// The Kubernetes verb (`get` for discovery and other non-resource
    /// paths).
    pub verb: String,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The resource plural; `""` for non-resource paths.
    pub resource: String,
    /// The namespace in the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object name in the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl RequestInfo {
    /// Classifies a request as the API server's request-info filter does.
    pub fn of(method: &Method, uri: &Uri) -> Self {
        let query = uri.query().unwrap_or_default();
        let watch = form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
        let Some(Route::Resource(t)) = parse_path(uri.path()) else {
            return Self {
                verb: "get".into(),
                group: String::new(),
                resource: String::new(),
                namespace: None,
                name: None,
            };
        };
        let verb = Verb::of_request(method.as_str(), t.name.is_some(), watch)
            .map_or("unknown", Verb::as_str);
        Self {
            verb: verb.into(),
            group: t.group,
            resource: t.plural,
            namespace: t.namespace,
            name: t.name,
        }
    }

    /// True for create, update, patch, delete and deletecollection.
    pub fn is_write(&self) -> bool {
        Verb::parse(&self.verb).is_some_and(Verb::is_write)
    }
}
