//! Components: anything that is not a step of this host's world is refused
//! at load time with a message saying what it is, and nothing runs.

use std::path::Path;

use stepbox::LoadError;
use stepbox::engine::MAX_COMPONENT_BYTES;
use stepbox_tests::{guest, run_json};

use super::{host_carries_on, runtime};

/// Loads `file` in the shared runtime (expecting an error), then checks the
/// CLI exits 2 with the same message, and that an ordinary step still runs.
async fn refused(file: &Path, needles: &[&str]) -> LoadError {
    let err = runtime()
        .load_file(file)
        .expect_err("the component is refused");
    let text = err.to_string();
    for n in needles {
        assert!(text.contains(n), "{text:?} should mention {n:?}");
    }
    let run = run_json(file, &[]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "invalid");
    assert!(
        report["error"].as_str().unwrap().contains(needles[0]),
        "{report:#}"
    );
    host_carries_on().await;
    err
}

fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_garbage_bytes() {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (_d, p) = file_with("garbage.wasm", &bytes);
    let err = refused(&p, &["is not a WebAssembly component (no `\\0asm` header)"]).await;
    assert!(matches!(err, LoadError::NotWasm { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_core_module() {
    let (_d, p) = file_with("core.wasm", b"\0asm\x01\0\0\0");
    let err = refused(&p, &["is a core WebAssembly module, not a component"]).await;
    assert!(matches!(err, LoadError::CoreModule { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_header_then_garbage() {
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xffu8, 4096));
    let (_d, p) = file_with("broken.wasm", &bytes);
    let err = refused(&p, &["is a malformed component"]).await;
    assert!(matches!(err, LoadError::Malformed { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_of_another_world() {
    let err = refused(
        &guest("cli-command"),
        &["not a stepbox step", "wasi:cli/command"],
    )
    .await;
    assert!(matches!(err, LoadError::WrongWorld { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_importing_an_interface_the_host_lacks() {
    let err = refused(
        &guest("hostile-import-vault"),
        &["the component imports acme:vault/secrets which this host does not provide"],
    )
    .await;
    assert!(matches!(err, LoadError::WrongWorld { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_importing_a_capability_the_host_lacks() {
    // The guest imports its own idea of `stepbox:step/helm@0.1.0`; the host
    // provides the real helm interface, whose functions have other types,
    // so linking refuses it (no call is ever made with the wrong shape).
    let err = refused(
        &guest("hostile-import-helm"),
        &["stepbox:step/helm@0.1.0", "wrong type"],
    )
    .await;
    assert!(matches!(err, LoadError::WrongWorld { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_component_of_100_mb() {
    // Sparse: 100 MB long, no disk used; refused before it is read.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("huge.wasm");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(100_000_000).unwrap();
    let err = refused(
        &p,
        &["is 100000000 bytes, more than the 67108864 bytes a step may be"],
    )
    .await;
    assert!(
        matches!(err, LoadError::TooLarge { size: 100_000_000, max, .. } if max == MAX_COMPONENT_BYTES)
    );
}
