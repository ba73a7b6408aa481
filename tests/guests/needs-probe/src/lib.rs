//! Declares that it needs ConfigMaps only (get, create, patch) and no
//! HTTP, then applies each input `manifest-0`, `manifest-1`, ... alone and
//! sets `outcome-N` (`ok` or the error's kind) and `message-N`; with input
//! `url` it also GETs it and sets `http-outcome` and `http-message`: what
//! the intersection of its policy and its declaration lets through. With
//! input `helm` set it lists helm releases (its declaration has no `helm:
//! true`) and sets `helm-outcome` and `helm-message`.

use stepbox_sdk::{Context, Result, helm, http, kube, run};

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
    if let Some(url) = run::input("url") {
        let (outcome, message) = match http::get(&url) {
            Ok(r) => (format!("status {}", r.status), String::new()),
            Err(e) => (e.kind().to_string(), e.message().to_string()),
        };
        run::set_output("http-outcome", outcome)?;
        run::set_output("http-message", message)?;
    }
    if run::input("helm").is_some() {
        let (outcome, message) = match helm::list() {
            Ok(r) => (format!("{} releases", r.len()), String::new()),
            Err(e) => (e.kind().to_string(), e.message().to_string()),
        };
        run::set_output("helm-outcome", outcome)?;
        run::set_output("helm-message", message)?;
    }
    Ok(())
}

stepbox_sdk::step!(run);

stepbox_sdk::needs!(
    "apiVersion: stepbox.dev/v1alpha1
kind: StepNeeds
rules:
- apiGroups: ['']
  resources: [configmaps]
  verbs: [get, create, patch]
"
);
