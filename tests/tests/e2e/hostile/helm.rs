//! helm: a chart tries what the hostile kube cases try (chart
//! `tests/charts/hostile`, value `case` picks the attack), including what
//! only shows at install time (`lookup`). Whether `helm template` already
//! shows it (the check before helm runs) or only helm's requests do (the
//! run's gateway), the call fails with `forbidden` naming the object, and
//! the namespace, read directly afterwards, is unchanged.

use std::sync::Arc;

use serde_json::Value;
use stepbox::RunOptions;
use stepbox::caps::helm::{HelmCluster, HelmConfig};
use stepbox::cluster::live::{LiveCluster, LiveConfig};
use stepbox::cluster::{ClusterBackend, MemoryCluster};
use stepbox::report::RunReport;
use stepbox::target::Target;
use stepbox_tests::{DevClusterProcess, guest, helm_bin, repo_root};

use super::{policy, runtime};

const GRANT_ALL: &str =
    "rules:\n  - apiGroups: [\"*\"]\n    resources: [\"*\"]\n    verbs: [\"*\"]\n";

/// What helm needs for its release records, configmaps, and RBAC objects.
const RBAC_MANAGER: &str = "rules:\n  - apiGroups: [\"\"]\n    resources: [\"configmaps\", \"secrets\"]\n    verbs: [\"*\"]\n\
\x20 - apiGroups: [\"rbac.authorization.k8s.io\"]\n    resources: [\"roles\", \"rolebindings\"]\n    verbs: [\"*\"]\n";

/// helm's release records and configmaps, nothing else.
const CONFIGMAPS_ONLY: &str = "rules:\n  - apiGroups: [\"\"]\n    resources: [\"configmaps\"]\n    verbs: [\"*\"]\n\
\x20 - apiGroups: [\"\"]\n    resources: [\"secrets\"]\n    verbs: [\"get\", \"list\", \"create\", \"update\", \"delete\"]\n";

/// The namespace's neighbours and the Roles a binding may point at.
const SEED: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: other}\nstringData: {password: hunter2-other}\n---\n\
apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: other}\ndata: {owner: other}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: limited, namespace: shop}\nrules: [{apiGroups: [\"\"], resources: [configmaps], verbs: [get]}]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: strong, namespace: shop}\nrules: [{apiGroups: [\"\"], resources: [pods], verbs: [get, list]}]\n";

/// Turns the install-time cases on: their lookups find it.
const SWITCH: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: switch, namespace: shop}\ndata: {on: \"yes\"}\n";

/// Runs `script` of helm calls on release `app` of the hostile chart in
/// namespace `shop` of `backend` (helm through the run's gateway in front
/// of `helm`), and returns the report and the first call's record.
async fn run(
    script: &str,
    rules: &str,
    backend: Arc<dyn ClusterBackend>,
    helm: HelmCluster,
    dry_run: bool,
) -> (RunReport, Value) {
    let step = runtime().load_file(&guest("helm-ops")).unwrap();
    let target = Target::backend(backend, dry_run).with_helm(Some(HelmConfig {
        binary: helm_bin(),
        cluster: helm,
    }));
    let opts = RunOptions::new("shop", target)
        .policy(policy(rules))
        .packages(repo_root().join("tests/charts"))
        .inputs([
            ("release", "app"),
            ("chart", "/packages/hostile"),
            ("script", script),
        ]);
    let report = runtime().run(&step, opts).await;
    let first = report
        .outputs
        .get("step-1")
        .map(|s| serde_json::from_str(s).unwrap())
        .unwrap_or_else(|| panic!("no step-1: {report:?}"));
    (report, first)
}

/// `case` installed on an embedded namespace seeded with [`SEED`] (and
/// `extra`), under `rules`; the report, the first call and the namespace.
async fn embedded(case: &str, rules: &str, extra: &str) -> (RunReport, Value, MemoryCluster) {
    let cluster = MemoryCluster::new();
    cluster.seed_yaml(SEED, "shop").unwrap();
    if !extra.is_empty() {
        cluster.seed_yaml(extra, "shop").unwrap();
    }
    let (report, first) = run(
        &format!("upgrade case={case}"),
        rules,
        Arc::new(cluster.clone()),
        HelmCluster::Embedded(cluster.clone()),
        true,
    )
    .await;
    (report, first, cluster)
}

/// The call failed with `forbidden` naming each needle; no secret of the
/// other namespace shows anywhere in the report.
#[track_caller]
fn assert_refused(report: &RunReport, call: &Value, needles: &[&str]) {
    assert_eq!(call["ok"], false, "{call}");
    assert_eq!(call["error"]["kind"], "forbidden", "{call}");
    let message = call["error"]["message"].as_str().unwrap_or_default();
    for n in needles {
        assert!(message.contains(n), "{n:?} in {message}");
    }
    let all = serde_json::to_string(report).unwrap();
    assert!(
        !all.contains("hunter2-other"),
        "a secret of another namespace leaked: {all}"
    );
    assert!(
        report
            .audit
            .iter()
            .any(|a| a.decision == stepbox::report::Decision::Denied),
        "the refusal is audited"
    );
}

async fn has(cluster: &MemoryCluster, api_version: &str, kind: &str, ns: &str, name: &str) -> bool {
    let res = cluster.resource(api_version, kind).await.unwrap();
    cluster.get(&res, ns, name).await.unwrap().is_some()
}

/// Nothing of release `app` is in the namespace.
async fn assert_nothing_installed(cluster: &MemoryCluster) {
    assert!(
        !has(cluster, "v1", "ConfigMap", "shop", "app-base").await,
        "the release's objects are not there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_other_namespace_in_metadata() {
    let (report, call, cluster) = embedded("other-namespace", GRANT_ALL, "").await;
    assert_refused(
        &report,
        &call,
        &["ConfigMap app-planted", "confined to namespace \"shop\""],
    );
    assert!(!has(&cluster, "v1", "ConfigMap", "other", "app-planted").await);
    assert_nothing_installed(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_lookup_reads_another_namespace() {
    // `helm template` renders "none"; at install, lookup's GET of the
    // Secret in `other` is refused by the gateway, and helm fails.
    let (report, call, cluster) = embedded("lookup-other-namespace", GRANT_ALL, "").await;
    assert_refused(
        &report,
        &call,
        &[
            "secrets \"db\" is forbidden",
            "confined to namespace \"shop\"",
        ],
    );
    assert!(!has(&cluster, "v1", "ConfigMap", "shop", "app-stolen").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_lookup_lists_a_cluster_scoped_kind() {
    let (report, call, cluster) = embedded("lookup-cluster-scoped", GRANT_ALL, "").await;
    assert_refused(
        &report,
        &call,
        &["namespaces is forbidden", "cluster-scoped"],
    );
    assert!(!has(&cluster, "v1", "ConfigMap", "shop", "app-namespaces").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_renders_into_another_namespace_at_install_time() {
    // What `helm template` shows stays home; at install the chart moves
    // its ConfigMap to `other`. The create is refused at the gateway, and
    // the plan lists no object of `other`.
    let (report, call, cluster) = embedded("install-time-namespace", GRANT_ALL, SWITCH).await;
    assert_refused(
        &report,
        &call,
        &["configmaps", "confined to namespace \"shop\""],
    );
    assert!(!has(&cluster, "v1", "ConfigMap", "other", "app-moved").await);
    assert!(
        report.plan.iter().all(|p| p.namespace == "shop"),
        "{:?}",
        report.plan
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_escalates_a_role_at_install_time_and_atomic_rolls_back() {
    // A first install renders a modest Role; the upgrade, once `switch`
    // exists, renders `*` on `*` only at install time. The gateway refuses
    // the patch and `atomic` leaves the release as it was.
    let cluster = MemoryCluster::new();
    cluster.seed_yaml(SEED, "shop").unwrap();
    let backend: Arc<dyn ClusterBackend> = Arc::new(cluster.clone());
    let (_, first) = run(
        "upgrade case=install-time-escalation",
        RBAC_MANAGER,
        backend.clone(),
        HelmCluster::Embedded(cluster.clone()),
        true,
    )
    .await;
    assert_eq!(first["ok"], true, "{first}");
    cluster.seed_yaml(SWITCH, "shop").unwrap();
    let (report, call) = run(
        "upgrade case=install-time-escalation atomic;status",
        RBAC_MANAGER,
        backend,
        HelmCluster::Embedded(cluster.clone()),
        true,
    )
    .await;
    assert_refused(&report, &call, &["Role \"escalate\" rules[0] grants \"*\""]);
    let res = cluster
        .resource("rbac.authorization.k8s.io/v1", "Role")
        .await
        .unwrap();
    let role = cluster
        .get(&res, "shop", "escalate")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get"]),
        "unchanged"
    );
    let status: Value = serde_json::from_str(&report.outputs["step-2"]).unwrap();
    assert_eq!(
        status["release"]["revision"], 3,
        "rolled back to revision 1 as revision 3: {status}"
    );
    assert_eq!(status["release"]["status"], "deployed", "{status}");
}

/// Cases refused before helm runs: `helm template` already shows them.
/// Each: `forbidden` naming the needles, nothing of the release installed.
macro_rules! refused {
    ($($test:ident: $case:literal under $rules:ident, [$($needle:literal),+ $(,)?];)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let (report, call, cluster) = embedded($case, $rules, "").await;
            assert_refused(&report, &call, &[$($needle),+]);
            assert_nothing_installed(&cluster).await;
        }
    )*};
}

refused! {
    hostile_helm_cluster_scoped_kind: "cluster-scoped" under GRANT_ALL,
        ["ClusterRole app-everything", "cluster-scoped"];
    hostile_helm_namespace_object: "namespace-object" under GRANT_ALL,
        ["Namespace app-new", "cluster-scoped"];
    hostile_helm_kind_outside_the_policy: "kind-outside-policy" under CONFIGMAPS_ONLY,
        ["Secret app-planted", "does not grant"];
    hostile_helm_role_granting_wildcard_verbs: "role-wildcard-verbs" under RBAC_MANAGER,
        ["Role \"escalate\" rules[0] grants \"*\" in verbs"];
    hostile_helm_role_granting_wildcard_resources: "role-wildcard-resources" under RBAC_MANAGER,
        ["Role \"escalate\" rules[0] grants \"*\" in apiGroups"];
    hostile_helm_role_granting_more_than_the_policy: "role-more-than-policy" under RBAC_MANAGER,
        ["grants \"get\" on pods, which the step policy does not grant"];
    hostile_helm_rolebinding_to_a_cluster_role: "binding-cluster-admin" under RBAC_MANAGER,
        ["binds ClusterRole \"cluster-admin\""];
    hostile_helm_rolebinding_to_a_subject_in_another_namespace: "binding-foreign-subject" under RBAC_MANAGER,
        ["reaches beyond namespace \"shop\""];
    hostile_helm_rolebinding_to_every_authenticated_user: "binding-every-user" under RBAC_MANAGER,
        ["system:authenticated"];
    hostile_helm_rolebinding_to_a_stronger_existing_role: "binding-stronger-role" under RBAC_MANAGER,
        ["Role \"strong\" (bound by RoleBinding \"bind\")"];
    hostile_helm_service_account_token_secret: "token-secret" under GRANT_ALL,
        ["service account tokens"];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_rbac_within_the_policy_is_applied() {
    let (report, call, cluster) = embedded("rbac-within-policy", RBAC_MANAGER, "").await;
    assert_eq!(call["ok"], true, "{call} {:?}", report.error);
    assert!(
        has(
            &cluster,
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "shop",
            "bind"
        )
        .await
    );
    let plan: Vec<String> = report.plan.iter().map(|p| p.to_string()).collect();
    assert!(
        plan.contains(&"rolebinding.rbac.authorization.k8s.io/bind created".to_string()),
        "{plan:?}"
    );
}

/// A dev cluster seeded like the embedded cases, and a live backend on it.
fn live_cluster(extra: &str) -> (DevClusterProcess, tempfile::TempDir) {
    let files = stepbox_tests::dir_with(&[("seed.yaml", &format!("{SEED}---\n{extra}"))]);
    let seed = files.path().join("seed.yaml");
    let dev = DevClusterProcess::start(&["--namespace", "shop", "--seed", seed.to_str().unwrap()]);
    (dev, files)
}

async fn live(dev: &DevClusterProcess, script: &str, rules: &str) -> (RunReport, Value) {
    let config = LiveConfig::Kubeconfig {
        path: Some(dev.kubeconfig().to_path_buf()),
        context: None,
    }
    .load()
    .await
    .unwrap();
    let cluster = LiveCluster::from_config(config, false).unwrap();
    let client = cluster.client().clone();
    run(
        script,
        rules,
        Arc::new(cluster),
        HelmCluster::Live(client),
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_helm_live_lookup_and_install_time_namespace_are_refused() {
    let (dev, _files) = live_cluster(SWITCH);
    let (report, call) = live(&dev, "upgrade case=lookup-other-namespace", GRANT_ALL).await;
    assert_refused(&report, &call, &["secrets \"db\" is forbidden"]);
    let (report, call) = live(&dev, "upgrade case=install-time-namespace", GRANT_ALL).await;
    assert_refused(&report, &call, &["confined to namespace \"shop\""]);
    let moved = dev.kubectl_run(["get", "configmap", "app-moved", "-n", "other"]);
    assert_ne!(moved.code, 0, "nothing was created in `other`");
    let stolen = dev.kubectl_run(["get", "configmap", "app-stolen", "-n", "shop"]);
    assert_ne!(stolen.code, 0, "{}", stolen.stdout);
}
