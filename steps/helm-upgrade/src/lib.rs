//! `helm-upgrade`: `helm upgrade --install` of a chart from the package,
//! inside the run's namespace and policy.
//!
//! 1. Finds the chart (input `chart`, a directory or `.tgz` under
//!    `/packages`).
//! 2. Reads the values file (input `values`, optional, under `/packages`)
//!    and replaces its `#{Name}` placeholders with the other inputs;
//!    unknown names fail the run before helm is called.
//! 3. Installs or upgrades release `release`. The host renders the chart
//!    and checks every object and hook against the policy first: one
//!    refused object means nothing is installed.
//! 4. Logs each object in kubectl's words and sets the outputs `revision`,
//!    `status`, `chart`, `app-version` and `objects`.

use std::collections::BTreeMap;
use std::time::Duration;

use stepbox_sdk::helm::{self, UpgradeOptions};
use stepbox_sdk::prelude::*;
use stepbox_sdk::serde_json::{Value, json};

const PACKAGES: &str = "/packages";

/// The inputs this step reads itself; every other input is a value for
/// `#{Name}` placeholders in the values file.
const OWN_INPUTS: &[&str] = &["release", "chart", "values", "wait", "atomic", "timeout"];

fn run(ctx: &Context) -> stepbox_sdk::Result<()> {
    let release = run::require_input("release")?;
    let chart = under_packages(&run::require_input("chart")?);
    let wait = run::bool_input("wait", false)?;
    let atomic = run::bool_input("atomic", false)?;
    let timeout = run::u64_input("timeout", 300)?;

    let values = match run::input("values").filter(|v| !v.trim().is_empty()) {
        None => String::new(),
        Some(path) => {
            let path = under_packages(&path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::invalid(format!("values file {path}: {e}")))?;
            let inputs: BTreeMap<String, String> = run::inputs()
                .into_iter()
                .filter(|(k, _)| !OWN_INPUTS.contains(&k.as_str()))
                .collect();
            substitute(&text, &inputs).with_context(|| format!("values file {path}"))?
        }
    };

    info!(
        "helm upgrade --install {release} {chart} in {}{}",
        ctx.namespace,
        if wait || atomic { " (waiting)" } else { "" }
    );
    run::progress(10, "installing");
    let options = UpgradeOptions::new()
        .wait(wait)
        .atomic(atomic)
        .timeout(Duration::from_secs(timeout));
    let result = helm::upgrade_or_install(&release, &chart, &values, &options)
        .with_context(|| format!("release {release} from {chart}"))?;

    for object in &result.objects {
        let hook = if object.hook { " (hook)" } else { "" };
        info!("{} {}{hook}", object.kubectl_name(), object.action);
    }
    let r = &result.release;
    info!(
        "release {} revision {} {} (chart {}-{}, app {})",
        r.name, r.revision, r.status, r.chart_name, r.chart_version, r.app_version
    );
    let objects: Vec<Value> = result
        .objects
        .iter()
        .map(|o| json!({"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "action": o.action.as_str(), "hook": o.hook}))
        .collect();
    run::set_output("revision", r.revision.to_string())?;
    run::set_output("status", r.status.as_str())?;
    run::set_output("chart", format!("{}-{}", r.chart_name, r.chart_version))?;
    run::set_output("app-version", &r.app_version)?;
    run::set_output("objects", Value::Array(objects).to_string())?;
    run::progress(100, &format!("revision {} {}", r.revision, r.status));
    Ok(())
}

/// `web` → `/packages/web`; absolute paths stay as they are (the host
/// refuses those outside `/packages` and `/workspace`).
fn under_packages(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{PACKAGES}/{}", path.trim_start_matches("./"))
    }
}

stepbox_sdk::step!(run);

// helm, its release records (Secrets), and what a chart of the usual
// namespaced kinds makes helm do through the gateway: read, create,
// update, delete, and with --wait list and watch workloads and pods.
stepbox_sdk::needs!(
    "apiVersion: stepbox.dev/v1alpha1
kind: StepNeeds
helm: true
rules:
- apiGroups: ['']
  resources: [configmaps, secrets, services, serviceaccounts, persistentvolumeclaims, pods]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses, networkpolicies]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: ['']
  resources: [events]
  verbs: [list]
"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_packages() {
        assert_eq!(under_packages("webapp"), "/packages/webapp");
        assert_eq!(
            under_packages("./charts/web-1.0.0.tgz"),
            "/packages/charts/web-1.0.0.tgz"
        );
        assert_eq!(under_packages("/packages/webapp"), "/packages/webapp");
    }
}
