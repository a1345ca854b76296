/** A provider's search of its own records: by patient, care context, record type and dates; results newest first. */
import { useEffect, useState } from 'preact/hooks';
import { type Labels, useLang, useT } from '../i18n.js';
import { HI_TYPES, hiTypeLabel } from '../record/summary.js';
import { useApp } from '../components/app-context.js';
import { common } from '../components/labels.js';
import { type LoadedRecord, loadedFromEntry } from '../components/loaded.js';
import { ErrorNotice, Loading } from '../components/notices.js';
import { RecordItem } from '../components/record-item.js';
import { href, navigate, type Route } from '../components/route.js';
import { TextField } from '../components/text-field.js';
import { Title } from '../components/title.js';
import { useAsync } from '../components/use-async.js';

export const searchLabels: Labels<
  | 'title'
  | 'intro'
  | 'form'
  | 'patient'
  | 'patientHint'
  | 'careContext'
  | 'careContextHint'
  | 'type'
  | 'anyType'
  | 'from'
  | 'to'
  | 'search'
  | 'clear'
  | 'results'
  | 'latest'
  | 'count'
  | 'countOf'
  | 'none'
  | 'badRange'
> = {
  en: {
    title: 'Records',
    intro: "Your facility's records. Search by patient, care context, record type or date.",
    form: 'Search records',
    patient: 'ABHA number or ABHA address',
    patientHint: 'For example 91-4417-2093-5586 or ravi.kumar@sbx',
    careContext: 'Care context',
    careContextHint: 'Its reference number, exactly as uploaded, for example OP-2024-000123',
    type: 'Record type',
    anyType: 'Any type',
    from: 'Dated from',
    to: 'Dated to',
    search: 'Search',
    clear: 'Clear',
    results: 'Results',
    latest: 'Latest records',
    count: '{total} records',
    countOf: 'Showing {shown} of {total} records',
    none: 'No records match this search.',
    badRange: '"Dated from" must not be after "Dated to".',
  },
  hi: {
    title: 'रिकॉर्ड',
    intro: 'आपके संस्थान के रिकॉर्ड। मरीज़, देखभाल संदर्भ, रिकॉर्ड प्रकार या तारीख़ से खोजें।',
    form: 'रिकॉर्ड खोजें',
    patient: 'ABHA नंबर या ABHA पता',
    patientHint: 'जैसे 91-4417-2093-5586 या ravi.kumar@sbx',
    careContext: 'देखभाल संदर्भ',
    careContextHint: 'उसका संदर्भ नंबर, ठीक वैसा जैसा अपलोड किया गया, जैसे OP-2024-000123',
    type: 'रिकॉर्ड का प्रकार',
    anyType: 'कोई भी प्रकार',
    from: 'इस तारीख़ से',
    to: 'इस तारीख़ तक',
    search: 'खोजें',
    clear: 'साफ़ करें',
    results: 'परिणाम',
    latest: 'नवीनतम रिकॉर्ड',
    count: '{total} रिकॉर्ड',
    countOf: '{total} में से {shown} रिकॉर्ड दिखाए जा रहे हैं',
    none: 'इस खोज से कोई रिकॉर्ड मेल नहीं खाता।',
    badRange: '"इस तारीख़ से" "इस तारीख़ तक" के बाद नहीं हो सकती।',
  },
};

const FIELDS = ['patient', 'careContext', 'type', 'from', 'to'] as const;
type Field = (typeof FIELDS)[number];
type Query = Record<Field, string>;

const queryOf = (params: URLSearchParams): Query =>
  Object.fromEntries(FIELDS.map((f) => [f, params.get(f) ?? ''])) as Query;

/** The API's search of a query (its hash form: patient, careContext, type, from, to). */
function searchPath(q: Query): string {
  const p = new URLSearchParams();
  if (q.patient) p.set('patient-abha', q.patient);
  if (q.careContext) p.set('care-context', q.careContext);
  if (q.type) p.set('type', q.type);
  if (q.from) p.append('date', `ge${q.from}`);
  if (q.to) p.append('date', `le${q.to}`);
  p.set('_count', '50');
  return `/fhir/Bundle?${p}`;
}

interface Page {
  records: LoadedRecord[];
  total?: number;
  next?: string;
}

const pageOf = (bundle: fhir4.Bundle): Page => ({
  records: (bundle.entry ?? []).map(loadedFromEntry).filter((r): r is LoadedRecord => r !== null),
  total: bundle.total,
  next: bundle.link?.find((l) => l.relation === 'next')?.url,
});

export function RecordsSearch({ route }: { route: Route }) {
  const { lang } = useLang();
  const t = useT(searchLabels);
  const tc = useT(common);
  const { api, rememberCareContexts } = useApp();
  const applied = queryOf(route.query);
  const appliedKey = JSON.stringify(applied);
  const [form, setForm] = useState<Query>(applied);
  const [formError, setFormError] = useState('');
  useEffect(() => setForm(queryOf(route.query)), [appliedKey]);

  const first = useAsync(async () => {
    const page = pageOf(await api.get<fhir4.Bundle>(searchPath(applied)));
    rememberCareContexts(page.records);
    return page;
  }, [api, appliedKey]);
  const [more, setMore] = useState<{ key: string; pages: Page[]; loading: boolean; error?: unknown }>({
    key: '',
    pages: [],
    loading: false,
  });
  const extra = more.key === appliedKey ? more.pages : [];
  const last = extra.length ? extra[extra.length - 1] : first.data;
  const records = [...(first.data?.records ?? []), ...extra.flatMap((p) => p.records)];

  const loadMore = async () => {
    if (!last?.next) return;
    const pages = extra;
    setMore({ key: appliedKey, pages, loading: true });
    try {
      const page = pageOf(await api.get<fhir4.Bundle>(last.next));
      rememberCareContexts(page.records);
      setMore({ key: appliedKey, pages: [...pages, page], loading: false });
    } catch (error) {
      setMore({ key: appliedKey, pages, loading: false, error });
    }
  };

  const submit = (e: Event) => {
    e.preventDefault();
    if (form.from && form.to && form.from > form.to) {
      setFormError(t('badRange'));
      return;
    }
    setFormError('');
    const q: Record<string, string> = {};
    for (const f of FIELDS) if (form[f].trim()) q[f] = form[f].trim();
    navigate(href(['records'], q));
  };
  const set = (f: Field) => (e: Event) => setForm({ ...form, [f]: (e.currentTarget as HTMLInputElement).value });
  const searched = FIELDS.some((f) => applied[f]);
  const total = first.data?.total;

  return (
    <>
      <Title text={t('title')} />
      <p>{t('intro')}</p>
      <form class="form card search-form" onSubmit={submit} aria-labelledby="search-form-title" noValidate>
        <h2 id="search-form-title">{t('form')}</h2>
        <div class="form-grid">
          <TextField
            id="q-patient"
            label={t('patient')}
            hint={t('patientHint')}
            value={form.patient}
            onInput={set('patient')}
            wide
          />
          <TextField
            id="q-care-context"
            label={t('careContext')}
            hint={t('careContextHint')}
            value={form.careContext}
            onInput={set('careContext')}
          />
          <div class="field">
            <label for="q-type">{t('type')}</label>
            <select id="q-type" value={form.type} onChange={set('type')}>
              <option value="">{t('anyType')}</option>
              {HI_TYPES.map((h) => (
                <option key={h.hiType} value={h.hiType}>
                  {hiTypeLabel(h.hiType, lang)}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="q-from">{t('from')}</label>
            <input id="q-from" type="date" value={form.from} onInput={set('from')} />
          </div>
          <div class="field">
            <label for="q-to">{t('to')}</label>
            <input id="q-to" type="date" value={form.to} onInput={set('to')} />
          </div>
        </div>
        {formError && (
          <div class="notice notice-error" role="alert">
            <p>{formError}</p>
          </div>
        )}
        <div class="actions">
          <button type="submit" class="button button-primary">
            {t('search')}
          </button>
          {searched && (
            <a class="button" href={href(['records'])}>
              {t('clear')}
            </a>
          )}
        </div>
      </form>
      <section aria-labelledby="results-title">
        <h2 id="results-title">{searched ? t('results') : t('latest')}</h2>
        {first.loading && <Loading />}
        {first.error !== undefined && <ErrorNotice error={first.error} onRetry={first.reload} />}
        {first.data && (
          <>
            <p class="muted" role="status">
              {records.length === 0
                ? t('none')
                : total !== undefined && total > records.length
                  ? t('countOf', { shown: records.length, total })
                  : t('count', { total: records.length })}
            </p>
            <ul class="record-list">
              {records.map((r) => (
                <li key={r.recordId}>
                  <RecordItem record={r} href={href(['records', r.recordId])} showPatient />
                </li>
              ))}
            </ul>
            {more.key === appliedKey && more.error !== undefined && <ErrorNotice error={more.error} />}
            {last?.next && (
              <button type="button" class="button" onClick={loadMore} disabled={more.loading}>
                {more.loading ? tc('loading') : tc('showMore')}
              </button>
            )}
          </>
        )}
      </section>
    </>
  );
}
