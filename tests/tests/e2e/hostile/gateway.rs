//! `stepbox gateway`: the real kubectl, through the gateway in front of a
//! `stepbox dev-cluster`, tries what the hostile kube cases try. Each
//! request is refused with a Kubernetes `Forbidden` Status naming the
//! reason, and the cluster (read directly, past the gateway) is unchanged.

use stepbox_tests::{DevClusterProcess, Invocation, dir_with};

/// Everything, as far as a policy can grant it.
const GRANT_ALL: &str =
    "rules:\n  - apiGroups: [\"*\"]\n    resources: [\"*\"]\n    verbs: [\"*\"]\n";

/// Reads configmaps; manages Roles and RoleBindings.
const RBAC_MANAGER: &str = "rules:\n  - apiGroups: [\"\"]\n    resources: [\"configmaps\"]\n    verbs: [\"get\", \"list\"]\n\
\x20 - apiGroups: [\"rbac.authorization.k8s.io\"]\n    resources: [\"roles\", \"rolebindings\"]\n    verbs: [\"get\", \"list\", \"create\", \"patch\"]\n";

/// What every case starts from: objects in `shop` (the gateway's
/// namespace) and in `other`.
const SEED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {mode: fast}\n---\n\
apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: other}\nstringData: {password: hunter2-other}\n---\n\
apiVersion: v1\nkind: ConfigMap\nmetadata: {name: theirs, namespace: other}\ndata: {owner: other}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: limited, namespace: shop}\nrules: [{apiGroups: [\"\"], resources: [configmaps], verbs: [get]}]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: strong, namespace: shop}\nrules: [{apiGroups: [\"\"], resources: [pods], verbs: [get, list]}]\n";

/// A dev cluster and a gateway in front of it, confined to `shop`.
struct Fixture {
    cluster: DevClusterProcess,
    gateway: DevClusterProcess,
    _files: tempfile::TempDir,
}

impl Fixture {
    fn new(policy_rules: Option<&str>) -> Self {
        let policy = format!(
            "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\n{}",
            policy_rules.unwrap_or("")
        );
        let files = dir_with(&[("seed.yaml", SEED), ("policy.yaml", &policy)]);
        let seed = files.path().join("seed.yaml");
        let cluster =
            DevClusterProcess::start(&["--namespace", "shop", "--seed", seed.to_str().unwrap()]);
        let policy_path = files.path().join("policy.yaml");
        let mut args = vec![
            "--kubeconfig",
            cluster.kubeconfig().to_str().unwrap(),
            "--namespace",
            "shop",
        ];
        if policy_rules.is_some() {
            args.extend(["--policy", policy_path.to_str().unwrap()]);
        }
        let gateway = DevClusterProcess::gateway(&args);
        Self {
            cluster,
            gateway,
            _files: files,
        }
    }

    /// `kubectl ARGS` through the gateway.
    fn through(&self, args: &[&str]) -> Invocation {
        self.gateway.kubectl_run(args)
    }

    /// `kubectl apply -f` of `yaml` through the gateway.
    fn apply(&self, yaml: &str) -> Invocation {
        let file = self
            .gateway
            .dir()
            .join(format!("m{}.yaml", std::process::id() ^ yaml.len() as u32));
        std::fs::write(&file, yaml).unwrap();
        self.through(&["apply", "-f", file.to_str().unwrap()])
    }

    /// `kubectl ARGS` straight to the cluster, past the gateway.
    fn direct(&self, args: &[&str]) -> Invocation {
        self.cluster.kubectl_run(args)
    }

    /// Whether the cluster has the object (read past the gateway).
    fn exists(&self, args: &[&str]) -> bool {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        self.direct(&all).code == 0
    }
}

/// The request was refused as Forbidden, naming each needle, and the
/// gateway audited the refusal.
#[track_caller]
fn assert_forbidden(fx: &Fixture, run: &Invocation, needles: &[&str]) {
    assert_ne!(run.code, 0, "{}", run.all_output());
    let out = run.all_output();
    assert!(
        out.contains("Forbidden") || out.contains("forbidden"),
        "{out}"
    );
    for n in needles {
        assert!(out.contains(n), "kubectl should say {n:?}:\n{out}");
    }
    let audit = fx.gateway.stderr();
    assert!(audit.contains("DENIED"), "the refusal is audited:\n{audit}");
}

#[test]
fn hostile_gateway_other_namespace_in_metadata() {
    let fx = Fixture::new(None);
    let run = fx.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted, namespace: other}\ndata: {a: b}\n");
    assert_forbidden(&fx, &run, &["confined to namespace \"shop\""]);
    assert!(!fx.exists(&["configmap", "planted", "-n", "other"]));
}

#[test]
fn hostile_gateway_list_cannot_name_another_namespace() {
    let fx = Fixture::new(None);
    let run = fx.through(&["get", "configmaps", "-n", "other"]);
    assert_forbidden(&fx, &run, &["confined to namespace \"shop\""]);
    assert!(!run.stdout.contains("theirs"), "{}", run.stdout);
}

#[test]
fn hostile_gateway_get_cannot_reach_another_namespace() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.through(&["get", "secret", "db", "-n", "other", "-o", "yaml"]);
    assert_forbidden(&fx, &run, &["confined to namespace \"shop\""]);
    assert!(
        !run.all_output().contains("aHVudGVy"),
        "no secret value leaks"
    );
}

#[test]
fn hostile_gateway_list_across_all_namespaces() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.through(&["get", "secrets", "--all-namespaces"]);
    assert_forbidden(&fx, &run, &["across all namespaces"]);
    assert!(!run.stdout.contains("db"), "{}", run.stdout);
}

#[test]
fn hostile_gateway_watch_of_another_namespace() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.through(&[
        "get",
        "configmaps",
        "-n",
        "other",
        "--watch",
        "--request-timeout=5s",
    ]);
    assert_forbidden(&fx, &run, &["confined to namespace \"shop\""]);
}

#[test]
fn hostile_gateway_delete_a_namespace() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.through(&["delete", "namespace", "other", "--wait=false"]);
    assert_forbidden(&fx, &run, &["cluster-scoped"]);
    assert!(fx.exists(&["namespace", "other"]));
    assert!(fx.exists(&["configmap", "theirs", "-n", "other"]));
}

#[test]
fn hostile_gateway_cluster_scoped_kind() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: everything}\n\
         rules: [{apiGroups: [\"*\"], resources: [\"*\"], verbs: [\"*\"]}]\n",
    );
    assert_forbidden(&fx, &run, &["cluster-scoped"]);
    assert!(!fx.exists(&["clusterrole", "everything"]));
}

#[test]
fn hostile_gateway_kind_outside_the_policy() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run =
        fx.apply("apiVersion: v1\nkind: Secret\nmetadata: {name: planted}\nstringData: {a: b}\n");
    assert_forbidden(&fx, &run, &["does not grant", "secrets"]);
    assert!(!fx.exists(&["secret", "planted", "-n", "shop"]));
}

const ROLE_HEAD: &str =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: escalate}\n";

#[test]
fn hostile_gateway_role_granting_wildcard_verbs() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{ROLE_HEAD}rules: [{{apiGroups: [\"\"], resources: [configmaps], verbs: [\"*\"]}}]\n"
    ));
    assert_forbidden(&fx, &run, &["grants \"*\" in verbs"]);
    assert!(!fx.exists(&["role", "escalate", "-n", "shop"]));
}

#[test]
fn hostile_gateway_role_granting_more_than_the_policy() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{ROLE_HEAD}rules: [{{apiGroups: [\"\"], resources: [pods], verbs: [get]}}]\n"
    ));
    assert_forbidden(
        &fx,
        &run,
        &["grants \"get\" on pods, which the step policy does not grant"],
    );
    assert!(!fx.exists(&["role", "escalate", "-n", "shop"]));
}

#[test]
fn hostile_gateway_role_patched_to_escalate() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.through(&[
        "patch",
        "role",
        "limited",
        "--type=merge",
        "-p",
        r#"{"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}"#,
    ]);
    assert_forbidden(&fx, &run, &["Role \"limited\" rules[0] grants \"*\""]);
    let role = fx.direct(&[
        "get",
        "role",
        "limited",
        "-n",
        "shop",
        "-o",
        "jsonpath={.rules[0].verbs}",
    ]);
    assert_eq!(role.stdout.trim(), r#"["get"]"#, "unchanged");
}

const BINDING_HEAD: &str =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: bind}\n";

#[test]
fn hostile_gateway_rolebinding_to_a_cluster_role() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
         subjects: [{{kind: ServiceAccount, name: default, namespace: shop}}]\n"
    ));
    assert_forbidden(&fx, &run, &["binds ClusterRole \"cluster-admin\""]);
    assert!(!fx.exists(&["rolebinding", "bind", "-n", "shop"]));
}

#[test]
fn hostile_gateway_rolebinding_to_a_subject_in_another_namespace() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: limited}}\n\
         subjects: [{{kind: ServiceAccount, name: admin, namespace: kube-system}}]\n"
    ));
    assert_forbidden(&fx, &run, &["reaches beyond namespace \"shop\""]);
    assert!(!fx.exists(&["rolebinding", "bind", "-n", "shop"]));
}

#[test]
fn hostile_gateway_rolebinding_to_every_authenticated_user() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: limited}}\n\
         subjects: [{{kind: Group, name: \"system:authenticated\", apiGroup: rbac.authorization.k8s.io}}]\n"
    ));
    assert_forbidden(&fx, &run, &["system:authenticated"]);
    assert!(!fx.exists(&["rolebinding", "bind", "-n", "shop"]));
}

#[test]
fn hostile_gateway_rolebinding_to_a_stronger_existing_role() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: strong}}\n\
         subjects: [{{kind: ServiceAccount, name: default, namespace: shop}}]\n"
    ));
    assert_forbidden(
        &fx,
        &run,
        &["Role \"strong\" (bound by RoleBinding \"bind\")"],
    );
    assert!(!fx.exists(&["rolebinding", "bind", "-n", "shop"]));
}

#[test]
fn hostile_gateway_rbac_within_the_policy_is_applied() {
    let fx = Fixture::new(Some(RBAC_MANAGER));
    let run = fx.apply(&format!(
        "{BINDING_HEAD}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: limited}}\n\
         subjects: [{{kind: ServiceAccount, name: default, namespace: shop}}]\n"
    ));
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(fx.exists(&["rolebinding", "bind", "-n", "shop"]));
    let audit = fx.gateway.stderr();
    assert!(
        audit.contains("changed rolebinding.rbac.authorization.k8s.io/bind created"),
        "{audit}"
    );
}

#[test]
fn hostile_gateway_service_account_token_secret() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  annotations: {kubernetes.io/service-account.name: default}\n\
         type: kubernetes.io/service-account-token\n",
    );
    assert_forbidden(&fx, &run, &["service account tokens"]);
    assert!(!fx.exists(&["secret", "token", "-n", "shop"]));
}

#[test]
fn hostile_gateway_protobuf_it_cannot_read_is_refused() {
    // kubectl's typed create sends a protobuf Deployment: a body the
    // gateway cannot check is never forwarded.
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.through(&["create", "deployment", "web", "--image=nginx:1.27"]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    assert!(
        run.all_output().contains("Deployment"),
        "{}",
        run.all_output()
    );
    assert!(!fx.exists(&["deployment", "web", "-n", "shop"]));
}

#[test]
fn hostile_gateway_other_paths_are_refused() {
    let fx = Fixture::new(Some(GRANT_ALL));
    let run = fx.through(&["get", "--raw", "/debug/stepbox/requests"]);
    // The gateway's own request log is its; the cluster's is not served.
    assert_eq!(run.code, 0, "{}", run.all_output());
    let run = fx.through(&["get", "--raw", "/logs/"]);
    assert_forbidden(&fx, &run, &["serves the resource API"]);
}
