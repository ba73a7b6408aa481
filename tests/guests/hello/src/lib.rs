//! The smallest step: logs a greeting and sets the output `greeting`.

use stepbox_sdk::{Context, Result, info, run};

fn run(ctx: &Context) -> Result<()> {
    let greeting = format!("hello from {} in {}", ctx.step_name, ctx.namespace);
    info!("{greeting}");
    run::set_output("greeting", &greeting)
}

stepbox_sdk::step!(run);
