/** YAML text of one or many documents to plain values (empty and null documents skipped). */
export declare function documents(text: string): unknown[];
/** One value as one YAML document. */
export declare function stringify(value: unknown): string;
