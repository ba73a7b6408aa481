//! Filesystem: a step sees `/workspace` (read-write, with a quota) and
//! `/packages` (read-only), and nothing else of the host.

use stepbox::report::Status;
use stepbox_tests::run_json;

use super::{Case, assert_limit, assert_status, dir_with, hostile_wasm, out};

fn package() -> tempfile::TempDir {
    dir_with(&[("hello.txt", "package content")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_dotdot_traversal() {
    let r = Case::new("fs-read")
        .input("path", "/workspace/../../../../../../etc/passwd")
        .run()
        .await;
    assert_status(&r, Status::Succeeded, &[]);
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "read-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_dotdot_from_packages() {
    let pkg = package();
    let r = Case::new("fs-read")
        .packages(pkg.path())
        .input("path", "/packages/../../../etc/hostname")
        .run()
        .await;
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "read-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_absolute_host_path() {
    let r = Case::new("fs-read")
        .input("path", "/etc/passwd")
        .run()
        .await;
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "NotFound",
        "{}",
        out(&r, "read-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_host_path_of_the_workspace() {
    // The step is told where its workspace lives on the host: that path
    // means nothing inside the sandbox.
    let ws = dir_with(&[("inside.txt", "x")]);
    let host_path = ws.path().join("inside.txt");
    let r = Case::new("fs-read")
        .workspace(ws.path())
        .input("path", host_path.to_str().unwrap())
        .run()
        .await;
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "NotFound",
        "{}",
        out(&r, "read-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_symlink_pointing_out() {
    let ws = tempfile::tempdir().unwrap();
    let r = Case::new("fs-symlink")
        .workspace(ws.path())
        .input("target", "../../../../../../../../etc/passwd")
        .input("link", "/workspace/leak")
        .run()
        .await;
    // Planting the link is allowed (it is only text), following it is not,
    // and neither is publishing it.
    assert_eq!(out(&r, "symlink"), "ok");
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "read-message")
    );
    assert_eq!(out(&r, "outcome"), "forbidden");
    assert_eq!(
        out(&r, "message"),
        "artifact /workspace/leak is a symlink; publish the file itself"
    );
    assert!(r.artifacts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_symlink_absolute_target() {
    let r = Case::new("fs-symlink")
        .input("target", "/etc/passwd")
        .input("link", "/workspace/abs")
        .run()
        .await;
    assert_eq!(out(&r, "symlink"), "denied");
    assert_eq!(
        out(&r, "symlink-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "symlink-message")
    );
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(out(&r, "outcome"), "not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_write_to_packages() {
    let pkg = package();
    let r = Case::new("fs-write")
        .packages(pkg.path())
        .input("path", "/packages/new.txt")
        .run()
        .await;
    assert_eq!(out(&r, "write"), "denied");
    assert_eq!(
        out(&r, "write-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "write-message")
    );
    assert!(!pkg.path().join("new.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_modify_a_package_file() {
    let pkg = package();
    let r = Case::new("fs-append")
        .packages(pkg.path())
        .input("path", "/packages/hello.txt")
        .run()
        .await;
    assert_eq!(out(&r, "append"), "denied");
    assert_eq!(
        out(&r, "append-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "append-message")
    );
    assert_eq!(
        std::fs::read_to_string(pkg.path().join("hello.txt")).unwrap(),
        "package content"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_remove_a_package_file() {
    let pkg = package();
    let r = Case::new("fs-remove")
        .packages(pkg.path())
        .input("path", "/packages/hello.txt")
        .run()
        .await;
    assert_eq!(out(&r, "remove"), "denied");
    assert_eq!(
        out(&r, "remove-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "remove-message")
    );
    assert!(pkg.path().join("hello.txt").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_rename_a_package_file_into_the_workspace() {
    let pkg = package();
    let r = Case::new("fs-rename")
        .packages(pkg.path())
        .input("from", "/packages/hello.txt")
        .input("to", "/workspace/stolen.txt")
        .run()
        .await;
    assert_eq!(out(&r, "rename"), "denied");
    assert_eq!(
        out(&r, "rename-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "rename-message")
    );
    assert!(pkg.path().join("hello.txt").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_hard_link_a_package_file() {
    // A hard link into the workspace would make the read-only package file
    // writable through the new name.
    let pkg = package();
    let ws = tempfile::tempdir().unwrap();
    let r = Case::new("fs-hardlink")
        .packages(pkg.path())
        .workspace(ws.path())
        .input("from", "/packages/hello.txt")
        .input("to", "/workspace/linked.txt")
        .run()
        .await;
    assert_eq!(out(&r, "hardlink"), "denied");
    assert_eq!(
        out(&r, "hardlink-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "hardlink-message")
    );
    assert_eq!(out(&r, "write"), "denied");
    assert_eq!(
        std::fs::read_to_string(pkg.path().join("hello.txt")).unwrap(),
        "package content"
    );
    assert!(!ws.path().join("linked.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_hard_link_out_of_the_workspace() {
    let r = Case::new("fs-hardlink")
        .input("from", "/workspace/../../../../etc/passwd")
        .input("to", "/workspace/passwd")
        .run()
        .await;
    assert_eq!(out(&r, "hardlink"), "denied");
    assert_eq!(
        out(&r, "hardlink-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "hardlink-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_huge_file_past_the_workspace_quota() {
    let ws = tempfile::tempdir().unwrap();
    let r = Case::new("fs-fill")
        .workspace(ws.path())
        .workspace_quota(8 << 20, 1000)
        .run()
        .await;
    assert_limit(
        &r,
        "workspace-bytes",
        &[
            "workspace limit exceeded",
            "more than 8 MiB",
            "limits.workspaceBytes",
        ],
    );
    // Sampling lets it overshoot by what it writes in one interval, not more.
    let written = std::fs::metadata(ws.path().join("fill")).unwrap().len();
    assert!(
        written < 512 << 20,
        "stopped near the quota, wrote {written} bytes"
    );

    // The CLI: exit 3, with the quota from a policy file.
    let p = dir_with(&[(
        "policy.yaml",
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\nlimits:\n  workspaceBytes: 4Mi\n",
    )]);
    let run = run_json(
        &hostile_wasm(),
        &[
            "--input",
            "case=fs-fill",
            "--policy",
            p.path().join("policy.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert_eq!(run.report()["limit"]["kind"], "workspace-bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_sparse_terabyte_file() {
    // Counted at its full length: a 1 TiB file is over the 1 GiB default,
    // even if it takes no disk yet (and returns at once).
    let r = Case::new("fs-sparse").run().await;
    assert_limit(&r, "workspace-bytes", &["more than 1 GiB"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_many_files() {
    let r = Case::new("fs-many-files")
        .workspace_quota(1 << 30, 200)
        .run()
        .await;
    assert_limit(
        &r,
        "workspace-files",
        &["more than 200 files", "limits.workspaceFiles"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_deep_nesting() {
    // Deeper than the host measures: it would hide files from the quota.
    let r = Case::new("fs-deep").run().await;
    assert_limit(&r, "workspace-depth", &["more than 128 levels deep"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_deleted_file_held_open() {
    // Deleted but open: no directory shows it, the disk still fills.
    let r = Case::new("fs-unlinked")
        .workspace_quota(8 << 20, 1000)
        .run()
        .await;
    assert_limit(&r, "workspace-bytes", &["more than 8 MiB"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fs_artifact_swapped_for_a_symlink() {
    let ws = tempfile::tempdir().unwrap();
    let r = Case::new("fs-artifact-swap")
        .workspace(ws.path())
        .run()
        .await;
    assert_status(
        &r,
        Status::Failed,
        &[
            "artifact report (/workspace/report.txt) changed after it was published",
            "is a symlink",
        ],
    );
    assert!(r.artifacts.is_empty(), "{:?}", r.artifacts);
}
