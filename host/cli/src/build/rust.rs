//! Rust steps: `cargo build --target wasm32-wasip2` of the step's crate.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::tail;

/// The target steps are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Runs `cargo build --target wasm32-wasip2` for the crate in `dir` and
/// returns the path of the .wasm it produced. Cargo's own messages go to
/// stderr when `show_progress` is set.
pub(super) fn build(dir: &Path, release: bool, show_progress: bool) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} holds no Cargo.toml: pass the directory of a step crate",
            dir.display()
        );
    }
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(if show_progress {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    if release {
        cmd.arg("--release");
    }
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "cannot start {}: is Rust (cargo) installed?",
            Path::new(&cargo).display()
        )
    })?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut wasm = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let same_crate = msg["manifest_path"]
            .as_str()
            .and_then(|p| Path::new(p).canonicalize().ok())
            .is_some_and(|p| p == manifest);
        if !same_crate {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with(".wasm") {
                    wasm = Some(PathBuf::from(f));
                }
            }
        }
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2")
            && stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            "\nhint: install the target with `rustup target add wasm32-wasip2`"
        } else {
            ""
        };
        bail!(
            "building {} failed ({}){}{}",
            dir.display(),
            output.status,
            tail(&stderr),
            hint
        );
    }
    wasm.with_context(|| {
        format!(
            "cargo built {} but produced no .wasm: a step crate needs `crate-type = [\"cdylib\"]` under [lib]",
            dir.display()
        )
    })
}
