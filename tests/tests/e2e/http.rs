//! Outbound HTTP: `steps/http-check` against real HTTP servers on loopback,
//! under a policy whose `outbound:` allow-list names one of them. What is
//! allowed answers; anything else (another port, a redirect there) is
//! refused with an error naming the allow-list; bodies and waits are held
//! to the policy's limits; a secret sent in a header reaches the server but
//! never the report or the log. A JavaScript step's `fetch` and a Python
//! step's `stepbox_sdk.http` go the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use stepbox_tests::{DevClusterProcess, Invocation, dir_with, run_json, script_step, step};

/// A small HTTP/1.1 server on 127.0.0.1 answering by path:
/// `/` 200 `ok`, `/big` 64 KiB, `/slow` never, `/redirect` 302 to
/// `redirect_to`. It records every request's head.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(redirect_to: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&seen);
                let redirect_to = redirect_to.clone();
                std::thread::spawn(move || answer(stream, &seen, redirect_to.as_deref()));
            }
        });
        Self { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(stream: TcpStream, seen: &Mutex<Vec<String>>, redirect_to: Option<&str>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    seen.lock().unwrap().push(head.clone());
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut stream = stream;
    let respond = |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = stream.write_all(body);
    };
    match path.as_str() {
        "/big" => respond(&mut stream, "200 OK", "", &vec![b'x'; 64 * 1024]),
        "/slow" => {
            // Never answers: waits until the client gives up and closes.
            let _ = reader.read_to_end(&mut Vec::new());
        }
        "/redirect" => {
            let to = redirect_to.unwrap_or("/");
            respond(
                &mut stream,
                "302 Found",
                &format!("location: {to}\r\n"),
                b"",
            );
        }
        _ => respond(&mut stream, "200 OK", "", b"ok"),
    }
}

/// A policy allowing `origin` only, with small HTTP limits.
fn policy(origin: &str) -> tempfile::TempDir {
    let text = format!(
        "apiVersion: stepbox.dev/v1alpha1\nkind: StepPolicy\nrules: []\n\
         limits:\n  httpResponseBytes: 4Ki\n  httpTimeout: 2s\n\
         outbound:\n  - {origin}\n"
    );
    dir_with(&[("policy.yaml", &text)])
}

fn check(policy: &tempfile::TempDir, url: &str, extra: &[&str]) -> Invocation {
    let policy = policy.path().join("policy.yaml");
    let url = format!("url={url}");
    let mut args = vec![
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        &url,
        "--input",
        "timeout=5s",
        "--input",
        "interval=100ms",
    ];
    args.extend_from_slice(extra);
    run_json(&step("http-check"), &args)
}

fn http_audit(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["audit"]
        .as_array()
        .expect("audit is a list")
        .iter()
        .filter(|a| a["call"] == "http.request")
        .cloned()
        .collect()
}

#[test]
fn http_check_passes_on_an_allowed_url_and_audits_the_request() {
    let server = Server::start(None);
    let policy = policy(&server.origin());
    let run = check(&policy, &server.url("/"), &["--input", "contains=ok"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["outputs"]["status"], "200");
    assert_eq!(server.requests().len(), 1, "one request reached the server");
    let audit = http_audit(&report);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["decision"], "allowed");
    assert_eq!(audit[0]["target"], format!("GET {}", server.url("/")));
    assert!(
        audit[0]["reason"].as_str().unwrap().starts_with("200"),
        "{audit:?}"
    );
}

#[test]
fn http_to_a_host_not_on_the_allow_list_is_refused_naming_it() {
    let allowed = Server::start(None);
    let other = Server::start(None);
    let policy = policy(&allowed.origin());
    let run = check(&policy, &other.url("/"), &[]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["status"], "failed");
    let error = report["error"].as_str().unwrap();
    assert!(error.starts_with("forbidden"), "{error}");
    assert!(error.contains("outbound allow-list"), "{error}");
    assert!(
        error.contains(&allowed.origin()),
        "the error lists what is allowed: {error}"
    );
    assert!(
        other.requests().is_empty(),
        "nothing reached the other host"
    );
    let audit = http_audit(&report);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["decision"], "denied");
}

#[test]
fn http_redirect_to_a_refused_host_is_not_followed() {
    let refused = Server::start(None);
    let allowed = Server::start(Some(refused.url("/")));
    let policy = policy(&allowed.origin());
    let run = check(&policy, &allowed.url("/redirect"), &[]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("forbidden"), "{error}");
    assert!(error.contains(&refused.origin()), "{error}");
    assert!(error.contains("outbound allow-list"), "{error}");
    assert_eq!(allowed.requests().len(), 1);
    assert!(
        refused.requests().is_empty(),
        "the redirect was not followed"
    );
}

#[test]
fn http_response_larger_than_the_limit_fails_naming_the_limit() {
    let server = Server::start(None);
    let policy = policy(&server.origin());
    let run = check(&policy, &server.url("/big"), &[]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("limit-exceeded"), "{error}");
    assert!(error.contains("limits.httpResponseBytes"), "{error}");
    assert_eq!(
        server.requests().len(),
        1,
        "not retried: a limit will not change"
    );
}

#[test]
fn http_server_that_never_answers_is_given_up_on_at_the_time_limit() {
    let server = Server::start(None);
    let policy = policy(&server.origin());
    let run = check(&policy, &server.url("/slow"), &[]);
    assert_ne!(run.code, 0, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.contains("limits.httpTimeout"), "{error}");
}

#[test]
fn http_secret_in_a_header_reaches_the_server_but_is_masked_everywhere() {
    let server = Server::start(None);
    let policy = policy(&server.origin());
    let secret = "s3cret-token-8c1f";
    let secret_arg = format!("api-token={secret}");
    let run = check(
        &policy,
        &server.url("/"),
        &["--input", "token-secret=api-token", "--secret", &secret_arg],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0]
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {secret}")),
        "the server got the header: {requests:?}"
    );
    assert!(
        !run.all_output().contains(secret),
        "the secret leaked: {}",
        run.all_output()
    );
    let audit = http_audit(&run.report());
    let reason = audit[0]["reason"].as_str().unwrap();
    assert!(reason.contains("authorization: ********"), "{reason}");
}

#[test]
fn http_fetch_from_javascript_is_allowed_and_refused_by_the_same_list() {
    let allowed = Server::start(None);
    let other = Server::start(None);
    let policy = policy(&allowed.origin());
    let policy_file = policy.path().join("policy.yaml");
    let fetch = script_step("tests/guests-js/fetch");
    let fetch_url = |url: String| {
        let url = format!("url={url}");
        run_json(
            &fetch,
            &[
                "--policy",
                policy_file.to_str().unwrap(),
                "--input",
                &url,
                "--input",
                "token-secret=api-token",
                "--secret",
                "api-token=js-secret-5d2e",
            ],
        )
    };

    let run = fetch_url(allowed.url("/"));
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert_eq!(report["outputs"]["status"], "200");
    assert_eq!(report["outputs"]["body"], "ok");
    assert!(allowed.requests()[0].contains("js-secret-5d2e"));
    assert!(
        !run.all_output().contains("js-secret-5d2e"),
        "{}",
        run.all_output()
    );

    let run = fetch_url(other.url("/"));
    assert_ne!(run.code, 0, "{}", run.all_output());
    let report = run.report();
    assert!(
        other.requests().is_empty(),
        "nothing reached the other host"
    );
    assert_eq!(http_audit(&report)[0]["decision"], "denied");
    // fetch rejects with a bare NetworkError; the run's log says why.
    let refused = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .find(|m| m.starts_with("outbound request refused"))
        .unwrap_or_else(|| panic!("no refusal in the log: {report:#}"))
        .to_string();
    assert!(refused.contains("outbound allow-list"), "{refused}");
    assert!(refused.contains(&allowed.origin()), "{refused}");
}

#[test]
fn http_from_python_is_allowed_and_refused_as_a_forbidden_error_naming_the_list() {
    let allowed = Server::start(None);
    let refused = Server::start(None);
    let redirecting = Server::start(Some(refused.url("/")));
    let policy = policy(&format!(
        "{}\n  - {}",
        allowed.origin(),
        redirecting.origin()
    ));
    let policy_file = policy.path().join("policy.yaml");
    let fetch = script_step("tests/guests-py/fetch");
    let get = |url: String| {
        let url = format!("url={url}");
        let run = run_json(
            &fetch,
            &[
                "--policy",
                policy_file.to_str().unwrap(),
                "--input",
                &url,
                "--input",
                "token-secret=api-token",
                "--secret",
                "api-token=py-secret-77aa",
            ],
        );
        assert_eq!(
            run.code,
            0,
            "the step handles refusals: {}",
            run.all_output()
        );
        assert!(
            !run.all_output().contains("py-secret-77aa"),
            "{}",
            run.all_output()
        );
        run.report()["outputs"].clone()
    };

    let out = get(allowed.url("/"));
    assert_eq!(out["outcome"], "ok", "{out}");
    assert_eq!(out["status"], "200");
    assert_eq!(out["body"], "ok");
    assert!(allowed.requests()[0].contains("py-secret-77aa"));

    for url in [refused.url("/"), redirecting.url("/redirect")] {
        let out = get(url);
        assert_eq!(out["outcome"], "forbidden", "{out}");
        let message = out["message"].as_str().unwrap();
        assert!(message.contains("outbound allow-list"), "{message}");
        assert!(message.contains(&refused.origin()), "{message}");
    }
    assert!(
        refused.requests().is_empty(),
        "nothing reached the refused host"
    );
}

#[test]
fn http_wildcard_entry_does_not_reach_loopback() {
    let server = Server::start(None);
    let policy = policy("\"*://*:*\"");
    for url in [
        server.url("/"),
        format!("http://localhost:{}/", server.addr.port()),
    ] {
        let run = check(&policy, &url, &[]);
        assert_ne!(run.code, 0, "{}", run.all_output());
        let error = run.report()["error"].as_str().unwrap().to_string();
        assert!(error.starts_with("forbidden"), "{error}");
        assert!(error.contains("loopback"), "{error}");
        assert!(error.contains("naming the address itself"), "{error}");
    }
    assert!(server.requests().is_empty(), "nothing reached the server");
}

/// On a live run the cluster's API server is no ordinary destination: an
/// entry that reaches its address only through a name (here `localhost`,
/// while the kubeconfig says 127.0.0.1) is refused, naming the API server,
/// and the request never arrives; the run's kube calls are not affected.
#[test]
fn http_to_the_clusters_api_server_is_refused_unless_named_exactly() {
    let dc = DevClusterProcess::start(&["--namespace", "dev"]);
    let kubeconfig = std::fs::read_to_string(dc.kubeconfig()).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("the kubeconfig names its server")
        .trim_matches(['"', '\''])
        .to_string();
    let port = server
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .expect("the server URL has a port");
    assert!(
        server.starts_with("https://127.0.0.1:"),
        "the test relies on the dev cluster serving on 127.0.0.1: {server}"
    );
    let policy = policy(&format!("https://localhost:{port}"));
    let probes_before = dc
        .kubectl_run(["get", "--raw", "/debug/stepbox/requests"])
        .stdout
        .matches("/version")
        .count();
    let kc = dc.kubeconfig().to_str().unwrap().to_string();
    let run = check(
        &policy,
        &format!("https://localhost:{port}/version"),
        &["--kubeconfig", &kc],
    );
    assert_ne!(run.code, 0, "{}", run.all_output());
    let error = run.report()["error"].as_str().unwrap().to_string();
    assert!(error.starts_with("forbidden"), "{error}");
    assert!(error.contains("the cluster's API server"), "{error}");
    assert!(
        error.contains("naming its exact address or name"),
        "{error}"
    );
    // The run's own pre-flight probe of /version is the only one that arrived.
    let requests = dc
        .kubectl_run(["get", "--raw", "/debug/stepbox/requests"])
        .stdout;
    assert_eq!(
        requests.matches("/version").count() - probes_before,
        1,
        "only the run's probe reached /version: {requests}"
    );
}
