//! Logs 1 KiB lines forever, until the log limit ends the run.

use stepbox_sdk::{Context, Result, info};

fn run(_ctx: &Context) -> Result<()> {
    let filler = "x".repeat(1024 - "00000000 ".len());
    for i in 0u64.. {
        info!("{i:08} {filler}");
    }
    Ok(())
}

stepbox_sdk::step!(run);
