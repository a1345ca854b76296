/**
 * A resource's narrative (`text.div`) made safe to show. The narrative is
 * whatever the sender wrote: treat it as hostile.
 *
 * Nothing here assigns HTML to the live page. The page's CSP requires Trusted
 * Types for script sinks and allows one policy, `narrative`; this module
 * creates it once, and it only hands the string to DOMParser, whose document
 * is inert (no scripts run, nothing loads). A narrative that is XHTML, as
 * FHIR requires, is parsed as XML with its namespaces made inert (so nothing
 * in it is an HTML element with styles or handlers, and the browser has no
 * CSP violation to report); any other as HTML. The parsed tree is then walked
 * with an allowlist into plain data (SafeNode), which the narrative component
 * turns into Preact elements: only the elements listed in ALLOWED, text, and
 * `colspan`/`rowspan` as digits. Links become their text, images their alt
 * text in brackets; scripts, styles, frames, forms, SVG and MathML go with
 * their content; any other element is unwrapped to its content. The walk is
 * bounded (MAX_NODES, MAX_DEPTH) so a huge narrative cannot hang the page.
 */

export type SafeNode = string | SafeElement;
export interface SafeElement {
  tag: SafeTag;
  attrs: { colSpan?: number; rowSpan?: number };
  children: SafeNode[];
  /** A heading of the narrative (h1–h6), shown as a bold line so the page's own headings stay in order. */
  heading?: boolean;
}

const ALLOWED = [
  'p',
  'br',
  'div',
  'span',
  'b',
  'strong',
  'i',
  'em',
  'u',
  'sub',
  'sup',
  'small',
  'ul',
  'ol',
  'li',
  'dl',
  'dt',
  'dd',
  'table',
  'thead',
  'tbody',
  'tfoot',
  'tr',
  'th',
  'td',
  'caption',
  'pre',
  'code',
  'blockquote',
  'hr',
] as const;
export type SafeTag = (typeof ALLOWED)[number];
const ALLOWED_SET = new Set<string>(ALLOWED);
const HEADINGS = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
/** Dropped with everything inside them. */
const DROPPED = new Set([
  'script',
  'style',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'svg',
  'math',
  'form',
  'input',
  'button',
  'select',
  'option',
  'textarea',
  'link',
  'meta',
  'base',
  'template',
  'noscript',
  'noembed',
  'noframes',
  'title',
  'head',
  'video',
  'audio',
  'source',
  'track',
  'canvas',
  'picture',
  'portal',
  'dialog',
  'slot',
  'xmp',
  'plaintext',
]);

export const MAX_NODES = 2000;
export const MAX_DEPTH = 32;

export interface Sanitised {
  nodes: SafeNode[];
  /** The narrative was larger or deeper than shown. */
  truncated: boolean;
}

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_NODE = 4;

/** Walks a parsed tree (its children) into SafeNodes. */
export function sanitiseTree(root: Node, limits = { maxNodes: MAX_NODES, maxDepth: MAX_DEPTH }): Sanitised {
  let count = 0;
  let truncated = false;
  const walk = (parent: Node, depth: number): SafeNode[] => {
    const out: SafeNode[] = [];
    for (let child = parent.firstChild; child; child = child.nextSibling) {
      if (count >= limits.maxNodes) {
        truncated = true;
        break;
      }
      if (child.nodeType === TEXT_NODE || child.nodeType === CDATA_NODE) {
        const text = child.nodeValue ?? '';
        if (text) {
          count++;
          push(out, text);
        }
        continue;
      }
      if (child.nodeType !== ELEMENT_NODE) continue; // comments, processing instructions
      const el = child as Element;
      const name = el.localName.toLowerCase();
      count++;
      if (DROPPED.has(name)) continue;
      if (name === 'img') {
        const alt = el.getAttribute('alt')?.trim();
        if (alt) push(out, `[${alt}]`);
        continue;
      }
      if (depth >= limits.maxDepth) {
        truncated = true;
        push(out, el.textContent?.slice(0, 2000) ?? '');
        continue;
      }
      const children = walk(el, depth + 1);
      if (HEADINGS.has(name)) {
        out.push({ tag: 'strong', attrs: {}, children, heading: true });
      } else if (ALLOWED_SET.has(name)) {
        const attrs: SafeElement['attrs'] = {};
        if (name === 'td' || name === 'th') {
          const colSpan = span(el.getAttribute('colspan'));
          const rowSpan = span(el.getAttribute('rowspan'));
          if (colSpan) attrs.colSpan = colSpan;
          if (rowSpan) attrs.rowSpan = rowSpan;
        }
        out.push({ tag: name as SafeTag, attrs, children });
      } else {
        // a, font, center, section, label…: their content only.
        for (const c of children) push(out, c);
      }
    }
    return out;
  };
  const nodes = walk(root, 0);
  return { nodes, truncated };
}

function push(out: SafeNode[], node: SafeNode) {
  const last = out[out.length - 1];
  if (typeof node === 'string' && typeof last === 'string') out[out.length - 1] = last + node;
  else out.push(node);
}

function span(v: string | null): number | undefined {
  if (!v || !/^\s*\d{1,4}\s*$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 ? Math.min(n, 1000) : undefined;
}

interface NarrativePolicy {
  createHTML(s: string): unknown;
}
let policy: NarrativePolicy | null | undefined;

/** The `narrative` Trusted Types policy, created once (null where Trusted Types are not supported or refused). */
function narrativePolicy(): NarrativePolicy | null {
  if (policy !== undefined) return policy;
  policy = null;
  try {
    const tt = (globalThis as { trustedTypes?: { createPolicy(n: string, p: object): NarrativePolicy } }).trustedTypes;
    if (tt) policy = tt.createPolicy('narrative', { createHTML: (s: string) => s });
  } catch {
    policy = null;
  }
  return policy;
}

/** HTML's named character references that narratives use, as XML numeric references (XML defines only five). */
const ENTITIES: Record<string, number> = {
  nbsp: 160,
  copy: 169,
  reg: 174,
  deg: 176,
  plusmn: 177,
  micro: 181,
  middot: 183,
  frac12: 189,
  times: 215,
  divide: 247,
  ndash: 8211,
  mdash: 8212,
  lsquo: 8216,
  rsquo: 8217,
  ldquo: 8220,
  rdquo: 8221,
  bull: 8226,
  hellip: 8230,
  euro: 8364,
  trade: 8482,
  larr: 8592,
  rarr: 8594,
  le: 8804,
  ge: 8805,
};
const INERT_NS = 'urn:x-abha-vault:inert';

/**
 * The narrative as XML whose every namespace is an inert one, so no element of the parsed document is an HTML, SVG
 * or MathML element: none has a style or an event handler, and nothing in it meets the page's CSP at all (an HTML
 * parse of a narrative with `style` or `on…` attributes makes the browser report each as a CSP violation, though
 * nothing runs). Only for narratives that declare the XHTML namespace (FHIR's narratives are XHTML) and have no
 * document type declaration.
 */
function inertXml(div: string): string | undefined {
  if (!/xmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/.test(div) || /<!DOCTYPE|<!ENTITY/i.test(div))
    return undefined;
  return div
    .replace(
      /\bxmlns(:[\w.-]+)?\s*=\s*("[^"]*"|'[^']*')/g,
      (_m, prefix: string | undefined) => `xmlns${prefix ?? ''}="${INERT_NS}"`,
    )
    .replace(/&([a-zA-Z][a-zA-Z0-9]{1,10});/g, (m, name: string) => (name in ENTITIES ? `&#${ENTITIES[name]};` : m));
}

function parse(markup: string, type: DOMParserSupportedType): Document {
  const p = narrativePolicy();
  return new DOMParser().parseFromString((p ? p.createHTML(markup) : markup) as string, type);
}

/**
 * Parses a narrative with DOMParser (as inert XML when it is well-formed XHTML, else as HTML) and keeps only what is
 * safe to show.
 */
export function sanitiseNarrative(div: string): Sanitised {
  if (typeof DOMParser === 'undefined') return { nodes: [textOnly(div)], truncated: false };
  try {
    const xml = inertXml(div);
    if (xml !== undefined) {
      const doc = parse(xml, 'application/xml');
      if (!doc.getElementsByTagName('parsererror').length && doc.documentElement) {
        return sanitiseTree(doc);
      }
    }
    return sanitiseTree(parse(div, 'text/html').body);
  } catch {
    // Trusted Types refused the string (no policy): its text only.
    return { nodes: [textOnly(div)], truncated: false };
  }
}

/** The text of markup without parsing it as HTML: tags and the content of scripts and styles removed. */
export function textOnly(html: string): string {
  return html
    .slice(0, 200_000)
    .replace(/<(script|style|svg|math|iframe|object|template)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<img\b[^>]*\balt\s*=\s*("([^"]*)"|'([^']*)')[^>]*>/gi, (_m, _q, a, b) => ` [${a ?? b}] `)
    .replace(/<br\s*\/?>|<\/(p|div|li|tr|h\d)>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/[ \t]+/g, ' ')
    .trim();
}
