/** What a consent allows, in words: patient, purpose, record types, dates, how long, and what is left of its pulls. */
import { currentZone, formatAbha, formatDate } from '../format.js';
import { type Labels, type Lang, useLang, useT } from '../i18n.js';
import { hiTypeLabel } from '../record/summary.js';
import { consentStatusLabels, purposeLabel, statusLabel } from './labels.js';
import type { Consent, ConsentUsage } from './types.js';

export const consentLabels: Labels<
  | 'patient'
  | 'patientUnknown'
  | 'purpose'
  | 'types'
  | 'dates'
  | 'dateRange'
  | 'until'
  | 'pulls'
  | 'careContexts'
  | 'provider'
  | 'ended'
  | 'deniedAt'
  | 'left'
  | 'leftOne'
  | 'noneLeft'
  | 'perPeriod'
  | 'HOUR'
  | 'DAY'
  | 'WEEK'
  | 'MONTH'
  | 'YEAR'
  | 'accessMode'
> = {
  en: {
    patient: 'Patient',
    patientUnknown: 'Patient not recorded',
    purpose: 'Purpose',
    types: 'Record types',
    dates: 'Records dated',
    dateRange: '{from} to {to}',
    until: 'Access until',
    pulls: 'Pulls left',
    careContexts: 'Care contexts',
    provider: 'Provider',
    ended: 'Ended',
    deniedAt: 'Denied',
    left: '{remaining} of {value} pulls left {period} (resets {time})',
    leftOne: '{remaining} of {value} pull left {period} (resets {time})',
    noneLeft: 'No pulls left {period} (of {value}); resets {time}',
    perPeriod: 'At most {value} per {unit}',
    HOUR: 'this hour',
    DAY: 'today',
    WEEK: 'this week',
    MONTH: 'this month',
    YEAR: 'this year',
    accessMode: 'Access',
  },
  hi: {
    patient: 'मरीज़',
    patientUnknown: 'मरीज़ दर्ज नहीं',
    purpose: 'उद्देश्य',
    types: 'रिकॉर्ड के प्रकार',
    dates: 'रिकॉर्ड की तारीख़ें',
    dateRange: '{from} से {to} तक',
    until: 'पहुँच कब तक',
    pulls: 'शेष अनुरोध',
    careContexts: 'देखभाल संदर्भ',
    provider: 'प्रदाता',
    ended: 'समाप्त हुई',
    deniedAt: 'अस्वीकृत हुई',
    left: '{period} {value} में से {remaining} अनुरोध शेष ({time} पर फिर से शुरू)',
    leftOne: '{period} {value} में से {remaining} अनुरोध शेष ({time} पर फिर से शुरू)',
    noneLeft: '{period} कोई अनुरोध शेष नहीं ({value} में से); {time} पर फिर से शुरू',
    perPeriod: 'हर {unit} अधिकतम {value}',
    HOUR: 'इस घंटे',
    DAY: 'आज',
    WEEK: 'इस सप्ताह',
    MONTH: 'इस महीने',
    YEAR: 'इस वर्ष',
    accessMode: 'पहुँच',
  },
};

const UNIT_NAMES: Record<string, Record<Lang, string>> = {
  HOUR: { en: 'hour', hi: 'घंटे' },
  DAY: { en: 'day', hi: 'दिन' },
  WEEK: { en: 'week', hi: 'सप्ताह' },
  MONTH: { en: 'month', hi: 'महीने' },
  YEAR: { en: 'year', hi: 'वर्ष' },
};

const locale = (lang: Lang) => (lang === 'hi' ? 'hi-IN' : 'en-IN');

/** A time later today (in the current zone) as its time alone; any other day with its date. */
export function formatReset(value: string, lang: Lang, now = new Date()): string {
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return value;
  const day = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: currentZone() }).format(d);
  if (day(t) === day(now))
    return new Intl.DateTimeFormat(locale(lang), { timeStyle: 'short', timeZone: currentZone() }).format(t);
  return formatDate(value, lang, true);
}

/**
 * One end of a consent's date range. Ranges are kept in UTC, a date-only `from` as its midnight and a date-only `to`
 * as its last millisecond: those are shown as the date they were given; any other instant with its time.
 */
export function formatRangeEnd(value: string, lang: Lang): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(00:00:00\.000|23:59:59\.999)Z$/.exec(value);
  return m ? formatDate(m[1], lang, false) : formatDate(value, lang, true);
}

/** The consent's patient as written for people: an ABHA number with its dashes, an address as given. */
export function consentPatient(consent: Consent): string {
  return formatAbha(consent.terms?.patient ?? consent.patient ?? '');
}

type ConsentKey = keyof (typeof consentLabels)['en'];

export function usageText(
  usage: ConsentUsage,
  t: (key: ConsentKey, vars?: Record<string, string | number>) => string,
  lang: Lang,
): string {
  const unit = usage.unit as 'HOUR' | 'DAY' | 'WEEK' | 'MONTH' | 'YEAR';
  const period = consentLabels.en[unit] ? t(unit) : usage.unit;
  const vars = { remaining: usage.remaining, value: usage.value, period, time: formatReset(usage.windowEnd, lang) };
  if (usage.remaining <= 0) return t('noneLeft', vars);
  return t(usage.value === 1 ? 'leftOne' : 'left', vars);
}

/** The terms of a consent (or what is kept of an ended one) as a description list. */
export function ConsentTerms({ consent, compact = false }: { consent: Consent; compact?: boolean }) {
  const { lang } = useLang();
  const t = useT(consentLabels);
  const terms = consent.terms;
  const usable = consent.effectiveStatus === 'GRANTED';
  return (
    <dl class={compact ? 'terms terms-compact' : 'terms'}>
      {terms && (
        <>
          <div>
            <dt>{t('purpose')}</dt>
            <dd>{purposeLabel(terms.purpose, lang)}</dd>
          </div>
          <div>
            <dt>{t('types')}</dt>
            <dd>{terms.hiTypes.map((h) => hiTypeLabel(h, lang)).join(', ')}</dd>
          </div>
          <div>
            <dt>{t('dates')}</dt>
            <dd>
              {t('dateRange', { from: formatRangeEnd(terms.dateFrom, lang), to: formatRangeEnd(terms.dateTo, lang) })}
            </dd>
          </div>
          <div>
            <dt>{t('until')}</dt>
            <dd>{formatDate(terms.dataEraseAt, lang, true)}</dd>
          </div>
          {!compact && (
            <>
              <div>
                <dt>{t('careContexts')}</dt>
                <dd>
                  <ul class="inline-list">
                    {terms.careContexts.map((cc) => (
                      <li key={cc}>{cc}</li>
                    ))}
                  </ul>
                </dd>
              </div>
              <div>
                <dt>{t('provider')}</dt>
                <dd>{terms.hip}</dd>
              </div>
            </>
          )}
        </>
      )}
      {usable && (consent.usage || terms) && (
        <div>
          <dt>{t('pulls')}</dt>
          <dd class={consent.usage && consent.usage.remaining <= 0 ? 'pulls-none' : undefined}>
            {consent.usage
              ? usageText(consent.usage, t, lang)
              : t('perPeriod', {
                  value: terms!.frequency.value,
                  unit: UNIT_NAMES[terms!.frequency.unit]?.[lang] ?? terms!.frequency.unit,
                })}
          </dd>
        </div>
      )}
      {!usable && compact && (
        <div>
          <dt>{t(consent.effectiveStatus === 'DENIED' ? 'deniedAt' : 'ended')}</dt>
          <dd>
            {formatDate(consent.status === 'GRANTED' && terms ? terms.dataEraseAt : consent.statusAt, lang, true)}
          </dd>
        </div>
      )}
    </dl>
  );
}

/** A consent's status history, oldest first: each status and when it was set. */
export function StatusHistory({ consent }: { consent: Consent }) {
  const { lang } = useLang();
  return (
    <ol class="history">
      {consent.history.map((h, i) => (
        <li key={i}>
          <span class="history-status">{statusLabel(consentStatusLabels, h.status, lang)}</span>
          <span class="history-at">{formatDate(h.at, lang, true)}</span>
        </li>
      ))}
    </ol>
  );
}
