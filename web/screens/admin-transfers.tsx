/** Admin: health-information transfers (pushes to viewers), newest first, by status or consent. */
import { useEffect, useState } from 'preact/hooks';
import { formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { useApp } from '../components/app-context.js';
import { common, statusLabel, transferStatusLabels } from '../components/labels.js';
import { ErrorNotice, Loading, TransferBadge } from '../components/notices.js';
import { href, navigate, type Route } from '../components/route.js';
import { ScrollTable } from '../components/scroll-table.js';
import { Title } from '../components/title.js';
import { TRANSFER_STATUSES, type Transfer, type TransferPage, nextPath } from '../components/types.js';
import { useAsync } from '../components/use-async.js';

const labels: Labels<
  | 'title'
  | 'intro'
  | 'filters'
  | 'consent'
  | 'consentHint'
  | 'table'
  | 'transaction'
  | 'pages'
  | 'pagesOf'
  | 'careContexts'
  | 'created'
  | 'updated'
  | 'times'
  | 'error'
  | 'none'
  | 'count'
  | 'allStatuses'
> = {
  en: {
    title: 'Transfers',
    intro: 'Health-information transfers to viewers, newest first.',
    filters: 'Filter transfers',
    consent: 'Consent id',
    consentHint: 'Only the transfers under this consent',
    table: 'Transfers',
    transaction: 'Transaction id',
    pages: 'Pages sent',
    pagesOf: '{sent} of {total}',
    careContexts: 'Care contexts',
    created: 'Created',
    updated: 'Updated',
    times: 'Created / updated',
    error: 'Error',
    none: 'No transfers match.',
    count: '{count} transfers shown',
    allStatuses: 'All statuses',
  },
  hi: {
    title: 'स्थानांतरण',
    intro: 'दर्शकों को स्वास्थ्य-सूचना के स्थानांतरण, नवीनतम पहले।',
    filters: 'स्थानांतरण छाँटें',
    consent: 'सहमति आईडी',
    consentHint: 'केवल इस सहमति के तहत स्थानांतरण',
    table: 'स्थानांतरण',
    transaction: 'लेन-देन आईडी',
    pages: 'भेजे गए पृष्ठ',
    pagesOf: '{total} में से {sent}',
    careContexts: 'देखभाल संदर्भ',
    created: 'बनाया गया',
    updated: 'अद्यतन',
    times: 'बनाया / अद्यतन',
    error: 'त्रुटि',
    none: 'कोई स्थानांतरण मेल नहीं खाता।',
    count: '{count} स्थानांतरण दिखाए गए',
    allStatuses: 'सभी स्थितियाँ',
  },
};

export function AdminTransfers({ route }: { route: Route }) {
  const { lang } = useLang();
  const t = useT(labels);
  const tc = useT(common);
  const { api } = useApp();
  const status = route.query.get('status') ?? '';
  const consentId = route.query.get('consentId') ?? '';
  const [form, setForm] = useState({ status, consentId });
  useEffect(() => setForm({ status, consentId }), [status, consentId]);
  const path = (() => {
    const p = new URLSearchParams();
    if (consentId) p.set('consentId', consentId);
    if (status) p.set('status', status);
    p.set('_count', '50');
    return `/admin/health-information/transactions?${p}`;
  })();
  const [rows, setRows] = useState<{ path: string; items: Transfer[]; next?: string }>({ path: '', items: [] });
  const first = useAsync(() => api.get<TransferPage>(path), [api, path]);
  useEffect(() => {
    if (first.data) setRows({ path, items: first.data.transactions, next: first.data.next });
  }, [first.data]);
  const [more, setMore] = useState<{ loading: boolean; error?: unknown }>({ loading: false });
  const loadMore = async () => {
    if (!rows.next) return;
    setMore({ loading: true });
    try {
      const page = await api.get<TransferPage>(nextPath(path, rows.next));
      setRows({ path, items: [...rows.items, ...page.transactions], next: page.next });
      setMore({ loading: false });
    } catch (error) {
      setMore({ loading: false, error });
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const q: Record<string, string> = {};
    if (form.status) q.status = form.status;
    if (form.consentId.trim()) q.consentId = form.consentId.trim();
    navigate(href(['admin', 'transfers'], q));
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
              {TRANSFER_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {statusLabel(transferStatusLabels, s, lang)}
                </option>
              ))}
            </select>
          </div>
          <div class="field field-wide">
            <label for="f-consent">{t('consent')}</label>
            <input
              id="f-consent"
              value={form.consentId}
              autocomplete="off"
              spellcheck={false}
              aria-describedby="f-consent-hint"
              onInput={(e) => setForm({ ...form, consentId: (e.currentTarget as HTMLInputElement).value })}
            />
            <p class="hint" id="f-consent-hint">
              {t('consentHint')}
            </p>
          </div>
        </div>
        <div class="actions">
          <button type="submit" class="button button-primary">
            {tc('apply')}
          </button>
          {(status || consentId) && (
            <a class="button" href={href(['admin', 'transfers'])}>
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
                  <th scope="col">{tc('status')}</th>
                  <th scope="col">{t('transaction')}</th>
                  <th scope="col">{tc('consentId')}</th>
                  <th scope="col">{t('pages')}</th>
                  <th scope="col">{t('careContexts')}</th>
                  <th scope="col">{t('times')}</th>
                  <th scope="col">{t('error')}</th>
                </tr>
              </thead>
              <tbody>
                {items.map((tx) => {
                  const ccs = Object.entries(tx.careContexts ?? {});
                  return (
                    <tr key={tx.transactionId}>
                      <td>
                        <TransferBadge status={tx.status} />
                      </td>
                      <td class="id">{tx.transactionId}</td>
                      <td class="id">{tx.consentId}</td>
                      <td class="num">{t('pagesOf', { sent: tx.pagesSent ?? 0, total: tx.pageCount ?? 0 })}</td>
                      <td>
                        {ccs.length === 0 ? (
                          <span class="muted">—</span>
                        ) : (
                          <ul class="plain cc-statuses">
                            {ccs.map(([ref, s]) => (
                              <li key={ref}>
                                <span class="id">{ref}</span> <TransferBadge status={s} />
                              </li>
                            ))}
                          </ul>
                        )}
                      </td>
                      <td class="when">
                        <span class="when-line">
                          <span class="meta-label">{t('created')}: </span>
                          {formatDate(tx.createdAt, lang, true)}
                        </span>
                        <span class="when-line">
                          <span class="meta-label">{t('updated')}: </span>
                          {formatDate(tx.updatedAt, lang, true)}
                        </span>
                      </td>
                      <td class="error-cell">{tx.error ?? <span class="muted">—</span>}</td>
                    </tr>
                  );
                })}
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
