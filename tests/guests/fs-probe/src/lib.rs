//! Reports what a step's filesystem, environment and sockets allow, as
//! outputs: /packages is readable but not writable, /workspace is both,
//! nothing else of the host is reachable (not even through `..`), the
//! environment and arguments are empty and sockets are denied.

use std::io::Read;

use stepbox_sdk::{Context, Result, run};

fn run(_ctx: &Context) -> Result<()> {
    let package =
        std::fs::read_to_string("/packages/hello.txt").unwrap_or_else(|e| format!("error: {e}"));
    run::set_output("package-content", package)?;

    let roundtrip = std::fs::write("/workspace/out.txt", "written by fs-probe")
        .and_then(|()| std::fs::read_to_string("/workspace/out.txt"))
        .map_or_else(
            |e| format!("error: {e}"),
            |s| {
                if s == "written by fs-probe" {
                    "ok".into()
                } else {
                    format!("read back {s:?}")
                }
            },
        );
    run::set_output("workspace-roundtrip", roundtrip)?;

    run::set_output(
        "packages-write",
        allowed(std::fs::File::create("/packages/x").map(drop)),
    )?;
    run::set_output("etc-passwd", allowed(read("/etc/passwd")))?;
    run::set_output("dotdot", allowed(read("/workspace/../../etc/passwd")))?;

    run::set_output("env-count", std::env::vars().count().to_string())?;
    run::set_output("args-count", std::env::args().count().to_string())?;

    match std::net::TcpStream::connect("127.0.0.1:1") {
        Ok(_) => run::set_output("socket", "allowed")?,
        Err(e) => {
            run::set_output("socket", "denied")?;
            run::set_output("socket-error", e.to_string())?;
        }
    }
    Ok(())
}

fn read(path: &str) -> std::io::Result<()> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut buf).map(drop)
}

fn allowed(result: std::io::Result<()>) -> &'static str {
    if result.is_ok() { "allowed" } else { "denied" }
}

stepbox_sdk::step!(run);
