// The step's own inputs and results: inputs, secrets, outputs, log,
// progress and artifacts.

import { StepboxError, call } from './error.js';
import { run as wit } from './wit.js';

/** The value of input `name`, or undefined if it was not given. */
export function input(name) {
  return wit.input(name) ?? undefined;
}

/** The value of input `name`; an "invalid" StepboxError naming it if it was not given. */
export function requireInput(name) {
  const value = input(name);
  if (value === undefined) {
    throw StepboxError.invalid(`missing required input \`${name}\`: pass --input ${name}=...`);
  }
  return value;
}

/** Every input as a plain object { name: value }, in name order. */
export function inputs() {
  return Object.fromEntries(wit.inputs());
}

/**
 * The value of secret `name`, or undefined. The host masks it (********)
 * wherever it appears, but do not log it yourself.
 */
export function secret(name) {
  return wit.secret(name) ?? undefined;
}

/** The value of secret `name`; an "invalid" StepboxError naming it if it was not given. */
export function requireSecret(name) {
  const value = secret(name);
  if (value === undefined) {
    throw StepboxError.invalid(`missing secret \`${name}\`: pass --secret ${name}=...`);
  }
  return value;
}

/**
 * Input `name` as a boolean: true/false, yes/no, 1/0 in any case;
 * `defaultValue` when not given. Any other value is an "invalid" error.
 */
export function boolInput(name, defaultValue) {
  const value = input(name);
  return value === undefined ? defaultValue : parseBoolValue(name, value);
}

/**
 * Input `name` as a whole number (0 or more); `defaultValue` when not
 * given. Any other value is an "invalid" error.
 */
export function intInput(name, defaultValue) {
  const value = input(name);
  return value === undefined ? defaultValue : parseIntValue(name, value);
}

function parseBoolValue(name, value) {
  switch (value.trim().toLowerCase()) {
    case 'true': case 'yes': case '1': return true;
    case 'false': case 'no': case '0': return false;
    default:
      throw StepboxError.invalid(
        `input \`${name}\` must be true or false (or yes/no, 1/0), not ${JSON.stringify(value)}`,
      );
  }
}

const U64_MAX = 18446744073709551615n;

function parseIntValue(name, value) {
  const trimmed = value.trim();
  if (/^\+?[0-9]+$/.test(trimmed) && BigInt(trimmed) <= U64_MAX) {
    const n = Number(trimmed);
    if (Number.isSafeInteger(n)) return n;
  }
  throw StepboxError.invalid(
    `input \`${name}\` must be a whole number (0 or more), not ${JSON.stringify(value)}`,
  );
}

function text(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Sets output `name` (a later call replaces it). Strings are kept as they
 * are; anything else is written as JSON. A "limit-exceeded" error when the
 * run's output bytes are used up.
 */
export function setOutput(name, value) {
  call(() => wit.setOutput(name, text(value), false));
}

/** Sets a sensitive output: the run's report shows it masked. */
export function setSensitiveOutput(name, value) {
  call(() => wit.setOutput(name, text(value), true));
}

/** Reports progress (0-100, clamped and rounded down) with a short message. */
export function progress(percent, message = '') {
  const p = Math.max(0, Math.min(100, Math.trunc(Number(percent) || 0)));
  wit.progress(p, message);
}

/** Publishes the file at `path` (under /workspace) as the artifact `name`. */
export function artifact(name, path) {
  call(() => wit.artifact(name, path));
}

function format(args) {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return String(a);
      if (a === undefined || typeof a === 'function' || typeof a === 'symbol') return String(a);
      try {
        return JSON.stringify(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

/**
 * The run log. Each call writes one line; several arguments are joined with
 * spaces, objects written as JSON: `log.info('applied', n, 'objects')`.
 */
export const log = Object.freeze({
  /** Writes a line at `level` ("trace", "debug", "info", "warn", "error"). */
  write(level, ...args) {
    wit.log(level, format(args));
  },
  trace: (...args) => wit.log('trace', format(args)),
  debug: (...args) => wit.log('debug', format(args)),
  info: (...args) => wit.log('info', format(args)),
  warn: (...args) => wit.log('warn', format(args)),
  error: (...args) => wit.log('error', format(args)),
});
