/**
 * Linear scans over raw JSON text, used where parsing would lose something or
 * cost too much: the nesting-depth guard (before JSON.parse, so a 100,000-deep
 * body never reaches a recursive walker), and the top-level member spans that
 * let a stored bundle be returned byte for byte with only `id` and `meta` set,
 * and the search for member names given twice in one object (JSON.parse keeps
 * the last, other parsers the first, so such text means two things).
 * None of these recurse, so no input can exhaust the stack.
 */

const QUOTE = 0x22,
  BACKSLASH = 0x5c,
  OPEN_OBJ = 0x7b,
  CLOSE_OBJ = 0x7d,
  OPEN_ARR = 0x5b,
  CLOSE_ARR = 0x5d;
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

/** What one pass over JSON text finds; see `shape`. */
export interface TextShape {
  depth: number;
  longestString: number;
  duplicates: DuplicateMember[];
}

/** A member name given more than once in one object, and where that object is. */
export interface DuplicateMember {
  key: string;
  /** Object keys and array indexes from the top-level value down to the object holding the duplicate. */
  parent: (string | number)[];
}

// Scratch stacks for the duplicate search, reused by every call (the scan is synchronous) and
// grown when a text needs more: per depth, whether the container is an object (1), where its
// keys start on the key stack, and its current key (objects) or element index (arrays); per
// open key, its span in the text.
let kind = new Uint8Array(64),
  from = new Int32Array(64),
  current = new Int32Array(64);
let starts = new Int32Array(1024),
  ends = new Int32Array(1024);

/**
 * Nesting depth and longest string (in UTF-16 units of its JSON text,
 * escapes included) in one pass, stopping early once either exceeds its limit;
 * and, when `maxDuplicates` > 0, up to that many member names that occur more
 * than once in the same object. Names are compared decoded (`"a"` and
 * `"\u0061"` are one name); a key is decoded only when its text holds a
 * backslash. The duplicates are meaningful only for text JSON.parse accepts:
 * malformed text is left for JSON.parse to report.
 */
export function shape(text: string, depthLimit: number, stringLimit: number, maxDuplicates = 0): TextShape {
  let depth = 0,
    max = 0,
    longest = 0;
  const duplicates: DuplicateMember[] = [];
  let track = maxDuplicates > 0;
  // While tracking: the keys of every open object are on one stack (starts/ends), those of the
  // object at depth d from from[d]; keys that hold an escape are kept decoded, by stack slot;
  // an object with many keys also gets a Set, so the search stays linear.
  let decoded: Map<number, string> | undefined;
  let sets: Map<number, Set<string>> | undefined;
  let top = 0,
    expectKey = false;
  let backslash = -1;
  const keyText = (k: number) => decoded?.get(k) ?? text.slice(starts[k], ends[k]);
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = skipString(text, i);
      if (end - i - 2 > longest) {
        longest = end - i - 2;
        if (longest > stringLimit) break;
      }
      if (expectKey) {
        expectKey = false;
        if (backslash < i) {
          backslash = text.indexOf('\\', i);
          if (backslash < 0) backslash = n;
        }
        const s = i + 1,
          e = end - 1,
          len = e - s;
        if (top === starts.length) {
          starts = grow(starts);
          ends = grow(ends);
        }
        starts[top] = s;
        ends[top] = e;
        if (decoded) decoded.delete(top);
        if (backslash < end) (decoded ??= new Map()).set(top, decodeKey(text.slice(i, end)));
        const first = from[depth];
        const set = sets?.get(depth);
        let match = -1;
        if (set) {
          const key = keyText(top);
          if (set.has(key)) match = top;
          else set.add(key);
        } else if (top > first) {
          if (!decoded) {
            const c0 = text.charCodeAt(s);
            for (let k = first; k < top; k++) {
              const sk = starts[k];
              if (ends[k] - sk === len && text.charCodeAt(sk) === c0 && sameText(text, sk, s, len)) {
                match = k;
                break;
              }
            }
          } else {
            const key = keyText(top);
            for (let k = first; k < top; k++)
              if (keyText(k) === key) {
                match = k;
                break;
              }
          }
          if (match < 0 && top - first >= SMALL_OBJECT) {
            const all = new Set<string>();
            for (let k = first; k <= top; k++) all.add(keyText(k));
            (sets ??= new Map()).set(depth, all);
          }
        }
        // A repeated key stays on the stack too: it names the member whose value comes next.
        current[depth] = top++;
        if (
          match >= 0 &&
          duplicates.push({ key: keyText(top - 1), parent: pathAt(depth, kind, current, keyText) }) >= maxDuplicates
        )
          track = false;
      }
      i = end - 1;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (++depth > max) {
        max = depth;
        if (max > depthLimit) break;
      }
      if (track) {
        if (depth === kind.length) {
          kind = grow(kind);
          from = grow(from);
          current = grow(current);
        }
        if (c === OPEN_OBJ) {
          kind[depth] = 1;
          expectKey = true;
          from[depth] = top;
          sets?.delete(depth);
        } else {
          kind[depth] = 0;
          current[depth] = 0;
        }
      }
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (track) {
        if (depth < 1)
          track = false; // malformed: more closed than opened
        else if (c === CLOSE_OBJ) {
          top = from[depth];
          expectKey = false;
        }
      }
      depth--;
    } else if (c === COMMA && track) {
      if (kind[depth] === 1) expectKey = true;
      else current[depth]++;
    }
  }
  if (starts.length > 1 << 16) {
    starts = new Int32Array(1024);
    ends = new Int32Array(1024);
  } // keep no huge text's stack
  return { depth: max, longestString: longest, duplicates };
}

function grow<T extends Uint8Array | Int32Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}

function sameText(text: string, a: number, b: number, len: number): boolean {
  for (let k = 1; k < len; k++) if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  return true;
}

/** Objects with more keys than this are searched through a Set, smaller ones by comparing each key. */
const SMALL_OBJECT = 16;

/** The decoded text of a key's JSON string; its raw text when that is malformed (JSON.parse will say so). */
function decodeKey(json: string): string {
  try {
    return JSON.parse(json) as string;
  } catch {
    return json.slice(1, -1);
  }
}

/**
 * Member names that occur more than once in the same object, anywhere in
 * well-formed JSON `text`, at most `max` of them (`shape` without limits).
 */
export const duplicateMembers = (text: string, max = 20): DuplicateMember[] =>
  shape(text, Infinity, Infinity, max).duplicates;

function pathAt(
  depth: number,
  kind: Uint8Array,
  current: Int32Array,
  keyText: (k: number) => string,
): (string | number)[] {
  const path: (string | number)[] = [];
  for (let d = 1; d < depth; d++) path.push(kind[d] === 1 ? keyText(current[d]) : current[d]);
  return path;
}

/** `root` followed by `.key` and `[index]` steps (a key that is not a plain name as `["key"]`). */
export function jsonPath(root: string, steps: readonly (string | number)[]): string {
  let out = root;
  for (const s of steps) {
    out += typeof s === 'number' ? `[${s}]` : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
  }
  return out;
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export interface MemberSpan {
  key: string;
  start: number;
  end: number;
}

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
  let depth = 0,
    start = -1,
    key = '',
    lastNonSpace = -1;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = skipString(text, i);
      if (depth === 0 && start < 0) {
        start = i;
        key = JSON.parse(text.slice(i, end)) as string;
      }
      i = end - 1;
      lastNonSpace = i;
      continue;
    }
    if (c === OPEN_OBJ || c === OPEN_ARR) depth++;
    else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
      if (depth === 0) {
        if (start >= 0) spans.push({ key, start, end: lastNonSpace + 1 });
        break;
      }
      depth--;
    } else if (c === COMMA && depth === 0) {
      spans.push({ key, start, end: lastNonSpace + 1 });
      start = -1;
      continue;
    }
    if (!isSpace(c)) lastNonSpace = i;
  }
  return spans;
}

/**
 * `text` without whitespace outside strings and without the named top-level
 * members: two uploads with equal canonical text carry the same content.
 */
export function canonicalContent(
  text: string,
  exclude: ReadonlySet<string>,
  members: MemberSpan[] = topLevelMembers(text),
): string {
  const parts: string[] = [];
  for (const m of members) {
    if (!exclude.has(m.key)) parts.push(stripSpace(text, m.start, m.end));
  }
  return '{' + parts.join(',') + '}';
}

function stripSpace(text: string, from: number, to: number): string {
  let out = '',
    runStart = from;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(text, i) - 1;
      continue;
    }
    if (isSpace(c)) {
      out += text.slice(runStart, i);
      runStart = i + 1;
    }
  }
  return out + text.slice(runStart, to);
}

/**
 * Rewrites the top-level object of `text`: members named in `replace` are
 * dropped where they stand and written first with the given JSON text; every
 * other member keeps its exact original text.
 */
export function withTopLevelMembers(
  text: string,
  replace: Record<string, string>,
  members: MemberSpan[] = topLevelMembers(text),
): string {
  const keep: string[] = [];
  for (const m of members) {
    if (!(m.key in replace)) keep.push(text.slice(m.start, m.end));
  }
  const first = Object.entries(replace).map(([k, v]) => JSON.stringify(k) + ':' + v);
  return '{' + [...first, ...keep].join(',') + '}';
}

/** The raw text of one top-level member's value, if present. */
export function topLevelValue(
  text: string,
  key: string,
  members: MemberSpan[] = topLevelMembers(text),
): string | undefined {
  const m = members.find((s) => s.key === key);
  if (!m) return undefined;
  const body = text.slice(m.start, m.end);
  const colon = body.indexOf(':', skipString(body, 0));
  return body.slice(colon + 1).trim();
}
