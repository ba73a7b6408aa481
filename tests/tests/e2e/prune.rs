//! `deploy-manifests` with `prune=true`: a run deletes what the inventory
//! says an earlier run of the same step applied and the package no longer
//! holds, shows it as `deleted` in the plan, and leaves alone every object
//! it did not create (never listed, or no longer carrying the inventory's
//! label). On the embedded namespace (the earlier run's state seeded) and
//! on `stepbox dev-cluster` (two real runs). The JavaScript and Python
//! ports prune alike, from the same inventory: each prunes what a run in
//! another language applied.

use std::path::Path;

use stepbox_tests::{
    DevClusterProcess, Invocation, deploy_manifests_ports, dir_with, observed, plan_of, run_json,
    step,
};

const LABEL: &str = "stepbox.dev/inventory";

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n")
}

fn deploy(package: &Path, extra: &[&str]) -> Invocation {
    deploy_with(&step("deploy-manifests"), package, extra)
}

/// `deploy-manifests` in any language, named `deploy` (so every language
/// keeps the inventory `deploy.default`), with `prune=true`.
fn deploy_with(wasm: &Path, package: &Path, extra: &[&str]) -> Invocation {
    let mut args = vec![
        "--package",
        package.to_str().unwrap(),
        "--name",
        "deploy",
        "--input",
        "prune=true",
        "--namespace",
        "dev",
    ];
    args.extend_from_slice(extra);
    run_json(wasm, &args)
}

/// The plan's `kind name` entries with `action`.
fn with_action(report: &serde_json::Value, action: &str) -> Vec<String> {
    let mut v: Vec<String> = plan_of(report)
        .into_iter()
        .filter(|(a, ..)| a == action)
        .map(|(_, _, kind, name)| format!("{kind} {name}"))
        .collect();
    v.sort();
    v
}

/// What a first run left, as `seed.yaml`: its objects labelled, its
/// inventory listing them; beside them one object someone made by hand,
/// and one listed that someone took over (its label removed). And the
/// package of the second run, `pkg/`, which keeps one of them.
fn earlier_run_offline() -> tempfile::TempDir {
    let labelled = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: dev\n  labels:\n    {LABEL}: deploy.default\ndata:\n  a: \"1\"\n"
        )
    };
    let listed = r#"[{"apiVersion":"v1","kind":"ConfigMap","name":"keep"},{"apiVersion":"v1","kind":"ConfigMap","name":"dropped"},{"apiVersion":"v1","kind":"ConfigMap","name":"taken-over"}]"#;
    let seed = [
        labelled("keep"),
        labelled("dropped"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: taken-over\n  namespace: dev\n".into(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: manual\n  namespace: dev\n".into(),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stepbox-inventory.deploy.default\n  namespace: dev\ndata:\n  objects: '{listed}'\n"
        ),
    ]
    .join("---\n");
    dir_with(&[("seed.yaml", &seed), ("pkg/keep.yaml", &config_map("keep"))])
}

/// `deploy-manifests` (any language) on [`earlier_run_offline`].
fn deploy_after_earlier_run(wasm: &Path, dir: &tempfile::TempDir) -> Invocation {
    let seed = dir.path().join("seed.yaml");
    deploy_with(
        wasm,
        &dir.path().join("pkg"),
        &["--seed", seed.to_str().unwrap()],
    )
}

#[test]
fn prune_offline_deletes_exactly_what_the_last_run_applied_and_the_package_dropped() {
    let dir = earlier_run_offline();
    let run = deploy_after_earlier_run(&step("deploy-manifests"), &dir);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(with_action(&report, "deleted"), ["ConfigMap dropped"]);
    assert_eq!(report["outputs"]["pruned"], "1");
    let log = report["log"].to_string();
    assert!(
        log.contains("configmap/taken-over is not pruned"),
        "the kept object is named: {log}"
    );
    assert!(
        !log.contains("manual"),
        "never-listed objects are not looked at"
    );
}

#[test]
fn prune_without_an_inventory_deletes_nothing_and_writes_one() {
    let dir = dir_with(&[("pkg/keep.yaml", &config_map("keep"))]);
    let run = deploy(&dir.path().join("pkg"), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(with_action(&report, "deleted"), Vec::<String>::new());
    assert_eq!(
        with_action(&report, "created"),
        [
            "ConfigMap keep",
            "ConfigMap stepbox-inventory.deploy.default"
        ]
    );
    assert_eq!(report["outputs"]["pruned"], "0");
}

#[test]
fn prune_live_second_run_deletes_the_removed_manifest_and_nothing_else() {
    let dc = DevClusterProcess::start(&["--namespace", "dev"]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let service =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports:\n    - port: 80\n";
    let dir = dir_with(&[
        ("pkg/keep.yaml", &config_map("keep")),
        ("pkg/dropped.yaml", &config_map("dropped")),
        ("pkg/svc.yaml", service),
    ]);
    let pkg = dir.path().join("pkg");

    let first = deploy(&pkg, &["--kubeconfig", &kc]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(
        with_action(&first.report(), "deleted"),
        Vec::<String>::new()
    );
    let made = dc.kubectl_run([
        "create",
        "configmap",
        "manual",
        "-n",
        "dev",
        "--from-literal=x=1",
    ]);
    assert_eq!(made.code, 0, "{}", made.all_output());
    // Someone takes the Service over: it no longer carries the label.
    let took = dc.kubectl_run(["label", "service", "svc", "-n", "dev", &format!("{LABEL}-")]);
    assert_eq!(took.code, 0, "{}", took.all_output());

    std::fs::remove_file(pkg.join("dropped.yaml")).unwrap();
    std::fs::remove_file(pkg.join("svc.yaml")).unwrap();
    let second = deploy(&pkg, &["--kubeconfig", &kc]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    let report = second.report();
    assert_eq!(with_action(&report, "deleted"), ["ConfigMap dropped"]);
    assert_eq!(report["outputs"]["pruned"], "1");

    let left = dc.kubectl_run(["get", "configmap,service", "-n", "dev", "-o", "name"]);
    assert_eq!(left.code, 0, "{}", left.all_output());
    for kept in ["configmap/keep", "configmap/manual", "service/svc"] {
        assert!(
            left.stdout.contains(kept),
            "{kept} survives: {}",
            left.stdout
        );
    }
    assert!(
        !left.stdout.contains("configmap/dropped"),
        "{}",
        left.stdout
    );

    let inventory = dc.kubectl_run([
        "get",
        "configmap",
        "stepbox-inventory.deploy.default",
        "-n",
        "dev",
        "-o",
        "jsonpath={.data.objects}",
    ]);
    assert_eq!(
        inventory.stdout, r#"[{"apiVersion":"v1","kind":"ConfigMap","name":"keep"}]"#,
        "the inventory lists this run's objects only"
    );
}

#[test]
fn prune_offline_javascript_and_python_delete_what_rust_does() {
    let dir = earlier_run_offline();
    let rust = deploy_after_earlier_run(&step("deploy-manifests"), &dir);
    assert_eq!(rust.code, 0, "{}", rust.all_output());
    let expected = observed(&rust.report());
    for (lang, wasm) in deploy_manifests_ports() {
        let run = deploy_after_earlier_run(&wasm, &dir);
        assert_eq!(run.code, 0, "{lang}: {}", run.all_output());
        let report = run.report();
        assert_eq!(
            with_action(&report, "deleted"),
            ["ConfigMap dropped"],
            "{lang}"
        );
        assert_eq!(report["outputs"]["pruned"], "1", "{lang}");
        assert_eq!(observed(&report), expected, "{lang} against Rust");
    }
}

#[test]
fn prune_live_each_language_prunes_what_another_applied() {
    let dc = DevClusterProcess::start(&["--namespace", "dev"]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let dir = dir_with(&[]);
    let pkg = dir.path().join("pkg");
    let [(_, js), (_, py)] = deploy_manifests_ports();
    let rust = step("deploy-manifests");
    // Each run holds the package's ConfigMaps named here; what the run
    // before applied and this one drops is pruned, by another language.
    let runs: [(&str, &Path, &[&str], &[&str]); 4] = [
        ("rust", &rust, &["keep", "one", "two"], &[]),
        ("javascript", &js, &["keep", "two", "three"], &["one"]),
        ("python", &py, &["keep", "four"], &["three", "two"]),
        ("rust again", &rust, &["keep"], &["four"]),
    ];
    for (who, wasm, names, pruned) in runs {
        let _ = std::fs::remove_dir_all(&pkg);
        std::fs::create_dir_all(&pkg).unwrap();
        for name in names {
            std::fs::write(pkg.join(format!("{name}.yaml")), config_map(name)).unwrap();
        }
        let run = deploy_with(wasm, &pkg, &["--kubeconfig", &kc]);
        assert_eq!(run.code, 0, "{who}: {}", run.all_output());
        let report = run.report();
        let expected: Vec<String> = pruned.iter().map(|n| format!("ConfigMap {n}")).collect();
        assert_eq!(with_action(&report, "deleted"), expected, "{who}");
        assert_eq!(
            report["outputs"]["pruned"],
            pruned.len().to_string(),
            "{who}"
        );

        let left = dc.kubectl_run(["get", "configmap", "-n", "dev", "-o", "name"]);
        assert_eq!(left.code, 0, "{}", left.all_output());
        let mut left: Vec<&str> = left
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("configmap/"))
            .filter(|n| *n != "kube-root-ca.crt" && !n.starts_with("stepbox-inventory."))
            .collect();
        left.sort();
        let mut want = names.to_vec();
        want.sort();
        assert_eq!(left, want, "{who}: the package's ConfigMaps, no more");
    }
}

#[test]
fn prune_an_inventory_id_that_is_no_label_value_fails_alike_in_every_language() {
    let dir = dir_with(&[("pkg/keep.yaml", &config_map("keep"))]);
    let pkg = dir.path().join("pkg");
    let bad = ["--input", "inventory=blue green"];
    let rust = deploy(&pkg, &bad);
    assert_ne!(rust.code, 0, "{}", rust.all_output());
    let expected = observed(&rust.report());
    let error = expected["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            r#"invalid: input inventory: "blue green" with step name "deploy" makes "deploy.blue green", not a label value"#
        ),
        "{error}"
    );
    assert_eq!(expected["plan"], serde_json::json!([]), "nothing applied");
    for (lang, wasm) in deploy_manifests_ports() {
        let run = deploy_with(&wasm, &pkg, &bad);
        assert_ne!(run.code, 0, "{lang}: {}", run.all_output());
        assert_eq!(observed(&run.report()), expected, "{lang} against Rust");
    }
}
