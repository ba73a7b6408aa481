// The JavaScript twin of tests/guests/observe: a container's log (inputs
// pod, container, tail, previous), the Events about an object (api-version,
// kind, name) and a kustomization rendered (kustomization), as the outputs
// log, events and rendered.

import { boolInput, input, intInput, kindRef, kube, kustomize, setOutput } from '@stepbox/sdk';

export function run() {
  const pod = input('pod');
  if (pod !== undefined) {
    const tail = intInput('tail', 0);
    setOutput(
      'log',
      kube.logs(pod, {
        container: input('container'),
        tailLines: tail > 0 ? tail : undefined,
        previous: boolInput('previous', false),
      }),
    );
  }
  const name = input('name');
  if (name !== undefined) {
    const kind = kindRef(input('api-version') ?? 'v1', input('kind'));
    const lines = kube.events(kind, name).map((e) => `${e.type ?? ''} ${e.reason ?? ''}: ${e.message ?? ''}`);
    setOutput('events', lines.join('\n'));
  }
  const dir = input('kustomization');
  if (dir !== undefined) setOutput('rendered', kustomize.build(dir));
}
