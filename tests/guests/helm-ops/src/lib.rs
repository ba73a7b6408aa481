//! Runs a script of helm calls and records what each returned, so the tests
//! can follow a release through install, upgrade, rollback and uninstall in
//! one run (the embedded namespace lives as long as the run).
//!
//! Inputs:
//! - `release` (default `shop`), `chart` (default `/packages/shop`);
//! - `script`: calls separated by `;`, each a verb and words:
//!   - `upgrade [wait] [atomic] [timeout=SECS] [chart=PATH] [values=FILE] [KEY=VALUE...]`
//!     (`KEY=VALUE` become top-level values; `KEY=secret:NAME` takes the
//!     value of run secret NAME; `raw=TEXT` passes TEXT as the values YAML);
//!   - `rollback [REVISION] [wait]`, `uninstall [wait]`, `status`, `list`,
//!     `history`, `template [KEY=VALUE...]`.
//!
//! Outputs: `step-N` (from 1) is a JSON object per call: `op`, `ok`, and
//! either `error` (`kind`, `message`) or what the call returned; `steps` is
//! the number of calls. The run fails only when the script is malformed.

use std::time::Duration;

use stepbox_sdk::helm::{self, Release, ReleaseResult, UpgradeOptions, WaitOptions};
use stepbox_sdk::serde_json::{Value, json};
use stepbox_sdk::{Context, Error, Result, run};

fn run(_ctx: &Context) -> Result<()> {
    let release = run::input("release").unwrap_or_else(|| "shop".into());
    let chart = run::input("chart").unwrap_or_else(|| "/packages/shop".into());
    let script =
        run::input("script").ok_or_else(|| Error::invalid("input `script` is required"))?;
    let mut n = 0;
    for call in script.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        n += 1;
        let mut words = call.split_whitespace();
        let verb = words.next().unwrap_or_default();
        let words: Vec<&str> = words.collect();
        let result = perform(verb, &words, &release, &chart)?;
        let record = match result {
            Ok(mut v) => {
                v["op"] = json!(call);
                v["ok"] = json!(true);
                v
            }
            Err(e) => {
                json!({"op": call, "ok": false, "error": {"kind": e.kind(), "message": e.message()}})
            }
        };
        stepbox_sdk::info!(
            "{call}: {}",
            if record["ok"] == true { "ok" } else { "failed" }
        );
        run::set_output(&format!("step-{n}"), record.to_string())?;
    }
    run::set_output("steps", n.to_string())?;
    Ok(())
}

/// The outer error is a malformed script; the inner one the call's.
fn perform(verb: &str, words: &[&str], release: &str, chart: &str) -> Result<Result<Value>> {
    let flag = |name: &str| words.contains(&name);
    let setting = |key: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{key}=")[..]))
    };
    Ok(match verb {
        "upgrade" => {
            let mut options = UpgradeOptions::new().wait(flag("wait")).atomic(flag("atomic"));
            if let Some(t) = setting("timeout") {
                let secs: u64 = t.parse().map_err(|_| Error::invalid(format!("timeout={t}")))?;
                options = options.timeout(Duration::from_secs(secs));
            }
            let chart = setting("chart").unwrap_or(chart);
            values(words).and_then(|v| helm::upgrade_or_install(release, chart, &v, &options).map(outcome))
        }
        "rollback" => {
            let revision = words.iter().find_map(|w| w.parse::<u32>().ok());
            helm::rollback(release, revision, &WaitOptions::new().wait(flag("wait"))).map(outcome)
        }
        "uninstall" => helm::uninstall(release, &WaitOptions::new().wait(flag("wait"))).map(outcome),
        "status" => helm::status(release).map(|d| {
            json!({
                "release": release_json(&d.release),
                "objects": d.objects.iter().map(|o| json!({"apiVersion": o.api_version, "kind": o.kind, "name": o.name})).collect::<Vec<_>>(),
                "notes": d.notes,
            })
        }),
        "list" => helm::list().map(|rs| json!({"releases": rs.iter().map(release_json).collect::<Vec<_>>()})),
        "history" => helm::history(release).map(|rs| json!({"releases": rs.iter().map(release_json).collect::<Vec<_>>()})),
        "template" => values(words).and_then(|v| helm::template(release, setting("chart").unwrap_or(chart), &v)).map(|m| {
            let kinds: Vec<&str> = m.lines().filter_map(|l| l.strip_prefix("kind: ")).collect();
            json!({"kinds": kinds, "manifest": m})
        }),
        other => return Err(Error::invalid(format!("unknown helm call {other:?}"))),
    })
}

/// The values YAML from `values=FILE`, `raw=TEXT` and `KEY=VALUE` words.
fn values(words: &[&str]) -> Result<String> {
    let mut yaml = String::new();
    for w in words {
        let Some((key, value)) = w.split_once('=') else {
            continue;
        };
        match key {
            "timeout" | "chart" => {}
            "values" => yaml.push_str(&std::fs::read_to_string(value)?),
            "raw" => yaml.push_str(&value.replace("\\n", "\n")),
            _ => {
                let value = match value.strip_prefix("secret:") {
                    Some(name) => run::secret(name)
                        .ok_or_else(|| Error::invalid(format!("no secret {name}")))?,
                    None => value.to_string(),
                };
                let value = if value.parse::<i64>().is_ok() {
                    value
                } else {
                    format!("{value:?}")
                };
                yaml.push_str(&format!("{key}: {value}\n"));
            }
        }
    }
    Ok(yaml)
}

fn release_json(r: &Release) -> Value {
    json!({
        "name": r.name, "namespace": r.namespace, "revision": r.revision, "status": r.status.as_str(),
        "chart": r.chart_name, "chartVersion": r.chart_version, "appVersion": r.app_version,
        "description": r.description, "updated": r.updated,
    })
}

fn outcome(r: ReleaseResult) -> Value {
    json!({
        "release": release_json(&r.release),
        "objects": r.objects.iter().map(|o| json!({
            "apiVersion": o.api_version, "kind": o.kind, "name": o.name, "action": o.action.as_str(), "hook": o.hook,
        })).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}

stepbox_sdk::step!(run);
