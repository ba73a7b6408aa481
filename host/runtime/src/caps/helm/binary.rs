//! Running the `helm` binary: a private environment, a deadline, captured
//! output, and helm's failures turned into [`StepError`]s.
//!
//! Every process gets an empty environment except:
//!
//! | variable | value |
//! |---|---|
//! | `PATH` | the host's |
//! | `HOME` | the session directory ([`HelmHome`]) |
//! | `HELM_CACHE_HOME`, `HELM_CONFIG_HOME`, `HELM_DATA_HOME` | subdirectories of the session directory: no repositories, plugins or registry logins of the host |
//! | `HELM_DRIVER` | `secret`: releases are stored as Secrets in the namespace |
//! | `KUBECONFIG` | the run's gateway: its address, CA and token, never the cluster's credentials |
//! | `TMPDIR` | the session directory |
//!
//! The process is killed when its deadline passes or when the call is
//! dropped (the run ended).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::caps::StepError;

/// The oldest helm the host drives: `--wait`, `--atomic` and `-o json`
/// everywhere as the host uses them.
pub const MIN_VERSION: HelmVersion = HelmVersion {
    major: 3,
    minor: 8,
    patch: 0,
};

/// How long a helm command that does not talk to the cluster for long
/// (version, template, status, list, history) may take.
pub const QUICK_DEADLINE: Duration = Duration::from_secs(120);

/// Time given to helm beyond its own `--timeout` before it is killed.
pub const DEADLINE_GRACE: Duration = Duration::from_secs(30);

/// A helm version (`v3.14.2` → 3.14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HelmVersion {
    /// Major version (3 or 4).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl HelmVersion {
    /// Parses what `helm version --template '{{.Version}}'` prints.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().trim_start_matches('v');
        let core = t.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self {
            major,
            minor,
            patch,
        })
    }

    /// Helm 4 renamed and reshaped some flags (`--wait=watcher`,
    /// `--rollback-on-failure`).
    pub fn is_v4(self) -> bool {
        self.major >= 4
    }
}

impl std::fmt::Display for HelmVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The private directory of one run's helm processes (removed with it).
#[derive(Debug)]
pub struct HelmHome {
    dir: tempfile::TempDir,
}

impl HelmHome {
    /// Creates the directory (0700) and helm's cache, config and data
    /// directories in it.
    pub fn create() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("stepbox-helm-").tempdir()?;
        for sub in ["cache", "config", "data", "tmp"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        Ok(Self { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to a file in the directory readable by the owner
    /// only (0600), replacing any file of that name.
    pub fn write_private(&self, name: &str, content: &str) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let path = self.dir.path().join(name);
        let _ = std::fs::remove_file(&path);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        Ok(path)
    }
}

/// One helm command to run.
#[derive(Debug, Clone)]
pub struct HelmCommand {
    /// The arguments after `helm`.
    pub args: Vec<OsString>,
    /// When to kill it.
    pub deadline: Duration,
}

impl HelmCommand {
    /// `helm ARGS...` with the [`QUICK_DEADLINE`].
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            args: args.into_iter().map(Into::into).collect(),
            deadline: QUICK_DEADLINE,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The command line for logs (`helm upgrade --install web ...`).
    pub fn display(&self) -> String {
        let mut s = String::from("helm");
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// What a finished helm process left.
#[derive(Debug, Clone)]
pub struct HelmOutput {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl HelmOutput {
    /// helm's own error text: the `Error: ...` lines of stderr (helm 3),
    /// or the whole of stderr without warnings.
    pub fn error_message(&self) -> String {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with("Use --debug flag"))
            .collect();
        if let Some(at) = lines.iter().position(|l| l.starts_with("Error: ")) {
            let msg = lines[at..].join("\n");
            return msg.trim_start_matches("Error: ").to_string();
        }
        let meaningful: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| {
                !l.starts_with("WARNING:")
                    && !l.starts_with("level=WARN")
                    && !l.starts_with("walk.go:")
            })
            .collect();
        let msg = if meaningful.is_empty() {
            lines.join("\n")
        } else {
            meaningful.join("\n")
        };
        let msg = msg.trim().trim_start_matches("Error: ").to_string();
        if msg.is_empty() {
            match self.code {
                Some(c) => format!("helm exited with status {c} and no message"),
                None => "helm was killed by a signal".to_string(),
            }
        } else {
            msg
        }
    }
}

/// Where a helm process runs: the binary and its environment.
#[derive(Debug, Clone)]
pub struct HelmProcess {
    /// The binary (absolute path).
    pub binary: PathBuf,
    /// The environment (everything else is cleared).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory.
    pub cwd: PathBuf,
}

impl HelmProcess {
    /// The environment of [the module docs](self) for `home`, with
    /// `kubeconfig` (the gateway's).
    pub fn new(binary: PathBuf, home: &HelmHome, kubeconfig: &Path) -> Self {
        let dir = home.path();
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        if let Some(path) = std::env::var_os("PATH") {
            env.push(("PATH".into(), path));
        }
        env.push(("HOME".into(), dir.as_os_str().to_owned()));
        env.push(("HELM_CACHE_HOME".into(), dir.join("cache").into_os_string()));
        env.push((
            "HELM_CONFIG_HOME".into(),
            dir.join("config").into_os_string(),
        ));
        env.push(("HELM_DATA_HOME".into(), dir.join("data").into_os_string()));
        env.push(("HELM_DRIVER".into(), "secret".into()));
        env.push(("KUBECONFIG".into(), kubeconfig.as_os_str().to_owned()));
        env.push(("TMPDIR".into(), dir.join("tmp").into_os_string()));
        Self {
            binary,
            env,
            cwd: dir.to_path_buf(),
        }
    }

    /// Runs `cmd` to the end or its deadline (then the process is killed
    /// and the error is a `timeout` [`StepError`]).
    pub async fn run(&self, cmd: &HelmCommand) -> Result<HelmOutput, StepError> {
        use crate::caps::tool::{self, RunFailure};
        let started = Instant::now();
        match tool::run(&self.binary, &cmd.args, &self.env, &self.cwd, cmd.deadline).await {
            Err(RunFailure::Deadline) => Err(StepError::timeout(format!(
                "`{}` did not finish within {} and was stopped",
                first_words(cmd),
                humantime::format_duration(cmd.deadline)
            ))),
            Err(RunFailure::Spawn(e)) => Err(StepError::unavailable(format!(
                "cannot run helm ({}): {e}",
                self.binary.display()
            ))),
            Err(RunFailure::Wait(e)) => {
                Err(StepError::unavailable(format!("helm failed to run: {e}")))
            }
            Ok(out) => Ok(HelmOutput {
                success: out.status.success(),
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                elapsed: started.elapsed(),
            }),
        }
    }
}

fn first_words(cmd: &HelmCommand) -> String {
    let words: Vec<String> = cmd
        .args
        .iter()
        .take(2)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("helm {}", words.join(" "))
}

/// Finds the helm binary: `explicit` (a path, or a bare name looked up on
/// `PATH`).
///
/// # Errors
/// an `unavailable` [`StepError`] saying how to provide helm.
pub fn locate(explicit: &Path) -> Result<PathBuf, StepError> {
    crate::caps::tool::locate(
        explicit,
        "helm",
        "install helm v3.8 or newer, or tell stepbox where it is with --helm PATH or STEPBOX_HELM",
    )
}

/// What a failed helm command means for the step, from helm's message.
pub fn classify_failure(message: &str) -> StepError {
    let lower = message.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let msg = message.to_string();
    // A request the run's gateway (or the cluster's RBAC) refused, even
    // inside a template's `lookup`: the Kubernetes Forbidden status.
    if has(&["is forbidden:"]) {
        return StepError::forbidden(msg);
    }
    if has(&[
        "release: not found",
        "has no deployed releases",
        "release not loaded",
        "no revision for release",
    ]) {
        StepError::not_found(msg)
    } else if has(&[
        "parse error",
        "template: ",
        "execution error",
        "error converting yaml",
        "values don't meet the specifications",
    ]) {
        StepError::invalid(msg)
    } else if has(&[
        "another operation (install/upgrade/rollback) is in progress",
        "already exists",
        "conflict",
    ]) {
        StepError::conflict(msg)
    } else if has(&[
        "timed out waiting",
        "context deadline exceeded",
        "timeout waiting",
    ]) {
        StepError::timeout(msg)
    } else if has(&["forbidden", "is not allowed"]) {
        StepError::forbidden(msg)
    } else if has(&[
        "connection refused",
        "kubernetes cluster unreachable",
        "no such host",
        "i/o timeout",
        "tls:",
        "unauthorized",
    ]) {
        StepError::unavailable(msg)
    } else if has(&[
        "yaml:",
        "chart.yaml file is missing",
        "validation",
        "unable to build kubernetes objects",
        "error validating",
        "invalid",
        "unknown field",
        "chart requires kubeversion",
        "not a valid chart",
        "failed to parse",
        "cannot load",
    ]) {
        StepError::invalid(msg)
    } else if has(&["no such file", "not found"]) {
        StepError::not_found(msg)
    } else {
        StepError::unavailable(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::ErrorKind;

    #[test]
    fn versions() {
        assert_eq!(
            HelmVersion::parse("v3.14.2"),
            Some(HelmVersion {
                major: 3,
                minor: 14,
                patch: 2
            })
        );
        assert_eq!(
            HelmVersion::parse("v4.1.4+g05fa379\n"),
            Some(HelmVersion {
                major: 4,
                minor: 1,
                patch: 4
            })
        );
        assert!(HelmVersion::parse("v3.7.1").unwrap() < MIN_VERSION);
        assert!(HelmVersion::parse("v4.0.0").unwrap().is_v4());
        assert_eq!(HelmVersion::parse("nonsense"), None);
    }

    #[test]
    fn failures() {
        assert_eq!(
            classify_failure(
                "template: hostile/templates/lookups.yaml:8:14: executing \"x\" at <lookup>: error calling lookup: secrets \"db\" is forbidden: Secret \"db\" names namespace \"other\""
            )
            .kind,
            ErrorKind::Forbidden
        );
        assert_eq!(
            classify_failure("UPGRADE FAILED: \"web\" has no deployed releases").kind,
            ErrorKind::NotFound
        );
        assert_eq!(
            classify_failure(
                "template: web/templates/cm.yaml:4:3: executing \"x\" at <.Values.a.b>: nil pointer"
            )
            .kind,
            ErrorKind::Invalid
        );
        assert_eq!(
            classify_failure(
                "Kubernetes cluster unreachable: dial tcp 127.0.0.1:1: connect: connection refused"
            )
            .kind,
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_failure("another operation (install/upgrade/rollback) is in progress").kind,
            ErrorKind::Conflict
        );
        assert_eq!(
            classify_failure("context deadline exceeded").kind,
            ErrorKind::Timeout
        );
    }

    #[test]
    fn error_message_prefers_the_error_line() {
        let out = HelmOutput {
            success: false,
            code: Some(1),
            stdout: String::new(),
            stderr: "WARNING: something\nError: INSTALLATION FAILED: boom\n".into(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(out.error_message(), "INSTALLATION FAILED: boom");
    }
}
