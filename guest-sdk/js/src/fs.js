// Files of the step: /packages (read-only, the run's --package directory)
// and /workspace (read-write), over WASI filesystem. Nothing else of the
// host is visible: a path outside them is refused here, and a path that
// climbs out of them (`/workspace/../..`) is refused by the host.
//
// A JavaScript engine has no file API of its own; this module is the one.

import { StepboxError } from './error.js';
import { preopens } from './wit.js';

const dispose = Symbol.dispose ?? Symbol.for('dispose');
const decoder = new TextDecoder();
const encoder = new TextEncoder();
const CHUNK = 1n << 20n;

function close(resource) {
  try {
    resource?.[dispose]?.();
  } catch {
    // Already dropped.
  }
}

/** The WASI error code of a failed call as a StepboxError ("not-found" for a missing file, else "step"). */
function fsError(what, path, e) {
  const code = typeof e?.payload === 'string' ? e.payload : undefined;
  if (code === undefined) throw e;
  const kind = code === 'no-entry' ? 'not-found' : 'step';
  return new StepboxError(kind, `${what} ${path}: ${describeCode(code)}`);
}

function describeCode(code) {
  switch (code) {
    case 'no-entry': return 'no such file or directory (no-entry)';
    case 'access': return 'permission denied (access)';
    case 'not-permitted': return 'operation not permitted (not-permitted)';
    case 'read-only': return 'read-only file system (read-only)';
    case 'is-directory': return 'is a directory (is-directory)';
    case 'not-directory': return 'not a directory (not-directory)';
    case 'exist': return 'file exists (exist)';
    default: return code;
  }
}

let roots;

/** [guestPath, descriptor] of every preopened directory, longest path first. */
function preopened() {
  if (!roots) {
    roots = preopens.getDirectories().map(([descriptor, path]) => [path.replace(/\/+$/, '') || '/', descriptor]);
    roots.sort((a, b) => b[0].length - a[0].length);
  }
  return roots;
}

/** The preopened directory holding `path` and the path relative to it. */
function locate(what, path) {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw StepboxError.invalid(`${what} ${path}: give an absolute path under /packages or /workspace`);
  }
  for (const [root, descriptor] of preopened()) {
    if (path === root) return [descriptor, '.'];
    if (root === '/' || path.startsWith(`${root}/`)) {
      const rest = path.slice(root === '/' ? 1 : root.length + 1).replace(/^\/+/, '');
      return [descriptor, rest || '.'];
    }
  }
  const visible = preopened().map(([root]) => root).sort().join(' and ');
  throw new StepboxError(
    'forbidden',
    `${what} ${path}: outside the step's filesystem (only ${visible || 'nothing'} can be reached)`,
  );
}

function open(what, path, openFlags, descriptorFlags) {
  const [dir, rest] = locate(what, path);
  try {
    return dir.openAt({ symlinkFollow: true }, rest, openFlags, descriptorFlags);
  } catch (e) {
    throw fsError(what, path, e);
  }
}

/** The bytes of a file (a Uint8Array). */
export function readBytes(path) {
  const file = open('reading', path, {}, { read: true });
  try {
    const parts = [];
    let offset = 0n;
    let total = 0;
    for (;;) {
      const [bytes, end] = file.read(CHUNK, offset);
      if (bytes.length > 0) {
        parts.push(bytes);
        total += bytes.length;
        offset += BigInt(bytes.length);
      }
      if (end || bytes.length === 0) break;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } catch (e) {
    if (e instanceof StepboxError) throw e;
    throw fsError('reading', path, e);
  } finally {
    close(file);
  }
}

/** The text of a UTF-8 file. */
export function readText(path) {
  return decoder.decode(readBytes(path));
}

/** Writes (creates or replaces) a file with bytes. */
export function writeBytes(path, bytes) {
  const file = open('writing', path, { create: true, truncate: true }, { write: true });
  try {
    let offset = 0;
    while (offset < bytes.length) {
      const n = Number(file.write(bytes.subarray(offset), BigInt(offset)));
      if (n <= 0) throw StepboxError.step(`writing ${path}: nothing was written`);
      offset += n;
    }
  } catch (e) {
    if (e instanceof StepboxError) throw e;
    throw fsError('writing', path, e);
  } finally {
    close(file);
  }
}

/** Writes (creates or replaces) a UTF-8 text file. */
export function writeText(path, text) {
  writeBytes(path, encoder.encode(text));
}

const TYPES = { 'regular-file': 'file', directory: 'directory', 'symbolic-link': 'symlink' };

/**
 * The entries of a directory as `{ name, type }`, sorted by name; type is
 * "file", "directory", "symlink" or "other".
 */
export function readDir(path) {
  const dir = open('listing', path, { directory: true }, { read: true });
  let stream;
  try {
    stream = dir.readDirectory();
    const entries = [];
    for (;;) {
      const entry = stream.readDirectoryEntry();
      if (!entry) break;
      entries.push({ name: entry.name, type: TYPES[entry.type] ?? 'other' });
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (e) {
    if (e instanceof StepboxError) throw e;
    throw fsError('listing', path, e);
  } finally {
    close(stream);
    close(dir);
  }
}

/** `{ type, size }` of a path (type as in readDir, size in bytes); "not-found" if it does not exist. */
export function stat(path) {
  const [dir, rest] = locate('reading', path);
  try {
    const s = dir.statAt({ symlinkFollow: true }, rest);
    return { type: TYPES[s.type] ?? 'other', size: Number(s.size) };
  } catch (e) {
    throw fsError('reading', path, e);
  }
}

/** Whether the path exists (false outside the step's filesystem too). */
export function exists(path) {
  try {
    stat(path);
    return true;
  } catch (e) {
    if (e instanceof StepboxError && (e.isNotFound || e.isForbidden)) return false;
    throw e;
  }
}

/** Whether the path is a directory. */
export function isDir(path) {
  return exists(path) && stat(path).type === 'directory';
}

/** Creates a directory (and, with `recursive`, its missing parents). */
export function mkdir(path, { recursive = false } = {}) {
  const [dir, rest] = locate('creating', path);
  if (rest === '.') return;
  const parts = rest.split('/').filter(Boolean);
  const todo = recursive ? parts.map((_, i) => parts.slice(0, i + 1).join('/')) : [parts.join('/')];
  for (const p of todo) {
    try {
      dir.createDirectoryAt(p);
    } catch (e) {
      if (recursive && e?.payload === 'exist') continue;
      throw fsError('creating', path, e);
    }
  }
}
