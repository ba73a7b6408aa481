/**
 * Write stepbox deployment steps in JavaScript or TypeScript. A step is a
 * module exporting `run(ctx: Context)` (sync or async).
 */
export { ErrorKind, StepboxError, withContext } from './error.js';
export type { ErrorKindName } from './error.js';
export * as kube from './kube.js';
export { Applied, WaitFor, kindRef, kinds } from './kube.js';
export type { Action, KindRef, KubeObject, LogOptions, Manifests, WaitCondition } from './kube.js';
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
export type { LogLevel } from './run.js';
export { runStep } from './step.js';
export type { Context, StepRun } from './step.js';
