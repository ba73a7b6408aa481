//! `stepbox cache`: the blob cache pruned against a real registry
//! (Debian's `docker-registry`) with the real binary. The least recently
//! pulled step goes, the other stays usable offline, and a run of the one
//! that went, with the registry gone, says what to do. A prune from
//! another process leaves alone what a run in flight pulled.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use stepbox_tests::registry::{Mode, Registry};
use stepbox_tests::{Invocation, guest, stepbox};

fn command_in(cache: &Path, args: &[&str]) -> Command {
    let mut c = stepbox();
    c.args(args)
        .arg("--oci-cache")
        .arg(cache.join("oci"))
        .arg("--cache-dir")
        .arg(cache.join("components"))
        .env_remove("DOCKER_CONFIG")
        .env("HOME", cache);
    c
}

fn stepbox_in(cache: &Path, args: &[&str]) -> Invocation {
    Invocation::from(command_in(cache, args).output().expect("run stepbox"))
}

fn pinned(run: &Invocation) -> String {
    assert_eq!(run.code, 0, "{}", run.all_output());
    run.last_line()
}

/// Every file and directory of the blob cache, as if last used a day ago.
fn age_everything(dir: &Path) {
    let day_ago = SystemTime::now() - Duration::from_secs(86400);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            age_everything(&e.path());
        }
        std::fs::File::open(e.path())
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
    }
}

/// Bytes of the files under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        bytes_under(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Pulls `recent` last (after everything else was made a day old) and
/// prunes the caches to one byte less than they hold together: `stale`
/// goes, and nothing of the compile cache (used more recently).
fn prune_all_but(cache: &Path, recent: &str, stale: &str) {
    age_everything(&cache.join("oci"));
    pinned(&stepbox_in(cache, &["pull", recent]));
    // One byte less than both caches hold: one budget covers them (the
    // pushes compiled the steps, so the compile cache counts).
    assert!(bytes_under(&cache.join("components")) > 0);
    let size = bytes_under(&cache.join("oci/blobs")) + bytes_under(&cache.join("components")) - 1;
    let dry = stepbox_in(
        cache,
        &[
            "cache",
            "prune",
            "--max-size",
            &size.to_string(),
            "--dry-run",
        ],
    );
    assert_eq!(dry.code, 0, "{}", dry.all_output());
    assert!(
        dry.stdout.contains("would remove 1 entries"),
        "{}",
        dry.stdout
    );
    let done = stepbox_in(cache, &["cache", "prune", "--max-size", &size.to_string()]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let stale_digest = stale.split('@').nth(1).unwrap();
    let recent_digest = recent.split('@').nth(1).unwrap();
    assert!(
        done.stdout.contains(&format!("removed {stale_digest}")),
        "{}",
        done.stdout
    );
    assert!(!done.stdout.contains(recent_digest), "{}", done.stdout);
    assert!(done.stdout.contains("freed"), "{}", done.stdout);
    assert!(
        done.stdout.contains("compile cache") && done.stdout.contains("removed 0 entries"),
        "{}",
        done.stdout
    );
}

#[test]
fn prune_keeps_the_recently_used_step_and_a_pruned_one_is_pulled_again() {
    let mut registry = Registry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    let push = |step: &str, reference: &str| {
        pinned(&stepbox_in(
            cache,
            &[
                "push",
                guest(step).to_str().unwrap(),
                &registry.reference(reference),
            ],
        ))
    };
    let hello = push("hello", "steps/hello:1");
    let fail = push("fail", "steps/fail:1");
    pinned(&stepbox_in(cache, &["pull", &fail]));
    pinned(&stepbox_in(cache, &["pull", &hello]));

    let ls = stepbox_in(cache, &["cache", "ls"]);
    assert_eq!(ls.code, 0, "{}", ls.all_output());
    let blobs = ls.stdout.lines().find(|l| l.starts_with("blob cache"));
    assert!(
        blobs.is_some_and(|l| l.contains(": 2 entries") && l.contains("oldest use")),
        "{}",
        ls.stdout
    );

    // `fail` was used longest ago: it goes; pulled again, it is back.
    prune_all_but(cache, &hello, &fail);
    pinned(&stepbox_in(cache, &["pull", &fail]));
    prune_all_but(cache, &hello, &fail);

    // With the registry gone, the kept step still runs; the pruned one
    // cannot be had, and the error says why and what to do.
    registry.stop();
    let kept = stepbox_in(cache, &["run", &hello, "-n", "demo"]);
    assert_eq!(kept.code, 0, "{}", kept.all_output());
    let gone = stepbox_in(cache, &["run", &fail, "-n", "demo"]);
    assert_ne!(gone.code, 0, "{}", gone.all_output());
    let text = gone.all_output();
    assert!(
        text.contains("not in the blob cache")
            && text.contains("stepbox cache prune")
            && text.contains(&format!("stepbox pull {fail}")),
        "{text}"
    );
}

#[test]
fn a_prune_from_another_process_leaves_alone_what_a_run_pulled() {
    let registry = Registry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    let sleep = pinned(&stepbox_in(
        cache,
        &[
            "push",
            guest("sleep").to_str().unwrap(),
            &registry.reference("steps/sleep:1"),
        ],
    ));

    // A run of the pulled step, a minute long; it announces the pull.
    let mut run = command_in(cache, &["run", &sleep, "-n", "demo", "--input", "ms=60000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stepbox run");
    let mut stderr = BufReader::new(run.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("step ") {
        line.clear();
        let n = stderr.read_line(&mut line).unwrap();
        assert_ne!(n, 0, "the run ended before it pulled: {:?}", run.wait());
    }

    let refused = stepbox_in(cache, &["cache", "prune", "--max-size", "0"]);
    assert_ne!(refused.code, 0, "{}", refused.all_output());
    let text = refused.all_output();
    assert!(
        text.contains("in use by another stepbox process") && text.contains("nothing was removed"),
        "{text}"
    );
    let ls = stepbox_in(cache, &["cache", "ls"]);
    assert!(ls.stdout.contains("blob cache"), "{}", ls.all_output());
    assert!(ls.stdout.contains(": 1 entries"), "{}", ls.stdout);
    // A dry run only looks.
    let dry = stepbox_in(cache, &["cache", "prune", "--max-size", "0", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all_output());
    assert!(
        dry.stdout.contains("would remove 1 entries"),
        "{}",
        dry.stdout
    );

    // A killed run leaves no lock behind.
    run.kill().unwrap();
    run.wait().unwrap();
    let done = stepbox_in(cache, &["cache", "prune", "--max-size", "0"]);
    assert_eq!(done.code, 0, "{}", done.all_output());
    let digest = sleep.split('@').nth(1).unwrap();
    assert!(
        done.stdout.contains(&format!("removed {digest}")),
        "{}",
        done.stdout
    );
}
