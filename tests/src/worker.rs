//! A real `stepbox worker` process for the tests: started against a
//! kubeconfig (a dev cluster's, or one holding a service account's token),
//! with its own blob and compile caches, health and metrics on a loopback
//! port.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::stepbox;

/// The built-in policy as a policies directory entry: `default.yaml`.
pub fn policies_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = stepbox().arg("policy").output().expect("stepbox policy");
    std::fs::write(dir.path().join("default.yaml"), &out.stdout).expect("write default.yaml");
    for (name, text) in extra {
        std::fs::write(dir.path().join(format!("{name}.yaml")), text).expect("write policy");
    }
    dir
}

/// A running worker; killed on drop.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: String,
    name: String,
}

impl WorkerProcess {
    /// Starts `stepbox worker --kubeconfig KUBECONFIG -n NAMESPACE
    /// --policies POLICIES --worker-name NAME --listen 127.0.0.1:0 ARGS...`
    /// and waits until it serves health and metrics.
    ///
    /// # Panics
    /// When it exits early or does not serve within 30 s (with its stderr).
    pub fn start(
        kubeconfig: &Path,
        namespace: &str,
        policies: &Path,
        name: &str,
        args: &[&str],
    ) -> Self {
        Self::launch(None, kubeconfig, namespace, policies, name, args, &[])
    }

    /// As [`WorkerProcess::start`], with the caches of `previous` (a
    /// restarted pod keeps its volume).
    pub fn restart(
        previous: WorkerProcess,
        kubeconfig: &Path,
        namespace: &str,
        policies: &Path,
        args: &[&str],
    ) -> Self {
        let mut previous = previous;
        previous.kill();
        let name = previous.name.clone();
        let dir = std::mem::replace(&mut previous.dir, tempfile::tempdir().expect("temp dir"));
        Self::launch(Some(dir), kubeconfig, namespace, policies, &name, args, &[])
    }

    /// As [`WorkerProcess::start`], with the caches in `dir` (a new
    /// directory when `None`) and `env` set in its environment.
    pub fn launch(
        dir: Option<tempfile::TempDir>,
        kubeconfig: &Path,
        namespace: &str,
        policies: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let dir = dir.unwrap_or_else(|| tempfile::tempdir().expect("temp dir"));
        let log_path = dir.path().join("stderr.log");
        let before = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let child = stepbox()
            .arg("worker")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "-n",
                namespace,
                "--worker-name",
                name,
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--policies")
            .arg(policies)
            .arg("--oci-cache")
            .arg(dir.path().join("oci"))
            .arg("--cache-dir")
            .arg(dir.path().join("components"))
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,kube_client=off,kube_runtime=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start stepbox worker");
        let mut me = Self {
            child: Some(child),
            dir,
            addr: String::new(),
            name: name.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let all = me.stderr();
            let text = all.get(before..).unwrap_or_default();
            if let Some(at) = text.find("health and metrics on http://") {
                let rest = &text[at + "health and metrics on http://".len()..];
                me.addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                break;
            }
            if let Some(Ok(Some(status))) = me.child.as_mut().map(Child::try_wait) {
                panic!("stepbox worker exited early ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "stepbox worker did not start within 30 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        me.wait_ready();
        me
    }

    /// Waits until `/readyz` answers 200 (the StepRuns are listed).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.get("/readyz").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "the worker did not become ready within 30 s:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The worker's blob cache (`--oci-cache`).
    pub fn oci_cache(&self) -> std::path::PathBuf {
        self.dir.path().join("oci")
    }

    /// Its stderr so far (all its incarnations').
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// `GET path` on the health and metrics port: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut s) = std::net::TcpStream::connect(&self.addr) else {
            return (0, String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }

    /// The value of metric line `name` (with its labels, as exposed), or 0.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Kills it at once (SIGKILL): a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `limit` for it to exit; its exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let c = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
