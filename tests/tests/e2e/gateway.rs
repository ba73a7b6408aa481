//! `stepbox gateway` for ordinary work: the real kubectl, through the
//! gateway in front of a `stepbox dev-cluster`, applies, reads, lists,
//! watches (`kubectl rollout status`) and deletes in its namespace, and
//! every request and change is on the gateway's stderr. (What it refuses is
//! in `hostile::gateway`.)

use serde_json::Value;
use stepbox_tests::{DevClusterProcess, example_manifests, kubectl_bin};

fn gateway_to(cluster: &DevClusterProcess, extra: &[&str]) -> DevClusterProcess {
    let mut args = vec![
        "--kubeconfig",
        cluster.kubeconfig().to_str().unwrap(),
        "--namespace",
        "shop",
    ];
    args.extend_from_slice(extra);
    DevClusterProcess::gateway(&args)
}

#[test]
fn kubectl_through_the_gateway_applies_reads_watches_and_deletes_in_its_namespace() {
    let cluster = DevClusterProcess::start(&["--namespace", "shop"]);
    let gateway = gateway_to(&cluster, &[]);
    let manifests = example_manifests("nginx:1.27");
    let run = gateway.kubectl_run(["apply", "-f", manifests.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains("deployment.apps/web created"),
        "{}",
        run.stdout
    );

    let list = gateway.kubectl_run(["get", "deployments", "-o", "name"]);
    assert_eq!(list.code, 0, "{}", list.all_output());
    assert!(
        list.stdout.contains("deployment.apps/web"),
        "{}",
        list.stdout
    );
    let get = gateway.kubectl_run([
        "get",
        "configmap",
        "web-config",
        "-o",
        "jsonpath={.metadata.namespace}",
    ]);
    assert_eq!(get.stdout, "shop", "{}", get.all_output());

    // A watch, admitted like a list.
    let rollout = gateway.kubectl_run(["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(rollout.code, 0, "{}", rollout.all_output());
    assert!(
        rollout.stdout.contains("successfully rolled out"),
        "{}",
        rollout.stdout
    );

    let delete = gateway.kubectl_run(["delete", "configmap", "web-config"]);
    assert_eq!(delete.code, 0, "{}", delete.all_output());

    // The cluster, read past the gateway, has what went through it.
    let direct = cluster.kubectl_run(["get", "deployments,configmaps", "-n", "shop", "-o", "name"]);
    assert!(
        direct.stdout.contains("deployment.apps/web"),
        "{}",
        direct.stdout
    );
    assert!(
        !direct.stdout.contains("configmap/web-config"),
        "{}",
        direct.stdout
    );

    let audit = gateway.stderr();
    for line in [
        "allowed gateway.create apps/v1 Deployment web",
        "allowed gateway.watch apps/v1 Deployment",
        "allowed gateway.delete v1 ConfigMap web-config",
        "changed deployment.apps/web created",
        "changed configmap/web-config deleted",
    ] {
        assert!(audit.contains(line), "{line:?} in the audit:\n{audit}");
    }
}

#[test]
fn a_server_dry_run_gateway_changes_nothing_and_audits_as_json() {
    let cluster = DevClusterProcess::start(&["--namespace", "shop"]);
    let gateway = gateway_to(&cluster, &["--server-dry-run", "--log-format", "json"]);
    let manifests = example_manifests("nginx:1.27");
    let run = gateway.kubectl_run(["apply", "-f", manifests.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let direct = cluster.kubectl_run(["get", "deployments", "-n", "shop", "-o", "name"]);
    assert_eq!(
        direct.stdout.trim(),
        "",
        "a dry run creates nothing: {}",
        direct.stdout
    );
    let lines: Vec<Value> = gateway
        .stderr()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["audit"]["call"] == "gateway.create" && l["audit"]["decision"] == "allowed"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["plan"]["action"] == "created" && l["plan"]["name"] == "web"),
        "the would-be change is planned: {lines:?}"
    );
}

#[test]
fn the_gateway_needs_its_own_token() {
    let cluster = DevClusterProcess::start(&["--namespace", "shop"]);
    let gateway = gateway_to(&cluster, &[]);
    let cluster_token = token(&std::fs::read_to_string(cluster.kubeconfig()).unwrap());
    let gw = std::fs::read_to_string(gateway.kubeconfig()).unwrap();
    assert!(
        !gw.contains(&cluster_token),
        "the gateway's kubeconfig holds none of the cluster's credentials"
    );
    // The cluster's token does not open the gateway.
    let forged = gateway.dir().join("forged-kubeconfig");
    std::fs::write(&forged, gw.replace(&token(&gw), &cluster_token)).unwrap();
    let out = std::process::Command::new(kubectl_bin())
        .env_remove("KUBECONFIG")
        .env("HOME", gateway.dir())
        .args([
            "--kubeconfig",
            forged.to_str().unwrap(),
            "get",
            "configmaps",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("Unauthorized") || text.contains("provide credentials"),
        "{text}"
    );
}

fn token(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_string()
}
