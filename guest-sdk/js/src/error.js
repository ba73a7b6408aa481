// The one error type of every SDK call.

/** The WIT error cases, plus "step" for a step's own failures. */
export const ErrorKind = Object.freeze({
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not-found',
  CONFLICT: 'conflict',
  INVALID: 'invalid',
  TIMEOUT: 'timeout',
  UNAVAILABLE: 'unavailable',
  LIMIT_EXCEEDED: 'limit-exceeded',
  STEP: 'step',
});

const KINDS = new Set(Object.values(ErrorKind));

/**
 * Why a call (or the step) failed. `kind` is the WIT error case
 * ("forbidden", "not-found", ...) or "step" for the step's own failure;
 * `message` is the host's message, secrets already masked.
 *
 * `String(err)` is "<kind>: <message>" (e.g. "forbidden: ClusterRole is
 * cluster-scoped"), or the bare message for kind "step": that is the text a
 * run fails with when the error leaves `run`.
 */
export class StepboxError extends Error {
  constructor(kind, message, options) {
    super(message, options);
    if (!KINDS.has(kind)) throw new TypeError(`unknown error kind ${JSON.stringify(kind)}`);
    this.name = 'StepboxError';
    this.kind = kind;
  }

  /** A failure of the step itself. */
  static step(message) {
    return new StepboxError('step', message);
  }

  /** A malformed request or input value. */
  static invalid(message) {
    return new StepboxError('invalid', message);
  }

  /** The same error with `context` put before its message; the kind is kept. */
  withContext(context) {
    return new StepboxError(this.kind, `${context}: ${this.message}`, { cause: this });
  }

  get isForbidden() { return this.kind === 'forbidden'; }
  get isNotFound() { return this.kind === 'not-found'; }
  get isConflict() { return this.kind === 'conflict'; }
  get isInvalid() { return this.kind === 'invalid'; }
  get isTimeout() { return this.kind === 'timeout'; }
  get isUnavailable() { return this.kind === 'unavailable'; }
  get isLimitExceeded() { return this.kind === 'limit-exceeded'; }
  get isStep() { return this.kind === 'step'; }

  toString() {
    return this.kind === 'step' ? this.message : `${this.kind}: ${this.message}`;
  }
}

/**
 * Calls a WIT import, turning its `error` value (thrown by the bindings as
 * an error whose `payload` is `{ tag, val }`) into a StepboxError.
 */
export function call(f) {
  try {
    return f();
  } catch (e) {
    const payload = e?.payload;
    if (payload && typeof payload === 'object' && KINDS.has(payload.tag)) {
      throw new StepboxError(payload.tag, String(payload.val));
    }
    throw e;
  }
}

/**
 * Adds context to any error, keeping its kind: a StepboxError keeps its
 * kind, anything else becomes kind "step".
 */
export function withContext(error, context) {
  if (error instanceof StepboxError) return error.withContext(context);
  return new StepboxError('step', `${context}: ${describe(error)}`, { cause: error });
}

/** The text a run fails with for an error that left `run`. */
export function describe(error) {
  if (error instanceof StepboxError) return error.toString();
  if (error instanceof Error) {
    return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  }
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
