/**
 * A consent's records as a timeline: a filter by record type (with counts), then the records newest first, grouped by
 * care context (the visit) and, within one, by day.
 */
import { dayOf, formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { HI_TYPES, hiTypeLabel } from '../record/summary.js';
import { common } from './labels.js';
import { type LoadedRecord, newestFirst } from './loaded.js';
import { RecordItem } from './record-item.js';

const labels: Labels<
  'filter' | 'all' | 'noneChosen' | 'showing' | 'timeline' | 'noRecords' | 'noDate' | 'showAll' | 'hideAll' | 'code'
> = {
  en: {
    filter: 'Record types',
    all: 'All types',
    noneChosen: 'No record type is chosen. Choose one or more above.',
    showing: 'Showing {shown} of {total} records',
    timeline: 'Timeline',
    noRecords: 'No records.',
    noDate: 'No date',
    showAll: 'Show all types',
    hideAll: 'Hide all types',
    code: 'Reference',
  },
  hi: {
    filter: 'रिकॉर्ड के प्रकार',
    all: 'सभी प्रकार',
    noneChosen: 'कोई रिकॉर्ड प्रकार नहीं चुना गया। ऊपर से एक या अधिक चुनें।',
    showing: '{total} में से {shown} रिकॉर्ड दिखाए जा रहे हैं',
    timeline: 'समय-रेखा',
    noRecords: 'कोई रिकॉर्ड नहीं।',
    noDate: 'तारीख़ नहीं',
    showAll: 'सभी प्रकार दिखाएँ',
    hideAll: 'सभी प्रकार छिपाएँ',
    code: 'संदर्भ',
  },
};

interface Group<T> {
  key: string;
  items: T[];
}

function groupBy<T>(items: T[], key: (t: T) => string): Group<T>[] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return [...groups].map(([k, list]) => ({ key: k, items: list }));
}

export function TypeFilter({
  records,
  hidden,
  onChange,
}: {
  records: LoadedRecord[];
  hidden: string[];
  onChange: (hidden: string[]) => void;
}) {
  const { lang } = useLang();
  const t = useT(labels);
  // In the order ABDM lists the types (the same in either language), any other type after them.
  const order = (type: string) => {
    const i = HI_TYPES.findIndex((h) => h.hiType === type);
    return i < 0 ? HI_TYPES.length : i;
  };
  const counts = groupBy(records, (r) => r.hiType).sort(
    (a, b) => order(a.key) - order(b.key) || (a.key < b.key ? -1 : 1),
  );
  const toggle = (type: string, shown: boolean) =>
    onChange(shown ? hidden.filter((h) => h !== type) : [...hidden, type]);
  return (
    <fieldset class="type-filter">
      <legend>{t('filter')}</legend>
      <div class="type-filter-options">
        {counts.map((g) => {
          const id = `type-${g.key || 'unknown'}`;
          return (
            <span class="check" key={g.key}>
              <input
                type="checkbox"
                id={id}
                checked={!hidden.includes(g.key)}
                onChange={(e) => toggle(g.key, (e.currentTarget as HTMLInputElement).checked)}
              />
              <label for={id}>
                {g.key ? hiTypeLabel(g.key, lang) : '—'} <span class="count">({g.items.length})</span>
              </label>
            </span>
          );
        })}
      </div>
      {counts.length > 1 && (
        <div class="type-filter-all">
          <button type="button" class="button button-small" onClick={() => onChange([])} disabled={hidden.length === 0}>
            {t('showAll')}
          </button>
          <button
            type="button"
            class="button button-small"
            onClick={() => onChange(counts.map((g) => g.key))}
            disabled={hidden.length >= counts.length}
          >
            {t('hideAll')}
          </button>
        </div>
      )}
    </fieldset>
  );
}

export function Timeline({
  records,
  hidden,
  linkOf,
  headingLevel = 2,
}: {
  records: LoadedRecord[];
  hidden: string[];
  linkOf: (r: LoadedRecord) => string;
  headingLevel?: 2 | 3;
}) {
  const { lang } = useLang();
  const t = useT(labels);
  const tc = useT(common);
  const shown = records.filter((r) => !hidden.includes(r.hiType)).sort(newestFirst);
  const H = `h${headingLevel}` as 'h2';
  const H2 = `h${headingLevel + 1}` as 'h3';
  const H3 = `h${headingLevel + 2}` as 'h4';
  // Care contexts ordered by their newest record; records are already newest first, so the first seen is newest.
  const contexts = groupBy(shown, (r) => r.careContext?.code ?? '');
  return (
    <section class="timeline" aria-labelledby="timeline-title">
      <H id="timeline-title">{t('timeline')}</H>
      <p class="muted" role="status">
        {t('showing', { shown: shown.length, total: records.length })}
      </p>
      {records.length === 0 && <p>{t('noRecords')}</p>}
      {records.length > 0 && shown.length === 0 && <p>{t('noneChosen')}</p>}
      {contexts.map((ctx) => {
        const cc = ctx.items[0].careContext;
        return (
          <section class="care-context" key={ctx.key}>
            <H2 class="care-context-title">
              {cc ? (cc.display ?? cc.code) : tc('careContextUnknown')}
              {cc?.display && (
                <span class="care-context-code">
                  {' '}
                  <span class="visually-hidden">{t('code')}: </span>
                  {cc.code}
                </span>
              )}
            </H2>
            {groupBy(ctx.items, (r) => (r.summary.date ? dayOf(r.summary.date) : '')).map((day) => (
              <div class="day" key={day.key}>
                <H3 class="day-title">{day.key ? formatDate(day.key, lang, false) : t('noDate')}</H3>
                <ul class="record-list">
                  {day.items.map((r) => (
                    <li key={r.recordId}>
                      <RecordItem record={r} href={linkOf(r)} />
                    </li>
                  ))}
                </ul>
              </div>
            ))}
          </section>
        );
      })}
    </section>
  );
}
