// Helm releases in the run's namespace, from charts in the step's own
// filesystem (a chart directory or a packaged .tgz under /packages or
// /workspace).
//
// Before anything is installed the host renders the chart and checks every
// object and hook against the run's policy; one refused object means nothing
// is installed and the call throws a StepboxError of kind "forbidden"
// naming each one. Values are YAML text or an object; they are never logged.

import { StepboxError, call } from './error.js';
import { kubectlName } from './kube.js';
import { helm as wit } from './wit.js';

/** One object a release call touched. */
export class Touched {
  constructor({ apiVersion, kind, name, action, hook }) {
    this.apiVersion = apiVersion;
    this.kind = kind;
    this.name = name;
    /** "created", "configured", "unchanged" or "deleted" */
    this.action = action;
    /** It is a hook (helm.sh/hook), not part of the release's manifest. */
    this.hook = hook;
  }

  kubectlName() {
    return kubectlName(this.apiVersion, this.kind, this.name);
  }
}

/** Names one object of a release. */
export class ObjectRef {
  constructor({ apiVersion, kind, name }) {
    this.apiVersion = apiVersion;
    this.kind = kind;
    this.name = name;
  }

  kubectlName() {
    return kubectlName(this.apiVersion, this.kind, this.name);
  }
}

/** A release revision as a plain object (status is helm's word, e.g. "deployed"). */
function release(r) {
  return {
    name: r.name,
    namespace: r.namespace,
    revision: r.revision,
    status: r.status,
    chartName: r.chartName,
    chartVersion: r.chartVersion,
    appVersion: r.appVersion,
    description: r.description,
    updated: r.updated,
  };
}

/** The result of upgradeOrInstall, rollback and uninstall. */
export class ReleaseResult {
  constructor(r) {
    /** The release after the call. */
    this.release = release(r.release);
    /** Every object the call created, changed or deleted, and those it left unchanged. */
    this.objects = r.objects.map((o) => new Touched(o));
    /** The chart's rendered NOTES.txt ("" if none). */
    this.notes = r.notes;
  }

  /** The objects with one action. */
  withAction(action) {
    return this.objects.filter((o) => o.action === action);
  }
}

/** Seconds for the host: 0 (helm's default, 5 minutes) when not given, else at least 1. */
function seconds(timeoutSeconds) {
  if (timeoutSeconds === undefined || timeoutSeconds === null) return 0;
  const n = Math.ceil(Number(timeoutSeconds));
  if (!Number.isFinite(n) || n < 0) throw StepboxError.invalid(`a timeout is a number of seconds, not ${timeoutSeconds}`);
  return Math.max(1, Math.min(n, 0xffffffff));
}

function valuesText(values) {
  if (values === undefined || values === null) return '';
  if (typeof values === 'string') return values;
  if (typeof values === 'object' && !Array.isArray(values)) return JSON.stringify(values);
  throw StepboxError.invalid('helm values are YAML text or an object');
}

/**
 * Installs `chart` as release `releaseName`, or upgrades the release if it
 * exists. Options: `wait` (until every object is ready), `timeoutSeconds`
 * (each Kubernetes operation; default helm's 5 minutes), `atomic` (roll back
 * on failure; implies wait).
 */
export function upgradeOrInstall(releaseName, chart, values, { wait = false, timeoutSeconds, atomic = false } = {}) {
  const options = { wait, timeoutSeconds: seconds(timeoutSeconds), atomic };
  return new ReleaseResult(call(() => wit.upgradeOrInstall(releaseName, chart, valuesText(values), options)));
}

/** Removes the release and every object it created. */
export function uninstall(releaseName, { wait = false, timeoutSeconds } = {}) {
  return new ReleaseResult(call(() => wit.uninstall(releaseName, { wait, timeoutSeconds: seconds(timeoutSeconds) })));
}

/** Rolls back to `revision` (undefined: the previous one). This makes a new revision. */
export function rollback(releaseName, revision, { wait = false, timeoutSeconds } = {}) {
  return new ReleaseResult(
    call(() => wit.rollback(releaseName, revision ?? 0, { wait, timeoutSeconds: seconds(timeoutSeconds) })),
  );
}

/** The current revision of a release and its objects; "not-found" if there is none. */
export function status(releaseName) {
  const d = call(() => wit.status(releaseName));
  return { release: release(d.release), objects: d.objects.map((o) => new ObjectRef(o)), notes: d.notes };
}

/** The releases in the run's namespace, sorted by name. */
export function list() {
  return call(() => wit.list()).map(release);
}

/** Every revision of a release, oldest first. */
export function history(releaseName) {
  return call(() => wit.history(releaseName)).map(release);
}

/** Renders the chart without installing anything: multi-document YAML (CRDs and hooks included). */
export function template(releaseName, chart, values) {
  return call(() => wit.template(releaseName, chart, valuesText(values)));
}
