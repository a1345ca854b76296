/** A table wide enough to scroll sideways on a phone, in a focusable region so that a keyboard can scroll it too. */
import type { ComponentChildren } from 'preact';
import { useT } from '../i18n.js';
import { common } from './labels.js';

export function ScrollTable({ label, children }: { label: string; children: ComponentChildren }) {
  const t = useT(common);
  return (
    <div class="table-scroll" tabIndex={0} role="region" aria-label={t('tableRegion', { name: label })}>
      {children}
    </div>
  );
}
