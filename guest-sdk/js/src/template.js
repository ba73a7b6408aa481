// `#{Name}` placeholders in manifest text.

import { StepboxError } from './error.js';

/**
 * Replaces every `#{Name}` in `template` with the value of `Name` in
 * `inputs` (an object or a Map), on the raw text, so a placeholder may stand
 * anywhere, even where YAML would read `#` as a comment.
 *
 * - The name is the text between `#{` and the next `}`, trimmed; it may not
 *   hold `{`, `#` or a line break (such text is left as it is).
 * - `##{Name}` is an escape: it becomes a literal `#{Name}`.
 * - Unknown names are an "invalid" StepboxError listing all of them, sorted
 *   and once each; nothing is replaced then.
 */
export function substitute(template, inputs) {
  const lookup = inputs instanceof Map ? (n) => inputs.get(n) : (n) => (Object.hasOwn(inputs, n) ? inputs[n] : undefined);
  let out = '';
  const unknown = new Set();
  let rest = template;
  for (;;) {
    const at = rest.indexOf('#');
    if (at < 0) break;
    out += rest.slice(0, at);
    rest = rest.slice(at);
    if (rest.startsWith('##{')) {
      out += '#{';
      rest = rest.slice(3);
      continue;
    }
    const found = placeholder(rest);
    if (found) {
      const value = lookup(found.name);
      if (value === undefined) unknown.add(found.name);
      else out += value;
      rest = found.after;
    } else {
      out += '#';
      rest = rest.slice(1);
    }
  }
  out += rest;
  if (unknown.size > 0) {
    const names = [...unknown].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    throw StepboxError.invalid(`unknown inputs: ${names.join(', ')} (pass them with --input NAME=VALUE)`);
  }
  return out;
}

/** `#{name}...` at the start of `text`: the trimmed name and the text after the brace. */
function placeholder(text) {
  if (!text.startsWith('#{')) return undefined;
  const body = text.slice(2);
  const end = body.search(/[}{#\n\r]/);
  if (end < 0 || body[end] !== '}') return undefined;
  const name = body.slice(0, end).trim();
  return name ? { name, after: body.slice(end + 1) } : undefined;
}
