//! JavaScript and TypeScript steps: `guest-sdk/js/build.mjs` (rolldown to
//! bundle, componentize-js to make the component) with the toolchain of
//! `guest-sdk/js/toolchain/`, installed by `npm ci`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::{
    BuildOptions, Sdk, output_path, run_build_script, run_tool, script_fingerprint, step_file_name,
    toolchain, up_to_date,
};

/// What to install when node or npm is missing or too old.
const NEEDS_NODE: &str = "building a JavaScript step needs Node.js 18 or newer (node and npm on \
     PATH): install it from https://nodejs.org or your package manager";

/// Builds the JavaScript/TypeScript step in `dir` into
/// `dir/target/stepbox/NAME.wasm`, unless it is up to date (which needs
/// neither node nor the toolchain).
pub(super) fn build(dir: &Path, sdk: &Sdk, opts: &BuildOptions) -> Result<PathBuf> {
    let pins = Pins::read(sdk)?;
    let out = output_path(dir, &step_file_name(dir, package_name(dir).as_deref()));
    let fingerprint = script_fingerprint("js", &pins.name, sdk, dir)?;
    if up_to_date(&out, &fingerprint) {
        if opts.show_progress {
            eprintln!("{} is up to date: {}", dir.display(), out.display());
        }
        return Ok(out);
    }

    toolchain::require("node", &["--version"], (18, 0), NEEDS_NODE)?;
    toolchain::require("npm", &["--version"], (1, 0), NEEDS_NODE)?;
    let tools = pins.install(opts)?;
    if opts.show_progress {
        eprintln!(
            "building {} (JavaScript) with componentize-js",
            dir.display()
        );
    }
    let mut cmd = Command::new("node");
    cmd.arg(sdk.dir.join("js").join("build.mjs"));
    run_build_script(cmd, dir, &out, &tools, sdk, opts, &fingerprint)
}

/// The `name` in the step's `package.json`, if any.
fn package_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest["name"].as_str().map(str::to_string)
}

/// The SDK's pinned toolchain (`js/toolchain/package.json` and its lock),
/// and the name of its directory, `js-KEY`, KEY from both files.
struct Pins {
    manifest: Vec<u8>,
    lock: Vec<u8>,
    name: String,
}

impl Pins {
    fn read(sdk: &Sdk) -> Result<Self> {
        let dir = sdk.dir.join("js").join("toolchain");
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .with_context(|| format!("cannot read {}", dir.join(name).display()))
        };
        let (manifest, lock) = (read("package.json")?, read("package-lock.json")?);
        let name = format!("js-{}", toolchain::key(&[&manifest, &lock]));
        Ok(Self {
            manifest,
            lock,
            name,
        })
    }

    /// `npm ci` of the pins into `TOOLCHAINS/js-KEY`, unless done before.
    fn install(&self, opts: &BuildOptions) -> Result<PathBuf> {
        let what = "the JavaScript toolchain (componentize-js, jco, rolldown)";
        toolchain::ensure(
            &opts.toolchains,
            &self.name,
            what,
            opts.show_progress,
            |tmp| {
                std::fs::write(tmp.join("package.json"), &self.manifest)?;
                std::fs::write(tmp.join("package-lock.json"), &self.lock)?;
                let mut npm = Command::new("npm");
                npm.arg("ci").arg("--prefix").arg(tmp).args([
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ]);
                run_tool(npm, opts.show_progress, "npm ci")
            },
        )
    }
}
