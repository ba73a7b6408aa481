//! Secrets: the host masks a secret's value, and its base64 forms, wherever
//! a step can put it in one piece (a log line, stdout line, output name or
//! value, progress, error, object in the plan, the host's own error text).
//! What it cannot recognise is asserted here as it is, and documented in
//! SECURITY.md: pieces on separate lines, other encodings, file contents.

use stepbox::report::{RunReport, Status};
use stepbox_tests::run_json;

use super::{Case, assert_status, hostile_wasm, json, out};

const SECRET: &str = "tr0ub4dor-and-3-horses";

fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = u32::from(chunk[0]) << 16
            | u32::from(*chunk.get(1).unwrap_or(&0)) << 8
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

async fn leak(case: &str) -> RunReport {
    Case::new(case).secret("token", SECRET).run().await
}

/// Nothing of the report holds the secret or its base64 form.
#[track_caller]
fn assert_masked(r: &RunReport) {
    let text = json(r);
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert!(
        !text.contains(&base64(SECRET)),
        "the base64 of the secret leaked: {text}"
    );
    assert!(
        !text.contains(base64(SECRET).trim_end_matches('=')),
        "unpadded base64 leaked: {text}"
    );
}

fn log_text(r: &RunReport) -> String {
    r.log
        .iter()
        .map(|l| l.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_the_log() {
    let r = leak("secret-log").await;
    assert_masked(&r);
    assert!(
        log_text(&r).contains("the token is ********"),
        "{}",
        log_text(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_stdout_in_two_writes() {
    let r = leak("secret-stdout-pieces").await;
    assert_masked(&r);
    assert!(
        r.log.iter().any(|l| l.message == "********"),
        "{}",
        log_text(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_where_a_long_stdout_line_is_split() {
    // The host splits stdout lines at 16 KiB; it never splits inside a secret.
    let r = leak("secret-long-line").await;
    assert_masked(&r);
    assert!(log_text(&r).contains("********"), "{}", log_text(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_split_across_log_lines() {
    // No single line holds the secret, so the host cannot tell: each half
    // appears as written. SECURITY.md says so.
    let r = leak("secret-split-lines").await;
    let (head, tail) = SECRET.split_at(SECRET.len() / 2);
    assert!(!json(&r).contains(SECRET));
    assert!(log_text(&r).contains(&format!("first half: {head}")));
    assert!(log_text(&r).contains(&format!("second half: {tail}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_base64_encoded() {
    let r = leak("secret-base64").await;
    assert_masked(&r);
    assert!(
        log_text(&r).contains("encoded: ********"),
        "{}",
        log_text(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_hex_encoded() {
    // Only the value and its base64 forms are recognised: hex passes, as
    // SECURITY.md says.
    let r = leak("secret-hex").await;
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!json(&r).contains(SECRET));
    assert!(log_text(&r).contains(&hex));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_an_output() {
    let r = leak("secret-output").await;
    assert_masked(&r);
    assert_eq!(out(&r, "leak"), "********");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_as_an_output_name() {
    let r = leak("secret-output-name").await;
    assert_masked(&r);
    assert_eq!(out(&r, "********"), "value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_progress() {
    let r = leak("secret-progress").await;
    assert_masked(&r);
    assert!(
        log_text(&r).contains("working with ********"),
        "{}",
        log_text(&r)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_object_annotations() {
    let r = leak("secret-annotation").await;
    assert_masked(&r);
    assert_eq!(r.plan.len(), 1);
    let diff = r.plan[0].diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains("leak: ********") && diff.contains("encoded: ********"),
        "{diff}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_the_hosts_error_text() {
    // The step asks for an object named after the secret: the host's
    // not-found message, the audit and the step's view are all masked.
    let r = leak("secret-host-error").await;
    assert_masked(&r);
    assert!(
        out(&r, "message").contains("********"),
        "{}",
        out(&r, "message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_the_error() {
    let r = leak("secret-error").await;
    assert_masked(&r);
    assert_status(
        &r,
        Status::Failed,
        &["failing with the token ******** in the message"],
    );

    let run = run_json(
        &hostile_wasm(),
        &[
            "--input",
            "case=secret-error",
            "--secret",
            &format!("token={SECRET}"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(!run.all_output().contains(SECRET), "{}", run.all_output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_secret_in_an_artifact_file() {
    // Files are the step's to write: the report is masked, but the file
    // holds what the step wrote (SECURITY.md says so).
    let ws = tempfile::tempdir().unwrap();
    let r = Case::new("secret-artifact")
        .workspace(ws.path())
        .secret("token", SECRET)
        .run()
        .await;
    assert_masked(&r);
    assert_eq!(r.artifacts.len(), 1);
    assert_eq!(
        std::fs::read_to_string(ws.path().join("token.txt")).unwrap(),
        SECRET
    );
}
