// Kustomizations rendered to manifests, as `kubectl kustomize DIR` does.
//
// The directory is under /packages or /workspace. Bases, overlays,
// components, patches, generators, images, namePrefix and commonLabels work
// as in kustomize, because the host runs the kustomize kubectl embeds. It
// refuses (a StepboxError of kind "forbidden", naming the file and field)
// paths that leave the step's filesystem, remote bases, helmCharts and
// plugins that run programs. Rendering changes nothing: apply the result
// with kube.apply, where every object passes the policy.
//
//   import { kustomize, log } from '@stepbox/sdk';
//   for (const a of kustomize.apply('/packages/overlays/prod')) log.info(a.kubectlName(), a.action);

import { call } from './error.js';
import { apply as kubeApply } from './kube.js';
import { kustomize as wit } from './wit.js';

/** Renders the kustomization in `dir`; returns multi-document YAML. */
export function build(dir) {
  return call(() => wit.build(dir));
}

/** Renders the kustomization in `dir` and applies the result in one kube.apply. */
export function apply(dir) {
  return kubeApply(build(dir));
}
