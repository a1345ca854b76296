/**
 * One consent: what it allows and, while it is usable, its records (loaded once per visit: each search is a pull
 * against its frequency), as a timeline with trends; one record of them, from what was loaded.
 */
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { ApiError } from '../api.js';
import { formatDate } from '../format.js';
import { type Labels, useLang, useT } from '../i18n.js';
import { RecordView } from '../record/record-view.js';
import { Trends } from '../trends/trend-chart.js';
import { useApp } from '../components/app-context.js';
import { ConsentTerms, consentPatient, formatReset, StatusHistory } from '../components/consent-summary.js';
import { common } from '../components/labels.js';
import { ConsentBadge, ErrorNotice, Loading } from '../components/notices.js';
import { href } from '../components/route.js';
import { Timeline, TypeFilter } from '../components/timeline.js';
import { recordHeading } from '../components/record-item.js';
import { Title } from '../components/title.js';
import type { Consent } from '../components/types.js';
import { useAsync } from '../components/use-async.js';

const labels: Labels<
  | 'title'
  | 'titleUnknown'
  | 'back'
  | 'revoked'
  | 'expired'
  | 'denied'
  | 'history'
  | 'loadingRecords'
  | 'loadedAt'
  | 'refresh'
  | 'refreshNote'
  | 'usedUp'
  | 'usedUpUntil'
  | 'usedUpLater'
  | 'backToTimeline'
  | 'recordTitle'
  | 'notLoaded'
  | 'notUsable'
  | 'consentFor'
> = {
  en: {
    title: 'Consent for {patient}',
    titleUnknown: 'Consent',
    back: 'All consents',
    revoked: 'This consent was revoked on {date}. No records can be shown.',
    expired: 'This consent expired on {date}. No records can be shown.',
    denied: 'This consent was denied on {date}. No records can be shown.',
    history: 'Status history',
    loadingRecords: 'Loading the records this consent allows…',
    loadedAt: 'Loaded {count} records at {time}.',
    refresh: 'Refresh records',
    refreshNote: 'Refreshing uses one pull of this consent.',
    usedUp: 'No pulls are left under this consent for now.',
    usedUpUntil: 'No pulls are left under this consent until {time}.',
    usedUpLater: 'Its records were not loaded in this visit. Open this consent again after that time.',
    backToTimeline: 'Back to timeline',
    recordTitle: 'Record',
    notLoaded: 'This record is not among the records loaded under this consent.',
    notUsable: 'This consent cannot be used now, so its records cannot be shown.',
    consentFor: 'Under the consent for {patient}',
  },
  hi: {
    title: '{patient} की सहमति',
    titleUnknown: 'सहमति',
    back: 'सभी सहमतियाँ',
    revoked: 'यह सहमति {date} को रद्द कर दी गई थी। कोई रिकॉर्ड नहीं दिखाया जा सकता।',
    expired: 'यह सहमति {date} को समाप्त हो गई। कोई रिकॉर्ड नहीं दिखाया जा सकता।',
    denied: 'यह सहमति {date} को अस्वीकार कर दी गई थी। कोई रिकॉर्ड नहीं दिखाया जा सकता।',
    history: 'स्थिति का इतिहास',
    loadingRecords: 'इस सहमति के तहत अनुमत रिकॉर्ड लोड हो रहे हैं…',
    loadedAt: '{time} पर {count} रिकॉर्ड लोड किए गए।',
    refresh: 'रिकॉर्ड ताज़ा करें',
    refreshNote: 'ताज़ा करने पर इस सहमति का एक अनुरोध उपयोग होता है।',
    usedUp: 'अभी इस सहमति के तहत कोई अनुरोध शेष नहीं है।',
    usedUpUntil: '{time} तक इस सहमति के तहत कोई अनुरोध शेष नहीं है।',
    usedUpLater: 'इस बार इसके रिकॉर्ड लोड नहीं किए गए। उस समय के बाद यह सहमति फिर से खोलें।',
    backToTimeline: 'समय-रेखा पर वापस जाएँ',
    recordTitle: 'रिकॉर्ड',
    notLoaded: 'यह रिकॉर्ड इस सहमति के तहत लोड किए गए रिकॉर्ड में नहीं है।',
    notUsable: 'यह सहमति अभी उपयोग नहीं की जा सकती, इसलिए इसके रिकॉर्ड नहीं दिखाए जा सकते।',
    consentFor: '{patient} की सहमति के तहत',
  },
};

/** When a consent ended, as its banner says it: its erase time for one still GRANTED past it, else its status time. */
function endedAt(consent: Consent): string {
  return consent.status === 'GRANTED' && consent.terms ? consent.terms.dataEraseAt : consent.statusAt;
}

function EndedBanner({ consent }: { consent: Consent }) {
  const { lang } = useLang();
  const t = useT(labels);
  const key =
    consent.effectiveStatus === 'REVOKED' ? 'revoked' : consent.effectiveStatus === 'DENIED' ? 'denied' : 'expired';
  return (
    <div class={`banner banner-${consent.effectiveStatus.toLowerCase()}`}>
      <p>
        <strong>{t(key, { date: formatDate(endedAt(consent), lang, true) })}</strong>
      </p>
    </div>
  );
}

/** The seconds a refusal says to wait (Retry-After), when the client exposes it. */
function retryAfterOf(error: unknown): number | undefined {
  const value = (error as { retryAfter?: unknown } | null)?.retryAfter;
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function RecordsError({ error, consent, onRetry }: { error: unknown; consent?: Consent; onRetry: () => void }) {
  const { lang } = useLang();
  const t = useT(labels);
  if (error instanceof ApiError && error.status === 429) {
    const after = retryAfterOf(error);
    const until =
      after !== undefined
        ? new Date(Date.now() + after * 1000).toISOString()
        : consent?.usage && consent.usage.remaining <= 0
          ? consent.usage.windowEnd
          : undefined;
    return (
      <ErrorNotice error={error}>
        <p>
          <strong>{until ? t('usedUpUntil', { time: formatReset(until, lang) }) : t('usedUp')}</strong>
        </p>
      </ErrorNotice>
    );
  }
  return <ErrorNotice error={error} onRetry={onRetry} />;
}

/** Whether the consent has no pull left in its current window (its usage, read without counting one). */
function usedUp(consent: Consent | undefined): boolean {
  return !!consent?.usage && consent.usage.remaining <= 0;
}

function UsedUp({ consent }: { consent: Consent }) {
  const { lang } = useLang();
  const t = useT(labels);
  return (
    <div class="notice notice-warning" role="status">
      <p>
        <strong>
          {consent.usage ? t('usedUpUntil', { time: formatReset(consent.usage.windowEnd, lang) }) : t('usedUp')}
        </strong>
      </p>
      <p>{t('usedUpLater')}</p>
    </div>
  );
}

/**
 * The consent (read without counting a pull), read again after its records load so that its pulls left are current;
 * with its records as loaded in this visit, whether it is usable and whether it has no pull left.
 */
function useConsent(id: string) {
  const app = useApp();
  const records = app.consentRecords(id);
  const consent = useAsync(() => app.api.get<Consent>(`/consents/${encodeURIComponent(id)}`), [app.api, id]);
  const reload = consent.reload;
  const settled = records && records.state !== 'loading' ? `${records.state}:${records.loadedAt?.getTime()}` : '';
  useEffect(() => {
    if (settled) reload();
  }, [settled, reload]);
  const c = consent.data;
  return { app, records, consent, c, usable: c?.effectiveStatus === 'GRANTED', exhausted: usedUp(c) };
}

export function ConsentScreen({ id }: { id: string }) {
  const { lang } = useLang();
  const t = useT(labels);
  const tc = useT(common);
  const { app, records, consent, c, usable, exhausted } = useConsent(id);
  useEffect(() => {
    // No pull left: no search is sent that would only be refused (and counted); the page says when pulls resume.
    if (usable && !exhausted) app.loadConsentRecords(id);
    else if (c && !usable) app.forgetConsentRecords(id); // ended: what was loaded under it is not kept
  }, [usable, exhausted, c, id]);

  // Back from a record: to the record last opened, where the timeline was left.
  const restored = useRef(false);
  const lastOpened = records?.lastOpened;
  useEffect(() => {
    if (restored.current || !usable || !records?.loadedAt || !lastOpened) return;
    const item = document.getElementById(`record-${lastOpened}`);
    if (!item) return;
    restored.current = true;
    item.focus({ preventScroll: true });
    item.scrollIntoView({ block: 'center' });
  }, [usable, records?.loadedAt, lastOpened]);
  const loaded = records?.records;
  const trendRecords = useMemo(() => (loaded ?? []).map((r) => ({ bundle: r.bundle, recordId: r.recordId })), [loaded]);
  const patient = c ? consentPatient(c) : '';
  return (
    <>
      <p class="back">
        <a href={href(['consents'])}>← {t('back')}</a>
      </p>
      <Title text={c ? (patient ? t('title', { patient }) : t('titleUnknown')) : t('titleUnknown')} />
      {consent.loading && !c && <Loading />}
      {consent.error !== undefined && !c && <ErrorNotice error={consent.error} onRetry={consent.reload} />}
      {c && (
        <>
          <div class="consent-head">
            <ConsentBadge status={c.effectiveStatus} />
            <span class="small muted">
              {tc('consentId')}: <span class="id">{c.id}</span>
            </span>
          </div>
          {!usable && <EndedBanner consent={c} />}
          <ConsentTerms consent={c} />
          {!usable ? (
            <section aria-labelledby="history-title">
              <h2 id="history-title">{t('history')}</h2>
              <StatusHistory consent={c} />
            </section>
          ) : (
            <details class="history-details">
              <summary>{t('history')}</summary>
              <StatusHistory consent={c} />
            </details>
          )}
        </>
      )}
      {c && usable && exhausted && !records && <UsedUp consent={c} />}
      {usable && records && (
        <>
          <div class="toolbar records-toolbar">
            {records.state === 'loading' && <Loading text={t('loadingRecords')} />}
            {records.state !== 'loading' && records.loadedAt && (
              <p class="muted">
                {t('loadedAt', {
                  count: records.records.length,
                  time: formatDate(records.loadedAt.toISOString(), lang, true),
                })}
              </p>
            )}
            <button
              type="button"
              class="button"
              aria-describedby="refresh-note"
              disabled={records.state === 'loading' || exhausted}
              onClick={() => app.loadConsentRecords(id, true)}
            >
              {t('refresh')}
            </button>
            <span id="refresh-note" class="small muted">
              {exhausted && c?.usage
                ? t('usedUpUntil', { time: formatReset(c.usage.windowEnd, lang) })
                : t('refreshNote')}
            </span>
          </div>
          {records.state === 'error' && (
            <RecordsError error={records.error} consent={c} onRetry={() => app.loadConsentRecords(id, true)} />
          )}
          {records.loadedAt && (
            <div class="records-layout">
              <div class="records-main">
                <TypeFilter
                  records={records.records}
                  hidden={records.hidden}
                  onChange={(hidden) => app.setHiddenTypes(id, hidden)}
                />
                <Timeline
                  records={records.records}
                  hidden={records.hidden}
                  linkOf={(r) => href(['consents', id, 'records', r.recordId])}
                />
              </div>
              <div class="records-trends">
                <Trends records={trendRecords} />
              </div>
            </div>
          )}
        </>
      )}
    </>
  );
}

export function ConsentRecordScreen({ id, recordId }: { id: string; recordId: string }) {
  const { lang } = useLang();
  const t = useT(labels);
  const { app, records, consent, c, usable, exhausted } = useConsent(id);
  // Opened straight from an address: the consent's records are loaded (once), never this one record by id.
  useEffect(() => {
    if (usable && !exhausted) app.loadConsentRecords(id);
  }, [usable, exhausted, id]);
  const record = records?.records.find((r) => r.recordId === recordId);
  const found = record !== undefined;
  useEffect(() => {
    if (found) app.setLastOpened(id, recordId);
  }, [found, id, recordId]);
  const patient = c ? consentPatient(c) : '';
  return (
    <>
      <p class="back">
        <a href={href(['consents', id])}>← {t('backToTimeline')}</a>
      </p>
      <Title text={record ? recordHeading(record, lang) || t('recordTitle') : t('recordTitle')} />
      {patient && <p class="muted">{t('consentFor', { patient })}</p>}
      {consent.error !== undefined && !c && <ErrorNotice error={consent.error} onRetry={consent.reload} />}
      {c && !usable && (
        <>
          <EndedBanner consent={c} />
          <p>{t('notUsable')}</p>
        </>
      )}
      {c && usable && exhausted && !records && <UsedUp consent={c} />}
      {usable && !(exhausted && !records) && (!records || records.state === 'loading') && !record && (
        <Loading text={t('loadingRecords')} />
      )}
      {usable && records?.state === 'error' && !record && (
        <RecordsError error={records.error} consent={c} onRetry={() => app.loadConsentRecords(id, true)} />
      )}
      {usable && records?.loadedAt && !record && records.state !== 'loading' && <p>{t('notLoaded')}</p>}
      {usable && record && <RecordView bundle={record.bundle} careContext={record.careContext} />}
      {usable && record && (
        <p class="back">
          <a href={href(['consents', id])}>← {t('backToTimeline')}</a>
        </p>
      )}
    </>
  );
}
