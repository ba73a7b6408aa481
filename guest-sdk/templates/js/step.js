// {{name}}: a stepbox step. It reads the input `message`, applies the
// ConfigMap of its package (or the built-in one) with #{message} filled in,
// waits until the ConfigMap exists and sets the outputs `configmap` and
// `message`.

import { fs, input, kube, log, setOutput, substitute, withContext } from '@stepbox/sdk';

const PACKAGE_MANIFEST = '/packages/configmap.yaml';
const BUILT_IN_MANIFEST = `apiVersion: v1
kind: ConfigMap
metadata:
  name: greeting
  labels:
    app.kubernetes.io/managed-by: stepbox
data:
  message: "#{message}"
`;

/** @param {import('@stepbox/sdk').Context} ctx */
export function run(ctx) {
  const message = input('message') ?? 'hello from {{name}}';
  log.info(`${ctx.stepName} in namespace ${ctx.namespace} (dry run: ${ctx.dryRun})`);

  const template = fs.exists(PACKAGE_MANIFEST) ? fs.readText(PACKAGE_MANIFEST) : BUILT_IN_MANIFEST;
  const manifest = substitute(template, { message });

  const applied = kube.apply(manifest);
  for (const object of applied) {
    log.info(object.kubectlName(), object.action);
    try {
      kube.wait(object.kindRef(), object.name, 'exists', 30);
    } catch (e) {
      throw withContext(e, `waiting for ${object.kubectlName()}`);
    }
  }
  if (applied.length === 0) throw new Error('the manifest holds no object');
  setOutput('configmap', applied[0].name);
  setOutput('message', message);
}
