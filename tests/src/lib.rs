//! Helpers for stepbox's end-to-end tests.
//!
//! The tests drive the real `stepbox` binary and real components: the steps
//! in `steps/` and the test guests in `tests/guests/`. Both are built once
//! per test process by running cargo (the binary for the host, the guests
//! for wasm32-wasip2 into `target/wasm`), so `cargo test --workspace` on a
//! fresh checkout needs nothing else; no `.wasm` is checked in.

pub mod registry;
pub mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target directory the tests (or benches) were built into.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        return if d.is_absolute() {
            d
        } else {
            repo_root().join(d)
        };
    }
    // <target>/<profile>/deps/<test or bench exe>, or <target>/<profile>/<bin>
    // (the benches' binaries use these helpers too).
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let dir = exe.parent()?;
            let profile = if dir.file_name()? == "deps" {
                dir.parent()?
            } else {
                dir
            };
            profile.parent().map(Path::to_path_buf)
        })
        .unwrap_or_else(|| repo_root().join("target"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    without_test_build_env(&mut c);
    c
}

/// Removes from `c`'s environment what cargo set for the running test, so
/// a cargo build it runs (directly, or through `stepbox build`) builds as
/// from a shell and reuses what the tests' builds compiled.
pub fn without_test_build_env(c: &mut Command) {
    // Flags meant for the test build must not leak into nested builds.
    c.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    // Nor the package variables cargo sets for the running test: build
    // scripts (ring's) rerun when they change, which would rebuild half the
    // dependency tree on every test run and again on the next plain build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key.as_str(),
                "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
            )
        {
            c.env_remove(key);
        }
    }
}

fn run_cargo(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    assert!(
        out.status.success(),
        "building {what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `stepbox` binary, built (debug) once per test process.
pub fn stepbox_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("STEPBOX_BIN") {
            return PathBuf::from(p);
        }
        let target = target_dir();
        let mut cmd = cargo();
        cmd.current_dir(repo_root())
            // The whole workspace with its tests, as `cargo test --workspace`
            // resolves it: the same feature set, so the host crates that
            // build compiled are reused rather than built again.
            .args([
                "build",
                "--workspace",
                "--tests",
                "--bin",
                "stepbox",
                "--features",
                "stepbox-cli/faults",
                "--target-dir",
            ])
            .arg(&target);
        run_cargo(cmd, "the stepbox binary");
        target
            .join("debug")
            .join(format!("stepbox{}", std::env::consts::EXE_SUFFIX))
    })
}

/// Where the wasm32-wasip2 builds of steps and guests land.
fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir().join("wasm");
        for (manifest, what) in [
            ("steps/Cargo.toml", "the steps"),
            ("tests/guests/Cargo.toml", "the test guests"),
        ] {
            let mut cmd = cargo();
            cmd.current_dir(repo_root())
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--workspace",
                    "--manifest-path",
                ])
                .arg(repo_root().join(manifest))
                .arg("--target-dir")
                .arg(&target);
            run_cargo(cmd, what);
        }
        target.join("wasm32-wasip2").join("release")
    })
}

/// The cargo target directory of the wasm32-wasip2 builds of the steps and
/// test guests, once they are built: a Rust step built with it as
/// `CARGO_TARGET_DIR` reuses their compiled dependencies.
pub fn wasm_target_dir() -> PathBuf {
    let _ = wasm_dir();
    target_dir().join("wasm")
}

/// A step from `steps/`, e.g. `step("deploy-manifests")`. A step that
/// declares its needs in a `step.yaml` is built with `stepbox build` (a
/// no-op cargo build over the one above, then the declaration embedded),
/// as users build it, so its runs are held to the declaration.
pub fn step(name: &str) -> PathBuf {
    let p = wasm_dir().join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        p.is_file(),
        "no component for step {name} at {}",
        p.display()
    );
    let dir = repo_root().join("steps").join(name);
    if dir.join("step.yaml").is_file() && dir.join("Cargo.toml").is_file() {
        static DECLARED: OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
            OnceLock::new();
        let mut declared = DECLARED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !declared.contains(name) {
            let mut build = stepbox();
            without_test_build_env(&mut build);
            build
                .arg("build")
                .arg(&dir)
                .env("CARGO_TARGET_DIR", wasm_target_dir());
            let run = Invocation::from(build.output().expect("run stepbox build"));
            assert_eq!(run.code, 0, "stepbox build {name}: {}", run.all_output());
            let built = PathBuf::from(run.stdout.lines().last().unwrap_or_default());
            assert_eq!(
                built.canonicalize().ok(),
                p.canonicalize().ok(),
                "stepbox build {name} wrote its component elsewhere"
            );
            declared.insert(name.to_string());
        }
    }
    p
}

/// A test guest from `tests/guests/`, e.g. `guest("policy-probe")`.
pub fn guest(name: &str) -> PathBuf {
    let dir = wasm_dir();
    let lib = dir.join(format!("{}.wasm", name.replace('-', "_")));
    if lib.is_file() {
        return lib;
    }
    let bin = dir.join(format!("{name}.wasm"));
    assert!(
        bin.is_file(),
        "no component for guest {name} in {}",
        dir.display()
    );
    bin
}

/// A `stepbox` command with a private compile cache and no RUST_LOG. The
/// JavaScript and Python toolchains go to [`toolchain_dir`] (unless
/// `STEPBOX_TOOLCHAIN_DIR` names another place), so they are installed
/// once, not once per test process.
pub fn stepbox() -> Command {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut c = Command::new(stepbox_bin());
    c.env_remove("RUST_LOG")
        .env("STEPBOX_CACHE_DIR", cache.path())
        .env("NO_COLOR", "1");
    if std::env::var_os("STEPBOX_TOOLCHAIN_DIR").is_none() {
        c.env("STEPBOX_TOOLCHAIN_DIR", toolchain_dir());
    }
    c
}

/// Where the tests' `stepbox` installs the JavaScript and Python toolchains
/// (componentize-js, componentize-py; from the npm registry and PyPI on
/// first use): `target/stepbox-toolchains`, kept between runs.
pub fn toolchain_dir() -> PathBuf {
    target_dir().join("stepbox-toolchains")
}

/// A JavaScript or Python step directory of the repository (e.g.
/// `steps/deploy-manifests-js`), built with `stepbox build` once per test
/// process; returns its component. The build also compiles the component
/// into this process's compile cache, so runs of it are cache hits. Builds
/// take turns: they share the toolchain install and the machine's cores.
pub fn script_step(dir: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> =
        OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(wasm) = built.get(dir) {
        return wasm.clone();
    }
    let run = Invocation::from(
        stepbox()
            .arg("build")
            .arg(repo_root().join(dir))
            .output()
            .expect("run stepbox build"),
    );
    assert_eq!(run.code, 0, "stepbox build {dir}: {}", run.all_output());
    let wasm = PathBuf::from(run.stdout.lines().last().expect("the .wasm path"));
    assert!(wasm.is_file(), "{dir} built no {}", wasm.display());
    built.insert(dir.to_string(), wasm.clone());
    wasm
}

/// The result of one `stepbox` invocation.
#[derive(Debug)]
pub struct Invocation {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Invocation {
    /// Captures a finished command.
    pub fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout parsed as the JSON report.
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON report ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// stdout and stderr together.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The last line of stdout, trimmed: what push and pull print (the
    /// pinned reference).
    pub fn last_line(&self) -> String {
        self.stdout
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// Runs `stepbox ARGS...`.
pub fn stepbox_run<I, S>(args: I) -> Invocation
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = stepbox().args(args).output().expect("run stepbox");
    Invocation::from(out)
}

/// `stepbox run COMPONENT --output json EXTRA...`, returning the invocation.
pub fn run_json(component: &Path, extra: &[&str]) -> Invocation {
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        component.into(),
        "--output".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    stepbox_run(args)
}

/// What a run did that a step must do alike in any language: status,
/// error, plan, outputs, the step's own log lines, the audit trail and the
/// artifacts' content (`deploy-manifests` and its ports are compared on
/// it).
pub fn observed(report: &Value) -> Value {
    let log: Vec<Value> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["source"] == "step")
        .map(|l| serde_json::json!([l["level"], l["message"]]))
        .collect();
    let audit: Vec<Value> = report["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!([a["call"], a["target"], a["decision"]]))
        .collect();
    let artifacts: Vec<Value> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!([a["name"], a["path"], a["size"], a["sha256"]]))
        .collect();
    serde_json::json!({
        "status": report["status"],
        "error": report["error"],
        "plan": report["plan"],
        "outputs": report["outputs"],
        "log": log,
        "audit": audit,
        "artifacts": artifacts,
    })
}

/// The JavaScript and Python ports of `deploy-manifests`, built, each with
/// its language's name: they must do what the Rust step does ([`observed`]).
pub fn deploy_manifests_ports() -> [(&'static str, PathBuf); 2] {
    [
        ("javascript", script_step("steps/deploy-manifests-js")),
        ("python", script_step("steps/deploy-manifests-py")),
    ]
}

/// The `(action, apiVersion, kind, name)` tuples of a report's plan.
pub fn plan_of(report: &Value) -> Vec<(String, String, String, String)> {
    report["plan"]
        .as_array()
        .expect("plan is a list")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("apiVersion"), s("kind"), s("name"))
        })
        .collect()
}

/// Writes `files` (name, content) into a fresh temp dir.
pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        let p = d.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }
    d
}

/// The directory holding the real `kubectl` (v1.33) and `helm` (v4)
/// binaries, installed once by `scripts/install-tools.sh` into
/// `target/tools` (from the npm registry package that ships them). Set
/// `STEPBOX_TOOLS` to use binaries from elsewhere.
pub fn tools_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("STEPBOX_TOOLS") {
            return PathBuf::from(d);
        }
        let dest = target_dir().join("tools");
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/install-tools.sh"))
            .arg(&dest)
            .output()
            .expect("run scripts/install-tools.sh");
        assert!(
            out.status.success(),
            "installing kubectl and helm failed (scripts/install-tools.sh):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dest
    })
}

/// The real `kubectl` binary.
pub fn kubectl_bin() -> PathBuf {
    tools_dir().join("kubectl")
}

/// The real `helm` binary.
pub fn helm_bin() -> PathBuf {
    tools_dir().join("helm")
}

/// A running `stepbox dev-cluster` (or `stepbox gateway`) child process: a
/// Kubernetes API on localhost, with a kubeconfig for it. The child is
/// killed on drop.
#[derive(Debug)]
pub struct DevClusterProcess {
    child: std::process::Child,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl DevClusterProcess {
    /// How long to wait for the kubeconfig to appear.
    pub const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

    /// Starts `stepbox dev-cluster --kubeconfig-out <tmp>/kubeconfig ARGS...`
    /// and waits (at most [`Self::START_TIMEOUT`]) until the kubeconfig is
    /// written, i.e. the server is serving.
    ///
    /// # Panics
    /// When the child cannot start, exits early or is not ready in time
    /// (with its stderr in the message).
    pub fn start(args: &[&str]) -> Self {
        Self::start_command("dev-cluster", args)
    }

    /// Starts `stepbox gateway --kubeconfig-out <tmp>/kubeconfig ARGS...`
    /// and waits until it serves (see [`Self::start`]).
    pub fn gateway(args: &[&str]) -> Self {
        Self::start_command("gateway", args)
    }

    fn start_command(command: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = stepbox()
            .arg(command)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start stepbox {command}: {e}"));
        let mut me = Self {
            child,
            dir,
            kubeconfig,
        };
        let deadline = std::time::Instant::now() + Self::START_TIMEOUT;
        while !me.kubeconfig.is_file() {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!(
                    "stepbox {command} exited early ({status}):\n{}",
                    me.stderr()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "stepbox {command} did not write its kubeconfig within {:?}:\n{}",
                Self::START_TIMEOUT,
                me.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        me
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The real `kubectl`, pointed at this server (its own discovery cache,
    /// no ambient KUBECONFIG).
    pub fn kubectl(&self) -> Command {
        let mut c = Command::new(kubectl_bin());
        c.env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        c
    }

    /// `kubectl ARGS...` against this server, not yet run.
    pub fn kubectl_with<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.kubectl();
        c.args(args);
        c
    }

    /// Runs `kubectl ARGS...` against this server.
    pub fn kubectl_run<I, S>(&self, args: I) -> Invocation
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Invocation::from(self.kubectl().args(args).output().expect("run kubectl"))
    }

    /// Sends SIGTERM (Unix) and waits up to 15 s for the child to exit;
    /// returns its exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for DevClusterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ordinary manifests of `steps/deploy-manifests/example` (a ConfigMap,
/// two Deployments, a Service and a Job) with `#{image}` set, in a fresh
/// temp dir.
pub fn example_manifests(image: &str) -> tempfile::TempDir {
    let src = repo_root().join("steps/deploy-manifests/example");
    let d = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("example dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&p)
                .expect("read manifest")
                .replace("#{image}", image);
            std::fs::write(d.path().join(p.file_name().expect("name")), text)
                .expect("write manifest");
        }
    }
    d
}
