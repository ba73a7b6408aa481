//! Secret values never appear in any output: log, stdout/stderr of the
//! guest, outputs, plan, audit, errors; in JSON or text form.

use stepbox_tests::{guest, run_json, stepbox_run};

const SECRET: &str = "Tr0ub4dor-and-3-horses";

fn base64(s: &str) -> String {
    // Standard alphabet, padded; enough for the check.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn secrets_are_masked_in_the_json_report() {
    let run = run_json(
        &guest("secret-echo"),
        &["--secret", &format!("token={SECRET}")],
    );
    assert_eq!(
        run.code,
        1,
        "secret-echo fails on purpose: {}",
        run.all_output()
    );
    let all = run.all_output();
    assert!(!all.contains(SECRET), "secret leaked:\n{all}");
    assert!(
        !all.contains(&base64(SECRET)),
        "base64 of the secret leaked:\n{all}"
    );
    let report = run.report();
    assert_eq!(report["outputs"]["leak"], "********");
    assert_eq!(report["outputs"]["token"], "********");
    assert!(report["error"].as_str().unwrap().contains("********"));
    let log = report["log"].to_string();
    assert!(log.contains("********"), "masked log lines are kept: {log}");
    assert!(
        report["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["source"] == "stdout")
    );
    assert!(
        report["log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["source"] == "stderr")
    );
    assert!(
        !report["plan"].as_array().unwrap().is_empty(),
        "the step applied objects"
    );
}

#[test]
fn secrets_are_masked_in_the_text_output() {
    let run = stepbox_run([
        "run".as_ref(),
        guest("secret-echo").as_os_str(),
        "--secret".as_ref(),
        format!("token={SECRET}").as_ref(),
    ]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    let all = run.all_output();
    assert!(!all.contains(SECRET), "secret leaked:\n{all}");
    assert!(
        !all.contains(&base64(SECRET)),
        "base64 of the secret leaked:\n{all}"
    );
    assert!(all.contains("********"));
}
