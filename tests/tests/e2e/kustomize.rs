//! `deploy-manifests` with a kustomization, rendered by the kustomize the
//! real kubectl embeds: the example's base and its `overlays/prod`
//! (patches, configMapGenerator, images, namePrefix, commonLabels), on the
//! embedded namespace and on `stepbox dev-cluster`; a kustomization that
//! reaches outside the package is refused before kustomize runs. The
//! JavaScript and Python ports render and apply it as the Rust step does.

use std::path::Path;

use stepbox_tests::{
    DevClusterProcess, Invocation, deploy_manifests_ports, dir_with, kubectl_bin, observed,
    plan_of, repo_root, run_json, step,
};

fn example() -> String {
    repo_root()
        .join("steps/deploy-manifests/example-kustomize")
        .display()
        .to_string()
}

fn deploy(package: &str, extra: &[&str]) -> Invocation {
    deploy_with(&step("deploy-manifests"), package, extra)
}

/// `deploy-manifests` in any language.
fn deploy_with(wasm: &Path, package: &str, extra: &[&str]) -> Invocation {
    let kubectl = kubectl_bin();
    let mut args = vec![
        "--package",
        package,
        "--kubectl",
        kubectl.to_str().unwrap(),
        "--namespace",
        "dev",
    ];
    args.extend_from_slice(extra);
    run_json(wasm, &args)
}

/// The plan as `action kind name`, the generated ConfigMap's hash suffix
/// replaced by `HASH`.
fn actions(report: &serde_json::Value) -> Vec<String> {
    let mut actions: Vec<String> = plan_of(report)
        .into_iter()
        .map(|(action, _, kind, name)| {
            let name = match name.rsplit_once('-') {
                Some((stem, hash)) if stem.ends_with("web-config") && hash.len() == 10 => {
                    format!("{stem}-HASH")
                }
                _ => name,
            };
            format!("{action} {kind} {name}")
        })
        .collect();
    actions.sort();
    actions
}

#[test]
fn kustomize_overlay_is_rendered_with_its_prefix_and_generator_and_applied() {
    let run = deploy(&example(), &["--input", "kustomization=overlays/prod"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(
        actions(&report),
        [
            "created ConfigMap prod-web-config-HASH",
            "created Deployment prod-web",
            "created Service prod-web",
        ]
    );
    let rendered = report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["call"] == "kustomize.build")
        .expect("the kustomize call is audited");
    assert_eq!(rendered["target"], "/packages/overlays/prod");
    assert_eq!(rendered["decision"], "allowed");
}

#[test]
fn kustomize_package_holding_a_kustomization_is_rendered_not_read_as_objects() {
    let base = format!("{}/base", example());
    let run = deploy(&base, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(
        actions(&run.report()),
        [
            "created ConfigMap web-config-HASH",
            "created Deployment web",
            "created Service web",
        ]
    );
}

#[test]
fn kustomize_resources_outside_the_package_are_refused() {
    let dir = dir_with(&[
        ("pkg/kustomization.yaml", "resources:\n  - ../outside\n"),
        ("outside/kustomization.yaml", "resources:\n  - cm.yaml\n"),
        (
            "outside/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\n",
        ),
    ]);
    let package = dir.path().join("pkg");
    let run = deploy(package.to_str().unwrap(), &[]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    let error = report["error"].as_str().unwrap();
    assert!(error.starts_with("forbidden"), "{error}");
    assert!(error.contains("\"../outside\""), "names the path: {error}");
    assert!(error.contains("outside /packages"), "{error}");
    assert_eq!(plan_of(&report), vec![], "nothing was applied");
}

#[test]
fn kustomize_overlay_is_deployed_to_dev_cluster_as_kubectl_would_render_it() {
    let dc = DevClusterProcess::start(&["--namespace", "dev"]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let run = deploy(
        &example(),
        &[
            "--kubeconfig",
            &kc,
            "--input",
            "kustomization=overlays/prod",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());

    let get = dc.kubectl_run(["get", "deployment", "prod-web", "-n", "dev", "-o", "json"]);
    assert_eq!(get.code, 0, "{}", get.all_output());
    let web: serde_json::Value = serde_json::from_str(&get.stdout).unwrap();
    assert_eq!(web["spec"]["replicas"], 3, "the overlay's patch");
    assert_eq!(web["metadata"]["labels"]["environment"], "prod");
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27", "the overlay's images");
    let config = container["envFrom"][0]["configMapRef"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(config.starts_with("prod-web-config-"), "{config}");

    let get = dc.kubectl_run(["get", "configmap", &config, "-n", "dev", "-o", "json"]);
    assert_eq!(
        get.code,
        0,
        "the generated ConfigMap exists: {}",
        get.all_output()
    );
    let cm: serde_json::Value = serde_json::from_str(&get.stdout).unwrap();
    assert_eq!(
        cm["data"]["LOG_LEVEL"], "warn",
        "the overlay's generator merged"
    );
}

#[test]
fn kustomize_javascript_and_python_deploy_the_overlay_and_the_base_as_rust_does() {
    let base = format!("{}/base", example());
    let cases: [(&str, &[&str]); 2] = [
        (&example(), &["--input", "kustomization=./overlays/prod/"]),
        (&base, &[]),
    ];
    for (package, extra) in cases {
        let rust = deploy(package, extra);
        assert_eq!(rust.code, 0, "{}", rust.all_output());
        let expected = observed(&rust.report());
        assert_eq!(
            expected["plan"].as_array().unwrap().len(),
            3,
            "a Deployment, a Service, a generated ConfigMap: {expected}"
        );
        for (lang, wasm) in deploy_manifests_ports() {
            let run = deploy_with(&wasm, package, extra);
            assert_eq!(run.code, 0, "{lang}: {}", run.all_output());
            assert_eq!(
                observed(&run.report()),
                expected,
                "{lang} against Rust on {package} {extra:?}"
            );
        }
    }
}
