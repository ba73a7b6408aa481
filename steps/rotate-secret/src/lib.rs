//! `rotate-secret`: writes a new value into a Secret and restarts the
//! Deployments that use it.
//!
//! The Secret is applied with `stringData: {<key>: <value>}` (other keys of
//! an existing Secret are kept). Each Deployment matching `selector` gets the
//! annotation `stepbox.dev/secret-checksum` on its pod template, the sha256
//! of the new value, so its pods roll exactly when the value changes. The
//! value itself is never logged nor put in an output.

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};
use stepbox_sdk::k8s_openapi::api::apps::v1::Deployment;
use stepbox_sdk::k8s_openapi::api::core::v1::Secret;
use stepbox_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use stepbox_sdk::prelude::*;
use stepbox_sdk::serde_json::json;

const CHECKSUM_ANNOTATION: &str = "stepbox.dev/secret-checksum";

fn run(_ctx: &Context) -> stepbox_sdk::Result<()> {
    let name = run::require_input("secret")?;
    let key = run::input("key").unwrap_or_else(|| "password".to_string());
    let value = run::require_secret("value")?;
    let selector = run::input("selector").filter(|s| !s.trim().is_empty());
    let wait = run::bool_input("wait", true)?;
    let timeout = Duration::from_secs(run::u64_input("timeout", 300)?);

    let checksum = sha256_hex(&value);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "stepbox".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        string_data: Some(BTreeMap::from([(key.clone(), value)])),
        ..Secret::default()
    };
    let applied = kube::apply_object(&secret).with_context(|| format!("writing secret {name}"))?;
    info!("{} {} (key {key})", applied.kubectl_name(), applied.action);
    run::progress(30, "secret written");

    let mut restarted = Vec::new();
    if let Some(selector) = &selector {
        let deployments = kube::names::<Deployment>(Some(selector))
            .with_context(|| format!("listing Deployments matching {selector}"))?;
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {CHECKSUM_ANNOTATION: checksum}}}}});
        for deployment in deployments {
            // The patched object is not needed: raw::patch spares parsing it.
            kube::raw::patch(
                &KindRef::of::<Deployment>(),
                &deployment,
                &patch.to_string(),
            )
            .with_context(|| format!("restarting deployment {deployment}"))?;
            info!("deployment.apps/{deployment} restarted");
            restarted.push(deployment);
        }
        if restarted.is_empty() {
            warn!("no Deployment matches {selector}: nothing restarted");
        }
    } else {
        info!("no selector given: no Deployment restarted");
    }
    run::progress(60, &format!("{} deployments restarted", restarted.len()));

    if wait {
        for deployment in &restarted {
            kube::wait::<Deployment>(deployment, WaitFor::Rollout, timeout)
                .with_context(|| format!("waiting for deployment {deployment}"))?;
            info!("deployment.apps/{deployment} rolled out");
        }
    }

    run::set_output("secret", &name)?;
    run::set_output("restarted", serde_json::to_string(&restarted)?)?;
    run::set_sensitive_output("checksum", &checksum)?;
    run::progress(100, "done");
    Ok(())
}

fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

stepbox_sdk::step!(run);

// The Secret it writes (an apply reads it first), and the Deployments it
// lists, restarts and waits for: nothing else.
stepbox_sdk::needs!(
    "apiVersion: stepbox.dev/v1alpha1
kind: StepNeeds
rules:
- apiGroups: ['']
  resources: [secrets]
  verbs: [get, create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, patch]
"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_lowercase_sha256_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
