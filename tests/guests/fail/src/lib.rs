//! Fails with a message of its own: the run must fail (exit 1) with it.

use stepbox_sdk::{Context, Error, Result};

fn run(_ctx: &Context) -> Result<()> {
    Err(Error::step("the database is not reachable"))
}

stepbox_sdk::step!(run);
