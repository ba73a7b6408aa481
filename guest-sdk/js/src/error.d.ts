/** The WIT error cases ("forbidden", "not-found", ...), plus "step" for a step's own failures. */
export type ErrorKindName =
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'invalid'
  | 'timeout'
  | 'unavailable'
  | 'limit-exceeded'
  | 'step';

export declare const ErrorKind: {
  readonly FORBIDDEN: 'forbidden';
  readonly NOT_FOUND: 'not-found';
  readonly CONFLICT: 'conflict';
  readonly INVALID: 'invalid';
  readonly TIMEOUT: 'timeout';
  readonly UNAVAILABLE: 'unavailable';
  readonly LIMIT_EXCEEDED: 'limit-exceeded';
  readonly STEP: 'step';
};

/**
 * Why a call (or the step) failed. `String(err)` is "<kind>: <message>",
 * or the bare message for kind "step": the text a run fails with.
 */
export declare class StepboxError extends Error {
  constructor(kind: ErrorKindName, message: string, options?: { cause?: unknown });
  readonly name: 'StepboxError';
  /** The WIT error case, or "step". */
  readonly kind: ErrorKindName;
  /** A failure of the step itself. */
  static step(message: string): StepboxError;
  /** A malformed request or input value. */
  static invalid(message: string): StepboxError;
  /** The same error with `context` put before its message; the kind is kept. */
  withContext(context: string): StepboxError;
  readonly isForbidden: boolean;
  readonly isNotFound: boolean;
  readonly isConflict: boolean;
  readonly isInvalid: boolean;
  readonly isTimeout: boolean;
  readonly isUnavailable: boolean;
  readonly isLimitExceeded: boolean;
  readonly isStep: boolean;
  toString(): string;
}

/** Adds context to any error: a StepboxError keeps its kind, anything else becomes kind "step". */
export declare function withContext(error: unknown, context: string): StepboxError;
