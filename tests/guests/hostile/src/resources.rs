//! Resource attacks: CPU, memory, stack, handles, host-call and output
//! floods, huge values, panics and malformed host calls. None of these
//! returns normally: the host must end each one.

use std::hint::black_box;
use std::io::Write;

use stepbox_sdk::{Error, Result, info, run};

pub(crate) fn run(case: &str) -> Result<()> {
    match case {
        "res-loop" => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "res-memory-bomb" => {
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            loop {
                chunks.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        // Unbounded recursion with a tiny frame: the wasm call stack overflows.
        "res-stack-overflow" => {
            black_box(recurse(black_box(0)));
            Ok(())
        }
        // Unbounded recursion with a 64 KiB frame: the stack in linear memory
        // overflows first.
        "res-shadow-stack" => {
            black_box(big_frames(black_box(0)));
            Ok(())
        }
        // Open the same file over and over, never closing it.
        "res-handle-flood" => {
            std::fs::write("/workspace/handle", "x").map_err(io)?;
            loop {
                let f = std::fs::File::open("/workspace/handle").map_err(io)?;
                std::mem::forget(f);
            }
        }
        // Millions of tiny host calls.
        "res-call-flood" => loop {
            black_box(run::input(black_box("case")));
        },
        // Log lines of 1 KiB forever.
        "res-log-flood" => {
            let filler = "x".repeat(1024);
            loop {
                info!("{filler}");
            }
        }
        // stdout without a newline, 1 MiB at a time, forever.
        "res-stdout-flood" => {
            let chunk = "y".repeat(1 << 20);
            let mut out = std::io::stdout();
            loop {
                out.write_all(chunk.as_bytes()).map_err(io)?;
            }
        }
        // One 100 MB log line.
        "res-huge-log-line" => {
            stepbox_sdk::run::log(stepbox_sdk::run::Level::Info, &"l".repeat(100 << 20));
            Ok(())
        }
        // One 100 MB output value.
        "res-huge-output" => run::set_output("huge", "o".repeat(100 << 20)),
        // Fail with a 100 MB error message.
        "res-huge-error" => Err(Error::step("e".repeat(100 << 20))),
        "res-panic" => panic!("hostile step panicking on purpose"),
        // Host calls the canonical ABI cannot lift: `mode` picks how.
        "res-bad-host-call" => {
            let mode = run::require_input("mode")?;
            bad_host_call(&mode);
            Err(Error::step(format!(
                "the host accepted a malformed call ({mode})"
            )))
        }
        _ => Err(Error::invalid(format!("unknown case {case:?}"))),
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        0
    } else {
        black_box(recurse(n + 1)).wrapping_add(1)
    }
}

#[inline(never)]
fn big_frames(n: u64) -> u64 {
    let mut frame = [0u8; 64 * 1024];
    frame[(n as usize) % frame.len()] = n as u8;
    black_box(&mut frame);
    if black_box(n) == u64::MAX {
        0
    } else {
        black_box(big_frames(n + 1)).wrapping_add(frame[7] as u64)
    }
}

// `run.log` as the core module imports it: `(level, ptr, len)`.
#[link(wasm_import_module = "stepbox:step/run@0.1.0")]
unsafe extern "C" {
    #[link_name = "log"]
    fn raw_log(level: i32, ptr: *const u8, len: usize);
}

fn bad_host_call(mode: &str) {
    let text = b"hello";
    let invalid_utf8 = [0xffu8, 0xfe, 0xfd];
    // SAFETY: none; the point is to hand the host what the ABI forbids.
    unsafe {
        match mode {
            "enum" => raw_log(99, text.as_ptr(), text.len()),
            "pointer" => raw_log(2, 0xffff_0000usize as *const u8, 0x1_0000),
            "utf8" => raw_log(2, invalid_utf8.as_ptr(), invalid_utf8.len()),
            _ => {}
        }
    }
}

fn io(e: std::io::Error) -> Error {
    Error::step(format!("io: {e}"))
}
