// YAML manifests to plain values and back, read the way the host and the
// Rust SDK read them (YAML 1.2 core schema as serde_yaml_ng resolves it):
// only true/false are booleans (not yes/no/on/off), `0755` is a string,
// `0o755`, `0x1F` and `0b101` are integers, `.inf` and `.nan` become null
// (as they do in JSON), merge keys (`<<: *base`) are applied, and no
// timestamps are made.

import { parseAllDocuments, stringify as yamlStringify } from 'yaml';
import { StepboxError } from './error.js';

const INT = 'tag:yaml.org,2002:int';
const FLOAT = 'tag:yaml.org,2002:float';

const radixInt = {
  identify: (v) => Number.isInteger(v),
  default: true,
  tag: INT,
  test: /^[-+]?0(?:x[0-9a-fA-F]+|o[0-7]+|b[01]+)$/,
  resolve(str) {
    const negative = str.startsWith('-');
    const body = str.replace(/^[-+]/, '');
    const n = parseInt(body.slice(2), { x: 16, o: 8, b: 2 }[body[1]]);
    return negative ? -n : n;
  },
};

const decimalInt = {
  identify: (v) => Number.isInteger(v),
  default: true,
  tag: INT,
  // A leading zero followed by digits is a string ("0755"), as in YAML 1.2.
  test: /^[-+]?(?:0|[1-9][0-9]*)$/,
  resolve: (str) => {
    const n = Number(str);
    return Object.is(n, -0) ? 0 : n;
  },
};

const special = {
  identify: (v) => typeof v === 'number' && !Number.isFinite(v),
  default: true,
  tag: FLOAT,
  test: /^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  // JSON has no infinities: the Rust SDK and the host turn them into null too.
  resolve: () => null,
};

const float = {
  identify: (v) => typeof v === 'number',
  default: true,
  tag: FLOAT,
  test: /^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/,
  resolve: (str) => {
    // Digits with a leading zero are a string, not a number.
    if (/^[-+]?0[0-9]+$/.test(str)) return str;
    const n = Number(str);
    return Number.isFinite(n) ? n : str;
  },
};

function customTags(tags) {
  const kept = tags.filter((t) => t.tag !== INT && t.tag !== FLOAT);
  return [...kept, radixInt, decimalInt, special, float];
}

const PARSE_OPTIONS = {
  schema: 'core',
  customTags,
  merge: true,
  uniqueKeys: true,
  prettyErrors: true,
  maxAliasCount: 1000,
};

function firstLine(message) {
  return String(message).split('\n')[0].replace(/:$/, '');
}

/**
 * Parses YAML text of one or many documents (separated by `---`) into plain
 * values, in order. Empty and `null` documents are skipped; merge keys are
 * applied. A parse error is an "invalid" StepboxError naming the document's
 * number (from 1) and the line.
 */
export function documents(text) {
  const docs = [];
  const parsed = parseAllDocuments(text, PARSE_OPTIONS);
  const list = Array.isArray(parsed) ? parsed : [];
  if (!Array.isArray(parsed) && parsed.errors?.length) {
    throw StepboxError.invalid(`document 1: ${firstLine(parsed.errors[0].message)}`);
  }
  list.forEach((doc, index) => {
    const number = index + 1;
    if (doc.errors.length > 0) {
      throw StepboxError.invalid(`document ${number}: ${firstLine(doc.errors[0].message)}`);
    }
    let value;
    try {
      value = doc.toJS({ maxAliasCount: PARSE_OPTIONS.maxAliasCount });
    } catch (e) {
      throw StepboxError.invalid(`document ${number}: ${firstLine(e.message)}`);
    }
    if (value !== null && value !== undefined) docs.push(value);
  });
  return docs;
}

/** Serializes a value as one YAML document (no leading `---`). */
export function stringify(value) {
  return yamlStringify(value);
}
