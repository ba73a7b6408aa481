/**
 * Replaces every `#{Name}` with the value of input `Name` (`##{Name}` is a
 * literal `#{Name}`); unknown names throw one "invalid" StepboxError listing them.
 */
export declare function substitute(template: string, inputs: Record<string, string> | Map<string, string>): string;
