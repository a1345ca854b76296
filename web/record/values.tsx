/**
 * The pieces every renderer of the record view uses: the record's context (its bundle index and patient), a
 * definition list of fields, a flag badge, a status pill, and the compact generic rendering of any element the
 * renderers do not know (so nothing recorded is dropped).
 */
import { createContext, type ComponentChildren } from 'preact';
import { useContext } from 'preact/hooks';
import { type Lang, useLang, useT } from '../i18n.js';
import { formatDate } from '../format.js';
import { AttachmentView } from './attachment.js';
import {
  arr,
  type BundleIndex,
  codingText,
  conceptText,
  type Flag,
  humanName,
  isObj,
  type Json,
  moneyText,
  num,
  periodText,
  quantityText,
  rangeText,
  ratioText,
  referenceText,
  type Resource,
  str,
} from './fhir.js';
import { L, type LabelKey } from './labels.js';
import { Narrative } from './narrative.js';

export interface RecordCtx {
  index: BundleIndex;
  patient?: Resource;
}
export const RecordContext = createContext<RecordCtx | null>(null);

export type T = (key: LabelKey, vars?: Record<string, string | number>) => string;

/** The record's context with the current language's labels and formatters. */
export function useRecord() {
  const ctx = useContext(RecordContext);
  if (!ctx) throw new Error('useRecord outside RecordView');
  const t = useT(L) as T;
  const { lang } = useLang();
  const date = (s: string) => formatDate(s, lang);
  /** A date element as text; undefined when it has none. */
  const dateOf = (v: unknown) => (str(v) ? date(v as string) : undefined);
  const ref = (r: unknown, host?: Resource) => referenceText(r, ctx.index, host);
  const refs = (rs: unknown, host?: Resource) => {
    const parts = arr(rs)
      .map((r) => ref(r, host))
      .filter((s): s is string => !!s);
    return parts.length ? [...new Set(parts)].join('; ') : undefined;
  };
  return { ...ctx, t, lang, date, dateOf, ref, refs };
}

export type Row = [label: string, value: ComponentChildren] | null | undefined | false;

const empty = (v: ComponentChildren) => v == null || v === false || v === '' || (Array.isArray(v) && v.length === 0);

/** A definition list of the rows that have a value. */
export function Fields({ rows, class: cls }: { rows: Row[]; class?: string }) {
  const shown = rows.filter((r): r is [string, ComponentChildren] => !!r && !empty(r[1]));
  if (!shown.length) return null;
  return (
    <dl class={cls ?? 'rv-dl'}>
      {shown.map(([label, value], i) => (
        <div class="rv-dl-row" key={i}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

const FLAG_SYMBOL: Record<Flag, string> = { high: '↑', low: '↓', abnormal: '!', normal: '' };

/** A flag in words and a symbol (never colour alone); normal values are marked in plain text. */
export function FlagBadge({ flag, fromRange }: { flag?: Flag; fromRange?: boolean }) {
  const { t } = useRecord();
  if (!flag) return null;
  if (flag === 'normal') return <span class="rv-flag rv-flag-normal">{t('normal')}</span>;
  return (
    <span class={`rv-flag rv-flag-${flag}`}>
      <span aria-hidden="true">{FLAG_SYMBOL[flag]} </span>
      {t(flag)}
      {fromRange && <span class="visually-hidden"> ({t('outsideRange')})</span>}
    </span>
  );
}

/** A status as recorded (active, final, completed…). */
export function StatusPill({ value }: { value: unknown }) {
  const s = typeof value === 'string' ? value : conceptText(value);
  if (!s) return null;
  return <span class="rv-pill">{s}</span>;
}

const DATE_RE = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** A value of any element, compactly: strings, codings' displays, quantities, references' names, periods… */
export function compact(
  value: unknown,
  c: ReturnType<typeof useRecord>,
  host?: Resource,
  depth = 0,
): ComponentChildren {
  if (value == null) return null;
  if (typeof value === 'string') return DATE_RE.test(value) && value.length > 4 ? c.date(value) : value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? c.t('yes') : c.t('no');
  if (Array.isArray(value)) {
    const parts = value.map((v) => compact(v, c, host, depth + 1)).filter((v) => !empty(v));
    if (parts.every((p) => typeof p === 'string')) return parts.join('; ');
    return <CompactList items={parts} />;
  }
  if (!isObj(value)) return String(value);
  const text = shapeText(value, c, host);
  if (text !== undefined) return text;
  if (str(value.contentType) || str(value.data) || (str(value.url) && (str(value.title) || num(value.size)))) {
    return <AttachmentView attachment={value as fhir4.Attachment} />;
  }
  if (depth >= 3) return '…';
  const rows = Object.entries(value).filter(([k]) => k !== 'id' && k !== 'extension');
  const parts = rows.map(([k, v]) => [k, compact(v, c, host, depth + 1)] as const).filter(([, v]) => !empty(v));
  if (parts.every(([, v]) => typeof v === 'string')) return parts.map(([k, v]) => `${k}: ${v}`).join(', ');
  return <Fields class="rv-dl rv-dl-nested" rows={parts.map(([k, v]) => [k, v])} />;
}

/** The common data types written as text, by their shape; undefined when it is none of them. */
function shapeText(v: Json, c: ReturnType<typeof useRecord>, host?: Resource): string | undefined {
  const lang: Lang = c.lang;
  if (
    'reference' in v ||
    (str(v.display) && Object.keys(v).every((k) => ['display', 'type', 'identifier'].includes(k)))
  )
    return c.ref(v, host);
  if ('coding' in v) return conceptText(v);
  if (Object.keys(v).length === 1 && str(v.text)) return str(v.text);
  if ((str(v.code) || str(v.display)) && ('system' in v || 'display' in v) && !('value' in v)) return codingText(v);
  if (num(v.value) !== undefined && str(v.currency)) return moneyText(v, lang);
  if (num(v.value) !== undefined) return quantityText(v, lang);
  if (str(v.start) || str(v.end)) return periodText(v, c.date);
  if (isObj(v.low) || isObj(v.high)) return rangeText(v, lang);
  if (isObj(v.numerator) || isObj(v.denominator)) return ratioText(v, lang);
  if (str(v.family) || Array.isArray(v.given)) return humanName([v]);
  if (Array.isArray(v.line) || str(v.city) || str(v.postalCode)) {
    return (
      str(v.text) ??
      [...arr(v.line), v.city, v.district, v.state, v.postalCode, v.country].filter((s) => str(s)).join(', ')
    );
  }
  if (str(v.url) && Object.keys(v).some((k) => k.startsWith('value'))) {
    const key = Object.keys(v).find((k) => k.startsWith('value'))!;
    const tail = str(v.url)!.replace(/.*[/#]/, '');
    const inner = v[key];
    const shown = typeof inner === 'object' ? (isObj(inner) ? shapeText(inner, c, host) : undefined) : String(inner);
    return `${tail}: ${shown ?? JSON.stringify(inner).slice(0, 200)}`;
  }
  if (str(v.value) && (str(v.system) || isObj(v.type))) {
    const type = conceptText(v.type);
    return type ? `${type}: ${v.value}` : String(v.value);
  }
  if (str(v.value) && str(v.system) === undefined && Object.keys(v).length <= 3 && str(v.use)) return String(v.value);
  if (str(v.text) && (str(v.authorString) || str(v.time) || isObj(v.authorReference))) return String(v.text);
  return undefined;
}

/** Elements never shown as "more details": they are the resource's machinery, or shown elsewhere. */
const MACHINERY = new Set(['resourceType', 'id', 'meta', 'text', 'implicitRules', 'language', 'contained']);

/** The elements of `resource` that its renderer did not show, generically, behind a "More details" disclosure. */
export function Leftovers({ resource, handled }: { resource: Resource; handled: readonly string[] }) {
  const c = useRecord();
  const j = resource as unknown as Json;
  const skip = new Set([...MACHINERY, ...handled]);
  // The record's patient is in the header: a subject or patient that is them is not repeated.
  for (const k of ['subject', 'patient']) {
    const target = c.index.resolve(j[k], resource);
    if (target && target === c.patient) skip.add(k);
    else if (isObj(j[k]) && c.patient && str((j[k] as Json).display) === humanName((c.patient as unknown as Json).name))
      skip.add(k);
  }
  const rows: Row[] = Object.keys(j)
    .filter((k) => !skip.has(k))
    .map((k) => [k, compact(j[k], c, resource)]);
  const shown = rows.filter((r) => r && !empty(r[1]));
  if (!shown.length) return null;
  return (
    <details class="rv-more">
      <summary>{c.t('moreDetails')}</summary>
      <Fields rows={shown} />
    </details>
  );
}

/** Notes (Annotation[]) as a list of their texts. */
export function notesOf(notes: unknown): ComponentChildren {
  const texts = arr(notes)
    .map((n) => (isObj(n) ? str(n.text) : str(n)))
    .filter((s): s is string => !!s);
  if (!texts.length) return null;
  if (texts.length === 1) return texts[0];
  return <CompactList items={texts} />;
}

/**
 * A table of the record in a focusable scrolling wrapper, `label` naming both for screen readers: its column headers,
 * and `children`, its body's rows.
 */
export function RecordTable({
  label,
  class: cls,
  columns,
  children,
}: {
  label: string;
  class: string;
  columns: string[];
  children: ComponentChildren;
}) {
  const { t } = useRecord();
  return (
    <div class="rv-table-wrap" tabIndex={0} role="group" aria-label={t('scrollTable', { name: label })}>
      <table class={`rv-table ${cls}`}>
        <caption class="visually-hidden">{label}</caption>
        <thead>
          <tr>
            {columns.map((col, i) => (
              <th key={i} scope="col">
                {col}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** Values as a compact list, one an item. */
export function CompactList({ items }: { items: ComponentChildren[] }) {
  return (
    <ul class="rv-compact-list">
      {items.map((s, i) => (
        <li key={i}>{s}</li>
      ))}
    </ul>
  );
}

/** A heading of the given level (2 to 6); any other level (0: inside a table or disclosure) a bold line. */
export function Heading({
  level,
  id,
  class: cls,
  children,
}: {
  level: number;
  id?: string;
  class?: string;
  children: ComponentChildren;
}) {
  if (level < 2 || level > 6) {
    return (
      <p id={id} class={cls}>
        <strong>{children}</strong>
      </p>
    );
  }
  const Tag = `h${level}` as 'h2';
  return (
    <Tag id={id} class={cls}>
      {children}
    </Tag>
  );
}

/** A renderer's frame: a heading, its fields, what it adds, the elements it did not show, and the narrative. */
export function Card(props: {
  resource: Resource;
  level: number;
  title: ComponentChildren;
  status?: unknown;
  rows?: Row[];
  handled: readonly string[];
  children?: ComponentChildren;
  kind?: string;
}) {
  const r = props.resource as unknown as Json;
  return (
    <article class={`rv-item rv-item-${props.resource.resourceType}`}>
      <Heading level={props.level} class="rv-item-title">
        {props.title}
        {props.kind && <span class="rv-kind"> {props.kind}</span>}
        {props.status !== undefined && (
          <>
            {' '}
            <StatusPill value={props.status} />
          </>
        )}
      </Heading>
      {props.rows && <Fields rows={props.rows} />}
      {props.children}
      <Leftovers resource={props.resource} handled={[...props.handled, 'status']} />
      <Narrative text={r.text} />
    </article>
  );
}
