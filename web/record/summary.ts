/**
 * One line of the timeline for a stored document: its title, ABDM record type (hiType), date, authors, facility and
 * patient. Pure: it reads the Bundle and nothing else.
 *
 * The record type comes from the Composition as the store's profile engine recognises it (src/fhir/profiles.ts,
 * with the rules derived into profiles/*.json from the NRCeS IG 6.5.0): the record profile its `meta.profile`
 * claims; else the SNOMED CT code of its `type` (DiagnosticReportRecord fixes no code: the enumerated codes of
 * ValueSet ndhm-diagnostic-report-type); else `type.text` for the two records that fix only that (WellnessRecord
 * "Wellness Record", InvoiceRecord "Invoice Record"). test/web/record-summary.test.ts checks this table against
 * profiles/*.json.
 */
import type { Lang } from '../i18n.js';
import { formatAbha } from '../format.js';
import {
  abhaOf,
  arr,
  BundleIndex,
  codingText,
  isObj,
  referenceText,
  resourceName,
  str,
  type Resource,
} from './fhir.js';

export type HiType =
  | 'Prescription'
  | 'DiagnosticReport'
  | 'OPConsultation'
  | 'DischargeSummary'
  | 'ImmunizationRecord'
  | 'HealthDocumentRecord'
  | 'WellnessRecord'
  | 'Invoice';

const SD = 'https://nrces.in/ndhm/fhir/r4/StructureDefinition/';

/** The eight ABDM record types: how each is recognised, and its label in each language. */
export const HI_TYPES: readonly {
  hiType: HiType;
  profile: string;
  /** SNOMED CT codes of Composition.type (empty when the IG fixes only `type.text`). */
  codes: readonly string[];
  /** The `type.text` the IG fixes, for the records recognised by it. */
  text?: string;
  en: string;
  hi: string;
}[] = [
  { hiType: 'Prescription', profile: `${SD}PrescriptionRecord`, codes: ['440545006'], en: 'Prescription', hi: 'पर्चा' },
  {
    hiType: 'DiagnosticReport',
    profile: `${SD}DiagnosticReportRecord`,
    codes: [
      '770573007',
      '782659005',
      '725870000',
      '721981007',
      '722143004',
      '720449003',
      '371528001',
      '721631001',
      '4311000179106',
      '4201000179104',
      '4241000179101',
      '714335001',
      '4271000179106',
      '714337009',
    ],
    en: 'Diagnostic report',
    hi: 'जाँच रिपोर्ट',
  },
  {
    hiType: 'OPConsultation',
    profile: `${SD}OPConsultRecord`,
    codes: ['371530004'],
    en: 'OP consultation',
    hi: 'ओपीडी परामर्श',
  },
  {
    hiType: 'DischargeSummary',
    profile: `${SD}DischargeSummaryRecord`,
    codes: ['373942005'],
    en: 'Discharge summary',
    hi: 'डिस्चार्ज सारांश',
  },
  {
    hiType: 'ImmunizationRecord',
    profile: `${SD}ImmunizationRecord`,
    codes: ['41000179103'],
    en: 'Immunization record',
    hi: 'टीकाकरण रिकॉर्ड',
  },
  {
    hiType: 'HealthDocumentRecord',
    profile: `${SD}HealthDocumentRecord`,
    codes: ['419891008'],
    en: 'Health document',
    hi: 'स्वास्थ्य दस्तावेज़',
  },
  {
    hiType: 'WellnessRecord',
    profile: `${SD}WellnessRecord`,
    codes: [],
    text: 'Wellness Record',
    en: 'Wellness record',
    hi: 'वेलनेस रिकॉर्ड',
  },
  {
    hiType: 'Invoice',
    profile: `${SD}InvoiceRecord`,
    codes: [],
    text: 'Invoice Record',
    en: 'Invoice',
    hi: 'बिल (इनवॉइस)',
  },
];

/** A record type's label in `lang` (an unknown type as given; none: "Record"). */
export function hiTypeLabel(hiType: string | null | undefined, lang: Lang): string {
  const t = HI_TYPES.find((h) => h.hiType === hiType);
  if (t) return t[lang];
  return hiType || (lang === 'hi' ? 'रिकॉर्ड' : 'Record');
}

/** The ABDM record type of a Composition, or null when it is none of the eight. */
export function hiTypeOf(composition: fhir4.Composition | undefined): HiType | null {
  if (!isObj(composition)) return null;
  const profiles = arr(isObj(composition.meta) ? composition.meta.profile : undefined)
    .map((p) => str(p)?.replace(/\|.*$/, ''))
    .filter(Boolean);
  const byProfile = HI_TYPES.find((h) => profiles.includes(h.profile));
  if (byProfile) return byProfile.hiType;
  const type = isObj(composition.type) ? composition.type : undefined;
  const codings = arr(type?.coding).filter(isObj);
  for (const system of [true, false]) {
    for (const c of codings) {
      if (system && c.system !== 'http://snomed.info/sct') continue;
      const code = str(c.code)?.trim();
      const t = code ? HI_TYPES.find((h) => h.codes.includes(code)) : undefined;
      if (t) return t.hiType;
    }
  }
  const text = str(type?.text)?.trim().toLowerCase();
  const byText = text ? HI_TYPES.find((h) => h.text?.toLowerCase() === text) : undefined;
  return byText?.hiType ?? null;
}

export interface RecordSummary {
  title: string;
  hiType: string | null;
  typeLabel: string;
  date: string | null;
  authors: string[];
  facility: string | null;
  patientName: string | null;
  abhaNumber: string | null;
  abhaAddress: string | null;
}

/** The record's Patient: the Composition's subject, else the bundle's first Patient. */
export function recordPatient(index: BundleIndex): Resource | undefined {
  const c = index.composition;
  const subject = c ? index.resolve(c.subject, c) : undefined;
  if (subject?.resourceType === 'Patient') return subject;
  return index.resources.find((r) => r.resourceType === 'Patient');
}

export function recordSummary(bundle: fhir4.Bundle): RecordSummary {
  const index = new BundleIndex(bundle);
  const c = index.composition;
  const hiType = hiTypeOf(c);
  const type = c && isObj(c.type) ? c.type : undefined;
  const typeLabel =
    str(type?.text) ??
    arr(type?.coding).map(codingText).find(Boolean) ??
    (hiType ? hiTypeLabel(hiType, 'en') : undefined) ??
    'Record';
  const authors = [
    ...new Set(
      arr(c?.author)
        .map((a) => referenceText(a, index, c))
        .filter((s): s is string => !!s),
    ),
  ];
  let facility: string | null = c?.custodian ? (referenceText(c.custodian, index, c) ?? null) : null;
  if (!facility) {
    const org = arr(c?.author)
      .map((a) => index.resolve(a, c))
      .find((r) => r?.resourceType === 'Organization');
    facility = resourceName(org) ?? null;
  }
  const patient = recordPatient(index);
  const abha = abhaOf(patient);
  return {
    title: str(c?.title)?.trim() ?? typeLabel,
    hiType,
    typeLabel,
    date: str(c?.date) ?? str(bundle?.timestamp) ?? null,
    authors,
    facility,
    patientName: resourceName(patient) ?? (c && isObj(c.subject) ? str(c.subject.display) : undefined) ?? null,
    abhaNumber: abha.number ? formatAbha(abha.number) : null,
    abhaAddress: abha.address ?? null,
  };
}
