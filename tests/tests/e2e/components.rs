//! Loading: anything that is not a component of the step world is invalid
//! input (exit 2) with a message that says what it is and what to do.

use stepbox_tests::{dir_with, guest, run_json, step, stepbox_run};

fn invalid(file: &std::path::Path, needles: &[&str]) {
    let run = run_json(file, &[]);
    assert_eq!(run.code, 2, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "invalid");
    let error = report["error"].as_str().unwrap();
    for n in needles {
        assert!(error.contains(n), "error {error:?} should mention {n:?}");
    }
}

#[test]
fn garbage_bytes() {
    let d = dir_with(&[("garbage.wasm", "this is not wasm at all, just text\n")]);
    invalid(
        &d.path().join("garbage.wasm"),
        &["not a WebAssembly component"],
    );
}

#[test]
fn empty_file() {
    let d = dir_with(&[("empty.wasm", "")]);
    invalid(
        &d.path().join("empty.wasm"),
        &["not a WebAssembly component"],
    );
}

#[test]
fn missing_file() {
    invalid(
        std::path::Path::new("/nonexistent/step.wasm"),
        &["cannot read", "/nonexistent/step.wasm"],
    );
}

#[test]
fn core_module_instead_of_a_component() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("core.wasm");
    // The smallest valid core module: magic + version 1.
    std::fs::write(&p, b"\0asm\x01\0\0\0").unwrap();
    invalid(&p, &["core WebAssembly module", "wasm32-wasip2"]);
}

#[test]
fn truncated_component() {
    let bytes = std::fs::read(guest("hello")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("truncated.wasm");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    invalid(&p, &["malformed component"]);
}

#[test]
fn component_of_another_world() {
    invalid(
        &guest("cli-command"),
        &["not a stepbox step", "wasi:cli", "step!"],
    );
}

#[test]
fn wat_text() {
    let d = dir_with(&[("text.wat", "(component)\n")]);
    invalid(&d.path().join("text.wat"), &["WebAssembly text"]);
}

#[test]
fn inspect_lists_capabilities_size_and_sha256() {
    let wasm = step("deploy-manifests");
    let run = stepbox_run([
        "inspect".as_ref(),
        wasm.as_os_str(),
        "--output".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let info: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["size"], std::fs::metadata(&wasm).unwrap().len());
    assert_eq!(info["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(info["step"], true);
    let imports: Vec<&str> = info["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(imports.contains(&"stepbox:step/kube@0.1.0"), "{imports:?}");
    assert!(imports.contains(&"stepbox:step/run@0.1.0"), "{imports:?}");
    let exports: Vec<&str> = info["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(exports.contains(&"run"), "{exports:?}");

    let text = stepbox_run(["inspect".as_ref(), wasm.as_os_str()]);
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.contains("kube: Kubernetes objects"),
        "{}",
        text.stdout
    );
}

#[test]
fn inspect_explains_a_component_of_another_world() {
    let run = stepbox_run(["inspect".as_ref(), guest("cli-command").as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("NOT a step"), "{}", run.stdout);
}
