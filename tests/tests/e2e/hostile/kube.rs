//! Kubernetes: a step touches only namespaced objects of its run's
//! namespace, only as its policy allows, and cannot grant itself (or anyone)
//! more through RBAC objects. Hostile manifests are refused before any
//! document is applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stepbox::cluster::ClusterBackend;
use stepbox::cluster::MemoryCluster;
use stepbox::policy::Policy;

use super::{Case, assert_limit, assert_outcome, out, policy};

/// Grants everything: what is refused under it is refused by the host
/// itself, whatever a policy says.
fn grant_all() -> Policy {
    policy("rules:\n  - apiGroups: [\"*\"]\n    resources: [\"*\"]\n    verbs: [\"*\"]\n")
}

/// Reads configmaps; manages Roles and RoleBindings.
fn rbac_manager() -> Policy {
    policy(
        "rules:\n  - apiGroups: [\"\"]\n    resources: [\"configmaps\"]\n    verbs: [\"get\", \"list\"]\n\
         \x20 - apiGroups: [\"rbac.authorization.k8s.io\"]\n    resources: [\"roles\", \"rolebindings\"]\n    verbs: [\"get\", \"list\", \"create\", \"patch\"]\n",
    )
}

fn seeded(yaml: &str) -> Arc<MemoryCluster> {
    let cluster = MemoryCluster::new();
    cluster.seed_yaml(yaml, super::NS).expect("seed");
    Arc::new(cluster)
}

async fn names(cluster: &MemoryCluster, api_version: &str, kind: &str) -> Vec<String> {
    let res = cluster.resource(api_version, kind).await.unwrap();
    let items = cluster.list(&res, super::NS, None).await.unwrap();
    items
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

async fn apply(manifest: &str, policy: Policy) -> stepbox::report::RunReport {
    Case::new("kube-apply")
        .policy(policy)
        .input("manifest", manifest)
        .run()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_other_namespace_in_metadata() {
    let r = apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n  namespace: kube-system\ndata: {a: b}\n",
        grant_all(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "ConfigMap \"sneaky\" names namespace \"kube-system\", but this run is confined to namespace \"dev\"",
        ],
    );
    assert!(r.plan.is_empty());
    assert!(
        r.audit
            .iter()
            .any(|a| a.decision == stepbox::report::Decision::Denied)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_list_cannot_name_another_namespace() {
    // `list` has no namespace parameter: whatever the step does, it lists
    // its run's namespace only.
    let cluster = seeded(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: other}\n",
    );
    let r = Case::new("kube-list")
        .cluster(cluster)
        .input("api-version", "v1")
        .input("kind", "ConfigMap")
        .run()
        .await;
    assert_outcome(&r, "ok", &[]);
    assert_eq!(out(&r, "names"), "dev/mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_get_cannot_reach_another_namespace() {
    let cluster =
        seeded("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: other}\n");
    let r = Case::new("kube-get")
        .cluster(cluster)
        .input("api-version", "v1")
        .input("kind", "ConfigMap")
        .input("name", "theirs")
        .run()
        .await;
    assert_outcome(
        &r,
        "not-found",
        &["ConfigMap \"theirs\" not found in namespace \"dev\""],
    );
}

macro_rules! cluster_scoped {
    ($($test:ident: $api:literal, $kind:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let manifest = concat!("apiVersion: ", $api, "\nkind: ", $kind, "\nmetadata:\n  name: evil\n");
            let r = apply(manifest, grant_all()).await;
            assert_outcome(
                &r,
                "forbidden",
                &[concat!($kind, " is cluster-scoped; steps may only touch namespaced objects in namespace \"dev\"")],
            );
            assert!(r.plan.is_empty());
        }
    )*};
}

cluster_scoped! {
    hostile_kube_cluster_scoped_namespace: "v1", "Namespace";
    hostile_kube_cluster_scoped_cluster_role: "rbac.authorization.k8s.io/v1", "ClusterRole";
    hostile_kube_cluster_scoped_cluster_role_binding: "rbac.authorization.k8s.io/v1", "ClusterRoleBinding";
    hostile_kube_cluster_scoped_crd: "apiextensions.k8s.io/v1", "CustomResourceDefinition";
    hostile_kube_cluster_scoped_persistent_volume: "v1", "PersistentVolume";
    hostile_kube_cluster_scoped_storage_class: "storage.k8s.io/v1", "StorageClass";
    hostile_kube_cluster_scoped_validating_webhook: "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration";
    hostile_kube_cluster_scoped_mutating_webhook: "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_delete_a_namespace() {
    let r = Case::new("kube-delete")
        .policy(grant_all())
        .input("api-version", "v1")
        .input("kind", "Namespace")
        .input("name", "kube-system")
        .run()
        .await;
    assert_outcome(&r, "forbidden", &["Namespace is cluster-scoped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_kind_outside_the_policy() {
    let r = apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: []\n",
        Policy::default(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "the step policy does not grant \"create\" on roles.rbac.authorization.k8s.io in namespace \"dev\"",
        ],
    );
}

const ROLE_HEAD: &str =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: escalate}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_role_granting_wildcard_verbs() {
    let r = apply(
        &format!(
            "{ROLE_HEAD}rules: [{{apiGroups: [\"\"], resources: [configmaps], verbs: [\"*\"]}}]\n"
        ),
        rbac_manager(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &["Role \"escalate\" rules[0] grants \"*\" in verbs"],
    );
    assert!(r.plan.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_role_granting_wildcard_resources() {
    let r = apply(
        &format!("{ROLE_HEAD}rules: [{{apiGroups: [\"*\"], resources: [\"*\"], verbs: [get]}}]\n"),
        rbac_manager(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &["Role \"escalate\" rules[0] grants \"*\" in apiGroups"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_role_granting_more_than_the_policy() {
    let r = apply(
        &format!("{ROLE_HEAD}rules: [{{apiGroups: [\"\"], resources: [secrets], verbs: [get]}}]\n"),
        rbac_manager(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "Role \"escalate\" rules[0] grants \"get\" on secrets, which the step policy does not grant",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_role_patched_to_escalate() {
    let cluster = seeded(&format!(
        "{ROLE_HEAD}rules: [{{apiGroups: [\"\"], resources: [configmaps], verbs: [get]}}]\n"
    ));
    let r = Case::new("kube-patch")
        .policy(rbac_manager())
        .cluster(cluster.clone())
        .input("api-version", "rbac.authorization.k8s.io/v1")
        .input("kind", "Role")
        .input("name", "escalate")
        .input(
            "patch",
            r#"{"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}"#,
        )
        .run()
        .await;
    assert_outcome(
        &r,
        "forbidden",
        &["Role \"escalate\" rules[0] grants \"*\""],
    );
    let res = cluster
        .resource("rbac.authorization.k8s.io/v1", "Role")
        .await
        .unwrap();
    let role = cluster
        .get(&res, super::NS, "escalate")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get"]),
        "unchanged"
    );
}

const BINDING_HEAD: &str =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bind}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_rolebinding_to_a_cluster_role() {
    let r = apply(
        &format!(
            "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
             subjects: [{{kind: ServiceAccount, name: default, namespace: dev}}]\n"
        ),
        rbac_manager(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &["RoleBinding \"bind\" binds ClusterRole \"cluster-admin\": steps may only bind Roles"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_rolebinding_to_a_subject_in_another_namespace() {
    let r = apply(
        &format!(
            "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}\n\
             subjects: [{{kind: ServiceAccount, name: builder, namespace: ci}}]\n"
        ),
        rbac_manager(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "RoleBinding \"bind\" subjects[0] is ServiceAccount \"builder\" in namespace \"ci\", which reaches beyond namespace \"dev\"",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_rolebinding_to_every_authenticated_user() {
    let r = apply(
        &format!(
            "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}\n\
             subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: Group, name: \"system:authenticated\"}}]\n"
        ),
        rbac_manager(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &["subjects[0] is Group \"system:authenticated\""],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_rolebinding_to_a_stronger_existing_role() {
    // An administrator's Role in the namespace grants more than the step's
    // policy: binding it would hand that on.
    let cluster = seeded(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: secret-reader}\n\
         rules: [{apiGroups: [\"\"], resources: [secrets], verbs: [get, list]}]\n",
    );
    let r = Case::new("kube-apply")
        .policy(rbac_manager())
        .cluster(cluster)
        .input(
            "manifest",
            format!(
                "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}}\n\
                 subjects: [{{kind: ServiceAccount, name: default, namespace: dev}}]\n"
            ),
        )
        .run()
        .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "Role \"secret-reader\" (bound by RoleBinding \"bind\") rules[0] grants \"get\" on secrets",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_rbac_within_the_policy_is_applied() {
    // The control case: a Role within the policy, bound to a service
    // account of the namespace, in one apply.
    let cluster = Arc::new(MemoryCluster::new());
    let r = Case::new("kube-apply")
        .policy(rbac_manager())
        .cluster(cluster.clone())
        .input(
            "manifest",
            format!(
                "{ROLE_HEAD}rules: [{{apiGroups: [\"\"], resources: [configmaps], verbs: [get]}}]\n---\n\
                 {BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: escalate}}\n\
                 subjects: [{{kind: ServiceAccount, name: default, namespace: dev}}]\n"
            ),
        )
        .run()
        .await;
    assert_outcome(&r, "ok", &[]);
    assert_eq!(out(&r, "applied"), "2");
    assert_eq!(
        names(&cluster, "rbac.authorization.k8s.io/v1", "RoleBinding").await,
        ["bind"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_service_account_token_secret() {
    let r = apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  annotations:\n    kubernetes.io/service-account.name: stepbox-worker\n\
         type: kubernetes.io/service-account-token\n",
        Policy::default(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "Secret \"token\" is of type kubernetes.io/service-account-token",
            "ServiceAccount \"stepbox-worker\"",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_one_bad_document_means_nothing_is_applied() {
    let cluster = Arc::new(MemoryCluster::new());
    let r = Case::new("kube-apply")
        .policy(grant_all())
        .cluster(cluster.clone())
        .input(
            "manifest",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: own-the-cluster}\n\
             roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        )
        .run()
        .await;
    assert_outcome(
        &r,
        "forbidden",
        &[
            "1 of 3 documents refused, nothing was applied",
            "ClusterRoleBinding is cluster-scoped",
        ],
    );
    assert_eq!(out(&r, "applied"), "0");
    assert!(r.plan.is_empty());
    assert!(
        names(&cluster, "v1", "ConfigMap").await.is_empty(),
        "nothing was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_list_wrapper_around_a_cluster_scoped_object() {
    let r = apply(
        "apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: fine}}\n\
         \x20 - {apiVersion: v1, kind: Namespace, metadata: {name: evil}}\n",
        grant_all(),
    )
    .await;
    assert_outcome(
        &r,
        "forbidden",
        &["1 of 2 documents refused", "Namespace is cluster-scoped"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_patch_moving_an_object_to_another_namespace() {
    let cluster = seeded("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\n");
    let r = Case::new("kube-patch")
        .cluster(cluster)
        .input("api-version", "v1")
        .input("kind", "ConfigMap")
        .input("name", "mine")
        .input("patch", r#"{"metadata": {"namespace": "kube-system"}}"#)
        .run()
        .await;
    assert_outcome(
        &r,
        "forbidden",
        &["names namespace \"kube-system\", but this run is confined to namespace \"dev\""],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_oversized_manifest() {
    let r = Case::new("kube-oversized").run().await;
    assert_outcome(
        &r,
        "invalid",
        &["bytes, more than the limit of 8388608 bytes"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_yaml_bomb() {
    let started = Instant::now();
    let r = Case::new("kube-yaml-bomb").run().await;
    assert_outcome(&r, "invalid", &["document 1"]);
    assert!(started.elapsed() < Duration::from_secs(5), "refused fast");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_deeply_nested_json() {
    let r = Case::new("kube-deep-json").run().await;
    assert_outcome(
        &r,
        "invalid",
        &["flow collections ([...] or {...}) nest more than 128 levels deep"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_deeply_nested_patch() {
    let cluster = seeded("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\n");
    let r = Case::new("kube-deep-patch")
        .cluster(cluster)
        .input("name", "mine")
        .run()
        .await;
    assert_outcome(
        &r,
        "invalid",
        &["the merge patch is not JSON: recursion limit exceeded"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_call_flood_fills_the_audit() {
    // Each call leaves an audit line in host memory; a flood of them ends
    // the run instead of growing the host.
    let r = Case::new("kube-flood")
        .timeout(Duration::from_secs(60))
        .run()
        .await;
    assert_limit(&r, "record-bytes", &["record limit exceeded", "16 MiB"]);
    let recorded: usize = r
        .audit
        .iter()
        .map(|a| a.target.len() + a.reason.len())
        .sum();
    assert!(
        recorded <= 16 << 20,
        "the audit stays within its limit: {recorded}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_kube_wait_past_the_time_limit() {
    let started = Instant::now();
    let r = Case::new("kube-wait-forever")
        .timeout(Duration::from_secs(1))
        .run()
        .await;
    assert_limit(&r, "time", &["time limit exceeded"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended at the time limit: {:?}",
        started.elapsed()
    );
}
