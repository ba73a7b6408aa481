// Kubernetes objects in the run's namespace.
//
// The namespace is never a parameter: it is the run's, and a manifest naming
// another namespace is refused. Every call is checked against the run's
// policy first; a refused call throws a StepboxError of kind "forbidden" and
// changes nothing. Objects are plain JavaScript objects (parsed JSON).

import { StepboxError, call } from './error.js';
import { kube as wit } from './wit.js';

/** Names an object kind: `{ apiVersion: 'apps/v1', kind: 'Deployment' }`. */
export function kindRef(apiVersion, kind) {
  return Object.freeze({ apiVersion, kind });
}

/** The kinds steps use most, for `kube.get(kinds.Deployment, 'web')`. */
export const kinds = Object.freeze({
  ConfigMap: kindRef('v1', 'ConfigMap'),
  Secret: kindRef('v1', 'Secret'),
  Service: kindRef('v1', 'Service'),
  ServiceAccount: kindRef('v1', 'ServiceAccount'),
  Pod: kindRef('v1', 'Pod'),
  PersistentVolumeClaim: kindRef('v1', 'PersistentVolumeClaim'),
  Deployment: kindRef('apps/v1', 'Deployment'),
  StatefulSet: kindRef('apps/v1', 'StatefulSet'),
  DaemonSet: kindRef('apps/v1', 'DaemonSet'),
  ReplicaSet: kindRef('apps/v1', 'ReplicaSet'),
  Job: kindRef('batch/v1', 'Job'),
  CronJob: kindRef('batch/v1', 'CronJob'),
  Ingress: kindRef('networking.k8s.io/v1', 'Ingress'),
  NetworkPolicy: kindRef('networking.k8s.io/v1', 'NetworkPolicy'),
  HorizontalPodAutoscaler: kindRef('autoscaling/v2', 'HorizontalPodAutoscaler'),
  PodDisruptionBudget: kindRef('policy/v1', 'PodDisruptionBudget'),
  Role: kindRef('rbac.authorization.k8s.io/v1', 'Role'),
  RoleBinding: kindRef('rbac.authorization.k8s.io/v1', 'RoleBinding'),
});

/** What to wait for: a string, or `WaitFor.condition(name)`. */
export const WaitFor = Object.freeze({
  /** A Deployment, StatefulSet or DaemonSet rolled out and ready; a Job completed. */
  rollout: 'rollout',
  /** The object exists. */
  exists: 'exists',
  /** The object no longer exists. */
  deleted: 'deleted',
  /** `status.conditions` holds `name` ("Available", "Ready", ...) with status "True". */
  condition: (name) => Object.freeze({ condition: name }),
});

function toWitKind(kind) {
  if (!kind || typeof kind.apiVersion !== 'string' || typeof kind.kind !== 'string') {
    throw StepboxError.invalid(
      `a kind is { apiVersion, kind } (e.g. kinds.Deployment), not ${JSON.stringify(kind)}`,
    );
  }
  return { apiVersion: kind.apiVersion, kind: kind.kind };
}

function toWitWaitFor(waitFor) {
  if (waitFor === 'rollout' || waitFor === 'exists' || waitFor === 'deleted') return { tag: waitFor };
  if (waitFor && typeof waitFor.condition === 'string') return { tag: 'condition', val: waitFor.condition };
  throw StepboxError.invalid(
    `wait for "rollout", "exists", "deleted" or WaitFor.condition(name), not ${JSON.stringify(waitFor)}`,
  );
}

/** Whole seconds, rounded up, within u32. */
function seconds(value) {
  const n = Math.ceil(Number(value));
  if (!Number.isFinite(n) || n < 0) throw StepboxError.invalid(`a timeout is a number of seconds, not ${value}`);
  return Math.min(n, 0xffffffff);
}

function parse(json) {
  try {
    return JSON.parse(json);
  } catch (e) {
    throw StepboxError.invalid(`the host sent JSON that does not parse: ${e.message}`);
  }
}

/** The object as kubectl names it: `deployment.apps/web`, `configmap/settings`. */
export function kubectlName(apiVersion, kind, name) {
  const slash = apiVersion.indexOf('/');
  const lower = kind.toLowerCase();
  return slash >= 0 ? `${lower}.${apiVersion.slice(0, slash)}/${name}` : `${lower}/${name}`;
}

/** The result of an apply for one object. */
export class Applied {
  constructor({ apiVersion, kind, name, action, resourceVersion }) {
    /** e.g. "apps/v1" */
    this.apiVersion = apiVersion;
    /** e.g. "Deployment" */
    this.kind = kind;
    this.name = name;
    /** "created", "configured" or "unchanged" (kubectl's words) */
    this.action = action;
    this.resourceVersion = resourceVersion;
  }

  /** `deployment.apps/web` */
  kubectlName() {
    return kubectlName(this.apiVersion, this.kind, this.name);
  }

  /** `{ apiVersion, kind }` of the object, for the other calls. */
  kindRef() {
    return kindRef(this.apiVersion, this.kind);
  }
}

function manifestText(manifests) {
  if (typeof manifests === 'string') return manifests;
  if (Array.isArray(manifests)) return manifests.map(manifestText).join('\n---\n');
  if (manifests && typeof manifests === 'object') return JSON.stringify(manifests);
  throw StepboxError.invalid('apply takes YAML/JSON text, an object or an array of objects');
}

/**
 * Server-side apply of manifests: YAML or JSON text (one or many documents
 * separated by `---`, or a `kind: List`), an object, or an array of objects
 * and texts. Every document is checked against the policy before any is
 * applied: one refused document means nothing is applied. Returns one
 * Applied per object, in order.
 */
export function apply(manifests) {
  const text = manifestText(manifests);
  return call(() => wit.apply(text)).map((o) => new Applied(o));
}

/** Server-side apply of one object; its Applied. */
export function applyObject(object) {
  const [applied] = apply(object);
  if (!applied) throw StepboxError.invalid(`apply of a ${object?.kind} returned no object`);
  return applied;
}

/** Reads one object. */
export function get(kind, name) {
  return parse(call(() => wit.get(toWitKind(kind), name)));
}

/**
 * Lists the objects of a kind, sorted by name, optionally filtered by a
 * label selector ("app=web,tier!=db", "env in (a,b)", "!legacy").
 */
export function list(kind, labelSelector) {
  return call(() => wit.list(toWitKind(kind), labelSelector ?? undefined)).map(parse);
}

/** The sorted names of the objects of a kind matching a label selector. */
export function names(kind, labelSelector) {
  return list(kind, labelSelector)
    .map((o) => o.metadata.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** JSON merge patch (RFC 7386), an object or JSON text, of one object. Returns the patched object. */
export function patch(kind, name, mergePatch) {
  const text = typeof mergePatch === 'string' ? mergePatch : JSON.stringify(mergePatch);
  return parse(call(() => wit.patch(toWitKind(kind), name, text)));
}

/** Deletes one object. Returns false if it did not exist. */
function remove(kind, name) {
  return call(() => wit.delete(toWitKind(kind), name));
}
export { remove as delete };

/**
 * Waits until `waitFor` holds for the object, or `timeoutSeconds` pass
 * (then a StepboxError of kind "timeout"). Seconds are rounded up.
 */
export function wait(kind, name, waitFor, timeoutSeconds) {
  call(() => wit.wait(toWitKind(kind), name, toWitWaitFor(waitFor), seconds(timeoutSeconds)));
}

function u32(value, what) {
  if (value === undefined || value === null) return 0;
  const n = Math.ceil(Number(value));
  if (!Number.isFinite(n) || n < 0) throw StepboxError.invalid(`${what} is a whole number, not ${value}`);
  return Math.min(n, 0xffffffff);
}

/**
 * The log of a container of pod `pod`, as text (policy: `get` on
 * `pods/log`), as `kubectl logs` reads it. Options: `container` (needed
 * when the pod has several), `tailLines`, `sinceSeconds`, `previous` (the
 * crashed instance before the last restart). On the embedded namespace,
 * which runs no containers, it is empty unless the pod's
 * `logs.stepbox.dev/CONTAINER` annotation seeds it.
 */
export function logs(pod, options = {}) {
  const { container, tailLines, sinceSeconds, previous } = options ?? {};
  return call(() =>
    wit.logs(pod, {
      container: container ?? '',
      tailLines: u32(tailLines, 'tailLines'),
      sinceSeconds: u32(sinceSeconds, 'sinceSeconds'),
      previous: Boolean(previous),
    }),
  );
}

/**
 * The Events about one object, oldest first (policy: `list` on `events`):
 * what `kubectl describe` shows at its end. Plain objects (core/v1 Event).
 */
export function events(kind, name) {
  return call(() => wit.events(toWitKind(kind), name)).map(parse);
}
