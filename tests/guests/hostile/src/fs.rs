//! Filesystem attacks: leaving the preopens (`..`, absolute paths, symlinks,
//! hard links), writing to `/packages`, and filling the workspace.
//!
//! Inputs: `path`, `target`, `link`, `from`, `to` as each case says.

use std::io::Write;

use stepbox_sdk::{Error, Result, run};

use crate::record_io;

fn input(name: &str) -> Result<String> {
    run::require_input(name)
}

pub(crate) fn run(case: &str) -> Result<()> {
    match case {
        // Read the file at `path` (outputs `read`, and `content` if it worked).
        "fs-read" => {
            let r = std::fs::read_to_string(input("path")?);
            if let Ok(text) = &r {
                run::set_output("content", text.chars().take(200).collect::<String>())?;
            }
            record_io("read", &r)
        }
        // Create (or truncate) the file at `path` and write to it (`write`).
        "fs-write" => record_io(
            "write",
            &std::fs::write(input("path")?, "written by hostile"),
        ),
        // Open the existing file at `path` for appending (`append`).
        "fs-append" => {
            let r = std::fs::OpenOptions::new()
                .append(true)
                .open(input("path")?)
                .and_then(|mut f| f.write_all(b"x"));
            record_io("append", &r)
        }
        // Remove the file at `path` (`remove`).
        "fs-remove" => record_io("remove", &std::fs::remove_file(input("path")?)),
        // Rename `from` to `to` (`rename`).
        "fs-rename" => record_io("rename", &std::fs::rename(input("from")?, input("to")?)),
        // Make the directory `path` (`mkdir`).
        "fs-mkdir" => record_io("mkdir", &std::fs::create_dir(input("path")?)),
        // Plant a symlink `link` -> `target` (`symlink`), then read through
        // it (`read`) and publish it as an artifact (outcome/message).
        "fs-symlink" => {
            let link = input("link")?;
            record_io("symlink", &symlink(&input("target")?, &link))?;
            record_io("read", &std::fs::read(&link))?;
            crate::record(&run::artifact("planted", &link))
        }
        // Hard link `from` to `to` (`hardlink`), then write through the new
        // name (`write`).
        "fs-hardlink" => {
            let to = input("to")?;
            record_io("hardlink", &std::fs::hard_link(input("from")?, &to))?;
            let w = std::fs::OpenOptions::new()
                .append(true)
                .open(&to)
                .and_then(|mut f| f.write_all(b"x"));
            record_io("write", &w)
        }
        // The directory entries of `path` (`entries`, comma-separated).
        "fs-list" => {
            let r = std::fs::read_dir(input("path")?).map(|d| {
                let mut names: Vec<String> = d
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names.join(",")
            });
            if let Ok(names) = &r {
                run::set_output("entries", names)?;
            }
            record_io("list", &r)
        }
        // Write 1 MiB chunks to one file until stopped.
        "fs-fill" => {
            let mut f = std::fs::File::create("/workspace/fill").map_err(io)?;
            let chunk = vec![b'f'; 1 << 20];
            loop {
                f.write_all(&chunk).map_err(io)?;
            }
        }
        // A sparse file of 1 TiB, then return at once.
        "fs-sparse" => {
            let f = std::fs::File::create("/workspace/sparse").map_err(io)?;
            f.set_len(1 << 40).map_err(io)?;
            Ok(())
        }
        // Empty files until stopped.
        "fs-many-files" => {
            for i in 0u64.. {
                std::fs::File::create(format!("/workspace/f{i}")).map_err(io)?;
            }
            Ok(())
        }
        // Directories nested ever deeper until stopped.
        "fs-deep" => {
            let mut path = String::from("/workspace");
            loop {
                path.push_str("/d");
                std::fs::create_dir(&path).map_err(io)?;
                std::fs::write(format!("{path}/payload"), vec![b'p'; 4096]).map_err(io)?;
            }
        }
        // Create a file, delete it while holding it open, then keep writing
        // to it: the disk fills but no directory shows it.
        "fs-unlinked" => {
            let mut f = std::fs::File::create("/workspace/hidden").map_err(io)?;
            std::fs::remove_file("/workspace/hidden").map_err(io)?;
            let chunk = vec![b'h'; 1 << 20];
            loop {
                f.write_all(&chunk).map_err(io)?;
            }
        }
        // Publish report.txt as an artifact, then swap it for a symlink to a
        // host file before the run ends.
        "fs-artifact-swap" => {
            std::fs::write("/workspace/report.txt", "a harmless report").map_err(io)?;
            run::artifact("report", "/workspace/report.txt")?;
            std::fs::remove_file("/workspace/report.txt").map_err(io)?;
            symlink(
                "../../../../../../../../etc/passwd",
                "/workspace/report.txt",
            )
            .map_err(io)?;
            Ok(())
        }
        _ => Err(Error::invalid(format!("unknown case {case:?}"))),
    }
}

unsafe extern "C" {
    /// wasi-libc's POSIX `symlink` (std's WASI symlink is unstable).
    #[link_name = "symlink"]
    fn libc_symlink(
        target: *const std::ffi::c_char,
        link: *const std::ffi::c_char,
    ) -> std::ffi::c_int;
}

/// Creates the symlink `link` -> `target`.
fn symlink(target: &str, link: &str) -> std::io::Result<()> {
    let c = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (target, link) = (c(target)?, c(link)?);
    // SAFETY: two valid NUL-terminated strings.
    if unsafe { libc_symlink(target.as_ptr(), link.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn io(e: std::io::Error) -> Error {
    Error::step(format!("io: {e}"))
}
