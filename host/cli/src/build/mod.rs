//! `stepbox build`: a step directory, in Rust, JavaScript/TypeScript or
//! Python, to a checked component of the step world.
//!
//! [`Language::detect`] tells the language by the files the directory holds;
//! `rust.rs` runs cargo, `js.rs` and `python.rs` run the guest SDK's build
//! drivers (`guest-sdk/js/build.mjs`, `guest-sdk/python/build.py`) with a
//! toolchain `toolchain.rs` installs into the cache on first use.
//! `guest-sdk/BUILDING.md` is the recipe these follow.
//!
//! JavaScript and Python builds are not byte-reproducible (the
//! pre-initialized memory holds random seeds), and a changed component
//! misses the compile cache (10-20 s of Cranelift). So a JS or Python step
//! is rebuilt only when its inputs changed: [`Fingerprint`] hashes the
//! step's files, the SDK, the WIT and the toolchain's key, and the hash is
//! kept beside the component (`target/stepbox/NAME.wasm.inputs`).

mod js;
mod python;
mod rust;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use stepbox::Runtime;

pub use toolchain::default_root as default_toolchain_root;

/// The languages a step directory can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Rust crate (`Cargo.toml`).
    Rust,
    /// JavaScript or TypeScript (`package.json`, or `step.js` / `step.ts`).
    JavaScript,
    /// Python (`step.py`).
    Python,
}

/// The entry files that make a directory a JavaScript step without a
/// `package.json` (the names `build.mjs` looks for).
const JS_ENTRIES: &[&str] = &["step.ts", "step.mts", "step.js", "step.mjs"];

impl Language {
    /// Tells the language of the step in `dir` by its files, in this order:
    /// `Cargo.toml` (Rust), `package.json` or a `step.{ts,mts,js,mjs}`
    /// (JavaScript/TypeScript), `step.py` (Python).
    pub fn detect(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        if dir.join("Cargo.toml").is_file() {
            Ok(Self::Rust)
        } else if dir.join("package.json").is_file()
            || JS_ENTRIES.iter().any(|f| dir.join(f).is_file())
        {
            Ok(Self::JavaScript)
        } else if dir.join("step.py").is_file() {
            Ok(Self::Python)
        } else {
            bail!(
                "{} is not a step directory: it holds no Cargo.toml (Rust), no package.json \
                 or step.js/step.ts (JavaScript/TypeScript) and no step.py (Python); \
                 `stepbox new NAME --lang rust|js|python` writes a ready one",
                dir.display()
            )
        }
    }

    /// The language's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::JavaScript => "JavaScript",
            Self::Python => "Python",
        }
    }
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Rust: a release build (JavaScript and Python have one kind of build).
    pub release: bool,
    /// Send the tools' progress to stderr (else it is kept, and shown only
    /// when a build fails).
    pub show_progress: bool,
    /// Where the JavaScript and Python toolchains are installed (see
    /// [`default_toolchain_root`]).
    pub toolchains: PathBuf,
}

/// The guest SDK (`guest-sdk/`) and the step contract (`wit/`) of the
/// stepbox checkout the JavaScript and Python builds and `stepbox new` use.
#[derive(Debug, Clone)]
pub struct Sdk {
    /// The `guest-sdk` directory: the Rust SDK, `js/`, `python/`, `templates/`.
    pub dir: PathBuf,
    /// The `wit` directory beside it (package `stepbox:step`).
    pub wit: PathBuf,
}

impl Sdk {
    /// The environment variable naming the `guest-sdk` directory.
    pub const ENV: &str = "STEPBOX_SDK_DIR";

    /// `$STEPBOX_SDK_DIR`, else the `guest-sdk` of the checkout this binary
    /// was built from. The WIT is the `wit` directory beside it (where the
    /// Rust SDK finds it too).
    pub fn locate() -> Result<Self> {
        let (dir, from) = match std::env::var_os(Self::ENV) {
            Some(d) => (PathBuf::from(d), format!("${}", Self::ENV)),
            None => (
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk"),
                "the stepbox checkout this binary was built from".to_string(),
            ),
        };
        let valid = dir.join("Cargo.toml").is_file()
            && dir.join("js/build.mjs").is_file()
            && dir.join("python/build.py").is_file();
        if !valid {
            bail!(
                "no stepbox guest SDK at {} ({from}): set {} to the guest-sdk directory of a \
                 stepbox checkout",
                dir.display(),
                Self::ENV
            );
        }
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let wit = dir.parent().unwrap_or(&dir).join("wit");
        if !wit.join("world.wit").is_file() {
            bail!(
                "no step contract at {} (the wit directory beside the guest SDK {})",
                wit.display(),
                dir.display()
            );
        }
        Ok(Self { dir, wit })
    }
}

/// Builds the step in `dir`, checks it is a step component (which also
/// compiles it into the compile cache, so the first run is a cache hit),
/// and prints the .wasm path as the last line of stdout.
pub fn build_command(dir: &Path, opts: &BuildOptions, runtime: &Runtime) -> Result<u8> {
    let language = Language::detect(dir)?;
    let wasm = build_language(dir, language, opts)?;
    if language != Language::Rust {
        eprintln!(
            "checking {}: a {} component takes 10-20 s to compile the first time, then loads from the compile cache",
            wasm.display(),
            language.name()
        );
    }
    let step = runtime.load_file(&wasm)?;
    eprintln!(
        "checked: a stepbox step component, {} bytes, sha256 {}",
        step.info.size, step.info.sha256
    );
    println!("{}", wasm.display());
    Ok(0)
}

/// Builds the step in `dir` (in whatever language it is written) and
/// returns the path of its .wasm. An unchanged JavaScript or Python step is
/// not built again.
pub fn build_step(dir: &Path, opts: &BuildOptions) -> Result<PathBuf> {
    build_language(dir, Language::detect(dir)?, opts)
}

fn build_language(dir: &Path, language: Language, opts: &BuildOptions) -> Result<PathBuf> {
    let wasm = if language == Language::Rust {
        rust::build(dir, opts.release, opts.show_progress)?
    } else {
        // Absolute, like the path cargo reports for a Rust step.
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        match language {
            Language::JavaScript => js::build(&dir, &Sdk::locate()?, opts)?,
            _ => python::build(&dir, &Sdk::locate()?, opts)?,
        }
    };
    declare_needs(dir, &wasm)?;
    Ok(wasm)
}

/// The file beside a step's sources that declares its needs, in any
/// language (see `stepbox::needs`).
const NEEDS_FILE: &str = "step.yaml";

/// Writes the step's `step.yaml`, if it has one, into the component at
/// `wasm` as its `stepbox:needs` section (replacing one an earlier build
/// wrote).
fn declare_needs(dir: &Path, wasm: &Path) -> Result<()> {
    let file = dir.join(NEEDS_FILE);
    if !file.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let needs = stepbox::needs::StepNeeds::from_text(&text)
        .with_context(|| format!("{}: fix the declaration and build again", file.display()))?;
    let bytes = std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let declared = stepbox::needs::section::embed(&bytes, &needs).with_context(|| {
        format!(
            "cannot declare the needs of {} from {}",
            wasm.display(),
            file.display()
        )
    })?;
    if declared == bytes {
        return Ok(());
    }
    // A new file, not a write through cargo's hard link to its own copy.
    let tmp = temp_output(wasm);
    std::fs::write(&tmp, &declared).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, wasm)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), wasm.display()))?;
    Ok(())
}

/// Where a JavaScript or Python step's component goes: beside Rust's own
/// output, `DIR/target/stepbox/NAME.wasm`.
fn output_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("target")
        .join("stepbox")
        .join(format!("{name}.wasm"))
}

/// The name of a step's component file: `name` (from `package.json` or
/// `pyproject.toml`) if it has one, else the directory's name, with
/// anything but letters, digits, `-` and `_` made `-` (an npm scope is
/// dropped).
fn step_file_name(dir: &Path, name: Option<&str>) -> String {
    let from_dir = || {
        dir.canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "step".to_string())
    };
    let raw = name
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(from_dir);
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        "step".to_string()
    } else {
        clean.to_string()
    }
}

/// The inputs of a build, hashed: which files, with what content, which
/// toolchain. Equal fingerprints mean a build would produce an equivalent
/// component.
#[derive(Debug, Default)]
struct Fingerprint {
    lines: String,
}

impl Fingerprint {
    /// A fingerprint of a build of this kind.
    fn new(kind: &str) -> Self {
        let mut me = Self::default();
        me.text("kind", kind);
        me.text("stepbox", env!("CARGO_PKG_VERSION"));
        me
    }

    /// Adds a labelled value.
    fn text(&mut self, label: &str, value: &str) {
        self.lines.push_str(&format!("{label} {value:?}\n"));
    }

    /// Adds every file under `root` (sorted, recursively), by content; for
    /// `node_modules` by size and modification time (cheap on thousands of
    /// files, and `npm install` changes both). Symbolic links count by
    /// where they point. `skip(relative path, is_dir)` leaves entries out.
    fn tree(&mut self, label: &str, root: &Path, skip: &dyn Fn(&Path, bool) -> bool) -> Result<()> {
        self.walk(label, root, Path::new(""), false, skip)
    }

    fn walk(
        &mut self,
        label: &str,
        root: &Path,
        rel: &Path,
        by_metadata: bool,
        skip: &dyn Fn(&Path, bool) -> bool,
    ) -> Result<()> {
        let dir = root.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot list {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = rel.join(entry.file_name());
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let shown = rel.to_string_lossy().into_owned();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                self.text(
                    &format!("{label} link"),
                    &format!("{shown} -> {}", target.display()),
                );
            } else if meta.is_dir() {
                if skip(&rel, true) {
                    continue;
                }
                let metadata_only = by_metadata || entry.file_name() == "node_modules";
                self.walk(label, root, &rel, metadata_only, skip)?;
            } else if !skip(&rel, false) {
                let what = if by_metadata {
                    let modified = meta
                        .modified()
                        .ok()
                        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    format!("{shown} {} {modified}", meta.len())
                } else {
                    let bytes = std::fs::read(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    format!("{shown} {}", stepbox::inspect::sha256_hex(&bytes))
                };
                self.text(&format!("{label} file"), &what);
            }
        }
        Ok(())
    }

    /// The hex sha256 of everything added.
    fn finish(&self) -> String {
        stepbox::inspect::sha256_hex(self.lines.as_bytes())
    }
}

/// What a step directory's fingerprint leaves out: its build output
/// (`target/` at the top), version control, caches and bytecode.
fn skip_in_step(rel: &Path, is_dir: bool) -> bool {
    let name = rel.file_name().unwrap_or_default();
    if is_dir {
        (rel == Path::new("target"))
            || name == ".git"
            || name == "__pycache__"
            || rel.ends_with("node_modules/.cache")
    } else {
        rel.extension().is_some_and(|e| e == "pyc")
    }
}

/// What an SDK directory's fingerprint leaves out: caches and bytecode.
fn skip_in_sdk(rel: &Path, is_dir: bool) -> bool {
    let name = rel.file_name().unwrap_or_default();
    if is_dir {
        name == "__pycache__" || name == "node_modules"
    } else {
        rel.extension().is_some_and(|e| e == "pyc")
    }
}

/// The path of the fingerprint kept beside a component.
fn stamp_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".inputs");
    out.with_file_name(name)
}

/// Whether `out` was built from inputs with this fingerprint.
fn up_to_date(out: &Path, fingerprint: &str) -> bool {
    out.is_file() && std::fs::read_to_string(stamp_path(out)).is_ok_and(|s| s.trim() == fingerprint)
}

/// A fresh path beside `out` for a build to write to, so a failed or
/// interrupted build never leaves a torn component where `out` is.
fn temp_output(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    out.with_file_name(name)
}

/// The fingerprint of a step in a scripting language `lang` (the SDK's
/// directory of that name), built with the toolchain named `toolchain`:
/// the SDK, the WIT and the step's sources.
fn script_fingerprint(lang: &str, toolchain: &str, sdk: &Sdk, dir: &Path) -> Result<String> {
    let mut fingerprint = Fingerprint::new(lang);
    fingerprint.text("toolchain", toolchain);
    fingerprint.tree("sdk", &sdk.dir.join(lang), &skip_in_sdk)?;
    fingerprint.tree("wit", &sdk.wit, &skip_in_sdk)?;
    fingerprint.tree("step", dir, &skip_in_step)?;
    Ok(fingerprint.finish())
}

/// Runs a scripting language's build script (`cmd`: the interpreter and
/// the script) on the step in `dir` with the arguments every such script
/// takes (`--step --out --toolchain --wit`), then moves the component to
/// `out` with `fingerprint`; a failed build leaves nothing behind.
fn run_build_script(
    mut cmd: Command,
    dir: &Path,
    out: &Path,
    tools: &Path,
    sdk: &Sdk,
    opts: &BuildOptions,
    fingerprint: &str,
) -> Result<PathBuf> {
    let parent = out.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = temp_output(out);
    cmd.arg("--step")
        .arg(dir)
        .arg("--out")
        .arg(&tmp)
        .arg("--toolchain")
        .arg(tools)
        .arg("--wit")
        .arg(&sdk.wit);
    let built = run_tool(
        cmd,
        opts.show_progress,
        &format!("building {}", dir.display()),
    );
    if let Err(e) = built {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    commit_output(&tmp, out, fingerprint)
}

/// Moves a finished build into place and records its fingerprint.
fn commit_output(tmp: &Path, out: &Path, fingerprint: &str) -> Result<PathBuf> {
    if !tmp.is_file() {
        bail!(
            "the build reported success but wrote no component at {}",
            tmp.display()
        );
    }
    std::fs::rename(tmp, out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    std::fs::write(stamp_path(out), format!("{fingerprint}\n"))
        .with_context(|| format!("cannot write {}", stamp_path(out).display()))?;
    Ok(out.to_path_buf())
}

/// Runs a build tool: its stdout is kept (the drivers print the path
/// there, and only stepbox's own stdout counts), its stderr goes to ours
/// with `show_progress`, else it is kept. A failure says `what` failed,
/// with the end of what the tool said.
fn run_tool(mut cmd: Command, show_progress: bool, what: &str) -> Result<()> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if show_progress {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd
        .output()
        .with_context(|| format!("{what}: cannot start {program}"))?;
    if !output.status.success() {
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        bail!("{what} failed ({}){}", output.status, tail(&said));
    }
    Ok(())
}

/// The last lines of a tool's output, as the end of an error message.
fn tail(said: &str) -> String {
    if said.trim().is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = said.trim_end().lines().collect();
    let start = lines.len().saturating_sub(20);
    format!(":\n{}", lines[start..].join("\n"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system's temp dir, removed on drop (the
    /// CLI crate has no tempfile dependency).
    pub(crate) struct TestDir(PathBuf);

    impl TestDir {
        pub(crate) fn new() -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("stepbox-cli-test-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir_with(files: &[&str]) -> TestDir {
        let d = TestDir::new();
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        d
    }

    #[test]
    fn the_files_tell_the_language() {
        let detect = |files: &[&str]| Language::detect(dir_with(files).path()).ok();
        assert_eq!(
            detect(&["Cargo.toml", "package.json"]),
            Some(Language::Rust)
        );
        assert_eq!(
            detect(&["package.json", "step.py"]),
            Some(Language::JavaScript)
        );
        assert_eq!(detect(&["step.ts"]), Some(Language::JavaScript));
        assert_eq!(detect(&["step.py"]), Some(Language::Python));
        assert_eq!(detect(&["src/step.rs"]), None);
        let err = Language::detect(dir_with(&[]).path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no Cargo.toml") && err.contains("stepbox new"),
            "{err}"
        );
    }

    #[test]
    fn component_names_are_file_names() {
        let d = TestDir::new();
        let step = d.path().join("my-step");
        std::fs::create_dir(&step).unwrap();
        assert_eq!(step_file_name(&step, Some("@acme/deploy it")), "deploy-it");
        assert_eq!(step_file_name(&step, Some("")), "my-step");
        assert_eq!(step_file_name(&step, None), "my-step");
        assert_eq!(step_file_name(&step, Some("../..")), "step");
    }

    #[test]
    fn a_fingerprint_changes_with_content_and_ignores_outputs() {
        let d = dir_with(&[
            "step.js",
            "lib/util.js",
            "target/stepbox/x.wasm",
            "__pycache__/a.pyc",
        ]);
        let print = || {
            let mut f = Fingerprint::new("js");
            f.tree("step", d.path(), &skip_in_step).unwrap();
            f.finish()
        };
        let first = print();
        assert_eq!(first, print(), "stable");
        std::fs::write(d.path().join("target/stepbox/x.wasm"), "rebuilt").unwrap();
        std::fs::write(d.path().join("__pycache__/a.pyc"), "recompiled").unwrap();
        assert_eq!(first, print(), "outputs and caches do not count");
        std::fs::write(d.path().join("lib/util.js"), "changed").unwrap();
        let changed = print();
        assert_ne!(first, changed, "a changed file counts");
        std::fs::write(d.path().join("lib/new.js"), "x").unwrap();
        assert_ne!(changed, print(), "a new file counts");
    }

    #[test]
    fn a_stamp_marks_an_output_up_to_date() {
        let d = TestDir::new();
        let out = d.path().join("target/stepbox/s.wasm");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        assert!(!up_to_date(&out, "abc"));
        let tmp = temp_output(&out);
        std::fs::write(&tmp, "wasm").unwrap();
        commit_output(&tmp, &out, "abc").unwrap();
        assert!(!tmp.exists());
        assert!(up_to_date(&out, "abc"));
        assert!(!up_to_date(&out, "abd"));
        std::fs::remove_file(&out).unwrap();
        assert!(!up_to_date(&out, "abc"), "no component, no reuse");
    }
}
