//! The JavaScript and Python toolchains (componentize-js and friends,
//! componentize-py): installed from the registries into the cache on first
//! use, from the guest SDK's pinned files, each in a directory named by a
//! hash of those pins, so a changed pin installs afresh beside the old one.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The environment variable naming the toolchains' directory.
pub const ENV: &str = "STEPBOX_TOOLCHAIN_DIR";

/// The file an install writes last: a directory without it is not used.
const COMPLETE: &str = ".stepbox-complete";

/// Where toolchains are installed: `$STEPBOX_TOOLCHAIN_DIR`, else
/// `toolchains/` in the compile cache's directory when one is named
/// (`--cache-dir`, `$STEPBOX_CACHE_DIR`), else `stepbox/toolchains` in the
/// user's cache directory (`~/.cache/stepbox/toolchains`, beside the
/// compile cache's `components`).
pub fn default_root(cache_dir: Option<&Path>) -> PathBuf {
    if let Some(d) = std::env::var_os(ENV) {
        return PathBuf::from(d);
    }
    if let Some(d) = cache_dir {
        return d.join("toolchains");
    }
    if let Some(d) = std::env::var_os("STEPBOX_CACHE_DIR") {
        return PathBuf::from(d).join("toolchains");
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("stepbox")
        .join("toolchains")
}

/// The first 12 hex digits of the sha256 of `parts`: a toolchain's key.
pub(super) fn key(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&(p.len() as u64).to_le_bytes());
        all.extend_from_slice(p);
    }
    stepbox::inspect::sha256_hex(&all)[..12].to_string()
}

/// The toolchain directory `root/NAME`, installed by `install` (given a
/// fresh directory to fill) unless a complete install is there already.
/// The install goes to `NAME.tmp-PID` and is renamed into place when done,
/// so an interrupted install is never used and two concurrent ones do not
/// mix.
pub(super) fn ensure(
    root: &Path,
    name: &str,
    what: &str,
    show_progress: bool,
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let dir = root.join(name);
    if dir.join(COMPLETE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let tmp = root.join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    if show_progress {
        eprintln!(
            "installing {what} into {} (first use; set {ENV} to keep it elsewhere)",
            dir.display()
        );
    }
    let started = std::time::Instant::now();
    let installed = install(&tmp).and_then(|()| {
        std::fs::write(tmp.join(COMPLETE), "")
            .with_context(|| format!("cannot write {}", tmp.display()))
    });
    if let Err(e) = installed {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context(format!("installing {what} into {} failed", dir.display())));
    }
    // An incomplete leftover (an install killed after its rename is not
    // possible; this is one from an older layout) is replaced.
    if dir.exists() && !dir.join(COMPLETE).is_file() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another process finished the same install first: use it.
        if !dir.join(COMPLETE).is_file() {
            return Err(e).with_context(|| format!("cannot move {what} into {}", dir.display()));
        }
    }
    if show_progress {
        eprintln!(
            "installed {what} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(dir)
}

/// The first line a program prints for `args` (e.g. `--version`), or None
/// when it cannot be started or fails.
pub(super) fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// The leading `major.minor` numbers of a version string such as `v20.20.2`
/// or `Python 3.11.7`.
pub(super) fn major_minor(version: &str) -> Option<(u32, u32)> {
    let start = version.find(|c: char| c.is_ascii_digit())?;
    let mut parts = version[start..]
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor))
}

/// Fails with `needs` (what to install) unless `program args` prints a
/// version of at least `min`; returns the version line.
pub(super) fn require(
    program: &str,
    args: &[&str],
    min: (u32, u32),
    needs: &str,
) -> Result<String> {
    let Some(version) = version_of(program, args) else {
        bail!("{needs} (`{program} {}` did not run)", args.join(" "));
    };
    match major_minor(&version) {
        Some(found) if found >= min => Ok(version),
        _ => bail!("{needs} (found {version})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::TestDir;

    #[test]
    fn versions_are_read_from_what_tools_print() {
        assert_eq!(major_minor("v20.20.2"), Some((20, 20)));
        assert_eq!(major_minor("Python 3.11.7"), Some((3, 11)));
        assert_eq!(major_minor("10.9"), Some((10, 9)));
        assert_eq!(major_minor("pip 23"), Some((23, 0)));
        assert_eq!(major_minor("none"), None);
    }

    #[test]
    fn a_missing_tool_is_named_with_what_to_install() {
        let err = require("stepbox-no-such-tool", &["--version"], (1, 0), "install X")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("install X"), "{err}");
    }

    #[test]
    fn keys_depend_on_every_part() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]).len(), 12);
    }

    #[test]
    fn an_install_is_used_once_complete_and_a_failed_one_never() {
        let root = TestDir::new();
        let failed = ensure(root.path(), "t-1", "a tool", false, |_| bail!("no network"));
        assert!(
            failed
                .unwrap_err()
                .to_string()
                .contains("installing a tool")
        );
        assert!(!root.path().join("t-1").exists(), "nothing left behind");
        let mut runs = 0;
        for _ in 0..2 {
            let dir = ensure(root.path(), "t-1", "a tool", false, |d| {
                runs += 1;
                std::fs::write(d.join("bin"), "x")?;
                Ok(())
            })
            .unwrap();
            assert!(dir.join("bin").is_file());
        }
        assert_eq!(runs, 1, "installed once");
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp dirs left");
    }
}
