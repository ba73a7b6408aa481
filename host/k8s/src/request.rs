//! What a Kubernetes API request asks for: its verb ([`Verb`]) and what
//! its path names ([`parse_path`]: group, version, namespace, resource,
//! name, subresource), derived as the API server's request-info filter
//! derives them. The API front end routes with this, and admission decides
//! on it.
//!
//! ```
//! use stepbox_k8s::request::{Route, Verb, parse_path};
//!
//! let Some(Route::Resource(t)) = parse_path("/apis/apps/v1/namespaces/dev/deployments/web") else {
//!     panic!()
//! };
//! assert_eq!((t.group.as_str(), t.plural.as_str(), t.name.as_deref()), ("apps", "deployments", Some("web")));
//! assert_eq!(Verb::of_request("PATCH", true, false), Some(Verb::Patch));
//! assert_eq!(Verb::of_request("GET", false, true), Some(Verb::Watch));
//! ```

use std::fmt;

use serde_json::Value;

use crate::ResourceInfo;

/// A request as authorization and admission see it: who asks is known;
/// this is what it asks for.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The verb.
    pub verb: Verb,
    /// The kind (and subresource) it acts on, and its scope.
    pub resource: &'a ResourceInfo,
    /// The namespace it names (in its path or its object); `None` for a
    /// request without one.
    pub namespace: Option<&'a str>,
    /// The object's name, when the request names one.
    pub name: Option<&'a str>,
    /// For a write, the object as it would be stored (a create's or
    /// update's body, a patch applied to the current object).
    pub object: Option<&'a Value>,
}

/// A verb of the Kubernetes API, as RBAC rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    /// `get`
    Get,
    /// `list`
    List,
    /// `watch`
    Watch,
    /// `create`
    Create,
    /// `update`
    Update,
    /// `patch`
    Patch,
    /// `delete`
    Delete,
    /// `deletecollection`
    DeleteCollection,
}

impl Verb {
    /// Every verb, in the order above.
    pub const ALL: [Verb; 8] = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::DeleteCollection,
    ];

    /// The Kubernetes spelling (`"get"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// Parses the Kubernetes spelling.
    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// True for the verbs that change objects.
    pub fn is_write(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }

    /// The verb of a request to a resource path: by HTTP `method`, whether
    /// the path names one object (`has_name`) and whether it asks to
    /// `watch`. `None` for methods the API does not serve.
    pub fn of_request(method: &str, has_name: bool, watch: bool) -> Option<Verb> {
        Some(match (method, has_name) {
            ("GET", _) if watch => Verb::Watch,
            ("GET", true) => Verb::Get,
            ("GET", false) => Verb::List,
            ("POST", _) => Verb::Create,
            ("PUT", _) => Verb::Update,
            ("PATCH", _) => Verb::Patch,
            ("DELETE", true) => Verb::Delete,
            ("DELETE", false) => Verb::DeleteCollection,
            _ => return None,
        })
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request asks for, as authorization sees it: the API server's
/// request info, derived from the method, the path and two query
/// parameters.
///
/// ```
/// use stepbox_k8s::request::RequestAttributes;
///
/// let RequestAttributes::Resource(r) = RequestAttributes::of(
///     "GET", "/apis/stepbox.dev/v1/namespaces/ci/stepruns", true, Some("metadata.name=x"),
/// ) else { panic!() };
/// assert_eq!((r.verb.as_str(), r.resource.as_str(), r.name.as_deref()), ("watch", "stepruns", Some("x")));
/// assert_eq!(RequestAttributes::of("GET", "/apis", false, None).verb(), "get");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAttributes {
    /// A request for objects (a resource path with a verb of the API).
    Resource(ResourceAttributes),
    /// Anything else (discovery, `/version`, `/openapi/...`): its path,
    /// and the lowercased HTTP method as its verb, as RBAC's
    /// `nonResourceURLs` rules see it.
    NonResource {
        /// `get`, `post`, ...
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// The attributes of a request for objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// The verb as RBAC names it: for a request, one of [`Verb`]
    /// (`watch` for `?watch=true`, `list` and `deletecollection` for
    /// requests without a name); an access review may ask about any verb
    /// (`escalate`, `use`, ...).
    pub verb: String,
    /// The API group (`""` for the core group).
    pub group: String,
    /// The version.
    pub version: String,
    /// The resource plural.
    pub resource: String,
    /// The subresource (`status`, `scale`, `token`, ...).
    pub subresource: Option<String>,
    /// The namespace: the path's, or for a path to one namespace, that
    /// namespace (as Kubernetes has it).
    pub namespace: Option<String>,
    /// The object's name: the path's, or for a list or watch, the name an
    /// exact `metadata.name=` field selector names.
    pub name: Option<String>,
}

impl ResourceAttributes {
    /// `resource` or `resource/subresource`, as RBAC rules name it.
    pub fn combined_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        }
    }
}

impl RequestAttributes {
    /// Classifies a request as the API server's request-info filter does:
    /// `method` and `path`, whether the query asks to `watch`, and its
    /// `fieldSelector`.
    pub fn of(method: &str, path: &str, watch: bool, field_selector: Option<&str>) -> Self {
        let non_resource = || Self::NonResource {
            verb: method.to_ascii_lowercase(),
            path: path.to_string(),
        };
        let Some(Route::Resource(t)) = parse_path(path) else {
            return non_resource();
        };
        let Some(verb) = Verb::of_request(method, t.name.is_some(), watch) else {
            return non_resource();
        };
        let mut name = t.name;
        if name.is_none()
            && matches!(verb, Verb::List | Verb::Watch)
            && let Some(Ok(selector)) = field_selector.map(crate::selector::FieldSelector::parse)
        {
            name = selector
                .requirements
                .iter()
                .find(|r| r.field == "metadata.name" && r.equals && !r.value.is_empty())
                .map(|r| r.value.clone());
        }
        let namespace = match (&t.namespace, t.group.as_str(), t.plural.as_str()) {
            (None, "", "namespaces") => name.clone(),
            _ => t.namespace,
        };
        Self::Resource(ResourceAttributes {
            verb: verb.as_str().to_string(),
            group: t.group,
            version: t.version,
            resource: t.plural,
            subresource: t.subresource,
            namespace,
            name,
        })
    }

    /// The verb as RBAC names it (`get`, `watch`, ... or the lowercased
    /// method of a non-resource request).
    pub fn verb(&self) -> &str {
        match self {
            Self::Resource(r) => &r.verb,
            Self::NonResource { verb, .. } => verb,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_round_trip() {
        for v in Verb::ALL {
            assert_eq!(Verb::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verb::parse("Get"), None);
        assert_eq!(
            Verb::of_request("DELETE", false, false),
            Some(Verb::DeleteCollection)
        );
        assert_eq!(Verb::of_request("OPTIONS", true, false), None);
    }

    #[test]
    fn attributes_as_the_api_server_derives_them() {
        let res = |method, path, watch, fields| match RequestAttributes::of(
            method, path, watch, fields,
        ) {
            RequestAttributes::Resource(r) => r,
            other => panic!("{other:?}"),
        };
        let r = res(
            "PATCH",
            "/apis/stepbox.dev/v1/namespaces/ci/stepruns/x/status",
            false,
            None,
        );
        assert_eq!(r.verb, "patch");
        assert_eq!(r.combined_resource(), "stepruns/status");
        assert_eq!(
            (r.namespace.as_deref(), r.name.as_deref()),
            (Some("ci"), Some("x"))
        );
        let r = res(
            "GET",
            "/api/v1/namespaces/ci/configmaps",
            false,
            Some("metadata.name=a,x=y"),
        );
        assert_eq!((r.verb.as_str(), r.name.as_deref()), ("list", Some("a")));
        let r = res(
            "GET",
            "/api/v1/namespaces/ci/configmaps",
            true,
            Some("metadata.name!=a"),
        );
        assert_eq!((r.verb.as_str(), r.name), ("watch", None));
        let r = res("DELETE", "/api/v1/namespaces/ci/pods", false, None);
        assert_eq!(r.verb, "deletecollection");
        // A namespace is in itself.
        let r = res("GET", "/api/v1/namespaces/ci", false, None);
        assert_eq!(
            (r.namespace.as_deref(), r.resource.as_str()),
            (Some("ci"), "namespaces")
        );
        let r = res(
            "POST",
            "/api/v1/namespaces/ci/serviceaccounts/w/token",
            false,
            None,
        );
        assert_eq!(
            (r.verb.as_str(), r.combined_resource().as_str()),
            ("create", "serviceaccounts/token")
        );
        for (method, path) in [
            ("GET", "/version"),
            ("GET", "/apis/apps/v1"),
            ("POST", "/apis"),
            ("OPTIONS", "/api/v1/pods"),
        ] {
            let a = RequestAttributes::of(method, path, false, None);
            assert!(
                matches!(&a, RequestAttributes::NonResource { path: p, .. } if p == path),
                "{a:?}"
            );
            assert_eq!(a.verb(), method.to_ascii_lowercase());
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/version"), None);
        assert_eq!(parse_path("/apis/apps"), Some(Route::Group("apps".into())));
        assert_eq!(
            parse_path("/api/v1"),
            Some(Route::ResourceList(String::new(), "v1".into()))
        );
        let Some(Route::Resource(t)) = parse_path("/api/v1/namespaces/dev") else {
            panic!()
        };
        assert_eq!(
            (t.plural.as_str(), t.name.as_deref(), t.namespace),
            ("namespaces", Some("dev"), None)
        );
        let Some(Route::Resource(t)) = parse_path("/api/v1/namespaces/dev/pods/p/log") else {
            panic!()
        };
        assert_eq!(t.subresource.as_deref(), Some("log"));
        assert_eq!(t.namespace.as_deref(), Some("dev"));
    }
}
