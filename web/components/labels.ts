/** Words more than one screen says, in English and Hindi. */
import type { Labels, Lang } from '../i18n.js';
import type { ConsentStatus, TransferStatus } from './types.js';

export const common: Labels<
  | 'loading'
  | 'retry'
  | 'refresh'
  | 'showMore'
  | 'noNetwork'
  | 'notRecorded'
  | 'consentId'
  | 'patient'
  | 'status'
  | 'any'
  | 'apply'
  | 'clear'
  | 'careContextUnknown'
  | 'by'
  | 'at'
  | 'notFoundTitle'
  | 'notFoundBody'
  | 'wrongRoleTitle'
  | 'wrongRoleBody'
  | 'home'
  | 'tableRegion'
> = {
  en: {
    loading: 'Loading…',
    retry: 'Try again',
    refresh: 'Refresh',
    showMore: 'Show more',
    noNetwork: 'The server could not be reached. Check the connection and try again.',
    notRecorded: 'Not recorded',
    consentId: 'Consent id',
    patient: 'Patient',
    status: 'Status',
    any: 'Any',
    apply: 'Apply',
    clear: 'Clear',
    careContextUnknown: 'Care context not stated',
    by: 'By',
    at: 'At',
    notFoundTitle: 'Page not found',
    notFoundBody: 'There is no page at this address.',
    wrongRoleTitle: 'Not available for your role',
    wrongRoleBody: 'This page is for another role than the one you are signed in as.',
    home: 'Go to the start page',
    tableRegion: '{name} (scrolls sideways)',
  },
  hi: {
    loading: 'लोड हो रहा है…',
    retry: 'फिर से कोशिश करें',
    refresh: 'ताज़ा करें',
    showMore: 'और दिखाएँ',
    noNetwork: 'सर्वर से संपर्क नहीं हो सका। कनेक्शन जाँचें और फिर से कोशिश करें।',
    notRecorded: 'दर्ज नहीं',
    consentId: 'सहमति आईडी',
    patient: 'मरीज़',
    status: 'स्थिति',
    any: 'कोई भी',
    apply: 'लागू करें',
    clear: 'साफ़ करें',
    careContextUnknown: 'देखभाल संदर्भ नहीं बताया गया',
    by: 'द्वारा',
    at: 'समय',
    notFoundTitle: 'पृष्ठ नहीं मिला',
    notFoundBody: 'इस पते पर कोई पृष्ठ नहीं है।',
    wrongRoleTitle: 'आपकी भूमिका के लिए उपलब्ध नहीं',
    wrongRoleBody: 'यह पृष्ठ उस भूमिका के लिए है जिससे आपने साइन इन नहीं किया है।',
    home: 'प्रारंभ पृष्ठ पर जाएँ',
    tableRegion: '{name} (बगल में स्क्रॉल होता है)',
  },
};

export const roleLabels: Labels<'hip' | 'hiu' | 'admin'> = {
  en: { hip: 'Provider (HIP)', hiu: 'Viewer (HIU)', admin: 'Administrator' },
  hi: { hip: 'प्रदाता (HIP)', hiu: 'दर्शक (HIU)', admin: 'प्रशासक' },
};

export const consentStatusLabels: Labels<ConsentStatus> = {
  en: { GRANTED: 'Granted', REVOKED: 'Revoked', EXPIRED: 'Expired', DENIED: 'Denied' },
  hi: { GRANTED: 'स्वीकृत', REVOKED: 'रद्द', EXPIRED: 'समाप्त', DENIED: 'अस्वीकृत' },
};

export const transferStatusLabels: Labels<TransferStatus | 'DELIVERED' | 'ERRORED'> = {
  en: {
    ACKNOWLEDGED: 'Acknowledged',
    TRANSFERRING: 'Transferring',
    TRANSFERRED: 'Transferred',
    FAILED: 'Failed',
    DELIVERED: 'Delivered',
    ERRORED: 'Errored',
  },
  hi: {
    ACKNOWLEDGED: 'स्वीकार किया गया',
    TRANSFERRING: 'भेजा जा रहा है',
    TRANSFERRED: 'भेजा गया',
    FAILED: 'विफल',
    DELIVERED: 'पहुँचाया गया',
    ERRORED: 'त्रुटि',
  },
};

const PURPOSES: Record<string, Record<Lang, string>> = {
  CAREMGT: { en: 'Care management', hi: 'देखभाल प्रबंधन' },
  BTG: { en: 'Break the glass', hi: 'आपातकालीन पहुँच (ब्रेक द ग्लास)' },
  PUBHLTH: { en: 'Public health', hi: 'सार्वजनिक स्वास्थ्य' },
  HPAYMT: { en: 'Healthcare payment', hi: 'स्वास्थ्य सेवा भुगतान' },
  DSRCH: { en: 'Disease specific research', hi: 'रोग-विशिष्ट अनुसंधान' },
  PATRQT: { en: 'Self requested', hi: 'स्वयं द्वारा अनुरोधित' },
};

/** A consent purpose's name; an unknown code as given. */
export function purposeLabel(code: string | undefined, lang: Lang): string {
  if (!code) return '';
  return PURPOSES[code]?.[lang] ?? code;
}

/** The label of a status in one of the tables above; an unknown status as given. */
export function statusLabel<K extends string>(table: Labels<K>, status: string, lang: Lang): string {
  return (table[lang] as Record<string, string>)[status] ?? status;
}
