//! Applies each input `manifest-0`, `manifest-1`, ... alone (`kube::apply`)
//! and sets `outcome-N` (`ok` or the error's kind) and `message-N`, so a
//! test can send many manifests through one run. It declares no needs: its
//! runs may do all their policy allows.

use stepbox_sdk::{Context, Result, kube, run};

fn run(_ctx: &Context) -> Result<()> {
    let mut n = 0;
    while let Some(manifest) = run::input(&format!("manifest-{n}")) {
        let (outcome, message) = match kube::apply(&manifest) {
            Ok(_) => ("ok".to_string(), String::new()),
            Err(e) => (e.kind().to_string(), e.message().to_string()),
        };
        run::set_output(&format!("outcome-{n}"), outcome)?;
        run::set_output(&format!("message-{n}"), message)?;
        n += 1;
    }
    Ok(())
}

stepbox_sdk::step!(run);
