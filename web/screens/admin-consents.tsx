/** Admin: every consent, newest first by its last status change, by status or patient, with its status history. */
import { useEffect, useState } from 'preact/hooks';
import { formatAbha, formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { useApp } from '../components/app-context.js';
import { common, consentStatusLabels, statusLabel } from '../components/labels.js';
import { ConsentBadge, ErrorNotice, Loading } from '../components/notices.js';
import { href, navigate, type Route } from '../components/route.js';
import { ScrollTable } from '../components/scroll-table.js';
import { Title } from '../components/title.js';
import { CONSENT_STATUSES, type Consent, type ConsentPage, nextPath } from '../components/types.js';
import { useAsync } from '../components/use-async.js';

const labels: Labels<
  | 'title'
  | 'intro'
  | 'filters'
  | 'patientHint'
  | 'table'
  | 'statusAt'
  | 'hiu'
  | 'history'
  | 'of'
  | 'none'
  | 'count'
  | 'allStatuses'
  | 'notKept'
  | 'effective'
> = {
  en: {
    title: 'Consents',
    intro: 'Every consent the consent manager has notified, newest status change first.',
    filters: 'Filter consents',
    patientHint: 'ABHA number or ABHA address',
    table: 'Consents',
    statusAt: 'Status since',
    hiu: 'Viewer (HIU)',
    history: 'History',
    of: 'of consent {id}',
    none: 'No consents match.',
    count: '{count} consents shown',
    allStatuses: 'All statuses',
    notKept: 'Not kept',
    effective: 'in effect: {status}',
  },
  hi: {
    title: 'सहमतियाँ',
    intro: 'सहमति प्रबंधक द्वारा सूचित हर सहमति, नवीनतम स्थिति परिवर्तन पहले।',
    filters: 'सहमतियाँ छाँटें',
    patientHint: 'ABHA नंबर या ABHA पता',
    table: 'सहमतियाँ',
    statusAt: 'स्थिति कब से',
    hiu: 'दर्शक (HIU)',
    history: 'इतिहास',
    of: '(सहमति {id})',
    none: 'कोई सहमति मेल नहीं खाती।',
    count: '{count} सहमतियाँ दिखाई गईं',
    allStatuses: 'सभी स्थितियाँ',
    notKept: 'रखा नहीं गया',
    effective: 'प्रभावी: {status}',
  },
};

function ConsentRow({ consent }: { consent: Consent }) {
  const { lang } = useLang();
  const t = useT(labels);
  const [open, setOpen] = useState(false);
  const patient = consent.terms?.patient ?? consent.patient;
  const historyId = `history-${consent.id}`;
  return (
    <>
      <tr>
        <td class="id">{consent.id}</td>
        <td>
          <ConsentBadge status={consent.status} />
          {consent.effectiveStatus !== consent.status && (
            <span class="small">
              {' '}
              ({t('effective', { status: statusLabel(consentStatusLabels, consent.effectiveStatus, lang) })})
            </span>
          )}
        </td>
        <td class="when">{formatDate(consent.statusAt, lang, true)}</td>
        {patient ? <td class="id">{formatAbha(patient)}</td> : <td class="muted">{t('notKept')}</td>}
        {(consent.hiu ?? consent.terms?.hiu) ? (
          <td class="id">{consent.hiu ?? consent.terms?.hiu}</td>
        ) : (
          <td class="muted">—</td>
        )}
        <td>
          <button
            type="button"
            class="button button-small"
            aria-expanded={open}
            aria-controls={historyId}
            onClick={() => setOpen(!open)}
          >
            {t('history')} ({consent.history.length})<span class="visually-hidden"> {t('of', { id: consent.id })}</span>
            <span aria-hidden="true">{open ? ' ▴' : ' ▾'}</span>
          </button>
        </td>
      </tr>
      <tr id={historyId} class="history-row" hidden={!open}>
        <td colSpan={6}>
          <ol class="history">
            {consent.history.map((h, i) => (
              <li key={i}>
                <span class="history-status">{statusLabel(consentStatusLabels, h.status, lang)}</span>
                <span class="history-at">{formatDate(h.at, lang, true)}</span>
              </li>
            ))}
          </ol>
        </td>
      </tr>
    </>
  );
}

export function AdminConsents({ route }: { route: Route }) {
  const { lang } = useLang();
  const t = useT(labels);
  const tc = useT(common);
  const { api } = useApp();
  const status = route.query.get('status') ?? '';
  const patient = route.query.get('patient') ?? '';
  const [form, setForm] = useState({ status, patient });
  useEffect(() => setForm({ status, patient }), [status, patient]);
  const path = (() => {
    const p = new URLSearchParams();
    if (status) p.set('status', status);
    if (patient) p.set('patient', patient);
    p.set('_count', '50');
    return `/consents?${p}`;
  })();
  const [rows, setRows] = useState<{ path: string; items: Consent[]; next?: string }>({ path: '', items: [] });
  const first = useAsync(() => api.get<ConsentPage>(path), [api, path]);
  useEffect(() => {
    if (first.data) setRows({ path, items: first.data.consents, next: first.data.next });
  }, [first.data]);
  const [more, setMore] = useState<{ loading: boolean; error?: unknown }>({ loading: false });
  const loadMore = async () => {
    if (!rows.next) return;
    setMore({ loading: true });
    try {
      const page = await api.get<ConsentPage>(nextPath(path, rows.next));
      setRows({ path, items: [...rows.items, ...page.consents], next: page.next });
      setMore({ loading: false });
    } catch (error) {
      setMore({ loading: false, error });
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const q: Record<string, string> = {};
    if (form.status) q.status = form.status;
    if (form.patient.trim()) q.patient = form.patient.trim();
    navigate(href(['admin', 'consents'], q));
  };
  const items = rows.path === path ? rows.items : [];

  return (
    <>
      <Title text={t('title')} />
      <p>{t('intro')}</p>
      <form class="form card filters" onSubmit={submit} aria-label={t('filters')}>
        <div class="form-grid">
          <div class="field">
            <label for="f-status">{tc('status')}</label>
            <select
              id="f-status"
              value={form.status}
              onChange={(e) => setForm({ ...form, status: (e.currentTarget as HTMLSelectElement).value })}
            >
              <option value="">{t('allStatuses')}</option>
              {CONSENT_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {statusLabel(consentStatusLabels, s, lang)}
                </option>
              ))}
            </select>
          </div>
          <div class="field field-wide">
            <label for="f-patient">{tc('patient')}</label>
            <input
              id="f-patient"
              value={form.patient}
              autocomplete="off"
              spellcheck={false}
              aria-describedby="f-patient-hint"
              onInput={(e) => setForm({ ...form, patient: (e.currentTarget as HTMLInputElement).value })}
            />
            <p class="hint" id="f-patient-hint">
              {t('patientHint')}
            </p>
          </div>
        </div>
        <div class="actions">
          <button type="submit" class="button button-primary">
            {tc('apply')}
          </button>
          {(status || patient) && (
            <a class="button" href={href(['admin', 'consents'])}>
              {tc('clear')}
            </a>
          )}
        </div>
      </form>
      {first.loading && <Loading />}
      {first.error !== undefined && <ErrorNotice error={first.error} onRetry={first.reload} />}
      {first.data && items.length === 0 && <p>{t('none')}</p>}
      {items.length > 0 && (
        <>
          <p class="muted" role="status">
            {t('count', { count: items.length })}
          </p>
          <ScrollTable label={t('table')}>
            <table class="data-table">
              <thead>
                <tr>
                  <th scope="col">{tc('consentId')}</th>
                  <th scope="col">{tc('status')}</th>
                  <th scope="col">{t('statusAt')}</th>
                  <th scope="col">{tc('patient')}</th>
                  <th scope="col">{t('hiu')}</th>
                  <th scope="col">{t('history')}</th>
                </tr>
              </thead>
              <tbody>
                {items.map((c) => (
                  <ConsentRow key={c.id} consent={c} />
                ))}
              </tbody>
            </table>
          </ScrollTable>
          {more.error !== undefined && <ErrorNotice error={more.error} />}
          {rows.next && (
            <button type="button" class="button" onClick={loadMore} disabled={more.loading}>
              {more.loading ? tc('loading') : tc('showMore')}
            </button>
          )}
        </>
      )}
    </>
  );
}
