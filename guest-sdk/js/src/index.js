// Write stepbox deployment steps in JavaScript or TypeScript.
//
// A step is a module exporting `run(ctx)` (sync or async). It reaches the
// outside world only through what the host grants: Kubernetes objects in the
// run's namespace (`kube`, with pod logs and Events), helm releases there
// (`helm`), kustomizations rendered (`kustomize`), its inputs,
// secrets, outputs, progress, artifacts and log, and files under /packages
// (read-only) and /workspace (`fs`). A refused call throws a StepboxError of
// kind "forbidden"; the step may catch it like any other error.
//
//   import { kube, kinds, log, requireInput, setOutput } from '@stepbox/sdk';
//
//   export function run(ctx) {
//     const name = requireInput('name');
//     for (const a of kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { by: ctx.stepName } })) {
//       log.info(a.kubectlName(), a.action);
//     }
//     kube.wait(kinds.ConfigMap, name, 'exists', 30);
//     setOutput('configmap', name);
//   }

export { ErrorKind, StepboxError, withContext } from './error.js';
export * as kube from './kube.js';
export { Applied, WaitFor, kindRef, kinds } from './kube.js';
export * as helm from './helm.js';
export * as kustomize from './kustomize.js';
export * as yaml from './yaml.js';
export * as fs from './fs.js';
export { substitute } from './template.js';
export {
  artifact,
  boolInput,
  input,
  inputs,
  intInput,
  log,
  progress,
  requireInput,
  requireSecret,
  secret,
  setOutput,
  setSensitiveOutput,
} from './run.js';
export { runStep } from './step.js';
