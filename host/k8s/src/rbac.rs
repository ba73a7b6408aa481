//! Kubernetes RBAC as the API server's authorizer evaluates it: the rules
//! of Roles and ClusterRoles ([`PolicyRule`], with the one set of matching
//! functions every layer uses), who a binding names, and the decision for
//! one request ([`authorize`]) over a set of stored RBAC objects
//! ([`RbacObjects`]), worded as a real server words it
//! ([`forbidden_message`]).
//!
//! What it follows from Kubernetes' `rbac` authorizer:
//!
//! - a request is allowed when one rule of one role bound to the user
//!   allows it; nothing denies;
//! - ClusterRoleBindings grant everywhere, RoleBindings (to a Role of their
//!   namespace, or to a ClusterRole) in their namespace only, and only
//!   ClusterRoleBindings grant `nonResourceURLs`;
//! - a rule matches verbs, apiGroups and resources exactly or by `*`;
//!   `*/status`-style entries match a subresource of any resource;
//!   `resourceNames` match only requests that name an object (never a
//!   create or an unnamed list); `nonResourceURLs` match exactly or by a
//!   trailing `*`;
//! - a ServiceAccount subject without a namespace means the binding's;
//! - ClusterRoles with an `aggregationRule` also hold the rules of the
//!   ClusterRoles its selectors match (what Kubernetes' aggregation
//!   controller writes into them);
//! - the bootstrap grants of every cluster, which are not stored objects
//!   here: discovery, `/version`, health and OpenAPI paths and the
//!   self-reviews (`SelfSubjectAccessReview`, `SelfSubjectRulesReview`,
//!   `SelfSubjectReview`) for every authenticated user (Kubernetes'
//!   `system:discovery`, `system:basic-user` and
//!   `system:public-info-viewer`).
//!
//! ```
//! use serde_json::json;
//! use stepbox_k8s::rbac::{self, Decision, RbacObjects, UserInfo};
//! use stepbox_k8s::request::RequestAttributes;
//!
//! let objects = RbacObjects {
//!     roles: vec![json!({"metadata": {"name": "runs", "namespace": "ci"},
//!         "rules": [{"apiGroups": ["stepbox.dev"], "resources": ["stepruns", "stepruns/status"], "verbs": ["get", "patch"]}]})],
//!     role_bindings: vec![json!({"metadata": {"name": "worker", "namespace": "ci"},
//!         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runs"},
//!         "subjects": [{"kind": "ServiceAccount", "name": "worker"}]})],
//!     ..RbacObjects::default()
//! };
//! let worker = UserInfo::service_account("ci", "worker");
//! let patch = RequestAttributes::of("PATCH", "/apis/stepbox.dev/v1/namespaces/ci/stepruns/x/status", false, None);
//! assert!(rbac::authorize(&objects, &worker, &patch).is_allowed());
//! let delete = RequestAttributes::of("DELETE", "/apis/stepbox.dev/v1/namespaces/ci/stepruns/x", false, None);
//! let Decision::Denied(reason) = rbac::authorize(&objects, &worker, &delete) else { panic!() };
//! assert_eq!(
//!     rbac::forbidden_message(&worker, &delete, &reason),
//!     "stepruns.stepbox.dev \"x\" is forbidden: User \"system:serviceaccount:ci:worker\" cannot delete \
//!      resource \"stepruns\" in API group \"stepbox.dev\" in the namespace \"ci\""
//! );
//! ```

use serde_json::Value;

use crate::request::{RequestAttributes, ResourceAttributes};
use crate::selector::LabelSelector;

/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// The group of every service account.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    /// Verbs (`get`, ..., `*`).
    pub verbs: Vec<String>,
    /// API groups (`""` for core, `*` for all).
    pub api_groups: Vec<String>,
    /// Resources (`deployments`, `deployments/scale`, `*`, `*/scale`).
    pub resources: Vec<String>,
    /// When non-empty, only requests naming one of these objects.
    pub resource_names: Vec<String>,
    /// Non-resource paths (`/healthz`, `/apis/*`, `*`).
    pub non_resource_urls: Vec<String>,
}

/// A rule that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be a list of strings, found {found}")]
pub struct RuleError {
    /// The field (`verbs`, `apiGroups`, ...).
    pub field: &'static str,
    /// What was there instead.
    pub found: String,
}

impl PolicyRule {
    /// Reads a rule as a Role stores it (`verbs`, `apiGroups`,
    /// `resources`, `resourceNames`, `nonResourceURLs`; a missing field is
    /// empty).
    ///
    /// # Errors
    /// [`RuleError`] naming a field that is not a list of strings.
    pub fn parse(rule: &Value) -> Result<Self, RuleError> {
        let list = |field: &'static str| -> Result<Vec<String>, RuleError> {
            let error = |found: &Value| RuleError {
                field,
                found: crate::object::type_name(found).to_string(),
            };
            match rule.get(field) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or_else(|| error(v)))
                    .collect(),
                Some(other) => Err(error(other)),
            }
        };
        Ok(Self {
            verbs: list("verbs")?,
            api_groups: list("apiGroups")?,
            resources: list("resources")?,
            resource_names: list("resourceNames")?,
            non_resource_urls: list("nonResourceURLs")?,
        })
    }

    /// True when the rule allows `request` (Kubernetes' `RuleAllows`).
    pub fn allows(&self, request: &RequestAttributes) -> bool {
        match request {
            RequestAttributes::Resource(r) => self.allows_resource(r),
            RequestAttributes::NonResource { verb, path } => {
                verb_matches(&self.verbs, verb)
                    && non_resource_url_matches(&self.non_resource_urls, path)
            }
        }
    }

    fn allows_resource(&self, r: &ResourceAttributes) -> bool {
        verb_matches(&self.verbs, &r.verb)
            && api_group_matches(&self.api_groups, &r.group)
            && resource_matches(&self.resources, &r.combined_resource())
            && resource_name_matches(&self.resource_names, r.name.as_deref())
    }
}

/// True when `verbs` (a rule's) grant `verb`: by name or `*`.
pub fn verb_matches(verbs: &[String], verb: &str) -> bool {
    verbs.iter().any(|v| v == "*" || v == verb)
}

/// True when `groups` (a rule's) grant API group `group`: by name or `*`.
pub fn api_group_matches(groups: &[String], group: &str) -> bool {
    groups.iter().any(|g| g == "*" || g == group)
}

/// True when `resources` (a rule's) grant `resource`, a plural or
/// `plural/subresource`: exactly, by `*`, or by `*/subresource` for a
/// subresource of any resource.
pub fn resource_matches(resources: &[String], resource: &str) -> bool {
    let sub = resource.split_once('/').map(|(_, s)| s);
    resources.iter().any(|r| {
        r == "*"
            || r == resource
            || matches!((r.strip_prefix("*/"), sub), (Some(want), Some(have)) if want == have)
    })
}

/// True when `names` (a rule's `resourceNames`) allow a request naming
/// `name`: any request when empty, else only one naming a listed object.
pub fn resource_name_matches(names: &[String], name: Option<&str>) -> bool {
    names.is_empty() || name.is_some_and(|n| names.iter().any(|r| r == n))
}

/// True when `urls` (a rule's `nonResourceURLs`) grant `path`: exactly, by
/// `*`, or by a prefix ending in `*`.
pub fn non_resource_url_matches(urls: &[String], path: &str) -> bool {
    urls.iter().any(|u| {
        u == "*"
            || u == path
            || u.strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// Who makes a request, as authentication found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`system:serviceaccount:NS:NAME` for a service
    /// account).
    pub name: String,
    /// The groups.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The identity of service account `name` of namespace `namespace`:
    /// user `system:serviceaccount:NS:NAME`, groups
    /// `system:serviceaccounts`, `system:serviceaccounts:NS` and
    /// `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                SERVICE_ACCOUNTS_GROUP.to_string(),
                format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
                AUTHENTICATED_GROUP.to_string(),
            ],
        }
    }

    fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// True when a binding's `subject` names this user (a ServiceAccount
    /// subject without a namespace means `binding_namespace`).
    fn is(&self, subject: &Value, binding_namespace: &str) -> bool {
        let field = |k: &str| subject.get(k).and_then(Value::as_str).unwrap_or("");
        match field("kind") {
            "User" => self.name == field("name"),
            "Group" => self.in_group(field("name")),
            "ServiceAccount" => {
                let ns = Some(field("namespace"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or(binding_namespace);
                !ns.is_empty()
                    && self.name == format!("system:serviceaccount:{ns}:{}", field("name"))
            }
            _ => false,
        }
    }
}

/// The RBAC objects a decision is made over, as stored (JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RbacObjects {
    /// Roles of every namespace.
    pub roles: Vec<Value>,
    /// RoleBindings of every namespace.
    pub role_bindings: Vec<Value>,
    /// ClusterRoles.
    pub cluster_roles: Vec<Value>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<Value>,
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; why (`RBAC: allowed by RoleBinding "b/ns" of Role "r" to
    /// ServiceAccount "sa/ns"`).
    Allowed(String),
    /// Not allowed; what went wrong on the way (`RBAC: role.rbac... "x"
    /// not found`), empty when simply nothing grants it.
    Denied(String),
}

impl Decision {
    /// True for [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed(_))
    }

    /// The reason, allowed or not.
    pub fn reason(&self) -> &str {
        match self {
            Self::Allowed(r) | Self::Denied(r) => r,
        }
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn rules_of(role: &Value) -> Vec<PolicyRule> {
    role.get("rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .filter_map(|r| PolicyRule::parse(r).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The bootstrap grants of every cluster (see the [module docs](self)),
/// with the ClusterRole that holds each in Kubernetes.
fn bootstrap(user: &UserInfo) -> Vec<(&'static str, PolicyRule)> {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let mut out = vec![(
        "system:public-info-viewer",
        PolicyRule {
            verbs: strings(&["get"]),
            non_resource_urls: strings(&["/healthz", "/livez", "/readyz", "/version", "/version/"]),
            ..PolicyRule::default()
        },
    )];
    if user.in_group(AUTHENTICATED_GROUP) {
        out.push((
            "system:discovery",
            PolicyRule {
                verbs: strings(&["get"]),
                non_resource_urls: strings(&[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ]),
                ..PolicyRule::default()
            },
        ));
        out.push((
            "system:basic-user",
            PolicyRule {
                verbs: strings(&["create"]),
                api_groups: strings(&["authorization.k8s.io"]),
                resources: strings(&["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                ..PolicyRule::default()
            },
        ));
        out.push((
            "system:basic-user",
            PolicyRule {
                verbs: strings(&["create"]),
                api_groups: strings(&["authentication.k8s.io"]),
                resources: strings(&["selfsubjectreviews"]),
                ..PolicyRule::default()
            },
        ));
    }
    out
}

/// `Kind "name"` of a subject, as Kubernetes' reasons describe it.
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let kind = text(subject, "/kind");
    let name = text(subject, "/name");
    if kind == "ServiceAccount" {
        let ns = Some(text(subject, "/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        return format!("{kind} {:?}", format!("{name}/{ns}"));
    }
    format!("{kind} {name:?}")
}

impl RbacObjects {
    fn cluster_role(&self, name: &str) -> Option<&Value> {
        self.cluster_roles
            .iter()
            .find(|r| text(r, "/metadata/name") == name)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<&Value> {
        self.roles.iter().find(|r| {
            text(r, "/metadata/name") == name && text(r, "/metadata/namespace") == namespace
        })
    }

    /// A ClusterRole's rules, with those of the ClusterRoles its
    /// `aggregationRule` selects.
    fn cluster_role_rules(&self, role: &Value) -> Vec<PolicyRule> {
        let mut rules = rules_of(role);
        let selectors: Vec<LabelSelector> = role
            .pointer("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|v| LabelSelector::from_object(v).ok())
                    .collect()
            })
            .unwrap_or_default();
        if selectors.is_empty() {
            return rules;
        }
        let own = text(role, "/metadata/name");
        for other in &self.cluster_roles {
            if text(other, "/metadata/name") != own
                && selectors.iter().any(|s| s.matches_value(other))
            {
                rules.extend(rules_of(other));
            }
        }
        rules
    }

    /// The rules a binding's `roleRef` names, or the error Kubernetes
    /// reports when the role is missing. `namespace` is the binding's
    /// (`""` for a ClusterRoleBinding).
    fn referenced_rules(
        &self,
        binding: &Value,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        let (kind, name) = (
            text(binding, "/roleRef/kind"),
            text(binding, "/roleRef/name"),
        );
        match kind {
            "ClusterRole" => self
                .cluster_role(name)
                .map(|r| self.cluster_role_rules(r))
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {name:?} not found")),
            "Role" if !namespace.is_empty() => self
                .role(namespace, name)
                .map(rules_of)
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io {name:?} not found")),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }
}

/// Decides whether `user` may make `request`, over `objects` and the
/// bootstrap grants (see the [module docs](self)).
pub fn authorize(objects: &RbacObjects, user: &UserInfo, request: &RequestAttributes) -> Decision {
    for (role, rule) in bootstrap(user) {
        if rule.allows(request) {
            let group = if role == "system:public-info-viewer" {
                "system:unauthenticated"
            } else {
                AUTHENTICATED_GROUP
            };
            return Decision::Allowed(format!(
                "RBAC: allowed by ClusterRoleBinding {role:?} of ClusterRole {role:?} to Group {group:?}"
            ));
        }
    }
    let mut errors = Vec::new();
    let bindings = objects
        .cluster_role_bindings
        .iter()
        .map(|b| (b, "", "ClusterRoleBinding"))
        .chain(
            match request {
                RequestAttributes::Resource(r) => r.namespace.as_deref().filter(|n| !n.is_empty()),
                RequestAttributes::NonResource { .. } => None,
            }
            .into_iter()
            .flat_map(|ns| {
                objects
                    .role_bindings
                    .iter()
                    .filter(move |b| text(b, "/metadata/namespace") == ns)
                    .map(move |b| (b, ns, "RoleBinding"))
            }),
        );
    for (binding, ns, what) in bindings {
        let Some(subject) = binding
            .get("subjects")
            .and_then(Value::as_array)
            .and_then(|subjects| subjects.iter().find(|s| user.is(s, ns)))
        else {
            continue;
        };
        let rules = match objects.referenced_rules(binding, ns) {
            Ok(rules) => rules,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if rules.iter().any(|r| r.allows(request)) {
            let name = text(binding, "/metadata/name");
            let name = if ns.is_empty() {
                name.to_string()
            } else {
                format!("{name}/{ns}")
            };
            return Decision::Allowed(format!(
                "RBAC: allowed by {what} {name:?} of {} {:?} to {}",
                text(binding, "/roleRef/kind"),
                text(binding, "/roleRef/name"),
                describe_subject(subject, ns)
            ));
        }
    }
    Decision::Denied(match errors.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", errors[0]),
        _ => format!("RBAC: [{}]", errors.join(", ")),
    })
}

/// The message of a `403 Forbidden` for `request` by `user`, in the API
/// server's words (`reason` from [`Decision::Denied`], appended when not
/// empty).
pub fn forbidden_message(user: &UserInfo, request: &RequestAttributes, reason: &str) -> String {
    let (what, cause) = match request {
        RequestAttributes::NonResource { verb, path } => (
            String::new(),
            format!("User {:?} cannot {verb} path {path:?}", user.name),
        ),
        RequestAttributes::Resource(r) => {
            let scope = match r.namespace.as_deref().filter(|n| !n.is_empty()) {
                Some(ns) => format!("in the namespace {ns:?}"),
                None => "at the cluster scope".to_string(),
            };
            let gr = if r.group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.group)
            };
            let what = match r.name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{gr} {name:?} is "),
                None => format!("{gr} is "),
            };
            (
                what,
                format!(
                    "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
                    user.name,
                    r.verb,
                    r.combined_resource(),
                    r.group
                ),
            )
        }
    };
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    format!("{what}forbidden: {cause}{reason}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    fn req(method: &str, path: &str) -> RequestAttributes {
        RequestAttributes::of(method, path, false, None)
    }

    #[test]
    fn rule_matching() {
        assert!(resource_matches(
            &strings(&["*/scale"]),
            "deployments/scale"
        ));
        assert!(!resource_matches(&strings(&["*/scale"]), "deployments"));
        assert!(!resource_matches(
            &strings(&["deployments"]),
            "deployments/scale"
        ));
        assert!(resource_matches(&strings(&["*"]), "pods/log"));
        assert!(!resource_matches(&strings(&["*/status"]), "pods/log"));
        assert!(non_resource_url_matches(
            &strings(&["/apis/*"]),
            "/apis/apps/v1"
        ));
        assert!(!non_resource_url_matches(
            &strings(&["/apis"]),
            "/apis/apps"
        ));
        assert!(resource_name_matches(&[], None));
        assert!(!resource_name_matches(&strings(&["a"]), None));
        assert!(resource_name_matches(&strings(&["a"]), Some("a")));
        assert!(verb_matches(&strings(&["*"]), "deletecollection"));
        assert!(!api_group_matches(&strings(&[""]), "apps"));

        let rule = PolicyRule::parse(&json!({"apiGroups": [""], "resources": ["configmaps"],
            "verbs": ["get", "watch", "list"], "resourceNames": ["report"]}))
        .unwrap();
        assert!(rule.allows(&req("GET", "/api/v1/namespaces/ci/configmaps/report")));
        assert!(!rule.allows(&req("GET", "/api/v1/namespaces/ci/configmaps/other")));
        assert!(!rule.allows(&req("GET", "/api/v1/namespaces/ci/configmaps")));
        // A watch of one object by field selector names it.
        assert!(rule.allows(&RequestAttributes::of(
            "GET",
            "/api/v1/namespaces/ci/configmaps",
            true,
            Some("metadata.name=report")
        )));
        let err = PolicyRule::parse(&json!({"verbs": "get"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "verbs must be a list of strings, found a string"
        );
    }

    fn objects() -> RbacObjects {
        RbacObjects {
            roles: vec![json!({"metadata": {"name": "edit-runs", "namespace": "ci"},
                "rules": [{"apiGroups": ["stepbox.dev"], "resources": ["stepruns"], "verbs": ["*"]}]})],
            role_bindings: vec![
                json!({"metadata": {"name": "worker", "namespace": "ci"},
                    "roleRef": {"kind": "Role", "name": "edit-runs"},
                    "subjects": [{"kind": "ServiceAccount", "name": "worker"}]}),
                json!({"metadata": {"name": "viewers", "namespace": "ci"},
                    "roleRef": {"kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ci"}]}),
                json!({"metadata": {"name": "dangling", "namespace": "ci"},
                    "roleRef": {"kind": "Role", "name": "missing"},
                    "subjects": [{"kind": "User", "name": "system:serviceaccount:ci:worker"}]}),
            ],
            cluster_roles: vec![
                json!({"metadata": {"name": "view"},
                    "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "view"}}]}}),
                json!({"metadata": {"name": "view-cms", "labels": {"agg": "view"}},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
                json!({"metadata": {"name": "nodes"},
                    "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
                              {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}),
            ],
            cluster_role_bindings: vec![json!({"metadata": {"name": "ops-nodes"},
                "roleRef": {"kind": "ClusterRole", "name": "nodes"},
                "subjects": [{"kind": "ServiceAccount", "name": "ops", "namespace": "ops"}]})],
        }
    }

    #[test]
    fn bindings_grant_where_they_apply() {
        let o = objects();
        let worker = UserInfo::service_account("ci", "worker");
        let other_ns = UserInfo::service_account("prod", "worker");
        let ops = UserInfo::service_account("ops", "ops");
        let runs = req("DELETE", "/apis/stepbox.dev/v1/namespaces/ci/stepruns/x");
        let d = authorize(&o, &worker, &runs);
        assert_eq!(
            d.reason(),
            "RBAC: allowed by RoleBinding \"worker/ci\" of Role \"edit-runs\" to ServiceAccount \"worker/ci\""
        );
        assert!(!authorize(&o, &other_ns, &runs).is_allowed());
        // Through a group, and an aggregated ClusterRole.
        assert!(
            authorize(&o, &worker, &req("GET", "/api/v1/namespaces/ci/configmaps")).is_allowed()
        );
        assert!(
            !authorize(
                &o,
                &worker,
                &req("GET", "/api/v1/namespaces/prod/configmaps")
            )
            .is_allowed()
        );
        // A RoleBinding does not reach the cluster scope or subresources not listed.
        assert!(!authorize(&o, &worker, &req("GET", "/api/v1/configmaps")).is_allowed());
        let status = req(
            "PATCH",
            "/apis/stepbox.dev/v1/namespaces/ci/stepruns/x/status",
        );
        let Decision::Denied(reason) = authorize(&o, &worker, &status) else {
            panic!()
        };
        assert_eq!(
            reason,
            "RBAC: role.rbac.authorization.k8s.io \"missing\" not found"
        );
        assert_eq!(
            forbidden_message(&worker, &status, &reason),
            "stepruns.stepbox.dev \"x\" is forbidden: User \"system:serviceaccount:ci:worker\" cannot patch resource \
             \"stepruns/status\" in API group \"stepbox.dev\" in the namespace \"ci\": RBAC: role.rbac.authorization.k8s.io \
             \"missing\" not found"
        );
        // ClusterRoleBindings: resources everywhere, and non-resource URLs.
        assert!(authorize(&o, &ops, &req("GET", "/api/v1/nodes")).is_allowed());
        assert!(authorize(&o, &ops, &req("GET", "/metrics")).is_allowed());
        assert!(!authorize(&o, &worker, &req("GET", "/metrics")).is_allowed());
        assert_eq!(
            forbidden_message(&worker, &req("GET", "/metrics"), ""),
            "forbidden: User \"system:serviceaccount:ci:worker\" cannot get path \"/metrics\""
        );
        assert_eq!(
            forbidden_message(&worker, &req("GET", "/api/v1/nodes"), ""),
            "nodes is forbidden: User \"system:serviceaccount:ci:worker\" cannot list resource \"nodes\" in API group \
             \"\" at the cluster scope"
        );
    }

    #[test]
    fn every_authenticated_user_may_discover_and_ask() {
        let nobody = RbacObjects::default();
        let worker = UserInfo::service_account("ci", "worker");
        for path in [
            "/api",
            "/apis/apps/v1",
            "/version",
            "/openapi/v3/apis/apps/v1",
            "/healthz",
        ] {
            assert!(
                authorize(&nobody, &worker, &req("GET", path)).is_allowed(),
                "{path}"
            );
        }
        assert!(
            authorize(
                &nobody,
                &worker,
                &req(
                    "POST",
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
                )
            )
            .is_allowed()
        );
        assert!(
            !authorize(&nobody, &worker, &req("GET", "/api/v1/namespaces/ci/pods")).is_allowed()
        );
        let anonymous = UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        };
        assert!(authorize(&nobody, &anonymous, &req("GET", "/version")).is_allowed());
        assert!(!authorize(&nobody, &anonymous, &req("GET", "/apis")).is_allowed());
    }
}
