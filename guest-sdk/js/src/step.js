// Calls a step's `run` for the world's `run` export.

import { describe } from './error.js';

/**
 * Runs `stepRun(ctx)` (sync or async) with the run's context, a frozen
 * `{ namespace, stepName, runId, dryRun }`, and returns the export's
 * result: ok, or the error's text (`String(err)` of a StepboxError, e.g.
 * "forbidden: ...", else the error's message) that fails the run.
 */
export async function runStep(witContext, stepRun) {
  const ctx = Object.freeze({
    namespace: witContext.namespace,
    stepName: witContext.stepName,
    runId: witContext.runId,
    dryRun: witContext.dryRun,
  });
  try {
    await stepRun(ctx);
    return { tag: 'ok', val: undefined };
  } catch (e) {
    return { tag: 'err', val: describe(e) };
  }
}
