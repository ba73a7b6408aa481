//! Environment: no variables, no arguments, no stdin, no sockets, no host
//! files. Clocks and random numbers work, and tell nothing about the host.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Case, out};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_env_variables_args_and_stdin() {
    let r = Case::new("env-basics").run().await;
    assert_eq!(out(&r, "env-count"), "0");
    assert_eq!(out(&r, "args-count"), "0");
    assert_eq!(out(&r, "stdin-bytes"), "0");
    // No working directory of the host's: the guest's own idea of one.
    assert_eq!(out(&r, "cwd"), "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_env_clocks_and_random() {
    let r = Case::new("env-clocks").run().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let wall: u64 = out(&r, "wall-secs").parse().unwrap();
    assert!(
        wall.abs_diff(now) < 60,
        "the wall clock is real time: {wall} vs {now}"
    );
    // The monotonic clock starts near zero for each run: it does not tell
    // the host's uptime.
    let monotonic: u64 = out(&r, "monotonic-ms").parse().unwrap();
    assert!(
        monotonic < 10_000,
        "monotonic clock at {monotonic} ms into the run"
    );
    let (a, b) = (out(&r, "random-a"), out(&r, "random-b"));
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    let again = Case::new("env-clocks").run().await;
    assert_ne!(out(&again, "random-a"), a, "random differs between runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_env_sockets() {
    let r = Case::new("env-sockets").run().await;
    for what in ["tcp", "udp", "dns", "listen"] {
        assert_eq!(
            out(&r, what),
            "denied",
            "{what}: {}",
            out(&r, &format!("{what}-message"))
        );
    }
    assert_eq!(
        out(&r, "tcp-kind"),
        "PermissionDenied",
        "{}",
        out(&r, "tcp-message")
    );
    // Name lookup is refused as a permanent resolver failure.
    assert!(
        out(&r, "dns-message").contains("Non-recoverable"),
        "{}",
        out(&r, "dns-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_env_host_process_environment() {
    let r = Case::new("fs-read")
        .input("path", "/proc/self/environ")
        .run()
        .await;
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "NotFound",
        "{}",
        out(&r, "read-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_env_service_account_token_of_the_worker() {
    // In a cluster the worker's own token lives here; the step cannot see it.
    let r = Case::new("fs-read")
        .input(
            "path",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        )
        .run()
        .await;
    assert_eq!(out(&r, "read"), "denied");
    assert_eq!(
        out(&r, "read-kind"),
        "NotFound",
        "{}",
        out(&r, "read-message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_env_list_the_root_directory() {
    let r = Case::new("fs-list").input("path", "/").run().await;
    assert_eq!(out(&r, "list"), "denied", "entries: {}", out(&r, "entries"));
    assert_eq!(
        out(&r, "list-kind"),
        "NotFound",
        "{}",
        out(&r, "list-message")
    );
}
