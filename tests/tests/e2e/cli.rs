//! The command line itself: build, policy, flags and exit codes.

use stepbox_tests::{guest, repo_root, run_json, stepbox, stepbox_run, target_dir};

#[test]
fn build_prints_the_component_path_last() {
    let dir = repo_root().join("steps/rotate-secret");
    // Reuse the wasm32 build the other tests made, instead of a cold one.
    let out = stepbox()
        .arg("build")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", target_dir().join("wasm"))
        .output()
        .unwrap();
    let run = stepbox_tests::Invocation::from(out);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let last = run.stdout.lines().last().expect("a path");
    assert!(last.ends_with("rotate_secret.wasm"), "{last}");
    assert!(std::path::Path::new(last).is_file());
}

#[test]
fn build_of_a_directory_without_a_crate_is_invalid() {
    let d = tempfile::tempdir().unwrap();
    let run = stepbox_run(["build".as_ref(), d.path().as_os_str()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no Cargo.toml"), "{}", run.stderr);
}

#[test]
fn policy_prints_the_default_policy() {
    let run = stepbox_run(["policy"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("kind: StepPolicy"), "{}", run.stdout);
    assert!(run.stdout.contains("deployments"));
}

#[test]
fn bad_flags_exit_2() {
    let run = stepbox_run(["run", "x.wasm", "--input", "no-equals-sign"]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.stderr.contains("NAME=VALUE"), "{}", run.stderr);
    let run = stepbox_run(["run", "x.wasm", "--memory", "lots"]);
    assert_eq!(run.code, 2);
}

#[test]
fn a_failing_step_exits_1_with_its_message() {
    let run = run_json(&guest("fail"), &[]);
    assert_eq!(run.code, 1);
    let report = run.report();
    assert_eq!(report["status"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("the database is not reachable")
    );
}

#[test]
fn a_bad_seed_file_is_invalid_input() {
    let d = stepbox_tests::dir_with(&[("seed.yaml", "kind: [unclosed")]);
    let run = run_json(
        &guest("hello"),
        &["--seed", d.path().join("seed.yaml").to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "{}", run.all_output());
    assert!(run.report()["error"].as_str().unwrap().contains("seed"));
}

#[test]
fn text_output_shows_log_and_plan() {
    let example = repo_root().join("steps/deploy-manifests/example");
    let run = stepbox_run([
        "run".as_ref(),
        stepbox_tests::step("deploy-manifests").as_os_str(),
        "--package".as_ref(),
        example.as_os_str(),
        "--input".as_ref(),
        "image=nginx:1.27".as_ref(),
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains("deployment.apps/web created"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("+++"),
        "a kubectl-diff style diff: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("INFO"),
        "the live log goes to stderr: {}",
        run.stderr
    );
}
