/**
 * A resource's narrative (`text.div`) behind a "Narrative as recorded" disclosure, parsed and rebuilt from an
 * allowlist (sanitise.ts) only when it is opened. Nothing here sets HTML: every element is created by Preact from
 * the sanitised tree.
 */
import { createElement, type ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { useT } from '../i18n.js';
import { isObj, str } from './fhir.js';
import { L } from './labels.js';
import { sanitiseNarrative, type SafeNode } from './sanitise.js';

function toVnodes(nodes: SafeNode[]): ComponentChildren[] {
  return nodes.map((n) => {
    if (typeof n === 'string') return n;
    if (n.heading) return createElement('strong', { class: 'rv-narrative-heading' }, ...toVnodes(n.children));
    if (n.tag === 'br' || n.tag === 'hr') return createElement(n.tag, null);
    return createElement(n.tag, n.attrs.colSpan || n.attrs.rowSpan ? { ...n.attrs } : null, ...toVnodes(n.children));
  });
}

function NarrativeBody({ div }: { div: string }) {
  const t = useT(L);
  const { nodes, truncated } = useMemo(() => sanitiseNarrative(div), [div]);
  return (
    <>
      {truncated && <p class="rv-note">{t('narrativeTruncated')}</p>}
      <div class="rv-narrative-body" tabIndex={0} role="group" aria-label={t('narrative')}>
        {toVnodes(nodes)}
      </div>
    </>
  );
}

/**
 * The narrative of `text` (a FHIR Narrative), closed until asked for (open from the start when `open`: a section
 * whose narrative is all it has); nothing when there is none.
 */
export function Narrative({ text, open: initiallyOpen = false }: { text: unknown; open?: boolean }) {
  const t = useT(L);
  const [open, setOpen] = useState(initiallyOpen);
  const div = isObj(text) ? str(text.div) : undefined;
  if (!div || !div.replace(/<[^>]*>/g, '').trim()) return null;
  return (
    <details
      class="rv-narrative"
      open={initiallyOpen}
      onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}
    >
      <summary>{t('narrative')}</summary>
      {open && <NarrativeBody div={div} />}
    </details>
  );
}
