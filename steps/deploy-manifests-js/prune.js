// Pruning: what an earlier run applied and the package no longer holds is
// deleted, as `kubectl apply --prune` does with an ApplySet. The JavaScript
// twin of ../deploy-manifests/src/prune.rs: the same inventory, so a run
// of any of the three ports prunes what another one applied.
//
// The inventory is kept in the namespace: a ConfigMap (the ApplySet's
// parent) named `stepbox-inventory.STEP.ID` lists the objects the last run
// applied (`data.objects`, compact JSON `[{"apiVersion","kind","name"}]`),
// and every one of them carries the label `stepbox.dev/inventory: STEP.ID`.
// A run with prune=true:
//
// 1. reads the inventory (none: nothing to prune);
// 2. labels its objects and applies them with the inventory listing the
//    old and the new objects, in one apply;
// 3. deletes each old object that is not in the package any more, only
//    when it still carries this inventory's label (an object someone else
//    made, or took over, is never touched: it is logged and kept);
// 4. writes the inventory again, listing the objects of this run only.

import { StepboxError, kinds, kindRef, kube, log, withContext } from '@stepbox/sdk';

/** The label every object of an inventory carries. */
export const LABEL = 'stepbox.dev/inventory';

/** Longest label value. */
const MAX_LABEL_VALUE = 63;

/** One object of an inventory: apiVersion, kind, name. */
export class Member {
  constructor(apiVersion, kind, name) {
    this.apiVersion = apiVersion;
    this.kind = kind;
    this.name = name;
  }

  /** The member a manifest makes, or undefined when it names no object. */
  static of(doc) {
    const name = doc?.metadata?.name;
    return Member.#checked(doc?.apiVersion, doc?.kind, name);
  }

  /** A member as the inventory lists it. */
  static listed(v) {
    return Member.#checked(v?.apiVersion, v?.kind, v?.name);
  }

  static #checked(apiVersion, kind, name) {
    if ([apiVersion, kind, name].every((s) => typeof s === 'string')) return new Member(apiVersion, kind, name);
    return undefined;
  }

  get group() {
    const slash = this.apiVersion.indexOf('/');
    return slash >= 0 ? this.apiVersion.slice(0, slash) : '';
  }

  /** Same object: group, kind and name (the version may change). */
  same(other) {
    return this.group === other.group && this.kind === other.kind && this.name === other.name;
  }

  kubectlName() {
    return kube.kubectlName(this.apiVersion, this.kind, this.name);
  }

  /** The order the Rust step sorts members in: apiVersion, kind, name. */
  static compare(a, b) {
    for (const f of ['apiVersion', 'kind', 'name']) {
      if (a[f] !== b[f]) return a[f] < b[f] ? -1 : 1;
    }
    return 0;
  }
}

/** `STEP.ID` checked as a label value. */
export function inventoryId(step, id) {
  const value = `${step}.${id}`;
  const ok = value.length <= MAX_LABEL_VALUE && /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(value);
  if (ok) return value;
  const room = Math.max(0, MAX_LABEL_VALUE - (step.length + 1));
  const q = JSON.stringify;
  throw StepboxError.invalid(
    `input inventory: ${q(id)} with step name ${q(step)} makes ${q(value)}, ` +
      `not a label value: use letters, digits, '-', '_' and '.', at most ${room} characters`,
  );
}

/** The inventory of one step and id. */
export class Inventory {
  constructor(id, name, previous) {
    /** The label value (`STEP.ID`). */
    this.id = id;
    /** The parent ConfigMap's name. */
    this.name = name;
    /** What the last run applied (Members). */
    this.previous = previous;
  }

  /** Reads the inventory of `id` (empty when there is none yet). */
  static load(id) {
    const name = `stepbox-inventory.${id}`.toLowerCase();
    let cm;
    try {
      cm = kube.get(kinds.ConfigMap, name);
    } catch (e) {
      if (e instanceof StepboxError && e.isNotFound) return new Inventory(id, name, []);
      throw withContext(e, `reading the inventory ${name}`);
    }
    const listed = typeof cm?.data?.objects === 'string' ? cm.data.objects : '[]';
    let list;
    try {
      list = JSON.parse(listed);
      if (!Array.isArray(list)) throw new Error('not a list');
    } catch (e) {
      throw StepboxError.invalid(`ConfigMap ${name} data.objects is not the JSON list stepbox writes: ${e.message}`);
    }
    return new Inventory(id, name, list.map(Member.listed).filter(Boolean));
  }

  /** Labels `docs` as members of this inventory. */
  label(docs) {
    for (const doc of docs) {
      const meta = doc?.metadata;
      if (!isObject(meta)) continue;
      if (meta.labels === undefined) meta.labels = {};
      if (isObject(meta.labels)) meta.labels[LABEL] = this.id;
    }
  }

  /** The parent ConfigMap listing `members`. */
  configMap(members) {
    const objects = members.map((m) => ({ apiVersion: m.apiVersion, kind: m.kind, name: m.name }));
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        labels: { 'applyset.kubernetes.io/id': this.id.replaceAll('.', '-') },
        annotations: { 'stepbox.dev/inventory-of': this.id },
      },
      data: { objects: JSON.stringify(objects) },
    };
  }

  /** The members of `docs`. */
  static members(docs) {
    return docs.map(Member.of).filter(Boolean);
  }

  /** The old members the package no longer holds. */
  gone(current) {
    return this.previous.filter((old) => !current.some((m) => m.same(old)));
  }

  /**
   * Deletes `gone`, each only if it still carries this inventory's label;
   * returns the members deleted.
   */
  prune(gone) {
    const deleted = [];
    for (const m of gone) {
      const kind = kindRef(m.apiVersion, m.kind);
      const name = m.kubectlName();
      let current;
      try {
        current = kube.get(kind, m.name);
      } catch (e) {
        if (e instanceof StepboxError && e.isNotFound) {
          log.info(`${name} is already gone`);
          continue;
        }
        throw withContext(e, `pruning ${name}`);
      }
      const label = current?.metadata?.labels?.[LABEL];
      if (label !== this.id) {
        log.warn(`${name} is not pruned: it no longer carries ${LABEL}=${this.id} (someone else manages it now)`);
        continue;
      }
      let removed;
      try {
        removed = kube.delete(kind, m.name);
      } catch (e) {
        throw withContext(e, `pruning ${name}`);
      }
      if (removed) {
        log.info(`${name} deleted (pruned: no longer in the package)`);
        deleted.push(m);
      }
    }
    return deleted;
  }
}

/** `a` with the members of `b` it does not hold, sorted (once each). */
export function union(a, b) {
  const all = [...a, ...b.filter((m) => !a.some((x) => x.same(m)))].sort(Member.compare);
  return all.filter((m, i) => i === 0 || Member.compare(all[i - 1], m) !== 0);
}

function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
