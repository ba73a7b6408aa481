//! Puts the secret `token` everywhere a step can: the log, stdout, stderr,
//! a plain and a sensitive output, an annotation of a ConfigMap, the data
//! (base64) of a Secret, and finally its error. The host must mask every
//! one of them.

use std::collections::BTreeMap;

use stepbox_sdk::k8s_openapi::ByteString;
use stepbox_sdk::k8s_openapi::api::core::v1::{ConfigMap, Secret};
use stepbox_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use stepbox_sdk::{Context, Error, Result, info, kube, run, warn};

fn run(_ctx: &Context) -> Result<()> {
    let token = run::require_secret("token")?;
    info!("the token is {token}");
    println!("stdout: the token is {token}");
    eprintln!("stderr: the token is {token}");
    run::set_output("leak", &token)?;
    run::set_sensitive_output("token", &token)?;

    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("leaky".into()),
            annotations: Some(BTreeMap::from([("leak".to_string(), token.clone())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "note".to_string(),
            "see the annotation".to_string(),
        )])),
        ..ConfigMap::default()
    };
    // `data` of a Secret serializes as base64: the host must mask that form too.
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("leaky".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(token.clone().into_bytes()),
        )])),
        ..Secret::default()
    };
    // Carry on past a refused apply: the error below must still carry the token.
    if let Err(e) = kube::apply_object(&config_map) {
        warn!("applying configmap leaky: {e}");
    }
    if let Err(e) = kube::apply_object(&secret) {
        warn!("applying secret leaky: {e}");
    }
    Err(Error::step(format!(
        "failing on purpose with the token {token} in the message"
    )))
}

stepbox_sdk::step!(run);
