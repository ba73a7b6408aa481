/** The value of input `name`, or undefined if it was not given. */
export declare function input(name: string): string | undefined;
/** The value of input `name`; throws an "invalid" StepboxError naming it if it was not given. */
export declare function requireInput(name: string): string;
/** Every input as { name: value }, in name order. */
export declare function inputs(): Record<string, string>;
/** The value of secret `name` (masked by the host wherever it appears), or undefined. */
export declare function secret(name: string): string | undefined;
/** The value of secret `name`; throws an "invalid" StepboxError naming it if it was not given. */
export declare function requireSecret(name: string): string;
/** Input `name` as a boolean (true/false, yes/no, 1/0); `defaultValue` when not given. */
export declare function boolInput(name: string, defaultValue: boolean): boolean;
export declare function boolInput(name: string): boolean | undefined;
/** Input `name` as a whole number (0 or more); `defaultValue` when not given. */
export declare function intInput(name: string, defaultValue: number): number;
export declare function intInput(name: string): number | undefined;
/** Sets output `name`: strings as they are, anything else as JSON. */
export declare function setOutput(name: string, value: unknown): void;
/** Sets an output the report shows masked. */
export declare function setSensitiveOutput(name: string, value: unknown): void;
/** Reports progress (0-100, clamped, rounded down) with a short message. */
export declare function progress(percent: number, message?: string): void;
/** Publishes the file at `path` (under /workspace) as the artifact `name`. */
export declare function artifact(name: string, path: string): void;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** The run log: one line per call; arguments joined with spaces, objects as JSON. */
export declare const log: {
  write(level: LogLevel, ...args: unknown[]): void;
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};
