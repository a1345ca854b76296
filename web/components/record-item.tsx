/** One record in a timeline or a result list: a link showing what it is, when, by whom, where and for which visit. */
import { formatAbha, formatDate } from '../format.js';
import { type Labels, type Lang, useLang, useT } from '../i18n.js';
import { hiTypeLabel } from '../record/summary.js';
import { common } from './labels.js';
import type { LoadedRecord } from './loaded.js';

const labels: Labels<'untitled' | 'noDate' | 'careContext' | 'authors' | 'facility' | 'patient' | 'patientUnknown'> = {
  en: {
    untitled: 'Untitled record',
    noDate: 'No date',
    careContext: 'Care context',
    authors: 'Author',
    facility: 'Facility',
    patient: 'Patient',
    patientUnknown: 'not recorded',
  },
  hi: {
    untitled: 'बिना शीर्षक का रिकॉर्ड',
    noDate: 'तारीख़ नहीं',
    careContext: 'देखभाल संदर्भ',
    authors: 'लेखक',
    facility: 'संस्थान',
    patient: 'मरीज़',
    patientUnknown: 'दर्ज नहीं',
  },
};

export function careContextLabel(cc: LoadedRecord['careContext']): string {
  return cc ? (cc.display ?? cc.code) : '';
}

/**
 * A screen's title for one record: its type and patient ("Prescription: Ravi Kumar"). The record's own title is the
 * RecordView's heading beneath.
 */
export function recordHeading(record: LoadedRecord, lang: Lang): string {
  const type = record.hiType ? hiTypeLabel(record.hiType, lang) : record.summary.typeLabel;
  const patient = record.summary.patientName;
  return [type, patient].filter(Boolean).join(': ');
}

/** `showPatient`: in a list of several patients' records (a provider's search), whose record it is. */
export function RecordItem({
  record,
  href,
  showPatient = false,
}: {
  record: LoadedRecord;
  href: string;
  showPatient?: boolean;
}) {
  const { lang } = useLang();
  const t = useT(labels);
  const tc = useT(common);
  const s = record.summary;
  const type = record.hiType ? hiTypeLabel(record.hiType, lang) : s.typeLabel;
  const cc = careContextLabel(record.careContext);
  const abha = [formatAbha(s.abhaNumber), s.abhaAddress].filter(Boolean).join(', ');
  const patient = [s.patientName, abha && `(${abha})`].filter(Boolean).join(' ');
  return (
    <a class="record-item" href={href} id={`record-${record.recordId}`}>
      <span class="record-item-head">
        {type && <span class="type-tag">{type}</span>}
        <span class="record-item-date">{s.date ? formatDate(s.date, lang, true) : t('noDate')}</span>
      </span>
      <span class="record-item-title">{s.title || t('untitled')}</span>
      {showPatient && (
        <span class="record-item-patient">
          <span class="meta-label">{t('patient')}: </span>
          {patient || t('patientUnknown')}
        </span>
      )}
      <span class="record-item-meta">
        {s.authors.length > 0 && (
          <span>
            <span class="meta-label">{t('authors')}: </span>
            {s.authors.join(', ')}
          </span>
        )}
        {s.facility && (
          <span>
            <span class="meta-label">{t('facility')}: </span>
            {s.facility}
          </span>
        )}
        <span>
          <span class="meta-label">{t('careContext')}: </span>
          {cc || tc('careContextUnknown')}
        </span>
      </span>
    </a>
  );
}
