//! The filesystem and environment a step sees.

use stepbox_tests::{dir_with, guest, run_json};

#[test]
fn packages_are_read_only_workspace_is_writable_and_nothing_else_is_there() {
    let pkg = dir_with(&[("hello.txt", "hello from the package")]);
    let ws = tempfile::tempdir().unwrap();
    let run = run_json(
        &guest("fs-probe"),
        &[
            "--package",
            pkg.path().to_str().unwrap(),
            "--workspace",
            ws.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let out = &run.report()["outputs"];
    assert_eq!(out["package-content"], "hello from the package");
    assert_eq!(out["workspace-roundtrip"], "ok");
    assert_eq!(out["packages-write"], "denied");
    assert_eq!(out["etc-passwd"], "denied");
    assert_eq!(out["dotdot"], "denied");
    assert_eq!(out["env-count"], "0");
    assert_eq!(out["args-count"], "0");
    assert_eq!(out["socket"], "denied");
    assert!(
        ws.path().join("out.txt").is_file(),
        "the workspace is the given directory"
    );
    assert!(!pkg.path().join("x").exists());
}
