"""{{name}}: a stepbox step. It reads the input ``message``, applies the
ConfigMap of its package (or the built-in one) with ``#{message}`` filled
in, waits until the ConfigMap exists and sets the outputs ``configmap`` and
``message``."""

from __future__ import annotations

import os

from stepbox_sdk import Context, StepFailed, input, kube, log, set_output, substitute, with_context

PACKAGE_MANIFEST = "/packages/configmap.yaml"
BUILT_IN_MANIFEST = """apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  labels:
    app.kubernetes.io/managed-by: stepbox
data:
  message: "#{message}"
"""


def run(ctx: Context) -> None:
    message = input("message") or "hello from {{name}}"
    log.info(f"{ctx.step_name} in namespace {ctx.namespace} (dry run: {str(ctx.dry_run).lower()})")

    if os.path.exists(PACKAGE_MANIFEST):
        with open(PACKAGE_MANIFEST, encoding="utf-8") as f:
            template = f.read()
    else:
        template = BUILT_IN_MANIFEST
    manifest = substitute(template, {"message": message})

    applied = kube.apply(manifest)
    for obj in applied:
        log.info(obj.kubectl_name(), obj.action)
        try:
            kube.wait(obj.kind_ref(), obj.name, "exists", timeout=30)
        except Exception as e:
            raise with_context(e, f"waiting for {obj.kubectl_name()}") from None
    if not applied:
        raise StepFailed("the manifest holds no object")
    set_output("configmap", applied[0].name)
    set_output("message", message)
