//! Reads what a step explaining a rollout reads: the log of a container
//! (inputs `pod`, `container`, `tail`, `previous`) and the Events about an
//! object (inputs `api-version`, `kind`, `name`), and returns them as
//! outputs `log` and `events` (`TYPE REASON: MESSAGE` lines, oldest
//! first); with input `kustomization` (a directory), also what kustomize
//! renders there as output `rendered`. A failing call fails the run with
//! its error. `tests/guests-js/observe` and `tests/guests-py/observe` do
//! the same through the other SDKs.

use stepbox_sdk::kube::{self, KindRef, LogOptions};
use stepbox_sdk::kustomize;
use stepbox_sdk::{Context, Result, run, serde_json};

fn observe(_ctx: &Context) -> Result<()> {
    if let Some(pod) = run::input("pod") {
        let mut options = LogOptions::new();
        if let Some(container) = run::input("container") {
            options = options.container(container);
        }
        let tail = run::u64_input("tail", 0)?;
        if tail > 0 {
            options = options.tail(u32::try_from(tail).unwrap_or(u32::MAX));
        }
        if run::bool_input("previous", false)? {
            options = options.previous();
        }
        run::set_output("log", kube::logs(&pod, &options)?)?;
    }
    if let Some(name) = run::input("name") {
        let api_version = run::input("api-version").unwrap_or_else(|| "v1".into());
        let kind = run::require_input("kind")?;
        let events = kube::raw::events(&KindRef::new(&api_version, &kind), &name)?;
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                let e: serde_json::Value = serde_json::from_str(e)?;
                let field = |f: &str| e[f].as_str().unwrap_or_default().to_string();
                Ok(format!(
                    "{} {}: {}",
                    field("type"),
                    field("reason"),
                    field("message")
                ))
            })
            .collect::<Result<_>>()?;
        run::set_output("events", lines.join("\n"))?;
    }
    if let Some(dir) = run::input("kustomization") {
        run::set_output("rendered", kustomize::build(&dir)?)?;
    }
    Ok(())
}

stepbox_sdk::step!(observe);
