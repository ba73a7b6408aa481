//! Attempts to get the secret `token` out of the run, one way per case. The
//! host masks what it can recognise (the value and its base64 forms, in any
//! one log line, output, error, plan or audit entry); what it cannot (pieces
//! on separate lines, other encodings, files) is documented in SECURITY.md.

use std::io::Write;

use stepbox_sdk::kube::{self, KindRef, raw};
use stepbox_sdk::{Error, Result, info, run};

pub(crate) fn run(case: &str) -> Result<()> {
    let token = run::require_secret("token")?;
    let (head, tail) = token.split_at(token.len() / 2);
    match case {
        "secret-log" => info!("the token is {token}"),
        // Two writes, one line: the host joins the line before masking.
        "secret-stdout-pieces" => {
            let mut out = std::io::stdout();
            out.write_all(head.as_bytes())
                .and_then(|()| out.flush())
                .map_err(io)?;
            out.write_all(tail.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(io)?;
        }
        // A stdout line longer than the host keeps whole (16 KiB), with the
        // token where the host splits it.
        "secret-long-line" => {
            let pad = "a".repeat(16 * 1024 - head.len());
            println!("{pad}{token}");
        }
        // Two log lines, half the token each: no line holds the token.
        "secret-split-lines" => {
            info!("first half: {head}");
            info!("second half: {tail}");
        }
        "secret-base64" => info!("encoded: {}", base64(token.as_bytes())),
        "secret-hex" => info!(
            "hex: {}",
            token
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        "secret-output" => run::set_output("leak", &token)?,
        "secret-output-name" => run::set_output(&token, "value")?,
        "secret-progress" => run::progress(50, &format!("working with {token}")),
        "secret-annotation" => {
            let manifest = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leaky\n  annotations:\n    leak: \"{token}\"\n    encoded: \"{}\"\ndata:\n  a: b\n",
                base64(token.as_bytes())
            );
            kube::apply(&manifest)?;
        }
        // The host's own error text quotes the name the step asked for.
        "secret-host-error" => {
            let err = raw::get(&KindRef::new("v1", "ConfigMap"), &token).err();
            run::set_output("message", err.map(|e| e.to_string()).unwrap_or_default())?;
        }
        "secret-artifact" => {
            std::fs::write("/workspace/token.txt", &token).map_err(io)?;
            run::artifact("token", "/workspace/token.txt")?;
        }
        "secret-error" => {
            return Err(Error::step(format!(
                "failing with the token {token} in the message"
            )));
        }
        _ => return Err(Error::invalid(format!("unknown case {case:?}"))),
    }
    Ok(())
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = u32::from(chunk[0]) << 16
            | u32::from(*chunk.get(1).unwrap_or(&0)) << 8
            | u32::from(*chunk.get(2).unwrap_or(&0));
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

fn io(e: std::io::Error) -> Error {
    Error::step(format!("io: {e}"))
}
