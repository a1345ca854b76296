/**
 * Conditional requests (RFC 9110 §13.1.2 If-None-Match, §8.8.3 entity tags).
 *
 *   If-None-Match = "*" / #entity-tag
 *   entity-tag    = [ weak ] opaque-tag        weak = %s"W/"
 *   opaque-tag    = DQUOTE *etagc DQUOTE       etagc = %x21 / %x23-7E / obs-text
 *
 * If-None-Match uses the weak comparison: two tags match when their opaque
 * tags are the same characters, whether either is weak or not. Pure.
 */

/** An entity tag: `weak` for `W/"…"`, `opaque` the characters between the quotes. */
export interface EntityTag {
  weak: boolean;
  opaque: string;
}

const isEtagc = (code: number) => code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
const isOws = (ch: string | undefined) => ch === ' ' || ch === '\t';

/**
 * Reads one entity tag at `i` (no surrounding whitespace): the tag and where
 * it ends, or undefined when the text at `i` is not an entity tag.
 */
function readTag(text: string, i: number): { tag: EntityTag; end: number } | undefined {
  let weak = false;
  if (text.startsWith('W/', i)) {
    weak = true;
    i += 2;
  }
  if (text[i] !== '"') return undefined;
  const close = text.indexOf('"', i + 1);
  if (close < 0) return undefined;
  for (let j = i + 1; j < close; j++) if (!isEtagc(text.charCodeAt(j))) return undefined;
  return { tag: { weak, opaque: text.slice(i + 1, close) }, end: close + 1 };
}

/** An entity tag written alone (such as the server's own `W/"3"`), or undefined when it is not one. */
export function parseEntityTag(text: string): EntityTag | undefined {
  const t = text.trim();
  const read = readTag(t, 0);
  return read && read.end === t.length ? read.tag : undefined;
}

/**
 * The entity tags of a list (`"a", W/"b"`), in order; an element that is not
 * an entity tag is skipped up to the next comma, so it never matches.
 */
export function entityTags(list: string): EntityTag[] {
  const tags: EntityTag[] = [];
  let i = 0;
  while (i < list.length) {
    while (i < list.length && (isOws(list[i]) || list[i] === ',')) i++; // empty list elements are allowed
    if (i >= list.length) break;
    const read = readTag(list, i);
    let j = read ? read.end : i;
    while (isOws(list[j])) j++;
    if (read && (j >= list.length || list[j] === ',')) {
      tags.push(read.tag);
      i = j;
      continue;
    }
    // Not an entity tag: skip this element, up to the next comma outside quotes. What
    // follows a malformed element is read only where it is plainly a new element, so
    // a broken header errs towards matching nothing (a full answer instead of a 304).
    let quoted = false;
    while (i < list.length && (quoted || list[i] !== ',')) {
      if (list[i] === '"') quoted = !quoted;
      i++;
    }
  }
  return tags;
}

/**
 * Whether an If-None-Match header matches the current representation, whose
 * entity tag is `etag` (for GET and HEAD: answer 304 Not Modified when it does).
 * `*` matches any current representation; otherwise the header is a
 * comma-separated list of entity tags, compared weakly (`W/"3"` and `"3"`
 * both match `W/"3"` and `"3"`). Whitespace around elements is tolerated;
 * malformed elements never match, nor does any element when `etag` itself is
 * malformed. An absent or empty header matches nothing.
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const current = parseEntityTag(etag);
  if (!current) return false;
  return entityTags(header).some((t) => t.opaque === current.opaque);
}
