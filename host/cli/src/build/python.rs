//! Python steps: `guest-sdk/python/build.py` (componentize-py) with the
//! toolchain of `guest-sdk/python/toolchain/`, installed by pip.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{
    BuildOptions, Sdk, output_path, run_build_script, run_tool, script_fingerprint, step_file_name,
    toolchain, up_to_date,
};

/// What to install when python3 or pip is missing or too old.
const NEEDS_PYTHON: &str = "building a Python step needs Python 3.11 or newer with pip \
     (python3 and python3 -m pip on PATH): install it from https://www.python.org or your \
     package manager (e.g. apt install python3 python3-pip)";

/// The interpreter the build runs with.
const PYTHON: &str = "python3";

/// Builds the Python step in `dir` into `dir/target/stepbox/NAME.wasm`,
/// unless it is up to date (which needs neither pip nor the toolchain).
pub(super) fn build(dir: &Path, sdk: &Sdk, opts: &BuildOptions) -> Result<PathBuf> {
    let version = toolchain::require(PYTHON, &["--version"], (3, 11), NEEDS_PYTHON)?;
    let pins = Pins::read(sdk, &version)?;
    let out = output_path(dir, &step_file_name(dir, project_name(dir).as_deref()));
    let fingerprint = script_fingerprint("python", &pins.name, sdk, dir)?;
    if up_to_date(&out, &fingerprint) {
        if opts.show_progress {
            eprintln!("{} is up to date: {}", dir.display(), out.display());
        }
        return Ok(out);
    }

    toolchain::require(PYTHON, &["-m", "pip", "--version"], (1, 0), NEEDS_PYTHON)?;
    let tools = pins.install(opts)?;
    if opts.show_progress {
        eprintln!("building {} (Python) with componentize-py", dir.display());
    }
    let mut cmd = Command::new(PYTHON);
    cmd.arg(sdk.dir.join("python").join("build.py"))
        .env("PIP_ROOT_USER_ACTION", "ignore");
    run_build_script(cmd, dir, &out, &tools, sdk, opts, &fingerprint)
}

/// The `name` of the `[project]` table of the step's `pyproject.toml`, if
/// any (a line `name = "..."`; enough for the files `stepbox new` writes).
fn project_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("pyproject.toml")).ok()?;
    let mut in_project = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_project = line == "[project]";
        } else if in_project
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            return Some(value.trim().trim_matches(['"', '\'']).to_string());
        }
    }
    None
}

/// The SDK's pinned toolchain (`python/toolchain/requirements-*.txt`) and
/// the name of its directory, `python-KEY`, KEY from both pin files and the
/// Python version (componentize-py is a native wheel).
struct Pins {
    tools: PathBuf,
    sdk: PathBuf,
    name: String,
}

impl Pins {
    fn read(sdk: &Sdk, python_version: &str) -> Result<Self> {
        let dir = sdk.dir.join("python").join("toolchain");
        let (tools, sdk) = (
            dir.join("requirements-tools.txt"),
            dir.join("requirements-sdk.txt"),
        );
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let key = toolchain::key(&[&read(&tools)?, &read(&sdk)?, python_version.as_bytes()]);
        Ok(Self {
            tools,
            sdk,
            name: format!("python-{key}"),
        })
    }

    /// `pip install --target` of the pins into `TOOLCHAINS/python-KEY`:
    /// `tools/` (componentize-py) and `site/` (the SDK's own dependencies,
    /// on every step's path), unless done before.
    fn install(&self, opts: &BuildOptions) -> Result<PathBuf> {
        let what = "the Python toolchain (componentize-py)";
        toolchain::ensure(
            &opts.toolchains,
            &self.name,
            what,
            opts.show_progress,
            |tmp| {
                let pip = |target: &str, pins: &Path, no_deps: bool| {
                    let mut cmd = Command::new(PYTHON);
                    cmd.args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                    ])
                    .arg("--target")
                    .arg(tmp.join(target))
                    .arg("-r")
                    .arg(pins)
                    .env("PIP_ROOT_USER_ACTION", "ignore")
                    .env_remove("VIRTUAL_ENV")
                    .env_remove("PYTHONPATH");
                    if no_deps {
                        cmd.arg("--no-deps");
                    }
                    run_tool(
                        cmd,
                        opts.show_progress,
                        &format!("pip install -r {}", pins.display()),
                    )
                };
                pip("tools", &self.tools, false)?;
                pip("site", &self.sdk, true)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::TestDir;

    #[test]
    fn the_project_name_comes_from_pyproject() {
        let d = TestDir::new();
        std::fs::write(
            d.path().join("pyproject.toml"),
            "[tool.x]\nname = \"no\"\n\n[project]\nversion = \"1\"\nname = \"deploy-py\"\n",
        )
        .unwrap();
        assert_eq!(project_name(d.path()).as_deref(), Some("deploy-py"));
        std::fs::write(d.path().join("pyproject.toml"), "[tool.x]\nname = \"no\"\n").unwrap();
        assert_eq!(project_name(d.path()), None);
    }
}
