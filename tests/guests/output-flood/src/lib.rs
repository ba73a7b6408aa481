//! Sets outputs `out-0`, `out-1`, ... of 4 KiB each forever, until the
//! output limit ends the run. A refused output is passed on as the step's
//! error, so the run ends at the limit whether the host traps or returns
//! `limit-exceeded`.

use stepbox_sdk::{Context, Result, run};

fn run(_ctx: &Context) -> Result<()> {
    let value = "o".repeat(4096);
    for i in 0u64.. {
        run::set_output(&format!("out-{i}"), &value)?;
    }
    Ok(())
}

stepbox_sdk::step!(run);
