//! The built-in table of Kubernetes kinds: plural resource names and scope.
//!
//! Kubernetes addresses objects by *resource* (`deployments` in group `apps`),
//! manifests name them by *kind* (`Deployment`). Discovery maps one to the
//! other. Offline there is no API server to ask, so this module carries the
//! answer for every built-in kind a deployment step is likely to meet, and
//! guesses the rest (custom resources) the way kubectl does: namespaced, with
//! an English plural of the lowercased kind.
//!
//! ```
//! use stepbox_k8s::resources;
//!
//! let deploy = resources::lookup("apps/v1", "Deployment");
//! assert_eq!(deploy.gr(), "deployments.apps");
//! assert!(deploy.namespaced);
//!
//! let ns = resources::lookup("v1", "Namespace");
//! assert!(!ns.namespaced);
//!
//! // A custom resource: guessed.
//! let policy = resources::lookup("example.com/v1", "NetworkPolicy");
//! assert_eq!(policy.plural, "networkpolicies");
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The API group of Roles, RoleBindings, ClusterRoles and their bindings.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The API group of CustomResourceDefinitions.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";

/// The kind of a custom resource's definition.
pub const CRD_KIND: &str = "CustomResourceDefinition";

/// The Secret type Kubernetes fills with a service account's token.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// The verbs of Kubernetes API requests, as RBAC rules name them: ours and
/// ones steps never use (kept so Role rules can be copied verbatim). A rule
/// may also list `*`; the API front end's fault matchers take these.
pub const REQUEST_VERBS: &[&str] = &{
    let mut names = [""; crate::request::Verb::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = crate::request::Verb::ALL[i].as_str();
        i += 1;
    }
    names
};

/// One kind as the API server serves it: where it lives and what it is called.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// The apiVersion as written in manifests: `"apps/v1"`, or `"v1"` for the
    /// core group.
    pub api_version: String,
    /// The API group; `""` for the core group.
    pub group: String,
    /// The version within the group (`"v1"`).
    pub version: String,
    /// The kind (`"Deployment"`).
    pub kind: String,
    /// The plural resource name (`"deployments"`). For a subresource (see
    /// [`ResourceInfo::subresource`]) it is `"<plural>/<subresource>"`.
    pub plural: String,
    /// True for namespaced kinds, false for cluster-scoped ones.
    pub namespaced: bool,
}

impl ResourceInfo {
    /// Builds a `ResourceInfo`, deriving `api_version` from group and version.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            api_version: join_api_version(group, version),
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced,
        }
    }

    /// The group-qualified resource, as RBAC and error messages spell it:
    /// `"deployments.apps"`, or `"configmaps"` for the core group.
    pub fn gr(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The singular resource name: the lowercased kind (`"deployment"`).
    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }

    /// The same resource addressed through a subresource, for policy checks:
    /// `pods` + `"log"` gives plural `"pods/log"`.
    pub fn subresource(&self, subresource: &str) -> Self {
        let base = self.plural.split('/').next().unwrap_or_default();
        Self {
            plural: format!("{base}/{subresource}"),
            ..self.clone()
        }
    }

    /// True when this names the same kind as `(group, kind)`, whatever the
    /// version.
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

/// One row of the built-in table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinResource {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Version served by the table.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Namespaced (true) or cluster-scoped (false).
    pub namespaced: bool,
    /// kubectl short names (`deploy`, `cm`, ...), as discovery reports them.
    pub short_names: &'static [&'static str],
}

impl BuiltinResource {
    /// This row as a [`ResourceInfo`].
    pub fn info(&self) -> ResourceInfo {
        ResourceInfo::new(
            self.group,
            self.version,
            self.kind,
            self.plural,
            self.namespaced,
        )
    }
}

const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> BuiltinResource {
    BuiltinResource {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
    }
}

const NS: bool = true;
const CLUSTER: bool = false;

/// The built-in table. Where a kind is served in several versions, the
/// preferred version comes first.
#[rustfmt::skip]
static BUILTIN: &[BuiltinResource] = &[
    // core v1
    row("", "v1", "Pod", "pods", NS, &["po"]),
    row("", "v1", "Service", "services", NS, &["svc"]),
    row("", "v1", "ConfigMap", "configmaps", NS, &["cm"]),
    row("", "v1", "Secret", "secrets", NS, &[]),
    row("", "v1", "ServiceAccount", "serviceaccounts", NS, &["sa"]),
    row("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", NS, &["pvc"]),
    row("", "v1", "Endpoints", "endpoints", NS, &["ep"]),
    row("", "v1", "Event", "events", NS, &["ev"]),
    row("", "v1", "LimitRange", "limitranges", NS, &["limits"]),
    row("", "v1", "ResourceQuota", "resourcequotas", NS, &["quota"]),
    row("", "v1", "ReplicationController", "replicationcontrollers", NS, &["rc"]),
    row("", "v1", "PodTemplate", "podtemplates", NS, &[]),
    row("", "v1", "Binding", "bindings", NS, &[]),
    row("", "v1", "Namespace", "namespaces", CLUSTER, &["ns"]),
    row("", "v1", "Node", "nodes", CLUSTER, &["no"]),
    row("", "v1", "PersistentVolume", "persistentvolumes", CLUSTER, &["pv"]),
    row("", "v1", "ComponentStatus", "componentstatuses", CLUSTER, &["cs"]),
    // apps/v1
    row("apps", "v1", "Deployment", "deployments", NS, &["deploy"]),
    row("apps", "v1", "StatefulSet", "statefulsets", NS, &["sts"]),
    row("apps", "v1", "DaemonSet", "daemonsets", NS, &["ds"]),
    row("apps", "v1", "ReplicaSet", "replicasets", NS, &["rs"]),
    row("apps", "v1", "ControllerRevision", "controllerrevisions", NS, &[]),
    // batch/v1
    row("batch", "v1", "Job", "jobs", NS, &[]),
    row("batch", "v1", "CronJob", "cronjobs", NS, &["cj"]),
    // networking.k8s.io/v1
    row("networking.k8s.io", "v1", "Ingress", "ingresses", NS, &["ing"]),
    row("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", NS, &["netpol"]),
    row("networking.k8s.io", "v1", "IngressClass", "ingressclasses", CLUSTER, &[]),
    // rbac.authorization.k8s.io/v1
    row("rbac.authorization.k8s.io", "v1", "Role", "roles", NS, &[]),
    row("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", NS, &[]),
    row("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", CLUSTER, &[]),
    row("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", CLUSTER, &[]),
    // policy/v1
    row("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", NS, &["pdb"]),
    // autoscaling (v2 preferred)
    row("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, &["hpa"]),
    row("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", NS, &["hpa"]),
    // storage.k8s.io/v1
    row("storage.k8s.io", "v1", "StorageClass", "storageclasses", CLUSTER, &["sc"]),
    row("storage.k8s.io", "v1", "CSIDriver", "csidrivers", CLUSTER, &[]),
    row("storage.k8s.io", "v1", "CSINode", "csinodes", CLUSTER, &[]),
    row("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", CLUSTER, &[]),
    row("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", NS, &[]),
    // apiextensions.k8s.io/v1
    row("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", CLUSTER, &["crd", "crds"]),
    // admissionregistration.k8s.io/v1
    row("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", CLUSTER, &[]),
    row("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", CLUSTER, &[]),
    row("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", CLUSTER, &[]),
    row("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", CLUSTER, &[]),
    // scheduling.k8s.io/v1
    row("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", CLUSTER, &["pc"]),
    // coordination.k8s.io/v1
    row("coordination.k8s.io", "v1", "Lease", "leases", NS, &[]),
    // discovery.k8s.io/v1
    row("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", NS, &[]),
    // events.k8s.io/v1
    row("events.k8s.io", "v1", "Event", "events", NS, &["ev"]),
    // certificates.k8s.io/v1
    row("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", CLUSTER, &["csr"]),
    // node.k8s.io/v1
    row("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", CLUSTER, &[]),
    // flowcontrol.apiserver.k8s.io/v1
    row("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", CLUSTER, &[]),
    row("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", CLUSTER, &[]),
    // apiregistration.k8s.io/v1
    row("apiregistration.k8s.io", "v1", "APIService", "apiservices", CLUSTER, &[]),
];

/// The built-in table, preferred versions first within a kind.
pub fn builtin() -> &'static [BuiltinResource] {
    BUILTIN
}

/// Every built-in kind as a [`ResourceInfo`], in table order (grouped by API
/// group, preferred version first). The dev API server serves discovery
/// from it.
pub fn all() -> Vec<ResourceInfo> {
    BUILTIN.iter().map(BuiltinResource::info).collect()
}

/// `"apps"` + `"v1"` → `"apps/v1"`; `""` + `"v1"` → `"v1"`.
pub fn join_api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an apiVersion into (group, version) without validating it:
/// `"apps/v1"` → `("apps", "v1")`, `"v1"` → `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Splits and validates an apiVersion: `group/version` or `version`, the
/// group a DNS subdomain, the version a DNS label.
///
/// # Errors
/// [`Error::Invalid`] naming the apiVersion and what is wrong with it.
pub fn parse_api_version(api_version: &str) -> Result<(&str, &str)> {
    let invalid = |why: &str| Error::Invalid(format!("invalid apiVersion {api_version:?}: {why}"));
    if api_version.is_empty() {
        return Err(invalid("it is empty"));
    }
    if api_version.matches('/').count() > 1 {
        return Err(invalid("expected \"group/version\" or \"version\""));
    }
    let (group, version) = split_api_version(api_version);
    if api_version.contains('/') && group.is_empty() {
        return Err(invalid("the group before '/' is empty"));
    }
    if version.is_empty() {
        return Err(invalid("the version is empty"));
    }
    if !group.is_empty() {
        super::names::dns1123_subdomain(group).map_err(|e| invalid(&format!("group: {e}")))?;
    }
    super::names::dns1123_label(version).map_err(|e| invalid(&format!("version: {e}")))?;
    Ok((group, version))
}

/// Resolves a kind: the built-in table when it knows `(group, kind)` (any
/// version of a known kind is accepted and keeps the requested version),
/// otherwise a guess for a custom resource: namespaced, plural from
/// [`guess_plural`].
///
/// This does not validate `api_version`; see [`parse_api_version`].
pub fn lookup(api_version: &str, kind: &str) -> ResourceInfo {
    let (group, version) = split_api_version(api_version);
    match BUILTIN.iter().find(|r| r.group == group && r.kind == kind) {
        Some(r) => ResourceInfo::new(group, version, r.kind, r.plural, r.namespaced),
        None => ResourceInfo::new(group, version, kind, &guess_plural(kind), true),
    }
}

/// The built-in kind served as `plural` in `group`, at its preferred version
/// (for URL paths like `/apis/apps/v1/namespaces/x/deployments`). `None` for
/// resources not in the table.
pub fn by_plural(group: &str, plural: &str) -> Option<ResourceInfo> {
    BUILTIN
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .map(BuiltinResource::info)
}

/// Like [`by_plural`] but for one version: `None` when the table does not
/// serve `plural` at `version` in `group`.
pub fn by_plural_version(group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
    BUILTIN
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .map(BuiltinResource::info)
}

/// kubectl short names of a built-in resource (`deploy` for deployments),
/// empty for others.
pub fn short_names(group: &str, plural: &str) -> &'static [&'static str] {
    BUILTIN
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .map_or(&[], |r| r.short_names)
}

/// The plural resource name of a kind not in the table: the lowercased kind
/// pluralised by the usual English rule: `-s`, `-x`, `-z`, `-ch`, `-sh` take
/// `es`; a consonant followed by `y` becomes `ies`; kinds ending in
/// `endpoints` stay as they are (as in kubectl); anything else takes `s`.
///
/// (kubectl's own guess turns every `-y` into `-ies`, giving `gatewaies`;
/// the consonant rule gives the `gateways` that CRDs actually use.)
pub fn guess_plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.is_empty() || lower.ends_with("endpoints") {
        return lower;
    }
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return format!("{lower}es");
    }
    if let Some(stem) = lower.strip_suffix('y') {
        let consonant_before = stem
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphabetic() && !"aeiou".contains(c));
        if consonant_before {
            return format!("{stem}ies");
        }
    }
    format!("{lower}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookups() {
        let d = lookup("apps/v1", "Deployment");
        assert_eq!(
            d,
            ResourceInfo::new("apps", "v1", "Deployment", "deployments", true)
        );
        assert_eq!(d.api_version, "apps/v1");
        assert_eq!(d.gr(), "deployments.apps");
        assert_eq!(lookup("v1", "ConfigMap").gr(), "configmaps");
        assert!(!lookup("v1", "Namespace").namespaced);
        assert!(!lookup("rbac.authorization.k8s.io/v1", "ClusterRole").namespaced);
        assert!(lookup("rbac.authorization.k8s.io/v1", "Role").namespaced);
        assert_eq!(lookup("v1", "Endpoints").plural, "endpoints");
        assert_eq!(
            lookup("networking.k8s.io/v1", "Ingress").plural,
            "ingresses"
        );
        assert_eq!(lookup("v1", "ComponentStatus").plural, "componentstatuses");
        assert!(!lookup("storage.k8s.io/v1", "CSIDriver").namespaced);
        assert!(!lookup("apiregistration.k8s.io/v1", "APIService").namespaced);
        // Other versions of known kinds keep the requested version.
        let hpa = lookup("autoscaling/v1", "HorizontalPodAutoscaler");
        assert_eq!(hpa.version, "v1");
        assert_eq!(hpa.plural, "horizontalpodautoscalers");
        let beta = lookup("apps/v1beta2", "Deployment");
        assert_eq!(beta.api_version, "apps/v1beta2");
        assert_eq!(beta.plural, "deployments");
    }

    #[test]
    fn unknown_kinds_are_guessed_as_namespaced() {
        let r = lookup("cert-manager.io/v1", "Certificate");
        assert_eq!(r.plural, "certificates");
        assert!(r.namespaced);
        assert_eq!(r.gr(), "certificates.cert-manager.io");
        // Known kind name in another group is not the built-in one.
        assert!(lookup("example.com/v1", "Namespace").namespaced);
    }

    #[test]
    fn plural_rules() {
        for (kind, plural) in [
            ("Certificate", "certificates"),
            ("Ingress", "ingresses"),
            ("Box", "boxes"),
            ("Quiz", "quizes"),
            ("Patch", "patches"),
            ("Mesh", "meshes"),
            ("Policy", "policies"),
            ("Gateway", "gateways"),
            ("Key", "keys"),
            ("MyEndpoints", "myendpoints"),
            ("Issuer", "issuers"),
            ("Y", "ys"),
            ("", ""),
        ] {
            assert_eq!(guess_plural(kind), plural, "{kind}");
        }
    }

    #[test]
    fn every_row_has_a_consistent_plural() {
        // The table spells plurals by hand; make sure none is a typo of the
        // kind (each plural starts with the lowercased kind's stem).
        for r in builtin() {
            let lower = r.kind.to_lowercase();
            let stem = lower.trim_end_matches('y');
            assert!(r.plural.starts_with(stem), "{} -> {}", r.kind, r.plural);
            assert!(
                r.plural.chars().all(|c| c.is_ascii_lowercase()),
                "{}",
                r.plural
            );
        }
        assert!(all().len() >= 50);
    }

    #[test]
    fn by_plural_prefers_first_version() {
        assert_eq!(
            by_plural("autoscaling", "horizontalpodautoscalers").map(|r| r.version),
            Some("v2".into())
        );
        assert_eq!(
            by_plural_version("autoscaling", "v1", "horizontalpodautoscalers")
                .map(|r| r.api_version),
            Some("autoscaling/v1".into())
        );
        assert_eq!(
            by_plural("", "configmaps").map(|r| r.kind),
            Some("ConfigMap".into())
        );
        assert!(by_plural("apps", "configmaps").is_none());
        assert_eq!(short_names("apps", "deployments"), &["deploy"]);
        assert!(short_names("x", "y").is_empty());
    }

    #[test]
    fn api_version_parsing() {
        assert_eq!(parse_api_version("v1").ok(), Some(("", "v1")));
        assert_eq!(parse_api_version("apps/v1").ok(), Some(("apps", "v1")));
        for bad in [
            "", "a/b/c", "/v1", "apps/", "Apps/v1", "apps/V1", "apps /v1",
        ] {
            let err = parse_api_version(bad).err();
            assert!(matches!(err, Some(Error::Invalid(_))), "{bad:?}");
        }
        let msg = parse_api_version("a/b/c")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("\"a/b/c\""), "{msg}");
    }

    #[test]
    fn subresource_and_singular() {
        let pods = lookup("v1", "Pod");
        assert_eq!(pods.subresource("log").plural, "pods/log");
        assert_eq!(
            pods.subresource("log").subresource("exec").plural,
            "pods/exec"
        );
        assert_eq!(
            lookup("apps/v1", "Deployment").subresource("scale").gr(),
            "deployments/scale.apps"
        );
        assert_eq!(pods.singular(), "pod");
        assert!(pods.is("", "Pod"));
    }
}
