//! `stepbox check`: a deployment-target health check for a live cluster.
//!
//! It connects, reports the server version, checks the run's namespace, and
//! compares what the policy grants (or, with `--step`, the Role the steps'
//! declared needs call for, see [`crate::needs::role`]) with what the
//! credentials may really do (one `SelfSubjectAccessReview` per
//! group/resource/verb, and per name for a grant limited to names, in the
//! namespace), and probes for cluster-wide rights a step worker should not
//! hold. The host enforces the policy on every call; this check shows that
//! Kubernetes RBAC holds the same line, so the two layers agree.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde::Serialize;

use crate::policy::Grant;
use stepbox_cluster::live::{LiveCluster, map_error};

/// How a (resource, verb) of the policy compares with the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Granted by the policy and allowed by the cluster.
    Ok,
    /// Granted by the policy but refused by the cluster: steps will get
    /// `forbidden` from Kubernetes.
    Missing,
    /// A cluster-wide right the credentials should not hold.
    TooBroad,
    /// A cluster-wide right checked and (rightly) not held.
    NotHeld,
    /// The review itself failed.
    Unknown,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// API group ("" core).
    pub group: String,
    /// Resource (plural, maybe with a subresource).
    pub resource: String,
    /// Verb.
    pub verb: String,
    /// Namespace reviewed ("" = cluster-wide).
    pub namespace: String,
    /// The object's name, for a grant limited to names ("" = any).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether what is compared (the policy, or the steps' needs) wants it
    /// (cluster-wide probes: false).
    pub policy: bool,
    /// Whether the cluster allows it; `None` when the review failed.
    pub cluster: Option<bool>,
    /// The comparison.
    pub verdict: Verdict,
    /// The server's reason, or why the review failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The result of a check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The API server.
    pub server: String,
    /// `gitVersion` of the server, if it answered.
    pub server_version: Option<String>,
    /// What the credentials are compared with: "the policy", or the steps'
    /// needs.
    pub compared_with: String,
    /// The namespace checked.
    pub namespace: String,
    /// "exists", "missing", or why it could not be told.
    pub namespace_status: String,
    /// One row per policy grant and cluster-wide probe.
    pub rows: Vec<Row>,
    /// True when nothing is missing or too broad and the server answered.
    pub ok: bool,
    /// What went wrong, in words.
    pub problems: Vec<String>,
}

/// Cluster-wide rights a namespace-scoped step worker must not hold.
const CLUSTER_PROBES: &[(&str, &str, &str)] = &[
    ("*", "*", "*"),
    ("", "namespaces", "create"),
    ("", "namespaces", "delete"),
    ("", "secrets", "list"),
    ("", "nodes", "get"),
    ("rbac.authorization.k8s.io", "clusterroles", "create"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "create",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        "create",
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "create",
    ),
    ("", "pods", "create"),
];

async fn review(
    api: &Api<SelfSubjectAccessReview>,
    group: &str,
    resource: &str,
    verb: &str,
    namespace: &str,
    name: &str,
) -> Result<(bool, String), String> {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r.to_string(), Some(s.to_string())),
        None => (resource.to_string(), None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_string()),
                resource: Some(resource),
                subresource,
                verb: Some(verb.to_string()),
                namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
                name: (!name.is_empty()).then(|| name.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &review).await {
        Ok(r) => {
            let status = r.status.unwrap_or_default();
            Ok((status.allowed, status.reason.unwrap_or_default()))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the check against `cluster` for `namespace`: are `grants` (what
/// `compared_with` names, e.g. "the policy" with `Policy::grants`) held?
pub async fn check(
    cluster: &LiveCluster,
    grants: &[Grant],
    compared_with: &str,
    namespace: &str,
) -> CheckReport {
    let client = cluster.client().clone();
    let mut problems = Vec::new();
    let server_version = match client.apiserver_version().await {
        Ok(v) => Some(v.git_version),
        Err(e) => {
            problems.push(map_error(e, cluster.server(), "version").to_string());
            None
        }
    };
    if server_version.is_none() {
        return CheckReport {
            server: cluster.server().to_string(),
            server_version,
            compared_with: compared_with.to_string(),
            namespace: namespace.to_string(),
            namespace_status: "not checked: the server did not answer".into(),
            rows: Vec::new(),
            ok: false,
            problems,
        };
    }

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace_status = match namespaces.get_opt(namespace).await {
        Ok(Some(_)) => "exists".to_string(),
        Ok(None) => {
            problems.push(format!("namespace {namespace:?} does not exist"));
            "missing".to_string()
        }
        // A namespace-scoped service account usually may not read
        // Namespace objects: that is the setup we want, not a problem.
        Err(kube::Error::Api(s)) if s.code == 403 => {
            "exists (not readable by these credentials, as expected)".to_string()
        }
        Err(e) => format!("unknown: {e}"),
    };

    let reviews: Api<SelfSubjectAccessReview> = Api::all(client);
    let mut rows = Vec::new();
    for grant in grants {
        // A grant limited to names holds only for those names, as in RBAC.
        let names: Vec<&str> = if grant.resource_names.is_empty() {
            vec![""]
        } else {
            grant.resource_names.iter().map(String::as_str).collect()
        };
        for verb in &grant.verbs {
            for name in &names {
                let (cluster_allows, reason) = match review(
                    &reviews,
                    &grant.api_group,
                    &grant.resource,
                    verb.as_str(),
                    namespace,
                    name,
                )
                .await
                {
                    Ok((a, r)) => (Some(a), r),
                    Err(e) => (None, e),
                };
                let verdict = match cluster_allows {
                    Some(true) => Verdict::Ok,
                    Some(false) => Verdict::Missing,
                    None => Verdict::Unknown,
                };
                rows.push(Row {
                    group: grant.api_group.clone(),
                    resource: grant.resource.clone(),
                    verb: verb.as_str().to_string(),
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    policy: true,
                    cluster: cluster_allows,
                    verdict,
                    reason,
                });
            }
        }
    }
    for (group, resource, verb) in CLUSTER_PROBES {
        let (cluster_allows, reason) = match review(&reviews, group, resource, verb, "", "").await {
            Ok((a, r)) => (Some(a), r),
            Err(e) => (None, e),
        };
        let verdict = match cluster_allows {
            Some(true) => Verdict::TooBroad,
            Some(false) => Verdict::NotHeld,
            None => Verdict::Unknown,
        };
        rows.push(Row {
            group: group.to_string(),
            resource: resource.to_string(),
            verb: verb.to_string(),
            namespace: String::new(),
            name: String::new(),
            policy: false,
            cluster: cluster_allows,
            verdict,
            reason,
        });
    }
    let missing = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Missing)
        .count();
    let broad = rows
        .iter()
        .filter(|r| r.verdict == Verdict::TooBroad)
        .count();
    let unknown = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Unknown)
        .count();
    if missing > 0 {
        problems.push(format!(
            "{missing} right(s) wanted by {compared_with} are refused by the cluster: steps will get `forbidden` from Kubernetes (grant them in the Role of the credentials steps run with; `stepbox rbac` prints it)"
        ));
    }
    if broad > 0 {
        problems.push(format!(
            "{broad} cluster-wide right(s) held that a namespace-scoped worker should not have (bind the service account to a Role in {namespace:?}, not a ClusterRole)"
        ));
    }
    if unknown > 0 {
        problems.push(format!("{unknown} access review(s) failed; see the table"));
    }
    CheckReport {
        server: cluster.server().to_string(),
        server_version,
        compared_with: compared_with.to_string(),
        namespace: namespace.to_string(),
        namespace_status,
        ok: problems.is_empty(),
        rows,
        problems,
    }
}
