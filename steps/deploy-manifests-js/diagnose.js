// Why a rollout failed, for the run's log: what `kubectl describe` and a
// look at the pods would tell (the JavaScript twin of
// ../deploy-manifests/src/diagnose.rs, line for line the same log). For a
// workload that did not roll out:
//
// - its conditions (type, status, reason, message);
// - its Events, and those of its ReplicaSets and Pods;
// - each Pod's containers that are not ready (waiting, terminated,
//   restarted) and the last lines of their logs (the previous instance's
//   too, after a restart).
//
// Every read is a kube call the policy decides; one refused or failing is
// noted in the log and the rest goes on: a diagnosis never hides the
// failure it explains.

import { StepboxError, kinds, kube, log } from '@stepbox/sdk';

/** Log lines shown per failing container. */
const TAIL_LINES = 20;

/** Pods looked at per workload. */
const MAX_PODS = 5;

/**
 * Logs what explains why `workload` (an Applied) did not roll out; returns
 * a one-line summary for the run's error: its first condition that is
 * "False" and the first failing container found, when there are such
 * (else undefined).
 */
export function rollout(workload) {
  const name = workload.kubectlName();
  log.warn(`${name} did not roll out; what the cluster says:`);
  const object = attempt(() => kube.get(workload.kindRef(), workload.name), `read ${name}`);
  if (object === undefined) return undefined;
  let summary;
  for (const c of items(object, 'status', 'conditions')) {
    const field = (f) => text(c?.[f]);
    log.warn(`  condition ${field('type')}=${field('status')} ${field('reason')}: ${field('message')}`);
    if (field('status') === 'False' && summary === undefined) {
      summary = `${field('type')} ${field('reason')}: ${field('message')}`;
    }
  }
  events(workload.kindRef(), workload.name, name);
  const labels = selector(object);
  if (labels === undefined) return summary;
  if (workload.kind === 'Deployment') {
    for (const rs of list(kinds.ReplicaSet, labels)) {
      const rsName = nameOf(rs);
      if (ownedBy(rs, workload.name)) events(kinds.ReplicaSet, rsName, `replicaset.apps/${rsName}`);
    }
  }
  let container;
  for (const p of list(kinds.Pod, labels).slice(0, MAX_PODS)) {
    const why = pod(p);
    if (container === undefined) container = why;
  }
  if (summary !== undefined && container !== undefined) return `${summary}; ${container}`;
  return summary ?? container;
}

/**
 * Logs a pod's Events and its failing containers with their last lines;
 * returns why its first failing container fails.
 */
function pod(p) {
  const podName = nameOf(p);
  const shown = `pod/${podName}`;
  const phase = typeof p?.status?.phase === 'string' ? p.status.phase : '?';
  log.warn(`  ${shown} is ${phase}`);
  events(kinds.Pod, podName, shown);
  let first;
  for (const status of items(p, 'status', 'containerStatuses')) {
    const container = text(status?.name);
    const ready = typeof status?.ready === 'boolean' ? status.ready : false;
    const restarts = Number.isInteger(status?.restartCount) && status.restartCount >= 0 ? status.restartCount : 0;
    if (ready && restarts === 0) continue;
    const state = stateOf(status);
    log.warn(`  ${shown} container ${container}: ${state}, ${restarts} restarts`);
    first ??= `container ${container} of ${shown}: ${state}`;
    const options = { container, tailLines: TAIL_LINES, previous: restarts > 0 };
    const logText = attempt(() => kube.logs(podName, options), `read the log of ${shown} container ${container}`);
    if (logText === undefined) continue;
    if (logText.trim() === '') {
      log.warn(`  ${shown} container ${container}: no log lines`);
    } else {
      log.warn(`  last lines of ${shown} container ${container}:`);
      for (const line of lines(logText)) log.warn(`    ${line}`);
    }
  }
  return first;
}

/** A container's state as `waiting CrashLoopBackOff back-off ...`; "" when it has none. */
function stateOf(status) {
  const state = status?.state;
  if (!isObject(state)) return '';
  const entry = Object.entries(state)[0];
  if (entry === undefined) return '';
  const [which, detail] = entry;
  return `${which} ${text(detail?.reason)} ${text(detail?.message)}`.trim();
}

/** Logs the Events about one object. */
function events(kind, name, shown) {
  const found = attempt(() => kube.events(kind, name), `read the events of ${shown}`);
  for (const e of found ?? []) {
    const field = (f) => text(e?.[f]);
    const count = Number.isInteger(e?.count) && e.count >= 0 ? e.count : 1;
    log.warn(`  event ${shown}: ${field('type')} ${field('reason')} (x${count}): ${field('message')}`);
  }
}

/** The workload's pod selector as a label selector string. */
function selector(object) {
  const labels = object?.spec?.selector?.matchLabels;
  if (!isObject(labels)) return undefined;
  const parts = Object.entries(labels)
    .filter(([, v]) => typeof v === 'string')
    .map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? parts.join(',') : undefined;
}

function list(kind, labels) {
  return attempt(() => kube.list(kind, labels), `list ${kind.apiVersion} ${kind.kind} with ${labels}`) ?? [];
}

/**
 * `f()`, or undefined when the host refuses or fails it (logged as
 * "cannot WHAT: why"). Other errors are the step's bugs and propagate.
 */
function attempt(f, what) {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof StepboxError)) throw e;
    log.warn(`  cannot ${what}: ${e}`);
    return undefined;
  }
}

/** The lines of a text as Rust's `str::lines` gives them. */
function lines(s) {
  const all = s.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function items(v, ...path) {
  const found = path.reduce((at, key) => (isObject(at) ? at[key] : undefined), v);
  return Array.isArray(found) ? found : [];
}

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v) {
  return typeof v === 'string' ? v : '';
}

function nameOf(v) {
  return text(v?.metadata?.name);
}

function ownedBy(v, owner) {
  return items(v, 'metadata', 'ownerReferences').some((o) => o?.name === owner);
}
