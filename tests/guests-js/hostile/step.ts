// The hostile cases that apply to any guest, for a JavaScript engine in a
// component (written in TypeScript, so the TS build path is covered too).
// The input `case` picks one:
//
// - other-namespace: applies a ConfigMap into kube-system and catches the
//   refusal; outputs `outcome` (the error kind, or "ok") and `message`.
// - other-namespace-uncaught: the same without catching: the run fails.
// - secret-echo: puts the secret `token` in the log, stdout, stderr, an
//   output, a sensitive output and finally the run's error.
// - infinite-loop: spins without calling the host.
// - memory-bomb: allocates 1 MiB buffers, touching every page, forever.
// - fs-outside: reads and writes outside /packages and /workspace; outputs
//   one "allowed"/"<kind>: <message>" per attempt.

import { StepboxError, fs, log, requireInput, requireSecret, setOutput, setSensitiveOutput, kube } from '@stepbox/sdk';
import type { Context } from '@stepbox/sdk';

export function run(ctx: Context): void {
  const which = requireInput('case');
  switch (which) {
    case 'other-namespace':
      return report(() =>
        kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sneaky', namespace: 'kube-system' }, data: { a: 'b' } }),
      );
    case 'other-namespace-uncaught':
      kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sneaky', namespace: 'kube-system' }, data: { a: 'b' } });
      return;
    case 'secret-echo': {
      const token = requireSecret('token');
      log.info(`the token is ${token}`);
      console.log(`stdout: the token is ${token}`);
      console.error(`stderr: the token is ${token}`);
      setOutput('leak', token);
      setSensitiveOutput('token', token);
      throw StepboxError.step(`failing on purpose with the token ${token} in the message`);
    }
    case 'infinite-loop': {
      let n = 0;
      for (;;) n = (n + 1) | 0;
    }
    case 'memory-bomb': {
      const chunks: Uint8Array[] = [];
      for (;;) {
        const chunk = new Uint8Array(1 << 20);
        for (let i = 0; i < chunk.length; i += 4096) chunk[i] = 1;
        chunks.push(chunk);
        if (chunks.length % 64 === 0) log.info(`${chunks.length} MiB allocated`);
      }
    }
    case 'fs-outside': {
      attempt('etc-passwd', () => fs.readText('/etc/passwd'));
      attempt('dotdot', () => fs.readText('/workspace/../../etc/passwd'));
      attempt('packages-dotdot', () => fs.readDir('/packages/..'));
      attempt('packages-write', () => fs.writeText('/packages/x', 'x'));
      attempt('workspace-write', () => fs.writeText('/workspace/ok.txt', 'written'));
      setOutput('namespace', ctx.namespace);
      return;
    }
    default:
      throw StepboxError.invalid(`unknown case ${JSON.stringify(which)}`);
  }
}

function report(f: () => unknown): void {
  try {
    f();
    setOutput('outcome', 'ok');
    setOutput('message', '');
  } catch (e) {
    if (!(e instanceof StepboxError)) throw e;
    setOutput('outcome', e.kind);
    setOutput('message', e.message);
  }
}

function attempt(name: string, f: () => unknown): void {
  try {
    f();
    setOutput(name, 'allowed');
  } catch (e) {
    setOutput(name, e instanceof StepboxError ? `${e.kind}: ${e.message}` : `error: ${String(e)}`);
  }
}
