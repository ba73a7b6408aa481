//! A step that takes a while and then succeeds: sleeps `ms` milliseconds
//! (default 1000) in steps of 100 ms, logging each, and sets the output
//! `slept`. For the worker's tests: a run to cancel, delete, or lose its
//! worker in the middle of.

use std::time::Duration;

use stepbox_sdk::{Context, Result, info, run};

fn run(_ctx: &Context) -> Result<()> {
    let ms = run::u64_input("ms", 1000)?;
    let mut left = ms;
    while left > 0 {
        let now = left.min(100);
        std::thread::sleep(Duration::from_millis(now));
        left -= now;
        info!("{} ms to go", left);
    }
    run::set_output("slept", &ms.to_string())
}

stepbox_sdk::step!(run);
