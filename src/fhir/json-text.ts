/**
 * Linear scans over raw JSON text, used where parsing would lose something or
 * cost too much: the nesting-depth guard (before JSON.parse, so a 100,000-deep
 * body never reaches a recursive walker), and the top-level member spans that
 * let a stored bundle be returned byte for byte with only `id` and `meta` set.
 * None of these recurse, so no input can exhaust the stack.
 */

const QUOTE = 0x22, BACKSLASH = 0x5c, OPEN_OBJ = 0x7b, CLOSE_OBJ = 0x7d, OPEN_ARR = 0x5b, CLOSE_ARR = 0x5d;
const COMMA = 0x2c;

/** Index just past the closing quote of the string starting at `i` (text[i] === '"'). */
function skipString(text: string, i: number): number {
  let j = i;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return text.length;
    let slashes = 0;
    while (text.charCodeAt(j - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return j + 1;
  }
}

/**
 * The deepest nesting of objects and arrays in `text`, stopping early once it
 * exceeds `limit`. Malformed text is left for JSON.parse to report.
 */
export function nestingDepth(text: string, limit: number): number {
  return shape(text, limit, Infinity).depth;
}

/**
 * Nesting depth and longest string (in UTF-16 units of its JSON text,
 * escapes included) in one pass, stopping early once either exceeds its limit.
 */
export function shape(text: string, depthLimit: number, stringLimit: number): { depth: number; longestString: number } {
  let depth = 0, max = 0, longest = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = skipString(text, i);
      if (end - i - 2 > longest) { longest = end - i - 2; if (longest > stringLimit) break; }
      i = end - 1;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (++depth > max) { max = depth; if (max > depthLimit) break; }
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) depth--;
  }
  return { depth: max, longestString: longest };
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export interface MemberSpan { key: string; start: number; end: number }

/**
 * The members of the top-level object of well-formed JSON `text`: each span runs
 * from the opening quote of the key to the last character of the value.
 */
export function topLevelMembers(text: string): MemberSpan[] {
  const spans: MemberSpan[] = [];
  const n = text.length;
  let i = 0;
  while (i < n && text.charCodeAt(i) !== OPEN_OBJ) i++;
  i++;
  let depth = 0, start = -1, key = '', lastNonSpace = -1;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = skipString(text, i);
      if (depth === 0 && start < 0) { start = i; key = JSON.parse(text.slice(i, end)) as string; }
      i = end - 1; lastNonSpace = i; continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) depth++;
    else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (depth === 0) { if (start >= 0) spans.push({ key, start, end: lastNonSpace + 1 }); break; }
      depth--;
    } else if (c === COMMA && depth === 0) {
      spans.push({ key, start, end: lastNonSpace + 1 });
      start = -1; continue;
    }
    if (!isSpace(c)) lastNonSpace = i;
  }
  return spans;
}

/**
 * `text` without whitespace outside strings and without the named top-level
 * members: two uploads with equal canonical text carry the same content.
 */
export function canonicalContent(text: string, exclude: ReadonlySet<string>): string {
  const parts: string[] = [];
  for (const m of topLevelMembers(text)) {
    if (!exclude.has(m.key)) parts.push(stripSpace(text, m.start, m.end));
  }
  return '{' + parts.join(',') + '}';
}

function stripSpace(text: string, from: number, to: number): string {
  let out = '', runStart = from;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) { i = skipString(text, i) - 1; continue; }
    if (isSpace(c)) { out += text.slice(runStart, i); runStart = i + 1; }
  }
  return out + text.slice(runStart, to);
}

/**
 * Rewrites the top-level object of `text`: members named in `replace` are
 * dropped where they stand and written first with the given JSON text; every
 * other member keeps its exact original text.
 */
export function withTopLevelMembers(text: string, replace: Record<string, string>, members: MemberSpan[] = topLevelMembers(text)): string {
  const keep: string[] = [];
  for (const m of members) {
    if (!(m.key in replace)) keep.push(text.slice(m.start, m.end));
  }
  const first = Object.entries(replace).map(([k, v]) => JSON.stringify(k) + ':' + v);
  return '{' + [...first, ...keep].join(',') + '}';
}

/** The raw text of one top-level member's value, if present. */
export function topLevelValue(text: string, key: string, members: MemberSpan[] = topLevelMembers(text)): string | undefined {
  const m = members.find((s) => s.key === key);
  if (!m) return undefined;
  const body = text.slice(m.start, m.end);
  const colon = body.indexOf(':', skipString(body, 0));
  return body.slice(colon + 1).trim();
}

