// The component's entry module: `build.mjs` bundles this file, with
// `__stepbox_step__` aliased to the step's own entry module, and
// componentize-js wires its `run` export to the world's `run`.

import * as step from '__stepbox_step__';
import { runStep } from './step.js';

export function run(ctx) {
  if (typeof step.run !== 'function') {
    return { tag: 'err', val: 'the step module does not export a function `run(ctx)`' };
  }
  return runStep(ctx, step.run);
}
