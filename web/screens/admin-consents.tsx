/** Admin: every consent, newest first by its last status change, by status or patient, with its status history. */
import { useState } from 'preact/hooks';
import { formatAbha, formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { AdminList } from '../components/admin-list.js';
import { StatusHistory } from '../components/consent-summary.js';
import { common, consentStatusLabels, statusLabel } from '../components/labels.js';
import { ConsentBadge } from '../components/notices.js';
import type { Route } from '../components/route.js';
import { CONSENT_STATUSES, type Consent, type ConsentPage } from '../components/types.js';

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
          <StatusHistory consent={consent} />
        </td>
      </tr>
    </>
  );
}

export function AdminConsents({ route }: { route: Route }) {
  const t = useT(labels);
  const tc = useT(common);
  return (
    <AdminList<Consent, ConsentPage>
      route={route}
      screen="consents"
      statuses={CONSENT_STATUSES}
      statusLabels={consentStatusLabels}
      filter={{ key: 'patient', id: 'f-patient', label: tc('patient'), hint: t('patientHint') }}
      t={t}
      apiPath="/consents"
      apiParams={['status', 'patient']}
      itemsOf={(page) => page.consents}
      columns={[tc('consentId'), tc('status'), t('statusAt'), tc('patient'), t('hiu'), t('history')]}
      row={(c) => <ConsentRow key={c.id} consent={c} />}
    />
  );
}
