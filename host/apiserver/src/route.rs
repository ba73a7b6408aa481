//! What a request names: its path split into group, version, namespace,
//! resource, name and subresource ([`parse_path`]), and the request's
//! Kubernetes attributes (verb, resource, namespace, name: [`RequestInfo`]),
//! as the API server's request-info filter derives them. Routing, the
//! request log and fault matching all read requests through here.

use axum::http::{Method, Uri};
use serde::Serialize;

/// A resource path, split up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The API group (`""` for the core group).
    pub group: String,
    /// The version.
    pub version: String,
    /// The namespace, for namespaced paths.
    pub namespace: Option<String>,
    /// The resource plural.
    pub plural: String,
    /// The object's name, for paths to one object.
    pub name: Option<String>,
    /// The subresource (`status`, `scale`, ...).
    pub subresource: Option<String>,
}

/// What an `/api` or `/apis` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/apis/{group}`: a group's discovery document.
    Group(String),
    /// `/api/{version}` or `/apis/{group}/{version}`: a resource list
    /// (group, version).
    ResourceList(String, String),
    /// A resource path.
    Resource(Target),
}

/// Splits an `/api/...` or `/apis/...` path; `None` for other paths.
pub fn parse_path(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Some(Route::Group((*group).to_string())),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..]
            if !(more.is_empty() && matches!(*plural, "status" | "finalize")) =>
        {
            (Some((*ns).to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(more);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let target = |plural: &str, name: Option<&str>, sub: Option<&str>| Target {
        group: group.to_string(),
        version: version.to_string(),
        namespace: namespace.clone(),
        plural: plural.to_string(),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    };
    Some(match rest.as_slice() {
        [] => Route::ResourceList(group.to_string(), version.to_string()),
        [plural] => Route::Resource(target(plural, None, None)),
        [plural, name] => Route::Resource(target(plural, Some(name), None)),
        [plural, name, sub] => Route::Resource(target(plural, Some(name), Some(sub))),
        _ => return None,
    })
}

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
        let verb = match (method, t.name.is_some()) {
            (&Method::GET, true) => "get",
            (&Method::GET, false) if watch => "watch",
            (&Method::GET, false) => "list",
            (&Method::POST, _) => "create",
            (&Method::PUT, _) => "update",
            (&Method::PATCH, _) => "patch",
            (&Method::DELETE, true) => "delete",
            (&Method::DELETE, false) => "deletecollection",
            _ => "unknown",
        };
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
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}
