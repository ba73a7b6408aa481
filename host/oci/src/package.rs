//! Packages as tar layers: a directory packed the same way every time
//! (sorted, no owners, no times, modes 0644/0755), and unpacked with
//! nothing but files and directories inside the destination.
//!
//! ```
//! let src = tempfile::tempdir()?;
//! std::fs::create_dir(src.path().join("manifests"))?;
//! std::fs::write(src.path().join("manifests/web.yaml"), "kind: ConfigMap\n")?;
//! let tar = stepbox_oci::package::pack(src.path())?;
//! assert_eq!(tar, stepbox_oci::package::pack(src.path())?, "the same bytes every time");
//! let out = tempfile::tempdir()?;
//! stepbox_oci::package::unpack(&tar, &out.path().join("p"))?;
//! assert_eq!(std::fs::read_to_string(out.path().join("p/manifests/web.yaml"))?, "kind: ConfigMap\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// The most bytes a package may hold (packed or unpacked).
pub const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;

/// The most files and directories a package may hold.
pub const MAX_ENTRIES: usize = 10_000;

fn local(path: &Path, detail: impl Into<String>) -> Error {
    Error::Local {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Packs `dir` (files and directories only; a symlink or special file is
/// an error naming it).
///
/// # Errors
/// [`Error::Local`] naming the file that cannot be packed, or a package
/// over [`MAX_PACKAGE_BYTES`] or [`MAX_ENTRIES`].
pub fn pack(dir: &Path) -> Result<Vec<u8>> {
    if !dir.is_dir() {
        return Err(local(dir, "is not a directory (a package is a directory)"));
    }
    let mut entries = Vec::new();
    walk(dir, dir, &mut entries)?;
    entries.sort();
    let mut builder = tar::Builder::new(Vec::new());
    let mut total: u64 = 0;
    for (rel, is_dir) in &entries {
        let full = dir.join(rel);
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let name = rel.to_string_lossy().replace('\\', "/");
        if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, format!("{name}/"), std::io::empty())
                .map_err(|e| local(&full, format!("cannot pack: {e}")))?;
        } else {
            let data =
                std::fs::read(&full).map_err(|e| local(&full, format!("cannot read: {e}")))?;
            total += data.len() as u64;
            if total > MAX_PACKAGE_BYTES {
                return Err(local(
                    dir,
                    format!("holds more than {MAX_PACKAGE_BYTES} bytes, the most a package may"),
                ));
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, &name, data.as_slice())
                .map_err(|e| local(&full, format!("cannot pack: {e}")))?;
        }
    }
    builder
        .into_inner()
        .map_err(|e| local(dir, format!("cannot pack: {e}")))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, bool)>) -> Result<()> {
    let read = std::fs::read_dir(dir).map_err(|e| local(dir, format!("cannot read: {e}")))?;
    for entry in read {
        let entry = entry.map_err(|e| local(dir, format!("cannot read: {e}")))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| local(&path, format!("cannot read: {e}")))?;
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        if kind.is_dir() {
            out.push((rel, true));
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push((rel, false));
        } else {
            return Err(local(
                &path,
                "is a symlink or special file; a package holds files and directories only",
            ));
        }
        if out.len() > MAX_ENTRIES {
            return Err(local(
                root,
                format!("holds more than {MAX_ENTRIES} entries, the most a package may"),
            ));
        }
    }
    Ok(())
}

/// Unpacks `tar` into `dest` (which must not exist yet): it appears whole
/// (unpacked beside it, then renamed), holding files and directories only,
/// all inside it.
///
/// # Errors
/// [`Error::Local`] for an entry that is not a plain file or directory, a
/// path that leaves the package, or more than the limits.
pub fn unpack(tar: &[u8], dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| local(parent, format!("cannot create: {e}")))?;
    let tmp = tempfile::tempdir_in(parent)
        .map_err(|e| local(parent, format!("cannot unpack here: {e}")))?;
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| local(dest, format!("the package is not a tar: {e}")))?;
    let (mut total, mut count) = (0u64, 0usize);
    for entry in entries {
        let mut entry = entry.map_err(|e| local(dest, format!("the package is not a tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| local(dest, format!("a package entry has a bad name: {e}")))?
            .into_owned();
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(local(
                dest,
                format!(
                    "the package entry {} leaves the package: refused",
                    path.display()
                ),
            ));
        }
        count += 1;
        if count > MAX_ENTRIES {
            return Err(local(
                dest,
                format!("the package holds more than {MAX_ENTRIES} entries"),
            ));
        }
        let target = tmp.path().join(&path);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target)
                    .map_err(|e| local(&target, format!("cannot create: {e}")))?;
            }
            tar::EntryType::Regular => {
                total += entry.header().size().unwrap_or(u64::MAX);
                if total > MAX_PACKAGE_BYTES {
                    return Err(local(
                        dest,
                        format!("the package holds more than {MAX_PACKAGE_BYTES} bytes"),
                    ));
                }
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p)
                        .map_err(|e| local(p, format!("cannot create: {e}")))?;
                }
                let mut file = std::fs::File::create(&target)
                    .map_err(|e| local(&target, format!("cannot create: {e}")))?;
                std::io::copy(&mut entry, &mut file)
                    .map_err(|e| local(&target, format!("cannot write: {e}")))?;
            }
            other => {
                return Err(local(
                    dest,
                    format!(
                        "the package entry {} is a {other:?}; a package holds files and directories only",
                        path.display()
                    ),
                ));
            }
        }
    }
    let staged = tmp.keep();
    std::fs::rename(&staged, dest).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        local(
            dest,
            format!("cannot put the unpacked package in place: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_that_leave_the_package_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; write the name straight into the header.
        h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"../evil");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = unpack(&tar, &out.path().join("p")).unwrap_err().to_string();
        assert!(err.contains("leaves the package"), "{err}");
        assert!(!out.path().join("evil").exists());
        assert!(
            !out.path().join("p").exists(),
            "nothing is left half unpacked"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_packed() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let err = pack(dir.path()).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
    }
}
