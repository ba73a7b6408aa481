//! Allocates memory in 1 MiB chunks forever, touching every page so it is
//! really used, until the memory limit ends the run.

use stepbox_sdk::{Context, Result, info};

const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

fn run(_ctx: &Context) -> Result<()> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; CHUNK];
        for byte in chunk.iter_mut().step_by(PAGE) {
            *byte = 1;
        }
        chunks.push(std::hint::black_box(chunk));
        if chunks.len().is_multiple_of(64) {
            info!("{} MiB allocated", chunks.len());
        }
    }
}

stepbox_sdk::step!(run);
