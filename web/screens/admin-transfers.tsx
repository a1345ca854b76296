/** Admin: health-information transfers (pushes to viewers), newest first, by status or consent. */
import { formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { AdminList } from '../components/admin-list.js';
import { common, transferStatusLabels } from '../components/labels.js';
import { TransferBadge } from '../components/notices.js';
import type { Route } from '../components/route.js';
import { TRANSFER_STATUSES, type Transfer, type TransferPage } from '../components/types.js';

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

function TransferRow({ tx }: { tx: Transfer }) {
  const { lang } = useLang();
  const t = useT(labels);
  const ccs = Object.entries(tx.careContexts ?? {});
  return (
    <tr>
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
}

export function AdminTransfers({ route }: { route: Route }) {
  const t = useT(labels);
  const tc = useT(common);
  return (
    <AdminList<Transfer, TransferPage>
      route={route}
      screen="transfers"
      statuses={TRANSFER_STATUSES}
      statusLabels={transferStatusLabels}
      filter={{ key: 'consentId', id: 'f-consent', label: t('consent'), hint: t('consentHint') }}
      t={t}
      apiPath="/admin/health-information/transactions"
      apiParams={['consentId', 'status']}
      itemsOf={(page) => page.transactions}
      columns={[tc('status'), t('transaction'), tc('consentId'), t('pages'), t('careContexts'), t('times'), t('error')]}
      row={(tx) => <TransferRow key={tx.transactionId} tx={tx} />}
    />
  );
}
