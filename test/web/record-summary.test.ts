/**
 * The timeline summary of a stored document (web/record/summary.ts): title, ABDM record type, date, authors,
 * facility and patient, for the eight example bundles, generated bundles of every kind, and the public ABDM
 * document bundles (the NRCeS IG's own examples among them); and its record-type table against profiles/*.json.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HI_TYPES, hiTypeLabel, recordSummary } from '../../web/record/summary.js';
import { abhaOf, BundleIndex } from '../../web/record/fhir.js';
import { createGenerator, RECORD_KINDS } from '../../fixtures/generator.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

const EXAMPLES: Record<string, string> = {
  'prescription.json': 'Prescription',
  'diagnostic-report.json': 'DiagnosticReport',
  'op-consultation.json': 'OPConsultation',
  'discharge-summary.json': 'DischargeSummary',
  'immunization.json': 'ImmunizationRecord',
  'health-document.json': 'HealthDocumentRecord',
  'wellness.json': 'WellnessRecord',
  'invoice.json': 'Invoice',
};

/** Document bundles of the shared IG package (when it holds examples) and of the public ABDM corpus. */
function sharedDocuments(): { name: string; bundle: any }[] {
  const dirs = [
    join(ROOT, '..', 'shared', 'ig', 'ndhm.in-6.5.0', 'package'),
    join(ROOT, '..', 'shared', 'ig', 'ndhm.in-6.5.0'),
    join(ROOT, '..', 'shared', 'corpus', 'abdm-examples'),
  ];
  const out: { name: string; bundle: any }[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.json')) continue;
      const body = read(join(dir, f));
      if (body?.resourceType === 'Bundle' && body.type === 'document') out.push({ name: f, bundle: body });
    }
  }
  return out;
}

describe('recordSummary', () => {
  it.each(Object.entries(EXAMPLES))('%s gives its title, type, date, authors, facility and patient', (file, hiType) => {
    const bundle = read(join(ROOT, 'fixtures', 'examples', file));
    const s = recordSummary(bundle);
    const composition = bundle.entry[0].resource;
    expect(s.hiType).toBe(hiType);
    expect(s.title).toBe(composition.title);
    expect(s.date).toBe(composition.date);
    expect(s.typeLabel).toBeTruthy();
    expect(s.authors.length).toBeGreaterThan(0);
    expect(s.authors[0]).toMatch(/^Dr\. /);
    expect(s.facility).toBeTruthy();
    expect(s.patientName).toBeTruthy();
    expect(s.abhaNumber).toMatch(/^\d{2}-\d{4}-\d{4}-\d{4}$/);
    expect(s.abhaAddress).toMatch(/@(sbx|abdm)$/);
  });

  it('reads the patient of the diagnostic report as recorded', () => {
    const s = recordSummary(read(join(ROOT, 'fixtures', 'examples', 'diagnostic-report.json')));
    expect(s).toMatchObject({
      title: 'Kidney function test report',
      patientName: 'Asha Verma',
      abhaNumber: '91-7702-6631-0458',
      abhaAddress: 'asha.verma1965@sbx',
      authors: ['Dr. Anjali Ghosh'],
      facility: 'Brahmaputra Diagnostics and Clinic',
    });
  });

  it('recognises every kind the generator makes', () => {
    const gen = createGenerator(7);
    for (let p = 0; p < 3; p++) {
      const patient = gen.patient();
      for (const kind of RECORD_KINDS) {
        for (const entries of [5, 20, 50]) {
          const { bundle } = gen.record(patient, kind, { entries });
          const s = recordSummary(bundle);
          expect(s.hiType, `${kind} ${entries}`).toBe(kind);
          expect(s.title).toBeTruthy();
          expect(s.date).toBeTruthy();
          expect(s.patientName).toBe(`${patient.name.given} ${patient.name.family}`);
          expect(s.abhaNumber).toBe(patient.abhaNumber);
          expect(s.abhaAddress).toBe(patient.abhaAddress.toLowerCase());
        }
      }
    }
  });

  const shared = sharedDocuments();
  it('finds the shared document bundles', () => {
    expect(shared.length).toBeGreaterThanOrEqual(20);
  });
  it.each(shared.map((d) => [d.name, d.bundle]))('%s gives a title and a record type', (_name, bundle) => {
    const s = recordSummary(bundle);
    expect(s.title).toBeTruthy();
    expect(HI_TYPES.map((h) => h.hiType)).toContain(s.hiType);
    expect(s.typeLabel).toBeTruthy();
    expect(s.patientName).toBeTruthy();
  });

  it('resolves Type/id references (the IG 2.x examples) and reads NNIND ABHA numbers', () => {
    const bundle = read(join(ROOT, '..', 'shared', 'corpus', 'abdm-examples', 'prescription-03.json'));
    const s = recordSummary(bundle);
    expect(s.abhaNumber).toBe('93-7374-5097-3283');
    expect(s.authors).toEqual(['Dr. Deepa Sharma']);
  });

  it('survives what is not a document', () => {
    const s = recordSummary({ resourceType: 'Bundle', type: 'collection' } as fhir4.Bundle);
    expect(s).toMatchObject({ title: 'Record', hiType: null, date: null, authors: [], patientName: null });
    expect(
      recordSummary({ resourceType: 'Bundle', type: 'document', entry: [{}, { resource: 3 }] } as any).hiType,
    ).toBe(null);
  });

  it('a hospital MRN shaped like an ABHA number is not an ABHA number', () => {
    const patient = {
      resourceType: 'Patient',
      identifier: [
        { system: 'https://hospital.example/mrn', value: '12-3456-7890-1234' },
        { value: '98-7654-3210-9876' },
      ],
    } as fhir4.Patient;
    expect(abhaOf(patient).number).toBe('98765432109876');
  });
});

describe('HI_TYPES', () => {
  it('matches how profiles/*.json recognise each record type', () => {
    const dir = join(ROOT, 'profiles');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(HI_TYPES.length);
    for (const f of files) {
      const p = read(join(dir, f));
      const t = HI_TYPES.find((h) => h.hiType === p.hiType);
      expect(t, p.hiType).toBeDefined();
      expect(t!.profile).toBe(p.profile);
      const ct = p.compositionType;
      if (ct.text) {
        expect(t!.text).toBe(ct.text);
        expect(t!.codes).toEqual([]);
      } else {
        expect(ct.system).toBe('http://snomed.info/sct');
        expect([...t!.codes].sort()).toEqual([...(ct.codes ?? [ct.code])].sort());
      }
    }
  });

  it('labels each type in English and Hindi', () => {
    for (const h of HI_TYPES) {
      expect(hiTypeLabel(h.hiType, 'en')).toBe(h.en);
      expect(hiTypeLabel(h.hiType, 'hi')).toMatch(/[\u0900-\u097F]/);
    }
    expect(hiTypeLabel(null, 'hi')).toBe('रिकॉर्ड');
  });
});

describe('BundleIndex.resolve', () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'document',
    entry: [
      { fullUrl: 'urn:uuid:aaa', resource: { resourceType: 'Patient', id: 'aaa' } },
      { fullUrl: 'https://hip.example/fhir/Practitioner/7', resource: { resourceType: 'Practitioner', id: '7' } },
      {
        fullUrl: 'urn:uuid:bbb',
        resource: {
          resourceType: 'MedicationRequest',
          id: 'bbb',
          contained: [{ resourceType: 'Medication', id: 'm1' }],
        },
      },
    ],
  } as unknown as fhir4.Bundle;
  const index = new BundleIndex(bundle);
  it('by fullUrl, by Type/id, and contained #id', () => {
    expect(index.resolve({ reference: 'urn:uuid:aaa' })?.resourceType).toBe('Patient');
    expect(index.resolve({ reference: 'Practitioner/7' })?.resourceType).toBe('Practitioner');
    expect(index.resolve({ reference: 'Patient/aaa/_history/2' })?.resourceType).toBe('Patient');
    const host = index.resources[2];
    expect(index.resolve({ reference: '#m1' }, host)?.resourceType).toBe('Medication');
    expect(index.resolve({ reference: '#m1' })).toBeUndefined();
    expect(index.resolve({ reference: 'Patient/zzz' })).toBeUndefined();
    expect(index.resolve({ display: 'x' })).toBeUndefined();
  });
});
