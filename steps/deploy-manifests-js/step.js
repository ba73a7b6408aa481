// deploy-manifests, in JavaScript: applies every manifest of a package, the
// way `kubectl apply -f DIR -R` followed by `kubectl rollout status` would,
// but inside the run's namespace and policy. The same inputs, outputs, log
// and plan as the Rust step in ../deploy-manifests.
//
// 1. Reads the package: a kustomization (input `kustomization`, a
//    directory of the package, or the package itself when it holds a
//    `kustomization.yaml`) rendered by the host's kustomize, else every
//    .yaml, .yml and .json file under /packages (recursively, sorted by
//    path, hidden files and directories skipped).
// 2. Replaces #{Name} placeholders with the run's inputs; unknown names
//    fail the run, listed per file.
// 3. Parses every document of every file before anything is applied.
// 4. Applies them all in one call, so the host checks every object against
//    the policy before it applies any. With prune=true the objects carry
//    the inventory's label and the inventory is applied with them.
// 5. With prune=true, deletes what the inventory's last run applied and
//    the package no longer holds (./prune.js).
// 6. Unless wait=false, waits for every applied Deployment, StatefulSet,
//    DaemonSet and Job to roll out (complete, for a Job); when one does
//    not, logs why (./diagnose.js).

import {
  StepboxError,
  artifact,
  boolInput,
  fs,
  input,
  inputs as allInputs,
  intInput,
  kube,
  kustomize,
  log,
  progress,
  setOutput,
  substitute,
  withContext,
  yaml,
} from '@stepbox/sdk';

import * as diagnose from './diagnose.js';
import { Inventory, inventoryId, union } from './prune.js';

const PACKAGES = '/packages';
const APPLIED_FILE = '/workspace/applied.json';

export function run(ctx) {
  const wait = boolInput('wait', true);
  const timeout = intInput('timeout', 300);
  const prune = boolInput('prune', false);
  const inputs = allInputs();

  progress(0, 'reading manifests');
  const dir = kustomization(PACKAGES);
  let files;
  let documents;
  if (dir !== undefined) {
    log.info(`rendering the kustomization ${dir}`);
    [files, documents] = [1, rendered(dir, inputs)];
  } else {
    ({ files, documents } = load(PACKAGES, inputs));
  }
  if (documents.length === 0) {
    throw StepboxError.step(`no manifests found under ${PACKAGES}; pass --package DIR`);
  }
  log.debug(`${documents.length} documents in ${files} files`);
  progress(20, `applying ${documents.length} objects`);

  let inventory;
  if (prune) {
    inventory = Inventory.load(inventoryId(ctx.stepName, input('inventory') ?? 'default'));
    inventory.label(documents);
  }
  const members = Inventory.members(documents);
  const manifests = [...documents];
  if (inventory) {
    // Listing the old objects too until they are pruned: a run that fails
    // half-way leaves nothing it made out of the inventory.
    manifests.push(inventory.configMap(union(members, inventory.previous)));
  }
  const applied = kube.apply(manifests);
  if (inventory) {
    // The inventory itself is bookkeeping, not one of the package's.
    applied.pop();
  }
  for (const object of applied) {
    log.info(`${object.kubectlName()} ${object.action}`);
  }
  progress(50, `applied ${applied.length} objects`);

  if (inventory) {
    const gone = inventory.gone(members);
    const deleted = inventory.prune(gone);
    if (gone.length > 0) {
      try {
        kube.apply(inventory.configMap(members));
      } catch (e) {
        throw withContext(e, 'writing the inventory');
      }
    }
    setOutput('pruned', String(deleted.length));
  }

  if (wait) {
    const workloads = applied.filter(isWorkload);
    workloads.forEach((workload, i) => {
      const name = workload.kubectlName();
      const [waiting, done] = workload.kind === 'Job' ? ['complete', 'completed'] : ['roll out', 'rolled out'];
      log.info(`waiting for ${name} to ${waiting} (timeout ${timeout}s)`);
      try {
        kube.wait(workload.kindRef(), workload.name, 'rollout', timeout);
      } catch (e) {
        const why = diagnose.rollout(workload);
        const said = why === undefined ? '' : ` (${why}; the log has its conditions, events and container logs)`;
        throw withContext(e, `waiting for ${name}${said}`);
      }
      progress(50 + Math.floor((45 * (i + 1)) / workloads.length), `${name} ${done}`);
    });
  }

  const objects = applied.map((a) => ({ apiVersion: a.apiVersion, kind: a.kind, name: a.name, action: a.action }));
  setOutput('applied', String(applied.length));
  setOutput('objects', JSON.stringify(objects));
  publish(objects);
  progress(100, 'done');
}

/** Reads, substitutes and parses every manifest under `root`. */
export function load(root, inputs) {
  const files = manifestFiles(root);
  const texts = [];
  const unknown = [];
  for (const file of files) {
    const name = displayName(root, file);
    let text;
    try {
      text = fs.readText(file);
    } catch (e) {
      throw withContext(e, `reading ${name}`);
    }
    try {
      texts.push([name, substitute(text, inputs)]);
    } catch (e) {
      if (e instanceof StepboxError && e.isInvalid) unknown.push(`${name}: ${e.message}`);
      else throw withContext(e, name);
    }
  }
  if (unknown.length > 0) throw StepboxError.invalid(unknown.join('; '));

  const documents = [];
  for (const [name, text] of texts) {
    try {
      documents.push(...(name.toLowerCase().endsWith('.json') ? jsonDocuments(text) : yaml.documents(text)));
    } catch (e) {
      throw withContext(e, name);
    }
  }
  return { files: files.length, documents };
}

/**
 * The kustomization to render: input `kustomization` (a directory of the
 * package), else the package itself when it holds one; undefined for plain
 * manifests.
 */
function kustomization(root) {
  const dir = input('kustomization');
  if (dir) {
    const trimmed = dir.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    return trimmed.startsWith('/') ? trimmed : `${root}/${trimmed}`;
  }
  const holdsOne = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].some((f) => isFile(`${root}/${f}`));
  return holdsOne ? root : undefined;
}

/** The documents a kustomization renders, with #{Name} placeholders filled. */
function rendered(dir, inputs) {
  const text = kustomize.build(dir);
  try {
    return yaml.documents(substitute(text, inputs));
  } catch (e) {
    throw withContext(e, `kustomization ${dir}`);
  }
}

function isFile(path) {
  return fs.exists(path) && fs.stat(path).type === 'file';
}

/**
 * Writes the applied objects to the workspace and publishes them as the
 * artifact `applied`; a failure there is logged, not fatal: the objects are
 * applied and in the outputs already.
 */
function publish(objects) {
  try {
    fs.writeText(APPLIED_FILE, `${JSON.stringify(objects, null, 2)}\n`);
  } catch (e) {
    log.warn(`could not write ${APPLIED_FILE}: ${e.message}`);
    return;
  }
  try {
    artifact('applied', APPLIED_FILE);
  } catch (e) {
    log.warn(`could not publish the artifact applied: ${e}`);
  }
}

/** Every manifest file under `dir`, sorted by path. A missing `dir` has none. */
function manifestFiles(dir) {
  const files = [];
  if (fs.isDir(dir)) collect(dir, dir, files);
  return files.sort(byComponents);
}

/** Orders paths component by component, as Rust's Path does ("a/b.yaml" before "a.yaml"). */
function byComponents(a, b) {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

function collect(root, dir, files) {
  let entries;
  try {
    entries = fs.readDir(dir);
  } catch (e) {
    throw withContext(e, `listing ${displayName(root, dir)}`);
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = `${dir}/${entry.name}`;
    if (entry.type === 'directory') collect(root, path, files);
    else if (isManifest(entry.name)) files.push(path);
  }
}

function isManifest(name) {
  return /\.(ya?ml|json)$/i.test(name);
}

/** A path as the user knows it: relative to the package directory. */
function displayName(root, path) {
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

/** The JSON values of a .json file (one, or several one after another). */
function jsonDocuments(text) {
  const docs = [];
  let index = 0;
  let at = 0;
  for (;;) {
    while (at < text.length && /\s/.test(text[at])) at++;
    if (at >= text.length) break;
    index++;
    const end = endOfJsonValue(text, at);
    let doc;
    try {
      doc = JSON.parse(text.slice(at, end));
    } catch (e) {
      throw StepboxError.invalid(`document ${index}: ${e.message}`);
    }
    if (doc !== null) docs.push(doc);
    at = end;
  }
  return docs;
}

/** Where the JSON value starting at `start` ends (its matching bracket, or the next whitespace). */
function endOfJsonValue(text, start) {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth <= 0) return i + 1;
    } else if (depth === 0 && /\s/.test(c)) return i;
  }
  return text.length;
}

/** Objects that roll out: the workload kinds and Jobs. */
function isWorkload(a) {
  const slash = a.apiVersion.indexOf('/');
  const group = slash >= 0 ? a.apiVersion.slice(0, slash) : '';
  return (
    (group === 'apps' && ['Deployment', 'StatefulSet', 'DaemonSet'].includes(a.kind)) ||
    (group === 'batch' && a.kind === 'Job')
  );
}
