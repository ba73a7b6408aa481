import type { Action } from './kube.js';

/** The state of a release revision, as helm names it. */
export type ReleaseStatus =
  | 'unknown'
  | 'deployed'
  | 'uninstalled'
  | 'superseded'
  | 'failed'
  | 'uninstalling'
  | 'pending-install'
  | 'pending-upgrade'
  | 'pending-rollback';

/** One revision of a release. */
export interface Release {
  name: string;
  namespace: string;
  revision: number;
  status: ReleaseStatus;
  chartName: string;
  chartVersion: string;
  appVersion: string;
  description: string;
  /** RFC 3339, empty if unknown. */
  updated: string;
}

export declare class Touched {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly action: Action;
  /** A hook (helm.sh/hook), not part of the release's manifest. */
  readonly hook: boolean;
  kubectlName(): string;
}

export declare class ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  kubectlName(): string;
}

export declare class ReleaseResult {
  readonly release: Release;
  readonly objects: Touched[];
  /** The chart's rendered NOTES.txt ("" if none). */
  readonly notes: string;
  withAction(action: Action): Touched[];
}

export interface ReleaseDetails {
  release: Release;
  objects: ObjectRef[];
  notes: string;
}

/** helm values: YAML text or an object. */
export type Values = string | Record<string, unknown> | undefined;

export interface UpgradeOptions {
  /** Wait until every object is ready. Default false. */
  wait?: boolean;
  /** Time for each Kubernetes operation, in seconds; default helm's 5 minutes. */
  timeoutSeconds?: number;
  /** Roll back on failure (implies wait). Default false. */
  atomic?: boolean;
}

export interface WaitOptions {
  wait?: boolean;
  timeoutSeconds?: number;
}

export declare function upgradeOrInstall(releaseName: string, chart: string, values?: Values, options?: UpgradeOptions): ReleaseResult;
export declare function uninstall(releaseName: string, options?: WaitOptions): ReleaseResult;
/** Rolls back to `revision` (undefined: the previous one). */
export declare function rollback(releaseName: string, revision?: number, options?: WaitOptions): ReleaseResult;
export declare function status(releaseName: string): ReleaseDetails;
export declare function list(): Release[];
export declare function history(releaseName: string): Release[];
export declare function template(releaseName: string, chart: string, values?: Values): string;
