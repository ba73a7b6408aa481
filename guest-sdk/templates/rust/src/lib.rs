//! `{{name}}`: a stepbox step. It reads the input `message`, applies the
//! ConfigMap of its package (or the built-in one) with `#{message}` filled
//! in, waits until the ConfigMap exists and sets the outputs `configmap` and
//! `message`.

use std::collections::BTreeMap;
use std::time::Duration;

use stepbox_sdk::prelude::*;

const PACKAGE_MANIFEST: &str = "/packages/configmap.yaml";
const BUILT_IN_MANIFEST: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  labels:
    app.kubernetes.io/managed-by: stepbox
data:
  message: \"#{message}\"
";

fn run(ctx: &Context) -> Result<()> {
    let message = run::input("message").unwrap_or_else(|| "hello from {{name}}".to_string());
    info!("{} in namespace {} (dry run: {})", ctx.step_name, ctx.namespace, ctx.dry_run);

    let template = if std::path::Path::new(PACKAGE_MANIFEST).exists() {
        std::fs::read_to_string(PACKAGE_MANIFEST).context("reading configmap.yaml")?
    } else {
        BUILT_IN_MANIFEST.to_string()
    };
    let manifest = substitute(&template, &BTreeMap::from([("message".to_string(), message.clone())]))?;

    let applied = kube::apply(&manifest)?;
    for object in &applied {
        info!("{} {}", object.kubectl_name(), object.action);
        kube::raw::wait(&object.kind_ref(), &object.name, &WaitFor::Exists, Duration::from_secs(30))
            .with_context(|| format!("waiting for {}", object.kubectl_name()))?;
    }
    let name = applied
        .first()
        .map(|a| a.name.clone())
        .ok_or_else(|| Error::step("the manifest holds no object"))?;
    run::set_output("configmap", &name)?;
    run::set_output("message", &message)?;
    Ok(())
}

stepbox_sdk::step!(run);
