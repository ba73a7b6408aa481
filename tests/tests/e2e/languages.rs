//! Steps in JavaScript/TypeScript and Python: `stepbox build` of each
//! language (the toolchains installed into `target/stepbox-toolchains` on
//! first use), the JavaScript and Python ports of `deploy-manifests` against
//! the Rust one offline and on `stepbox dev-cluster`, the hostile cases that
//! apply to any guest (`hostile_js_*`, `hostile_py_*`), and `stepbox new`
//! then `stepbox run` for each language.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use stepbox_tests::{
    DevClusterProcess, Invocation, dir_with, observed, plan_of, repo_root, run_json, script_step,
    step, stepbox, wasm_target_dir, without_test_build_env,
};

/// The namespace the runs are confined to.
const NS: &str = "demo";

/// A language other than Rust, and its guests.
#[derive(Debug, Clone, Copy)]
enum Lang {
    Js,
    Py,
}

impl Lang {
    /// The `deploy-manifests` port, built.
    fn deploy_manifests(self) -> PathBuf {
        script_step(match self {
            Lang::Js => "steps/deploy-manifests-js",
            Lang::Py => "steps/deploy-manifests-py",
        })
    }

    /// The hostile guest (input `case` picks the attack), built.
    fn hostile(self) -> PathBuf {
        script_step(match self {
            Lang::Js => "tests/guests-js/hostile",
            Lang::Py => "tests/guests-py/hostile",
        })
    }
}

/// `deploy-manifests` (any language) on the Rust step's example package.
fn deploy(wasm: &Path, extra: &[&str]) -> Invocation {
    let example = repo_root().join("steps/deploy-manifests/example");
    let mut args = vec![
        "--package",
        example.to_str().unwrap(),
        "--input",
        "image=nginx:1.27",
        "--namespace",
        NS,
    ];
    args.extend_from_slice(extra);
    run_json(wasm, &args)
}

#[test]
fn deploy_manifests_does_the_same_in_rust_javascript_and_python() {
    let rust = deploy(&step("deploy-manifests"), &[]);
    assert_eq!(rust.code, 0, "{}", rust.all_output());
    let expected = observed(&rust.report());
    assert_eq!(expected["plan"].as_array().unwrap().len(), 5, "{expected}");
    assert_eq!(expected["outputs"]["applied"], "5");
    for lang in [Lang::Js, Lang::Py] {
        let run = deploy(&lang.deploy_manifests(), &[]);
        assert_eq!(run.code, 0, "{lang:?}: {}", run.all_output());
        let report = run.report();
        assert_eq!(report["namespace"], NS);
        assert_eq!(report["backend"], "memory");
        assert_eq!(observed(&report), expected, "{lang:?} against Rust");
    }
}

/// The port deploys the example to a dev cluster; kubectl sees it; the
/// Rust step then applies the very same objects (nothing changes), and so
/// does the port run again.
fn deploys_to_a_dev_cluster_as_rust_does(lang: Lang) {
    let dc = DevClusterProcess::start(&["--namespace", NS]);
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let live = ["--kubeconfig", kc.as_str()];

    let run = deploy(&lang.deploy_manifests(), &live);
    assert_eq!(run.code, 0, "{lang:?}: {}", run.all_output());
    let report = run.report();
    assert_eq!(report["backend"], "live");
    assert_eq!(report["dryRun"], false);
    let mut created: Vec<_> = plan_of(&report)
        .into_iter()
        .map(|(action, _, kind, name)| (action, kind, name))
        .collect();
    created.sort();
    assert_eq!(
        created,
        [
            ("created", "ConfigMap", "web-config"),
            ("created", "Deployment", "web"),
            ("created", "Deployment", "worker"),
            ("created", "Job", "migrate"),
            ("created", "Service", "web"),
        ]
        .map(|(a, k, n)| (a.to_string(), k.to_string(), n.to_string())),
        "{lang:?}"
    );
    let image = dc.kubectl_run([
        "get",
        "deployment",
        "web",
        "-n",
        NS,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image.stdout, "nginx:1.27", "{}", image.all_output());

    for (who, wasm) in [
        ("rust", step("deploy-manifests")),
        ("again", lang.deploy_manifests()),
    ] {
        let run = deploy(&wasm, &live);
        assert_eq!(run.code, 0, "{lang:?} then {who}: {}", run.all_output());
        let plan = plan_of(&run.report());
        assert_eq!(plan.len(), 5, "{plan:?}");
        assert!(
            plan.iter().all(|p| p.0 == "unchanged"),
            "{lang:?} then {who}: the same objects, nothing to change: {plan:?}"
        );
    }
}

#[test]
fn deploy_manifests_js_deploys_to_a_dev_cluster_as_rust_does() {
    deploys_to_a_dev_cluster_as_rust_does(Lang::Js);
}

#[test]
fn deploy_manifests_py_deploys_to_a_dev_cluster_as_rust_does() {
    deploys_to_a_dev_cluster_as_rust_does(Lang::Py);
}

#[test]
fn inspect_lists_the_filesystem_of_a_javascript_step() {
    let wasm = Lang::Js.deploy_manifests();
    let run = Invocation::from(
        stepbox()
            .args(["inspect", "--output", "json"])
            .arg(&wasm)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let info: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["step"], true);
    let capabilities = info["capabilities"].to_string();
    for c in ["kube:", "run:", "filesystem:"] {
        assert!(capabilities.contains(c), "{c} in {capabilities}");
    }
}

/// `stepbox build` of a new step (`file` holding `text`) with nothing on
/// PATH: the error names what to install.
fn build_without_tools(file: &str, text: &str, needs: &str) {
    let step = dir_with(&[(file, text)]);
    let empty = tempfile::tempdir().unwrap();
    let run = Invocation::from(
        stepbox()
            .arg("build")
            .arg(step.path())
            .env("PATH", empty.path())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains(needs), "{}", run.stderr);
}

#[test]
fn building_a_javascript_step_without_node_says_what_to_install() {
    build_without_tools(
        "step.js",
        "export function run(ctx) {}\n",
        "needs Node.js 18 or newer",
    );
}

#[test]
fn building_a_python_step_without_python_says_what_to_install() {
    build_without_tools(
        "step.py",
        "def run(ctx):\n    pass\n",
        "needs Python 3.11 or newer with pip",
    );
}

/// The hostile guest of `lang` with input `case`, in namespace demo.
fn hostile(lang: Lang, case: &str, extra: &[&str]) -> Invocation {
    let input = format!("case={case}");
    let mut args = vec!["--input", input.as_str(), "--namespace", NS];
    args.extend_from_slice(extra);
    run_json(&lang.hostile(), &args)
}

const REFUSAL: &str = "ConfigMap \"sneaky\" names namespace \"kube-system\", but this run is confined to namespace \"demo\"";

/// Another namespace: `forbidden` to the guest, which can handle it;
/// nothing applied, one denied audit line.
fn other_namespace_is_forbidden_to_the_guest(lang: Lang) {
    let run = hostile(lang, "other-namespace", &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["outputs"]["outcome"], "forbidden", "{report}");
    assert_eq!(report["outputs"]["message"], REFUSAL);
    assert_eq!(report["plan"], json!([]));
    let audit = report["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["call"], "kube.apply");
    assert_eq!(audit[0]["decision"], "denied");
}

/// The same refusal, not caught: the run fails with it.
fn other_namespace_uncaught_fails_the_run(lang: Lang) {
    let run = hostile(lang, "other-namespace-uncaught", &[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"], format!("forbidden: {REFUSAL}"));
    assert_eq!(report["plan"], json!([]));
}

/// A secret echoed to the log, stdout, stderr, outputs and the error is
/// masked everywhere; the process's own output never holds it.
fn secret_is_masked(lang: Lang) {
    let secret = "s3cr3t-Zq9-token";
    let run = hostile(
        lang,
        "secret-echo",
        &["--secret", &format!("token={secret}")],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(!run.all_output().contains(secret), "{}", run.all_output());
    let report = run.report();
    assert_eq!(
        report["error"],
        "failing on purpose with the token ******** in the message"
    );
    assert_eq!(report["outputs"]["leak"], "********");
    assert_eq!(report["outputs"]["token"], "********");
    let log: Vec<(String, String)> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (s("source"), s("message"))
        })
        .collect();
    for (source, message) in [
        ("step", "the token is ********"),
        ("stdout", "stdout: the token is ********"),
        ("stderr", "stderr: the token is ********"),
    ] {
        assert!(
            log.contains(&(source.to_string(), message.to_string())),
            "{source}: {message} in {log:?}"
        );
    }
}

/// A loop that never calls the host ends at the time limit.
fn infinite_loop_hits_the_time_limit(lang: Lang) {
    let _built_first = lang.hostile();
    let started = std::time::Instant::now();
    let run = hostile(lang, "infinite-loop", &["--timeout", "2s"]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "limit-exceeded");
    assert_eq!(report["limit"]["kind"], "time");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "ended by the limit, not by the test: {:?}",
        started.elapsed()
    );
}

/// Allocating without end ends at the memory limit.
fn memory_bomb_hits_the_memory_limit(lang: Lang) {
    let run = hostile(lang, "memory-bomb", &["--memory", "64Mi"]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "limit-exceeded");
    assert_eq!(report["limit"]["kind"], "memory");
    assert_eq!(report["limit"]["limit"], 64 * 1024 * 1024);
}

/// Files outside /packages and /workspace cannot be read; /packages cannot
/// be written; /workspace can.
fn files_outside_the_preopens_are_refused(lang: Lang) {
    let packages = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let run = hostile(
        lang,
        "fs-outside",
        &[
            "--package",
            packages.path().to_str().unwrap(),
            "--workspace",
            workspace.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    let outputs = report["outputs"].as_object().unwrap();
    let refused = |name: &str, says: &[&str]| {
        let value = outputs[name].as_str().unwrap_or_default();
        assert!(
            says.iter().any(|s| value.contains(s)),
            "{lang:?} {name}: {value:?} should say one of {says:?}"
        );
    };
    // JS: the SDK finds no preopen holding /etc; Python: WASI has no such file.
    refused(
        "etc-passwd",
        &["outside the step's filesystem", "No such file or directory"],
    );
    for name in ["dotdot", "packages-dotdot", "packages-write"] {
        refused(name, &["not permitted", "not-permitted"]);
    }
    assert_eq!(outputs["workspace-write"], "allowed");
    let allowed: Vec<&String> = outputs
        .keys()
        .filter(|k| outputs[*k] == "allowed")
        .collect();
    assert_eq!(allowed, ["workspace-write"], "{outputs:?}");
    assert!(
        !report.to_string().contains("root:x:0:0"),
        "no /etc/passwd content"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.path().join("ok.txt")).unwrap(),
        "written"
    );
    assert!(!packages.path().join("x").exists());
}

#[test]
fn hostile_js_other_namespace_is_forbidden_to_the_guest() {
    other_namespace_is_forbidden_to_the_guest(Lang::Js);
}

#[test]
fn hostile_py_other_namespace_is_forbidden_to_the_guest() {
    other_namespace_is_forbidden_to_the_guest(Lang::Py);
}

#[test]
fn hostile_js_other_namespace_uncaught_fails_the_run() {
    other_namespace_uncaught_fails_the_run(Lang::Js);
}

#[test]
fn hostile_py_other_namespace_uncaught_fails_the_run() {
    other_namespace_uncaught_fails_the_run(Lang::Py);
}

#[test]
fn hostile_js_secret_echo_is_masked() {
    secret_is_masked(Lang::Js);
}

#[test]
fn hostile_py_secret_echo_is_masked() {
    secret_is_masked(Lang::Py);
}

#[test]
fn hostile_js_infinite_loop_hits_the_time_limit() {
    infinite_loop_hits_the_time_limit(Lang::Js);
}

#[test]
fn hostile_py_infinite_loop_hits_the_time_limit() {
    infinite_loop_hits_the_time_limit(Lang::Py);
}

#[test]
fn hostile_js_memory_bomb_hits_the_memory_limit() {
    memory_bomb_hits_the_memory_limit(Lang::Js);
}

#[test]
fn hostile_py_memory_bomb_hits_the_memory_limit() {
    memory_bomb_hits_the_memory_limit(Lang::Py);
}

#[test]
fn hostile_js_files_outside_the_preopens_are_refused() {
    files_outside_the_preopens_are_refused(Lang::Js);
}

#[test]
fn hostile_py_files_outside_the_preopens_are_refused() {
    files_outside_the_preopens_are_refused(Lang::Py);
}

/// `stepbox` in `dir`, with the environment a step author's shell has.
fn stepbox_in(dir: &Path) -> std::process::Command {
    let mut c = stepbox();
    without_test_build_env(&mut c);
    c.current_dir(dir);
    c
}

/// `stepbox new NAME --lang LANG` in a fresh directory, then `stepbox run
/// NAME` there: it builds, runs on the embedded namespace with
/// `NAME/package` as /packages, and sets its outputs. `prepare` may adjust
/// the new step (and the command's environment) before the run. Returns
/// the temp dir and the run's report.
fn new_then_run(
    lang: &str,
    name: &str,
    prepare: impl Fn(&Path, &mut std::process::Command),
) -> (tempfile::TempDir, Value) {
    let home = tempfile::tempdir().unwrap();
    let run = Invocation::from(
        stepbox_in(home.path())
            .args(["new", name, "--lang", lang])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains(&format!("stepbox run {name}")),
        "says what to run next: {}",
        run.stdout
    );
    let dir = home.path().join(name);
    // The package's ConfigMap gets its own name, to show the run used it.
    let config = dir.join("package/configmap.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("name: greeting"), "{text}");
    std::fs::write(
        &config,
        text.replace("name: greeting", "name: from-package"),
    )
    .unwrap();

    let mut cmd = stepbox_in(home.path());
    cmd.args(["run", name, "--output", "json", "--input", "message=hi"]);
    prepare(&dir, &mut cmd);
    let run = Invocation::from(cmd.output().unwrap());
    assert_eq!(run.code, 0, "{lang}: {}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["namespace"], "default");
    assert_eq!(report["outputs"]["message"], "hi");
    assert_eq!(report["outputs"]["configmap"], "from-package", "{report}");
    assert_eq!(
        plan_of(&report),
        [(
            "created".to_string(),
            "v1".to_string(),
            "ConfigMap".to_string(),
            "from-package".to_string()
        )]
    );
    assert!(
        report["audit"]
            .to_string()
            .contains("\"call\":\"kube.wait\""),
        "the step waited: {report}"
    );
    (home, report)
}

#[test]
fn new_rust_step_runs_at_once() {
    new_then_run("rust", "hello-rs", |dir, cmd| {
        // The versions the test guests use, offline, in their target dir:
        // only the new crate itself compiles.
        std::fs::copy(
            repo_root().join("tests/guests/Cargo.lock"),
            dir.join("Cargo.lock"),
        )
        .unwrap();
        cmd.env("CARGO_TARGET_DIR", wasm_target_dir())
            .env("CARGO_NET_OFFLINE", "true");
    });
}

#[test]
fn new_python_step_runs_at_once() {
    new_then_run("python", "hello-py", |_, _| {});
}

/// JavaScript, and what `stepbox run` does with a built step: an unchanged
/// step is not built again (its component keeps its bytes, so its compiled
/// code stays in the cache); a changed one is.
#[test]
fn new_javascript_step_runs_at_once_and_is_rebuilt_only_when_changed() {
    let (home, _) = new_then_run("js", "hello-js", |_, _| {});
    let build = || {
        let run = Invocation::from(
            stepbox_in(home.path())
                .args(["build", "hello-js"])
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 0, "{}", run.all_output());
        let wasm = PathBuf::from(run.stdout.lines().last().unwrap());
        (run, std::fs::read(wasm).unwrap())
    };
    let (run, before) = build();
    assert!(run.stderr.contains("is up to date"), "{}", run.stderr);
    let (_, same) = build();
    assert!(same == before, "an unchanged step keeps its component");

    let entry = home.path().join("hello-js/step.js");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("'hello from hello-js'"), "{text}");
    std::fs::write(
        &entry,
        text.replace("'hello from hello-js'", "'changed in place'"),
    )
    .unwrap();
    let run = Invocation::from(
        stepbox_in(home.path())
            .args(["run", "hello-js", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(run.report()["outputs"]["message"], "changed in place");
    let (_, after) = build();
    assert!(after != before, "a changed step is built again");
}
