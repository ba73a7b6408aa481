//! What a run may do: RBAC-shaped rules plus resource limits.
//!
//! A step policy reads like a Kubernetes `Role` with a few extra fields:
//!
//! ```yaml
//! apiVersion: stepbox.dev/v1alpha1
//! kind: StepPolicy
//! namespace: my-ns        # optional; the run's namespace when --namespace is not given
//! requireDigest: true     # optional; steps and packages from a registry only by digest
//! podSecurity: baseline   # optional; privileged, baseline (the default) or restricted
//! rules:                   # like a Kubernetes Role's rules (required; [] grants nothing)
//!   - apiGroups: ["", "apps"]
//!     resources: ["configmaps", "deployments", "deployments/scale"]
//!     verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
//!     resourceNames: []   # optional
//! limits:                  # optional; each field defaults as in `Limits::default()`
//!   memory: 256Mi         # bytes, or a number with Ki/Mi/Gi/Ti (1024) or K/M/G/T (1000)
//!   timeout: 10m          # humantime ("90s", "1h 30m") or seconds
//!   logBytes: 1Mi
//!   outputBytes: 256Ki
//!   workspaceBytes: 1Gi   # bytes the run may add to /workspace
//!   workspaceFiles: 100000 # files and directories the run may add to /workspace
//!   httpRequestBytes: 1Mi # body of one outbound HTTP request
//!   httpResponseBytes: 16Mi # body of one outbound HTTP response
//!   httpTimeout: 30s      # one outbound HTTP request, connect to last byte
//! outbound:                # optional; HTTP destinations (see [`outbound`]); none by default
//!   - https://api.example.com
//! ```
//!
//! [`Policy::check`] decides one call. In order:
//!
//! 1. a cluster-scoped kind is refused (steps only touch namespaced objects;
//!    the one exception, CustomResourceDefinitions, is
//!    [`Policy::allows_crds`], which only a rule naming them literally
//!    grants, by any path: `kube.apply`, a helm chart's `crds/`);
//! 2. an object naming a namespace other than the run's is refused;
//! 3. some rule must grant the verb on the resource, with RBAC's matching:
//!    `*` wildcards in `apiGroups`, `resources` and `verbs`; resources may
//!    name subresources (`deployments/scale`, `*/scale`); `resourceNames`
//!    restricts a rule to those names, and such a rule never grants a request
//!    without a name (`list`, `watch`) nor `create` (as in RBAC, a create
//!    cannot be restricted by name).
//!
//!
//! [`Policy::check_object`] then looks inside what a step writes, for the
//! objects that grant permissions of their own, so a policy that lets a step
//! manage RBAC objects does not let it escalate:
//!
//! - a `Role` may not use `*` (in apiGroups, resources or verbs), may not
//!   list `nonResourceURLs`, and may grant only what the policy itself
//!   grants;
//! - a `RoleBinding` may only bind a `Role` (not a `ClusterRole`), and its
//!   subjects may not reach beyond the run's namespace (a ServiceAccount of
//!   another namespace, or a `system:` group or user spanning namespaces);
//! - a `Secret` of type `kubernetes.io/service-account-token` is refused:
//!   Kubernetes would fill it with a token of a service account, a credential
//!   with that account's permissions.
//!
//! Pods and every object carrying a pod template are held to the Pod
//! Security Standards at the level [`Policy::pod_security`] names
//! ([`stepbox_k8s::pod_security`], checked by [`crate::admission`]).
//!
//! ```
//! use stepbox::k8s::resources;
//! use stepbox::policy::{AccessRequest, Decision, Policy, Verb};
//!
//! let policy = Policy::default();
//! let deploy = resources::lookup("apps/v1", "Deployment");
//! let req = AccessRequest { verb: Verb::Patch, resource: &deploy, run_namespace: "dev",
//!                           object_namespace: None, name: Some("web") };
//! assert_eq!(policy.check(&req), Decision::Allow);
//! ```

mod file;
pub mod outbound;
mod rbac;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use stepbox_k8s::ResourceInfo;
use stepbox_k8s::resources::{CRD_GROUP, CRD_KIND};

pub use file::parse_size;
pub(crate) use file::validate_rule;
pub use outbound::Outbound;
pub use rbac::MAX_ROLE_GRANTS;

/// The apiVersion of policy files.
pub const API_VERSION: &str = "stepbox.dev/v1alpha1";
/// The kind of policy files.
pub const KIND: &str = "StepPolicy";

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse or does not have the expected shape (unknown
    /// field, wrong type, missing `rules`, ...). The message names the field.
    #[error("invalid policy: {0}")]
    Parse(String),
    /// A field has a value that is not allowed.
    #[error("invalid policy: {field}: {message}")]
    Field {
        /// The field (`limits.memory`, `rules[0].verbs[1]`).
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Result of policy loading.
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;

pub use stepbox_k8s::pod_security::Level as PodSecurityLevel;
use stepbox_k8s::rbac as k8s_rbac;
pub use stepbox_k8s::request::Verb;

/// One rule, as in a Kubernetes `Role`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyRule {
    /// API groups (`""` for core, `"*"` for all).
    pub api_groups: Vec<String>,
    /// Resources (`"deployments"`, `"deployments/scale"`, `"*"`, `"*/scale"`).
    pub resources: Vec<String>,
    /// Verbs (`"get"`, ..., `"*"`).
    pub verbs: Vec<String>,
    /// When non-empty, the rule applies only to objects with these names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

/// The matching is Kubernetes RBAC's own ([`stepbox_k8s::rbac`]), so a
/// policy rule means what the same rule in a Role means.
impl PolicyRule {
    fn grants_group(&self, group: &str) -> bool {
        k8s_rbac::api_group_matches(&self.api_groups, group)
    }

    fn grants_resource(&self, resource: &str) -> bool {
        k8s_rbac::resource_matches(&self.resources, resource)
    }

    fn grants_verb(&self, verb: Verb) -> bool {
        k8s_rbac::verb_matches(&self.verbs, verb.as_str())
    }

    fn grants_name(&self, verb: Verb, name: Option<&str>) -> bool {
        // RBAC never matches a create against a rule limited by name.
        (verb != Verb::Create || self.resource_names.is_empty())
            && k8s_rbac::resource_name_matches(&self.resource_names, name)
    }
}

/// Resource limits of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory the guest may grow to. Default 256 MiB.
    pub memory_bytes: u64,
    /// Wall-clock time for the whole run. Default 10 minutes.
    pub timeout: Duration,
    /// Bytes of log the run may write (beyond that, lines are dropped).
    /// Default 1 MiB.
    pub log_bytes: u64,
    /// Bytes of outputs (names plus values) the run may set. Default 256 KiB.
    pub output_bytes: u64,
    /// Bytes the run may add to `/workspace` (file sizes, counted over what
    /// was there when the run started). Default 1 GiB.
    pub workspace_bytes: u64,
    /// Files, directories and symlinks the run may add to `/workspace`.
    /// Default 100,000.
    pub workspace_files: u64,
    /// Bytes of the body of one outbound HTTP request. Default 1 MiB.
    pub http_request_bytes: u64,
    /// Bytes of the body of one outbound HTTP response. Default 16 MiB.
    pub http_response_bytes: u64,
    /// Time for one outbound HTTP request, from connecting to its last
    /// byte. Default 30 seconds.
    pub http_timeout: Duration,
}

impl Limits {
    /// Default memory limit: 256 MiB.
    pub const DEFAULT_MEMORY_BYTES: u64 = 256 * 1024 * 1024;
    /// Default timeout: 10 minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
    /// Default log limit: 1 MiB.
    pub const DEFAULT_LOG_BYTES: u64 = 1024 * 1024;
    /// Default output limit: 256 KiB.
    pub const DEFAULT_OUTPUT_BYTES: u64 = 256 * 1024;
    /// Default workspace size limit: 1 GiB.
    pub const DEFAULT_WORKSPACE_BYTES: u64 = 1024 * 1024 * 1024;
    /// Default workspace file count limit: 100,000.
    pub const DEFAULT_WORKSPACE_FILES: u64 = 100_000;
    /// Default outbound HTTP request body limit: 1 MiB.
    pub const DEFAULT_HTTP_REQUEST_BYTES: u64 = 1024 * 1024;
    /// Default outbound HTTP response body limit: 16 MiB.
    pub const DEFAULT_HTTP_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
    /// Default time limit of one outbound HTTP request: 30 seconds.
    pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            log_bytes: Self::DEFAULT_LOG_BYTES,
            output_bytes: Self::DEFAULT_OUTPUT_BYTES,
            workspace_bytes: Self::DEFAULT_WORKSPACE_BYTES,
            workspace_files: Self::DEFAULT_WORKSPACE_FILES,
            http_request_bytes: Self::DEFAULT_HTTP_REQUEST_BYTES,
            http_response_bytes: Self::DEFAULT_HTTP_RESPONSE_BYTES,
            http_timeout: Self::DEFAULT_HTTP_TIMEOUT,
        }
    }
}

/// One capability call to decide.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// What the call does.
    pub verb: Verb,
    /// The kind it touches. For a subresource pass
    /// [`ResourceInfo::subresource`] (plural `"pods/log"`).
    pub resource: &'a ResourceInfo,
    /// The namespace the run is confined to.
    pub run_namespace: &'a str,
    /// The namespace the object itself names (`metadata.namespace` of an
    /// applied document), if any.
    pub object_namespace: Option<&'a str>,
    /// The object's name, when the call addresses one object.
    pub name: Option<&'a str>,
}

/// The outcome of [`Policy::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may proceed.
    Allow,
    /// The call is refused, with the reason to show the step.
    Deny(String),
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// One granted (group, resource) and what may be done to it, for listings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// API group (`""` core, `"*"` any).
    pub api_group: String,
    /// Resource (`"deployments"`, `"pods/log"`, `"*"`).
    pub resource: String,
    /// Verbs granted (a `*` rule expands to all).
    pub verbs: Vec<Verb>,
    /// Names the grant is limited to; empty = any name.
    pub resource_names: Vec<String>,
}

impl fmt::Display for Grant {
    /// `deployments.apps: get, list, ...` (`[names: a, b]` when limited).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.api_group.is_empty() {
            write!(f, "{}", self.resource)?;
        } else {
            write!(f, "{}.{}", self.resource, self.api_group)?;
        }
        let verbs: Vec<&str> = self.verbs.iter().map(|v| v.as_str()).collect();
        write!(f, ": {}", verbs.join(", "))?;
        if !self.resource_names.is_empty() {
            write!(f, " [names: {}]", self.resource_names.join(", "))?;
        }
        Ok(())
    }
}

/// A run's policy: an optional namespace, rules and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The namespace runs use when none is given on the command line.
    pub namespace: Option<String>,
    /// What may be done (RBAC `Role` rules).
    pub rules: Vec<PolicyRule>,
    /// The Pod Security Standards level of the pods and pod templates the
    /// run writes (`podSecurity`, default baseline).
    pub pod_security: PodSecurityLevel,
    /// Resource limits.
    pub limits: Limits,
    /// Steps and packages pulled from a registry must be named by digest
    /// (`REF@sha256:…`), never by a tag that can move.
    pub require_digest: bool,
    /// Where the run may send HTTP requests (empty: nowhere).
    pub outbound: Outbound,
}

const RW: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];
const RO: &[&str] = &["get", "list", "watch"];

/// The built-in rules: (groups, resources, verbs).
const DEFAULT_RULES: &[(&[&str], &[&str], &[&str])] = &[
    (
        &[""],
        &[
            "configmaps",
            "secrets",
            "services",
            "serviceaccounts",
            "persistentvolumeclaims",
            "pods",
            "pods/log",
            "endpoints",
        ],
        RW,
    ),
    (&[""], &["events"], RO),
    (
        &["apps"],
        &["deployments", "statefulsets", "daemonsets"],
        RW,
    ),
    (&["apps"], &["replicasets"], RO),
    (&["batch"], &["jobs", "cronjobs"], RW),
    (
        &["networking.k8s.io"],
        &["ingresses", "networkpolicies"],
        RW,
    ),
    (&["autoscaling"], &["horizontalpodautoscalers"], RW),
    (&["policy"], &["poddisruptionbudgets"], RW),
    (&["coordination.k8s.io"], &["leases"], RW),
    (&["discovery.k8s.io"], &["endpointslices"], RO),
];

const DEFAULT_YAML: &str = r#"# The built-in stepbox step policy: edit the objects of one namespace.
# No RBAC objects, nothing cluster-scoped, no other namespace.
apiVersion: stepbox.dev/v1alpha1
kind: StepPolicy
# namespace: my-namespace   # the run's namespace when --namespace is not given
# The Pod Security Standards level of the pods and workloads steps write:
# privileged, baseline or restricted.
podSecurity: baseline
rules:
  - apiGroups: [""]
    resources: ["configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims", "pods", "pods/log", "endpoints"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["apps"]
    resources: ["deployments", "statefulsets", "daemonsets"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["apps"]
    resources: ["replicasets"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["batch"]
    resources: ["jobs", "cronjobs"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["networking.k8s.io"]
    resources: ["ingresses", "networkpolicies"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["autoscaling"]
    resources: ["horizontalpodautoscalers"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["policy"]
    resources: ["poddisruptionbudgets"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
  - apiGroups: ["discovery.k8s.io"]
    resources: ["endpointslices"]
    verbs: ["get", "list", "watch"]
limits:
  memory: 256Mi
  timeout: 10m
  logBytes: 1Mi
  outputBytes: 256Ki
  workspaceBytes: 1Gi
  workspaceFiles: 100000
  httpRequestBytes: 1Mi
  httpResponseBytes: 16Mi
  httpTimeout: 30s
# outbound:                 # HTTP destinations the step may call; none by default
#   - https://api.example.com
"#;

impl Default for Policy {
    /// The built-in "namespace editor" policy: read and write the usual
    /// namespaced objects (configmaps, secrets, services, serviceaccounts,
    /// persistentvolumeclaims, pods, pods/log, endpoints; deployments,
    /// statefulsets, daemonsets; jobs, cronjobs; ingresses, networkpolicies;
    /// horizontalpodautoscalers; poddisruptionbudgets; leases), read-only
    /// events, replicasets and endpointslices. No RBAC objects. Default
    /// limits. No namespace.
    fn default() -> Self {
        let owned = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Self {
            namespace: None,
            rules: DEFAULT_RULES
                .iter()
                .map(|(groups, resources, verbs)| PolicyRule {
                    api_groups: owned(groups),
                    resources: owned(resources),
                    verbs: owned(verbs),
                    resource_names: Vec::new(),
                })
                .collect(),
            limits: Limits::default(),
            require_digest: false,
            outbound: Outbound::default(),
            pod_security: PodSecurityLevel::Baseline,
        }
    }
}

impl Policy {
    /// Decides one call (see the [module docs](self) for the order of
    /// checks).
    pub fn check(&self, req: &AccessRequest<'_>) -> Decision {
        let res = req.resource;
        let ns = req.run_namespace;
        if res.is(CRD_GROUP, CRD_KIND) {
            if self.allows_crds(req.verb) {
                return Decision::Allow;
            }
            return Decision::Deny(format!(
                "CustomResourceDefinition is cluster-scoped; steps may only touch namespaced objects in namespace {:?} \
                 (CustomResourceDefinitions are the one exception, when a rule names apiGroups [{CRD_GROUP}] and \
                 resources [customresourcedefinitions] literally, with verb {})",
                req.run_namespace, req.verb
            ));
        }
        if !res.namespaced {
            return Decision::Deny(format!(
                "{} is cluster-scoped; steps may only touch namespaced objects in namespace {ns:?}",
                res.kind
            ));
        }
        if ns.is_empty() {
            return Decision::Deny(
                "this run has no namespace; steps may only touch objects in the run's namespace"
                    .into(),
            );
        }
        if let Some(obj_ns) = req.object_namespace.filter(|o| !o.is_empty() && *o != ns) {
            let what = match req.name {
                Some(n) => format!("{} {n:?}", res.kind),
                None => res.kind.clone(),
            };
            return Decision::Deny(format!(
                "{what} names namespace {obj_ns:?}, but this run is confined to namespace {ns:?}"
            ));
        }
        let candidates: Vec<&PolicyRule> = self
            .rules
            .iter()
            .filter(|r| {
                r.grants_group(&res.group)
                    && r.grants_resource(&res.plural)
                    && r.grants_verb(req.verb)
            })
            .collect();
        if candidates.iter().any(|r| r.grants_name(req.verb, req.name)) {
            return Decision::Allow;
        }
        let mut reason = format!(
            "the step policy does not grant {:?} on {} in namespace {ns:?}",
            req.verb.as_str(),
            res.gr()
        );
        let names: Vec<&str> = candidates
            .iter()
            .flat_map(|r| r.resource_names.iter().map(String::as_str))
            .collect();
        if !names.is_empty() {
            let subject = req.name.map_or_else(
                || "requests without a name".to_string(),
                |n| format!("{n:?}"),
            );
            let subject = if req.verb == Verb::Create {
                "create".to_string()
            } else {
                subject
            };
            reason.push_str(&format!(
                " for {subject} (it is granted only for resourceNames {})",
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Decision::Deny(reason)
    }

    /// Whether the policy lets a run install CustomResourceDefinitions
    /// (e.g. from a helm chart's `crds/` folder) with `verb`.
    ///
    /// CRDs are cluster-scoped, so [`Policy::check`] always refuses them.
    /// This is the one exception, and it is never granted by wildcards: a
    /// rule must name group `apiextensions.k8s.io` and resource
    /// `customresourcedefinitions` literally (its verbs may be `*`):
    ///
    /// ```
    /// use stepbox::policy::{Policy, Verb};
    ///
    /// let yaml = concat!(
    ///     "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n",
    ///     "  - apiGroups: [apiextensions.k8s.io]\n",
    ///     "    resources: [customresourcedefinitions]\n",
    ///     "    verbs: [get, create, patch]\n",
    /// );
    /// assert!(Policy::from_yaml(yaml)?.allows_crds(Verb::Create));
    /// assert!(!Policy::default().allows_crds(Verb::Create));
    /// # Ok::<(), stepbox::policy::PolicyError>(())
    /// ```
    pub fn allows_crds(&self, verb: Verb) -> bool {
        self.rules.iter().any(|r| {
            r.api_groups.iter().any(|g| g == CRD_GROUP)
                && r.resources
                    .iter()
                    .any(|res| res == "customresourcedefinitions")
                && r.grants_verb(verb)
                && r.resource_names.is_empty()
        })
    }

    /// Every (group, resource) the rules grant, merged across rules and
    /// sorted, with `*` verbs expanded.
    pub fn grants(&self) -> Vec<Grant> {
        let mut out: Vec<Grant> = Vec::new();
        for rule in &self.rules {
            let verbs: Vec<Verb> = Verb::ALL
                .into_iter()
                .filter(|v| rule.grants_verb(*v))
                .collect();
            if verbs.is_empty() {
                continue;
            }
            let mut names = rule.resource_names.clone();
            names.sort();
            names.dedup();
            for group in &rule.api_groups {
                for resource in &rule.resources {
                    match out.iter_mut().find(|g| {
                        g.api_group == *group
                            && g.resource == *resource
                            && g.resource_names == names
                    }) {
                        Some(g) => {
                            g.verbs.extend(verbs.iter().copied());
                            g.verbs.sort();
                            g.verbs.dedup();
                        }
                        None => out.push(Grant {
                            api_group: group.clone(),
                            resource: resource.clone(),
                            verbs: verbs.clone(),
                            resource_names: names.clone(),
                        }),
                    }
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use stepbox_k8s::resources::lookup;

    fn req<'a>(
        verb: Verb,
        res: &'a ResourceInfo,
        obj_ns: Option<&'a str>,
        name: Option<&'a str>,
    ) -> AccessRequest<'a> {
        AccessRequest {
            verb,
            resource: res,
            run_namespace: "dev",
            object_namespace: obj_ns,
            name,
        }
    }

    fn deny(d: Decision) -> String {
        match d {
            Decision::Deny(r) => r,
            Decision::Allow => panic!("expected a denial"),
        }
    }

    #[test]
    fn default_yaml_matches_default() {
        let parsed = Policy::from_yaml(Policy::default_yaml()).unwrap();
        assert_eq!(parsed, Policy::default());
        assert_eq!(parsed.limits, Limits::default());
        assert_eq!(Limits::default().memory_bytes, 256 << 20);
        assert_eq!(Limits::default().timeout, Duration::from_secs(600));
        assert_eq!(Limits::default().log_bytes, 1 << 20);
        assert_eq!(Limits::default().output_bytes, 256 << 10);
        assert_eq!(Limits::default().workspace_bytes, 1 << 30);
        assert_eq!(Limits::default().workspace_files, 100_000);
    }

    #[test]
    fn default_policy_grants() {
        let p = Policy::default();
        let allowed = |api: &str, kind: &str, verb: Verb| {
            p.check(&req(verb, &lookup(api, kind), None, Some("x")))
                .is_allowed()
        };
        assert!(allowed("v1", "ConfigMap", Verb::Create));
        assert!(allowed("v1", "Secret", Verb::Delete));
        assert!(allowed("apps/v1", "Deployment", Verb::Patch));
        assert!(allowed("apps/v1", "ReplicaSet", Verb::Get));
        assert!(!allowed("apps/v1", "ReplicaSet", Verb::Delete));
        assert!(allowed("v1", "Event", Verb::List));
        assert!(!allowed("v1", "Event", Verb::Create));
        assert!(allowed("batch/v1", "CronJob", Verb::Update));
        assert!(allowed(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            Verb::Create
        ));
        assert!(allowed("discovery.k8s.io/v1", "EndpointSlice", Verb::Watch));
        assert!(!allowed(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            Verb::Patch
        ));
        assert!(!allowed("rbac.authorization.k8s.io/v1", "Role", Verb::Get));
        assert!(!allowed("example.com/v1", "Widget", Verb::Get));
        let pods = lookup("v1", "Pod");
        assert!(
            p.check(&req(Verb::Get, &pods.subresource("log"), None, Some("p")))
                .is_allowed()
        );
        assert!(
            !p.check(&req(
                Verb::Create,
                &pods.subresource("exec"),
                None,
                Some("p")
            ))
            .is_allowed()
        );
    }

    #[test]
    fn cluster_scoped_denial() {
        let p = Policy::default();
        let ns = lookup("v1", "Namespace");
        assert_eq!(
            deny(p.check(&req(Verb::Create, &ns, None, Some("x")))),
            "Namespace is cluster-scoped; steps may only touch namespaced objects in namespace \"dev\""
        );
        // Even a policy granting everything refuses cluster-scoped kinds.
        let all = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n",
        )
        .unwrap();
        assert!(
            !all.check(&req(
                Verb::Get,
                &lookup("rbac.authorization.k8s.io/v1", "ClusterRole"),
                None,
                None
            ))
            .is_allowed()
        );
        assert!(
            all.check(&req(
                Verb::Get,
                &lookup("rbac.authorization.k8s.io/v1", "Role"),
                None,
                None
            ))
            .is_allowed()
        );
    }

    #[test]
    fn other_namespace_denial() {
        let p = Policy::default();
        let cm = lookup("v1", "ConfigMap");
        assert_eq!(
            deny(p.check(&req(Verb::Create, &cm, Some("kube-system"), Some("a")))),
            "ConfigMap \"a\" names namespace \"kube-system\", but this run is confined to namespace \"dev\""
        );
        assert_eq!(
            deny(p.check(&req(Verb::List, &cm, Some("prod"), None))),
            "ConfigMap names namespace \"prod\", but this run is confined to namespace \"dev\""
        );
        assert!(
            p.check(&req(Verb::Create, &cm, Some("dev"), Some("a")))
                .is_allowed()
        );
        assert!(
            p.check(&req(Verb::Create, &cm, Some(""), Some("a")))
                .is_allowed()
        );
        let empty_run = AccessRequest {
            run_namespace: "",
            ..req(Verb::Get, &cm, None, None)
        };
        assert!(!p.check(&empty_run).is_allowed());
    }

    #[test]
    fn not_granted_denial() {
        let p = Policy::default();
        let role = lookup("rbac.authorization.k8s.io/v1", "Role");
        assert_eq!(
            deny(p.check(&req(Verb::Create, &role, None, Some("r")))),
            "the step policy does not grant \"create\" on roles.rbac.authorization.k8s.io in namespace \"dev\""
        );
    }

    #[test]
    fn rbac_matching() {
        let p = Policy::from_yaml(
            r#"
apiVersion: stepbox.dev/v1alpha1
kind: StepPolicy
rules:
  - apiGroups: ["apps"]
    resources: ["deployments", "*/scale"]
    verbs: ["get", "patch"]
  - apiGroups: ["*"]
    resources: ["configmaps"]
    verbs: ["*"]
    resourceNames: ["settings"]
"#,
        )
        .unwrap();
        let d = lookup("apps/v1", "Deployment");
        assert!(p.check(&req(Verb::Get, &d, None, Some("web"))).is_allowed());
        assert!(
            !p.check(&req(Verb::Delete, &d, None, Some("web")))
                .is_allowed()
        );
        assert!(
            p.check(&req(
                Verb::Patch,
                &d.subresource("scale"),
                None,
                Some("web")
            ))
            .is_allowed()
        );
        assert!(
            p.check(&req(
                Verb::Patch,
                &lookup("apps/v1", "StatefulSet").subresource("scale"),
                None,
                None
            ))
            .is_allowed()
        );
        assert!(
            !p.check(&req(
                Verb::Patch,
                &lookup("apps/v1", "StatefulSet"),
                None,
                None
            ))
            .is_allowed()
        );
        let cm = lookup("v1", "ConfigMap");
        assert!(
            p.check(&req(Verb::Update, &cm, None, Some("settings")))
                .is_allowed()
        );
        assert!(
            p.check(&req(Verb::Delete, &cm, None, Some("settings")))
                .is_allowed()
        );
        let why = deny(p.check(&req(Verb::Get, &cm, None, Some("other"))));
        assert_eq!(
            why,
            "the step policy does not grant \"get\" on configmaps in namespace \"dev\" for \"other\" \
             (it is granted only for resourceNames \"settings\")"
        );
        let why = deny(p.check(&req(Verb::List, &cm, None, None)));
        assert!(why.contains("for requests without a name"), "{why}");
        let why = deny(p.check(&req(Verb::Create, &cm, None, Some("settings"))));
        assert!(why.contains("for create"), "{why}");
    }

    #[test]
    fn limits_parse() {
        let p = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nnamespace: team-a\nrules: []\n\
             limits: {memory: 1.5Gi, timeout: 1h 30m, logBytes: 2M, outputBytes: 100}\n",
        )
        .unwrap();
        assert_eq!(p.namespace.as_deref(), Some("team-a"));
        assert!(p.rules.is_empty());
        assert_eq!(p.limits.memory_bytes, 3 << 29);
        assert_eq!(p.limits.timeout, Duration::from_secs(5400));
        assert_eq!(p.limits.log_bytes, 2_000_000);
        assert_eq!(p.limits.output_bytes, 100);
        assert_eq!(p.limits.workspace_bytes, Limits::DEFAULT_WORKSPACE_BYTES);
        let p = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\n\
             limits: {workspaceBytes: 8Mi, workspaceFiles: 200}\n",
        )
        .unwrap();
        assert_eq!(p.limits.workspace_bytes, 8 << 20);
        assert_eq!(p.limits.workspace_files, 200);
        let p = Policy::from_yaml("apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\nlimits: {timeout: 30}\n").unwrap();
        assert_eq!(p.limits.timeout, Duration::from_secs(30));
        assert_eq!(p.limits.memory_bytes, Limits::DEFAULT_MEMORY_BYTES);
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("0", Some(0)),
            ("1024", Some(1024)),
            ("1Ki", Some(1024)),
            ("1k", Some(1000)),
            ("1K", Some(1000)),
            ("256Mi", Some(256 << 20)),
            ("2Gi", Some(2 << 30)),
            ("1Ti", Some(1 << 40)),
            ("0.5Ki", Some(512)),
            ("0.1", Some(1)),
            (" 3 Mi ", Some(3 << 20)),
            ("1.5", Some(2)),
            ("", None),
            ("Mi", None),
            ("1.2.3", None),
            ("1XB", None),
            ("-1", None),
            (".5", None),
            ("5.", None),
            ("99999999999Ti", None),
        ] {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }

    #[test]
    fn load_errors_name_the_field() {
        let head = "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\n";
        let cases = [
            (
                "apiVersion: v1\nkind: StepPolicy\nrules: []\n".to_string(),
                "apiVersion: expected \"stepbox.dev/v1alpha1\", found \"v1\"",
            ),
            (
                "apiVersion: stepbox.dev/v1alpha1\nkind: Role\nrules: []\n".to_string(),
                "kind: expected \"StepPolicy\", found \"Role\"",
            ),
            (
                format!("{head}rules: []\nextra: 1\n"),
                "unknown field `extra`",
            ),
            (
                format!(
                    "{head}rules: [{{apiGroups: [''], resources: [pods], verbs: [get], verb: [x]}}]\n"
                ),
                "unknown field `verb`",
            ),
            (
                format!("{head}rules: []\nlimits: {{cpu: 1}}\n"),
                "unknown field `cpu`",
            ),
            (format!("{head}namespace: dev\n"), "missing field `rules`"),
            (
                format!(
                    "{head}rules: [{{apiGroups: [''], resources: [pods], verbs: [get, destroy]}}]\n"
                ),
                "rules[0].verbs[1]: unknown verb \"destroy\"",
            ),
            (
                format!("{head}rules: [{{apiGroups: [''], resources: [Pods], verbs: [get]}}]\n"),
                "rules[0].resources[0]: invalid resource \"Pods\"",
            ),
            (
                format!("{head}rules: [{{apiGroups: [], resources: [pods], verbs: [get]}}]\n"),
                "rules[0].apiGroups: must list",
            ),
            (
                format!("{head}rules: [{{apiGroups: [''], resources: [pods], verbs: []}}]\n"),
                "rules[0].verbs: must list",
            ),
            (
                format!("{head}rules: []\nlimits: {{memory: lots}}\n"),
                "limits.memory: invalid size \"lots\"",
            ),
            (
                format!("{head}rules: []\nlimits: {{memory: 0}}\n"),
                "limits.memory: must be greater than zero",
            ),
            (
                format!("{head}rules: []\nlimits: {{timeout: soon}}\n"),
                "limits.timeout: invalid duration \"soon\"",
            ),
            (
                format!("{head}rules: []\nlimits: {{timeout: 0s}}\n"),
                "limits.timeout: must be greater than zero",
            ),
            (
                format!("{head}namespace: Bad_NS\nrules: []\n"),
                "namespace: invalid namespace \"Bad_NS\"",
            ),
            (format!("{head}rules: {{}}\n"), "rules"),
            ("[".to_string(), "invalid policy"),
        ];
        for (text, want) in cases {
            let err = Policy::from_yaml(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n=> {err}\n!~ {want}");
        }
        let err = Policy::load(Path::new("/nonexistent/policy.yaml")).unwrap_err();
        assert!(matches!(err, PolicyError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/policy.yaml"));
    }

    #[test]
    fn grants_listing() {
        let g = Policy::default().grants();
        let deploy = g
            .iter()
            .find(|g| g.api_group == "apps" && g.resource == "deployments")
            .unwrap();
        // The built-in rules name every verb but deletecollection.
        let named: Vec<Verb> = Verb::ALL
            .into_iter()
            .filter(|v| *v != Verb::DeleteCollection)
            .collect();
        assert_eq!(deploy.verbs, named);
        assert_eq!(
            deploy.to_string(),
            "deployments.apps: get, list, watch, create, update, patch, delete"
        );
        let events = g.iter().find(|g| g.resource == "events").unwrap();
        assert_eq!(events.to_string(), "events: get, list, watch");
        assert!(g.iter().all(|g| g.api_group != "rbac.authorization.k8s.io"));
        let p = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n- {apiGroups: [''], resources: [configmaps], verbs: [get]}\n\
             - {apiGroups: [''], resources: [configmaps], verbs: ['*']}\n- {apiGroups: [''], resources: [secrets], verbs: [get], resourceNames: [b, a]}\n\
             - {apiGroups: [''], resources: [pods], verbs: [deletecollection]}\n",
        )
        .unwrap();
        let g = p.grants();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].verbs, Verb::ALL.to_vec(), "'*' names every verb");
        assert_eq!(g[1].to_string(), "pods: deletecollection");
        assert_eq!(g[2].to_string(), "secrets: get [names: a, b]");
    }

    #[test]
    fn rbac_objects_cannot_grant_more_than_the_policy() {
        let p = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n\
             - {apiGroups: [''], resources: [configmaps], verbs: [get, list]}\n\
             - {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: ['*']}\n",
        )
        .unwrap();
        let role = lookup("rbac.authorization.k8s.io/v1", "Role");
        let check = |rules: serde_json::Value| {
            p.check_object(
                &role,
                &serde_json::json!({"metadata": {"name": "r"}, "rules": rules}),
                "dev",
            )
        };
        assert!(check(serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])).is_allowed());
        assert!(check(serde_json::Value::Null).is_allowed());
        let why = deny(check(
            serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]),
        ));
        assert!(
            why.contains("Role \"r\" rules[0] grants \"*\" in verbs"),
            "{why}"
        );
        let why = deny(check(
            serde_json::json!([{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]),
        ));
        assert!(why.contains("in resources"), "{why}");
        let why = deny(check(
            serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        ));
        assert!(
            why.contains("grants \"get\" on secrets, which the step policy does not grant"),
            "{why}"
        );
        let why = deny(check(
            serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]}]),
        ));
        assert!(why.contains("\"delete\" on configmaps"), "{why}");
        let why = deny(check(
            serde_json::json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
        ));
        assert!(why.contains("nonResourceURLs"), "{why}");
        let why = deny(check(
            serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": [1]}]),
        ));
        assert!(why.contains("must be a list of strings"), "{why}");

        let binding = lookup("rbac.authorization.k8s.io/v1", "RoleBinding");
        let bind = |role_ref: serde_json::Value, subjects: serde_json::Value| {
            p.check_object(
                &binding,
                &serde_json::json!({"metadata": {"name": "b"}, "roleRef": role_ref, "subjects": subjects}),
                "dev",
            )
        };
        let role_ref = serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"});
        let sa = |ns: &str| serde_json::json!([{"kind": "ServiceAccount", "name": "app", "namespace": ns}]);
        assert!(bind(role_ref.clone(), sa("dev")).is_allowed());
        assert!(
            bind(
                role_ref.clone(),
                serde_json::json!([{"kind": "ServiceAccount", "name": "app"}])
            )
            .is_allowed()
        );
        assert!(
            bind(
                role_ref.clone(),
                serde_json::json!([{"kind": "User", "name": "alice"}])
            )
            .is_allowed()
        );
        assert!(
            bind(
                role_ref.clone(),
                serde_json::json!([{"kind": "Group", "name": "system:serviceaccounts:dev"}])
            )
            .is_allowed()
        );
        let why = deny(bind(role_ref.clone(), sa("kube-system")));
        assert!(
            why.contains("subjects[0] is ServiceAccount \"app\" in namespace \"kube-system\""),
            "{why}"
        );
        let why = deny(bind(
            role_ref.clone(),
            serde_json::json!([{"kind": "Group", "name": "system:authenticated"}]),
        ));
        assert!(why.contains("Group \"system:authenticated\""), "{why}");
        let why = deny(bind(
            serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"}),
            sa("dev"),
        ));
        assert!(why.contains("binds ClusterRole \"admin\""), "{why}");

        let secret = lookup("v1", "Secret");
        let token = serde_json::json!({"metadata": {"name": "t", "annotations": {"kubernetes.io/service-account.name": "deployer"}},
                                       "type": "kubernetes.io/service-account-token"});
        let why = deny(p.check_object(&secret, &token, "dev"));
        assert!(why.contains("ServiceAccount \"deployer\""), "{why}");
        assert!(
            p.check_object(
                &secret,
                &serde_json::json!({"metadata": {"name": "s"}, "type": "Opaque"}),
                "dev"
            )
            .is_allowed()
        );
    }

    /// Fuzzing (manifest_policy) found that a Role repeating entries in
    /// its lists was checked once per combination of repeats: seconds to
    /// hours of CPU for a manifest of a few KiB to a few MiB.
    #[test]
    fn role_rules_with_repeats_are_checked_once() {
        let p = Policy::default();
        let many = |s: &str| serde_json::Value::from(vec![s; 500]);
        let rules = serde_json::json!([{
            "apiGroups": many(""), "resources": many("configmaps"), "verbs": many("get"),
            "resourceNames": many("a"),
        }]);
        let start = std::time::Instant::now();
        assert!(p.check_role_rules("Role \"r\"", &rules).is_allowed());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
    }

    /// The other half of the same finding: distinct entries the policy
    /// grants (through its wildcards) are refused beyond
    /// [`MAX_ROLE_GRANTS`], with a message saying why.
    #[test]
    fn role_rules_beyond_the_grant_budget_are_refused() {
        let p = Policy::from_yaml(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules:\n\
             - {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n",
        )
        .unwrap();
        let list = |prefix: &str, n: usize| -> Vec<String> {
            (0..n).map(|i| format!("{prefix}{i}")).collect()
        };
        let rule = |groups: usize, resources: usize| serde_json::json!({"apiGroups": list("g", groups), "resources": list("r", resources), "verbs": ["get", "list"]});
        // 50 × 100 × 2 = 10,000: at the limit, allowed.
        let at_limit = serde_json::json!([rule(50, 100)]);
        assert!(p.check_role_rules("Role \"r\"", &at_limit).is_allowed());
        // Summed over rules: one more combination is refused.
        let over = serde_json::json!([rule(50, 100), {"apiGroups": ["x"], "resources": ["y"], "verbs": ["get"]}]);
        let why = deny(p.check_role_rules("Role \"r\"", &over));
        assert_eq!(
            why,
            "Role \"r\" names more than 10000 distinct (apiGroup, resource, verb, resourceName) combinations \
             (passed at rules[1]), more than stepbox checks for one Role: split it into several Roles or list fewer"
        );
        let start = std::time::Instant::now();
        let huge = serde_json::json!([rule(2000, 2000)]);
        assert!(!p.check_role_rules("Role \"r\"", &huge).is_allowed());
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn verbs() {
        for v in Verb::ALL {
            assert_eq!(Verb::parse(v.as_str()), Some(v));
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!(Verb::parse("Get"), None);
    }

    #[test]
    fn pod_security_levels() {
        let head = "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\n";
        assert_eq!(
            Policy::from_yaml(head).unwrap().pod_security,
            PodSecurityLevel::Baseline
        );
        for level in PodSecurityLevel::ALL {
            let p = Policy::from_yaml(&format!("{head}podSecurity: {level}\n")).unwrap();
            assert_eq!(p.pod_security, level);
        }
        let err = Policy::from_yaml(&format!("{head}podSecurity: strict\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid policy: podSecurity: unknown level \"strict\"; expected privileged, baseline or \
             restricted (the Pod Security Standards)"
        );
        assert_eq!(
            Policy::from_yaml(Policy::default_yaml()).unwrap(),
            Policy::default()
        );
    }
}
