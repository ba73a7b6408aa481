/** Names an object kind: `{ apiVersion: 'apps/v1', kind: 'Deployment' }`. */
export interface KindRef {
  readonly apiVersion: string;
  readonly kind: string;
}

/** A Kubernetes object as plain JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** What a write did, in kubectl's words. */
export type Action = 'created' | 'configured' | 'unchanged' | 'deleted';

/** What to wait for. */
export type WaitCondition = 'rollout' | 'exists' | 'deleted' | { readonly condition: string };

export declare function kindRef(apiVersion: string, kind: string): KindRef;

/** The kinds steps use most. */
export declare const kinds: {
  readonly ConfigMap: KindRef;
  readonly Secret: KindRef;
  readonly Service: KindRef;
  readonly ServiceAccount: KindRef;
  readonly Pod: KindRef;
  readonly PersistentVolumeClaim: KindRef;
  readonly Deployment: KindRef;
  readonly StatefulSet: KindRef;
  readonly DaemonSet: KindRef;
  readonly ReplicaSet: KindRef;
  readonly Job: KindRef;
  readonly CronJob: KindRef;
  readonly Ingress: KindRef;
  readonly NetworkPolicy: KindRef;
  readonly HorizontalPodAutoscaler: KindRef;
  readonly PodDisruptionBudget: KindRef;
  readonly Role: KindRef;
  readonly RoleBinding: KindRef;
};

export declare const WaitFor: {
  /** A Deployment, StatefulSet or DaemonSet rolled out and ready; a Job completed. */
  readonly rollout: 'rollout';
  /** The object exists. */
  readonly exists: 'exists';
  /** The object no longer exists. */
  readonly deleted: 'deleted';
  /** `status.conditions` holds `name` with status "True". */
  condition(name: string): { readonly condition: string };
};

/** `deployment.apps/web`, `configmap/settings`. */
export declare function kubectlName(apiVersion: string, kind: string, name: string): string;

/** The result of an apply for one object. */
export declare class Applied {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly action: Action;
  readonly resourceVersion: string;
  /** `deployment.apps/web` */
  kubectlName(): string;
  /** `{ apiVersion, kind }` of the object. */
  kindRef(): KindRef;
}

/** Manifests for apply: YAML/JSON text, an object, or an array of them. */
export type Manifests = string | KubeObject | ReadonlyArray<string | KubeObject>;

/** Server-side apply; every document is checked before any is applied. */
export declare function apply(manifests: Manifests): Applied[];
/** Server-side apply of one object. */
export declare function applyObject(object: KubeObject): Applied;
/** Reads one object (throws "not-found" if missing). */
export declare function get<T extends KubeObject = KubeObject>(kind: KindRef, name: string): T;
/** The objects of a kind, sorted by name, optionally filtered by a label selector. */
export declare function list<T extends KubeObject = KubeObject>(kind: KindRef, labelSelector?: string): T[];
/** The sorted names of the objects of a kind matching a label selector. */
export declare function names(kind: KindRef, labelSelector?: string): string[];
/** JSON merge patch (RFC 7386) of one object; returns the patched object. */
export declare function patch<T extends KubeObject = KubeObject>(kind: KindRef, name: string, mergePatch: object | string): T;
/** Deletes one object; false if it did not exist. */
declare function remove(kind: KindRef, name: string): boolean;
export { remove as delete };
/** Waits until `waitFor` holds, or `timeoutSeconds` pass (then "timeout"). */
export declare function wait(kind: KindRef, name: string, waitFor: WaitCondition, timeoutSeconds: number): void;

/** Which log of a pod `logs` reads, as `kubectl logs` takes it. */
export interface LogOptions {
  /** The container (needed when the pod has several). */
  container?: string;
  /** Only the last lines. */
  tailLines?: number;
  /** Only lines newer than this many seconds. */
  sinceSeconds?: number;
  /** The previous instance of the container, after a restart. */
  previous?: boolean;
}
/** The log of a container of a pod, as text (`pods/log`, verb get). */
export declare function logs(pod: string, options?: LogOptions): string;
/** The Events about one object, oldest first (`events`, verb list). */
export declare function events(kind: KindRef, name: string): KubeObject[];
