//! The `kustomize` capability: a kustomization directory of the step's
//! filesystem rendered to manifests by the kustomize kubectl embeds.
//!
//! ```text
//! dir (/packages/.. or /workspace/..) -> host path, no escape
//! the root it is under -> a private copy (links inside the root followed,
//!                         links out refused; bounded in files and bytes)
//! every kustomization reachable from dir (check.rs): paths inside the
//!   root, no remote bases, no helm charts, no exec/container plugins
//!   -> one refusal: forbidden naming all of them, nothing rendered
//! kubectl kustomize COPY --load-restrictor LoadRestrictionsRootOnly
//!   with an empty environment (no PATH: no git; a dead proxy: no HTTP),
//!   HOME a private directory, killed past its deadline
//! -> the YAML, for the step to apply with kube.apply (admitted there)
//! ```
//!
//! kubectl is found like helm: `--kubectl PATH`, else `$STEPBOX_KUBECTL`,
//! else `kubectl` on `PATH`.

mod check;
mod host;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::caps::helm::ChartRoots;
use crate::caps::tool::{self, RunFailure};
use crate::caps::{CapError, ErrorKind, Result, StepError};
use crate::report::{Decision, RunRecorder};

pub(crate) use host::add_to_linker;

/// The environment variable naming kubectl when `--kubectl` is not given.
pub const KUBECTL_ENV: &str = "STEPBOX_KUBECTL";

/// How long `kubectl kustomize` may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// Files at most copied for one build.
const MAX_FILES: usize = 10_000;

/// Bytes at most copied for one build.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The kubectl binary to use: `explicit` (`--kubectl`), else
/// `$STEPBOX_KUBECTL`, else `kubectl` on `PATH`.
pub fn kubectl_from_env(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| {
            std::env::var_os(KUBECTL_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// What the kustomize capability of one run may use.
#[derive(Debug, Clone)]
pub struct KustomizeCtx {
    roots: ChartRoots,
    kubectl: PathBuf,
    recorder: RunRecorder,
}

impl KustomizeCtx {
    /// Kustomizations under `roots`, rendered by `kubectl` (a path, or a
    /// name looked up on `PATH` at the first call).
    pub fn new(roots: ChartRoots, kubectl: PathBuf, recorder: RunRecorder) -> Self {
        Self {
            roots,
            kubectl,
            recorder,
        }
    }

    /// Renders the kustomization in `dir`; returns its YAML.
    pub async fn build(&self, dir: &str) -> Result<String> {
        const CALL: &str = "kustomize.build";
        let result = self.render(dir).await;
        let (decision, reason) = match &result {
            Ok(yaml) => (
                Decision::Allowed,
                format!("{} bytes of manifests", yaml.len()),
            ),
            Err(CapError::Step(e)) if e.is(ErrorKind::Forbidden) => {
                (Decision::Denied, e.message.clone())
            }
            Err(CapError::Step(e)) => (Decision::Allowed, e.to_string()),
            Err(_) => (Decision::Allowed, String::new()),
        };
        self.recorder.audit(CALL, dir, decision, &reason);
        result.map_err(|e| crate::caps::masked(e, &self.recorder))
    }

    async fn render(&self, dir: &str) -> Result<String> {
        let located = self.roots.locate(dir, "kustomization")?;
        if !located.meta.is_dir() {
            return Err(StepError::invalid(format!(
                "{dir} is not a directory: kustomize builds a directory holding kustomization.yaml"
            ))
            .into());
        }
        let kubectl = tool::locate(
            &self.kubectl,
            "kubectl",
            "install kubectl 1.14 or newer (its kustomize renders kustomizations), or tell stepbox where it is with --kubectl PATH or STEPBOX_KUBECTL",
        )?;
        let work = tempfile::Builder::new()
            .prefix("stepbox-kustomize-")
            .tempdir()
            .map_err(|e| {
                StepError::unavailable(format!("cannot make a directory for kustomize: {e}"))
            })?;
        let copy = work.path().join("root");
        let guest_root = located.guest_root;
        let (from, to) = (located.root.clone(), copy.clone());
        tokio::task::spawn_blocking(move || copy_tree(&from, &to, guest_root))
            .await
            .map_err(|e| StepError::unavailable(format!("copying the kustomization: {e}")))??;
        let relative = located
            .host
            .strip_prefix(&located.root)
            .unwrap_or(Path::new(""));
        let target = copy.join(relative);
        let guest = |p: &Path| guest_path(p, &copy, guest_root);
        let refusals = check::check(&copy, &target, &guest)
            .map_err(|why| StepError::invalid(format!("kustomization {dir}: {why}")))?;
        if !refusals.is_empty() {
            return Err(StepError::forbidden(format!(
                "kustomization {dir} refused, nothing was rendered: {}",
                refusals.join("; ")
            ))
            .into());
        }

        let home = work.path().join("home");
        std::fs::create_dir(&home)
            .map_err(|e| StepError::unavailable(format!("cannot make kubectl's home: {e}")))?;
        // No PATH (kustomize would run git for remote bases), a proxy that
        // answers nothing (nor fetch over HTTP), a home of its own.
        let dead_proxy: OsString = "http://127.0.0.1:9".into();
        let env: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), home.clone().into_os_string()),
            ("PATH".into(), OsString::new()),
            ("KUBECONFIG".into(), home.join("none").into_os_string()),
            ("TMPDIR".into(), home.clone().into_os_string()),
            ("HTTP_PROXY".into(), dead_proxy.clone()),
            ("HTTPS_PROXY".into(), dead_proxy),
            ("NO_PROXY".into(), OsString::new()),
        ];
        let args: Vec<OsString> = vec![
            "kustomize".into(),
            target.clone().into_os_string(),
            "--load-restrictor".into(),
            "LoadRestrictionsRootOnly".into(),
        ];
        let out = match tool::run(&kubectl, &args, &env, work.path(), DEADLINE).await {
            Ok(out) => out,
            Err(RunFailure::Deadline) => {
                return Err(StepError::timeout(format!(
                    "kubectl kustomize {dir} did not finish within {} and was stopped",
                    humantime::format_duration(DEADLINE)
                ))
                .into());
            }
            Err(RunFailure::Spawn(e) | RunFailure::Wait(e)) => {
                return Err(StepError::unavailable(format!(
                    "cannot run kubectl ({}): {e}",
                    kubectl.display()
                ))
                .into());
            }
        };
        let shown = |text: &[u8]| {
            String::from_utf8_lossy(text)
                .replace(&copy.display().to_string(), guest_root)
                .trim()
                .trim_start_matches("error: ")
                .to_string()
        };
        if !out.status.success() {
            return Err(StepError::invalid(format!(
                "kubectl kustomize {dir} failed: {}",
                shown(&out.stderr)
            ))
            .into());
        }
        if out.stdout.len() > stepbox_k8s::manifest::MAX_MANIFEST_BYTES {
            return Err(StepError::limit_exceeded(format!(
                "kustomization {dir} renders {} bytes, more than the {} an apply takes",
                out.stdout.len(),
                stepbox_k8s::manifest::MAX_MANIFEST_BYTES
            ))
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `path` of the copy as the step sees it.
fn guest_path(path: &Path, copy: &Path, guest_root: &str) -> String {
    match path.strip_prefix(copy) {
        Ok(rel) if rel.as_os_str().is_empty() => guest_root.to_string(),
        Ok(rel) => format!("{guest_root}/{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

/// Copies the tree at `from` to `to` (new): files and directories, links
/// resolved when they stay inside `from` (refused when they leave it),
/// within [`MAX_FILES`] and [`MAX_BYTES`].
fn copy_tree(from: &Path, to: &Path, guest_root: &str) -> Result<()> {
    let mut files = 0usize;
    let mut bytes = 0u64;
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    let io = |what: &Path, e: std::io::Error| {
        StepError::unavailable(format!(
            "copying {} for kustomize: {e}",
            guest_path(what, from, guest_root)
        ))
    };
    while let Some((src, dst)) = stack.pop() {
        std::fs::create_dir_all(&dst).map_err(|e| io(&src, e))?;
        for entry in std::fs::read_dir(&src).map_err(|e| io(&src, e))? {
            let entry = entry.map_err(|e| io(&src, e))?;
            let path = entry.path();
            files += 1;
            if files > MAX_FILES {
                return Err(StepError::limit_exceeded(format!(
                    "{guest_root} holds more than {MAX_FILES} files; kustomize is given a copy of it, so keep kustomizations in a smaller tree"
                ))
                .into());
            }
            let mut ty = entry.file_type().map_err(|e| io(&path, e))?;
            let mut real = path.clone();
            if ty.is_symlink() {
                real = std::fs::canonicalize(&path).map_err(|e| io(&path, e))?;
                if !real.starts_with(from) {
                    return Err(StepError::forbidden(format!(
                        "{} is a link that leaves {guest_root}",
                        guest_path(&path, from, guest_root)
                    ))
                    .into());
                }
                ty = std::fs::metadata(&real)
                    .map_err(|e| io(&path, e))?
                    .file_type();
                if ty.is_dir() {
                    // Followed as a copy of its own: a link to an ancestor
                    // would never end.
                    continue;
                }
            }
            let target = dst.join(entry.file_name());
            if ty.is_dir() {
                stack.push((real, target));
            } else if ty.is_file() {
                bytes += std::fs::copy(&real, &target).map_err(|e| io(&path, e))?;
                if bytes > MAX_BYTES {
                    return Err(StepError::limit_exceeded(format!(
                        "{guest_root} holds more than {MAX_BYTES} bytes; kustomize is given a copy of it, so keep kustomizations in a smaller tree"
                    ))
                    .into());
                }
            }
        }
    }
    Ok(())
}
