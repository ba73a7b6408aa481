//! A token server for [`super::Mode::Token`] registries: the Docker
//! registry token protocol that Docker Hub, GHCR and Harbor speak. The
//! registry answers 401 with `WWW-Authenticate: Bearer realm=…`; the
//! client asks the realm for a token with its basic credentials; the
//! server answers a JWT (ES256, its certificate in `x5c`) granting the
//! scopes asked for, which the registry checks against `rootcertbundle`.
//!
//! Serves `GET /token` over plain HTTP/1.1 on a loopback port from one
//! thread, one connection at a time; enough for a test.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use p256::pkcs8::DecodePrivateKey;

/// The registry's `service` (the token's audience).
pub const SERVICE: &str = "stepbox-test-registry";
/// The token's issuer, as the registry expects it.
pub const ISSUER: &str = "stepbox-test-issuer";

/// A running token server; stopped on drop.
#[derive(Debug)]
pub struct Server {
    port: u16,
    certificate: PathBuf,
    issued: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Makes a signing key and its self-signed certificate in `dir` and
    /// serves tokens to `user` (name, password).
    pub fn start(dir: &Path, user: (&str, &str)) -> Self {
        super::openssl(
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
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "2",
                "-subj",
                "/CN=stepbox test token issuer",
            ],
        );
        let key_pem = std::fs::read_to_string(dir.join("token.key")).expect("token.key");
        let key = SigningKey::from_pkcs8_pem(&key_pem).expect("openssl's EC key is PKCS#8");
        let cert_pem = std::fs::read_to_string(dir.join("token.pem")).expect("token.pem");
        let body: String = cert_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let issuer = Issuer {
            key,
            x5c: body,
            basic: format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", user.0, user.1))
            ),
            subject: user.0.to_string(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let port = listener.local_addr().expect("local addr").port();
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (issued, stop) = (issued.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream
                        && issuer.answer(stream)
                    {
                        issued.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        Self {
            port,
            certificate: dir.join("token.pem"),
            issued,
            stop,
            thread: Some(thread),
        }
    }

    /// The registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The certificate the registry trusts (`rootcertbundle`).
    pub fn certificate(&self) -> &Path {
        &self.certificate
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Issuer {
    key: SigningKey,
    x5c: String,
    basic: String,
    subject: String,
}

impl Issuer {
    /// Answers one request; whether a token was issued.
    fn answer(&self, stream: TcpStream) -> bool {
        let mut reader = BufReader::new(&stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return false;
        }
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_string());
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut out = &stream;
        if path != "/token" {
            let _ = out.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            return false;
        }
        if authorization.as_deref() != Some(self.basic.as_str()) {
            let _ = out.write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 58\r\nconnection: close\r\n\r\n{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad login\"}]}",
            );
            return false;
        }
        let mut access = Vec::new();
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if k == "scope" {
                let scope = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                let mut parts = scope.splitn(3, ':');
                if let (Some(kind), Some(name), Some(actions)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    access.push(serde_json::json!({
                        "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>(),
                    }));
                }
            }
        }
        let token = self.token(access);
        let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
            .to_string();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        true
    }

    /// A JWT granting `access`, signed ES256 with the certificate in `x5c`.
    fn token(&self, access: Vec<serde_json::Value>) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": self.subject, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", access.len()), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}
