//! Loops forever without calling the host: only the time limit (epoch
//! interruption) can end it, and other runs must keep moving meanwhile.

use stepbox_sdk::{Context, Result};

fn run(_ctx: &Context) -> Result<()> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

stepbox_sdk::step!(run);
