//! What a step can learn of its environment: nothing of the host's.
//!
//! - `env-basics`: `env-count`, `args-count`, `cwd`, `stdin-bytes`;
//! - `env-clocks`: `wall-secs` (seconds since the Unix epoch), `monotonic-ms`
//!   (the monotonic clock's reading: it starts near zero for each run),
//!   `random-a`, `random-b` (16 random bytes each, hex);
//! - `env-sockets`: `tcp`, `udp`, `dns`, `listen` (each "ok" or "denied").

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use stepbox_sdk::{Error, Result, run};

use crate::record_io;

pub(crate) fn run(case: &str) -> Result<()> {
    match case {
        "env-basics" => {
            run::set_output("env-count", std::env::vars_os().count().to_string())?;
            run::set_output("args-count", std::env::args_os().count().to_string())?;
            let cwd = std::env::current_dir()
                .map_or_else(|e| format!("error: {e}"), |p| p.display().to_string());
            run::set_output("cwd", cwd)?;
            let mut buf = Vec::new();
            let stdin = std::io::stdin()
                .read_to_end(&mut buf)
                .map_or_else(|e| format!("error: {e}"), |n| n.to_string());
            run::set_output("stdin-bytes", stdin)
        }
        "env-clocks" => {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            run::set_output("wall-secs", wall.to_string())?;
            // SAFETY: plain WASI imports without arguments.
            let monotonic_ns = unsafe { monotonic_now() } as u64;
            run::set_output("monotonic-ms", (monotonic_ns / 1_000_000).to_string())?;
            run::set_output("random-a", random_hex())?;
            run::set_output("random-b", random_hex())
        }
        "env-sockets" => {
            record_io("tcp", &std::net::TcpStream::connect("127.0.0.1:1"))?;
            record_io("udp", &std::net::UdpSocket::bind("0.0.0.0:0"))?;
            record_io(
                "dns",
                &std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)),
            )?;
            record_io("listen", &std::net::TcpListener::bind("0.0.0.0:0"))
        }
        _ => Err(Error::invalid(format!("unknown case {case:?}"))),
    }
}

#[link(wasm_import_module = "wasi:clocks/monotonic-clock@0.2.6")]
unsafe extern "C" {
    #[link_name = "now"]
    fn monotonic_now() -> i64;
}

#[link(wasm_import_module = "wasi:random/random@0.2.6")]
unsafe extern "C" {
    #[link_name = "get-random-u64"]
    fn get_random_u64() -> i64;
}

fn random_hex() -> String {
    // SAFETY: plain WASI imports without arguments.
    let (a, b) = unsafe { (get_random_u64() as u64, get_random_u64() as u64) };
    format!("{a:016x}{b:016x}")
}
