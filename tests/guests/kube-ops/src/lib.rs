//! Every kube call once against the run's namespace, recording what each
//! returned as outputs, so the test can compare with a real cluster's
//! behaviour: apply (created, unchanged, configured), list, patch, wait for
//! rollout and for a condition, delete (twice) and get after delete.

use std::time::Duration;

use stepbox_sdk::kube::{self, KindRef, WaitFor};
use stepbox_sdk::{Context, Error, Result, run, serde_json};

const WAIT: Duration = Duration::from_secs(30);

fn config_map(a: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ops\n  labels:\n    app: ops\ndata:\n  a: \"{a}\"\n"
    )
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: ops-web
  labels:
    app: ops-web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: ops-web
  template:
    metadata:
      labels:
        app: ops-web
    spec:
      containers:
        - name: web
          image: nginx
          ports:
            - containerPort: 80
";

fn run(_ctx: &Context) -> Result<()> {
    let cm = KindRef::new("v1", "ConfigMap");
    let deployment = KindRef::new("apps/v1", "Deployment");

    apply_one(&config_map("1"))?;
    run::set_output("second-action", apply_one(&config_map("1"))?)?;
    run::set_output("third-action", apply_one(&config_map("2"))?)?;

    let listed = kube::raw::list(&cm, Some("app=ops"))?;
    run::set_output("listed", listed.len().to_string())?;

    let patched: serde_json::Value =
        serde_json::from_str(&kube::raw::patch(&cm, "ops", r#"{"data":{"b":"3"}}"#)?)?;
    run::set_output(
        "patched-b",
        patched["data"]["b"].as_str().unwrap_or_default(),
    )?;

    apply_one(DEPLOYMENT)?;
    run::set_output(
        "rollout",
        outcome(kube::raw::wait(
            &deployment,
            "ops-web",
            &WaitFor::Rollout,
            WAIT,
        )),
    )?;
    let available = kube::raw::wait(
        &deployment,
        "ops-web",
        &WaitFor::condition("Available"),
        WAIT,
    );
    run::set_output("available", outcome(available))?;

    run::set_output("deleted", kube::raw::delete(&cm, "ops")?.to_string())?;
    run::set_output("deleted-again", kube::raw::delete(&cm, "ops")?.to_string())?;
    run::set_output(
        "after-delete",
        outcome(kube::raw::get(&cm, "ops").map(drop)),
    )?;
    Ok(())
}

/// Applies one object; its action in kubectl's words.
fn apply_one(manifest: &str) -> Result<&'static str> {
    let applied = kube::apply(manifest)?;
    match applied.as_slice() {
        [one] => Ok(one.action.as_str()),
        other => Err(Error::step(format!(
            "apply of one object returned {} results",
            other.len()
        ))),
    }
}

/// "ok" or the error's kind.
fn outcome(result: Result<()>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.kind(),
    }
}

stepbox_sdk::step!(run);
