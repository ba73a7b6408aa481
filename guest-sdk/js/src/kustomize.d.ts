import type { Applied } from './kube.js';

/** Renders the kustomization in `dir` (under /packages or /workspace); multi-document YAML. */
export declare function build(dir: string): string;
/** Renders the kustomization in `dir` and applies the result (every object checked before any is applied). */
export declare function apply(dir: string): Applied[];
