//! The example steps a team's script pods ran, through `stepbox worker`:
//! a helm upgrade of `steps/helm-upgrade`'s example chart and a kustomize
//! overlay of `deploy-manifests`, each pulled by digest with its package,
//! run with the real helm and kubectl against `stepbox dev-cluster`.

use serde_json::Value;
use stepbox_tests::worker::WorkerProcess;
use stepbox_tests::{helm_bin, kubectl_bin, repo_root, step};

use crate::worker::{Env, NS, ok, phase, steprun};

fn get(env: &Env, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-n", NS, "-o", "json"]);
    let out = env.cluster.kubectl_run(args);
    ok(&out, &format!("kubectl get {}", what.join(" ")));
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn the_worker_runs_a_helm_upgrade_and_a_kustomize_overlay() {
    let env = Env::new(&[], &[]);
    let helm = helm_bin();
    let kubectl = kubectl_bin();
    // Only the flags name usable binaries.
    let worker = WorkerProcess::launch(
        None,
        env.cluster.kubeconfig(),
        NS,
        env.policies.path(),
        "worker-a",
        &[
            "--helm",
            helm.to_str().unwrap(),
            "--kubectl",
            kubectl.to_str().unwrap(),
        ],
        &[
            ("STEPBOX_HELM", "/nonexistent/helm"),
            ("STEPBOX_KUBECTL", "/nonexistent/kubectl"),
        ],
    );
    let push_step = |name: &str| env.push(&step(name), &format!("steps/{name}:1"), false);
    let push_package = |dir: &str, path: &str| env.push(&repo_root().join(dir), path, true);

    // helm upgrade --install of the example chart, values substituted.
    let upgrade = steprun(
        "helm-hello",
        &push_step("helm-upgrade"),
        &format!(
            "  package: {}\n  inputs:\n    release: hello\n    chart: hello-web\n    values: values.yaml\n    tag: \"1.27\"\n    greeting: hi\n",
            push_package("steps/helm-upgrade/example", "pkgs/hello-web:1")
        ),
    );
    env.apply(&upgrade);
    let v = env.finished("helm-hello", &[&worker]);
    assert_eq!(phase(&v), "Succeeded", "{v:#}\n{}", worker.stderr());
    assert_eq!(v["status"]["outputs"]["revision"], "1", "{v:#}");
    assert_eq!(v["status"]["outputs"]["status"], "deployed", "{v:#}");
    let web = get(&env, &["deployment", "hello"]);
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let settings = get(&env, &["configmap", "hello-settings"]);
    assert!(
        settings.to_string().contains("hi"),
        "the greeting value: {settings:#}"
    );
    // helm's own release record, written through the gateway.
    let release = get(&env, &["secret", "sh.helm.release.v1.hello.v1"]);
    assert_eq!(release["type"], "helm.sh/release.v1");

    // deploy-manifests renders the prod overlay with the kubectl it was given.
    let overlay = steprun(
        "kustomize-prod",
        &push_step("deploy-manifests"),
        &format!(
            "  package: {}\n  inputs:\n    kustomization: overlays/prod\n",
            push_package(
                "steps/deploy-manifests/example-kustomize",
                "pkgs/shop-kustomize:1"
            )
        ),
    );
    env.apply(&overlay);
    let v = env.finished("kustomize-prod", &[&worker]);
    assert_eq!(phase(&v), "Succeeded", "{v:#}\n{}", worker.stderr());
    let web = get(&env, &["deployment", "prod-web"]);
    assert_eq!(web["spec"]["replicas"], 3, "the overlay's patch");
    assert_eq!(web["metadata"]["labels"]["environment"], "prod");
}
