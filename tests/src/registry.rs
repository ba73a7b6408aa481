//! A real OCI registry for the tests: Debian's `docker-registry`
//! (distribution 2.8) on a loopback port, with its storage in a temporary
//! directory, plain, with htpasswd auth, with bearer-token auth (a token
//! server of ours, `token`), or with TLS from a CA of its own.
//! `.ci/run` installs it (`apt-get install docker-registry skopeo`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod token;

/// User and password of the registries started with [`Mode::Htpasswd`] and
/// [`Mode::Token`].
pub const USER: (&str, &str) = ("alice", "wonderland");

/// `alice:wonderland`, bcrypt (the only hash distribution accepts).
const HTPASSWD: &str = "alice:$2b$05$JLqeEWt/xMu/P85PrN.R1OdcQYL5rfwoEJnVxvtQUVKytP6bx5GOW\n";

/// How a registry authenticates and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Plain HTTP, anonymous.
    #[default]
    Plain,
    /// Plain HTTP, htpasswd basic auth ([`USER`]).
    Htpasswd,
    /// Plain HTTP, bearer tokens from a token server that takes [`USER`]
    /// (the flow of Docker Hub, GHCR and Harbor).
    Token,
    /// HTTPS with a certificate of [`Registry::ca`], anonymous.
    Tls,
}

/// A running registry; killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: String,
    mode: Mode,
    tokens: Option<token::Server>,
}

/// Whether `docker-registry` is installed.
pub fn available() -> bool {
    Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Registry {
    /// Starts a registry in `mode` and waits until it listens.
    ///
    /// # Panics
    /// When `docker-registry` is missing or does not start.
    pub fn start(mode: Mode) -> Self {
        assert!(
            available(),
            "the tests need Debian's docker-registry: apt-get install docker-registry skopeo (.ci/run does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let mut config = format!(
            "version: 0.1\nlog: {{level: info, accesslog: {{disabled: true}}}}\n\
             storage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n\
             http:\n  addr: 127.0.0.1:0\n  secret: test-only-secret\n",
            root.join("data").display()
        );
        let mut tokens = None;
        match mode {
            Mode::Plain => {}
            Mode::Token => {
                let server = token::Server::start(root, USER);
                config.push_str(&format!(
                    "auth: {{token: {{realm: '{}', service: {}, issuer: {}, rootcertbundle: {}}}}}\n",
                    server.realm(),
                    token::SERVICE,
                    token::ISSUER,
                    server.certificate().display()
                ));
                tokens = Some(server);
            }
            Mode::Htpasswd => {
                std::fs::write(root.join("htpasswd"), HTPASSWD).unwrap();
                config.push_str(&format!(
                    "auth: {{htpasswd: {{realm: stepbox-test, path: {}}}}}\n",
                    root.join("htpasswd").display()
                ));
            }
            Mode::Tls => {
                make_certificates(root);
                config.push_str(&format!(
                    "  tls: {{certificate: {}, key: {}}}\n",
                    root.join("srv.pem").display(),
                    root.join("srv.key").display()
                ));
            }
        }
        std::fs::write(root.join("config.yml"), config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("listening on ") {
                    let rest = &line[at + "listening on ".len()..];
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            if let Ok(a) = rx.recv_timeout(Duration::from_millis(100)) {
                break a;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("docker-registry exited early ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen within 30 s"
            );
        };
        Self {
            child: Some(child),
            dir,
            addr,
            mode,
            tokens,
        }
    }

    /// How many tokens the token server of a [`Mode::Token`] registry has
    /// issued.
    pub fn tokens_issued(&self) -> usize {
        self.tokens.as_ref().map_or(0, token::Server::issued)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `127.0.0.1:PORT/PATH`.
    pub fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    /// The CA of a [`Mode::Tls`] registry (PEM).
    pub fn ca(&self) -> PathBuf {
        assert_eq!(self.mode, Mode::Tls);
        self.dir.path().join("ca.pem")
    }

    /// A directory holding the CA as `ca.crt`, as skopeo's `--cert-dir` wants.
    pub fn cert_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certs.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(self.ca(), d.join("ca.crt")).unwrap();
        d
    }

    /// The file the registry stores blob `digest` in (to tamper with it).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// A docker config file with [`USER`]'s credentials for this registry.
    pub fn docker_config(&self) -> PathBuf {
        use base64::Engine as _;
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", USER.0, USER.1));
        let path = self.dir.path().join("docker-config.json");
        std::fs::write(
            &path,
            serde_json::json!({"auths": {self.addr.clone(): {"auth": auth}}}).to_string(),
        )
        .unwrap();
        path
    }

    /// `skopeo ARGS` against this registry's transport flags.
    pub fn skopeo(&self, args: &[&str]) -> std::process::Output {
        Command::new("skopeo")
            .args(args)
            .output()
            .expect("run skopeo (apt-get install skopeo)")
    }

    /// Stops the registry (what was pushed stays on disk, unserved).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=stepbox test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("srv.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "srv.ext",
        ],
    );
}
