// Unit tests for what the store indexes beside each record (src/records/index-keys.ts):
// FHIR date ranges, the index keys of validated fixtures, and the ABHA helpers they rely on
// (src/fhir/abha.ts). Pure: no database.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { demographicKey, indexKeys } from '../../src/records/index-keys.js';
import { fhirDateRange, fhirDateStart } from '../../src/fhir/datetime.js';
import {
  normaliseAbhaNumber,
  normaliseAbhaAddress,
  parseAbhaParam,
  maskAbhaNumber,
  DEFAULT_ABHA_SYSTEMS,
} from '../../src/fhir/abha.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { createHash } from 'node:crypto';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const example = (name: string) => readFileSync(path.join(repoRoot, 'fixtures', 'examples', `${name}.json`), 'utf8');
const iso = (r: { start: Date; end: Date } | undefined) =>
  r ? [r.start.toISOString(), r.end.toISOString()] : undefined;

describe('fhirDateRange', () => {
  it('covers a whole year', () => {
    expect(iso(fhirDateRange('2024'))).toEqual(['2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
    expect(iso(fhirDateRange('1999'))).toEqual(['1999-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z']);
  });

  it('covers a whole month, including December and February of a leap year', () => {
    expect(iso(fhirDateRange('2024-02'))).toEqual(['2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    expect(iso(fhirDateRange('2024-12'))).toEqual(['2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
  });

  it('covers a whole day (UTC), including month and year ends', () => {
    expect(iso(fhirDateRange('2024-03-12'))).toEqual(['2024-03-12T00:00:00.000Z', '2024-03-13T00:00:00.000Z']);
    expect(iso(fhirDateRange('2024-02-29'))).toEqual(['2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    expect(iso(fhirDateRange('2024-12-31'))).toEqual(['2024-12-31T00:00:00.000Z', '2025-01-01T00:00:00.000Z']);
  });

  it('covers one instant at the precision given, in the timezone given', () => {
    expect(iso(fhirDateRange('2024-03-12T10:30:00+05:30'))).toEqual([
      '2024-03-12T05:00:00.000Z',
      '2024-03-12T05:00:01.000Z',
    ]);
    expect(iso(fhirDateRange('2024-03-12T10:30:00Z'))).toEqual([
      '2024-03-12T10:30:00.000Z',
      '2024-03-12T10:30:01.000Z',
    ]);
    expect(iso(fhirDateRange('2024-03-12T10:30:00.250-01:00'))).toEqual([
      '2024-03-12T11:30:00.250Z',
      '2024-03-12T11:30:00.251Z',
    ]);
    expect(iso(fhirDateRange('2024-03-12T10:30+05:30'))).toEqual([
      '2024-03-12T05:00:00.000Z',
      '2024-03-12T05:01:00.000Z',
    ]);
    expect(iso(fhirDateRange('2024-12-31T23:30:00-01:00'))).toEqual([
      '2025-01-01T00:30:00.000Z',
      '2025-01-01T00:30:01.000Z',
    ]);
  });

  it('takes a dateTime without a timezone as UTC', () => {
    expect(iso(fhirDateRange('2024-03-12T10:30:00'))).toEqual(['2024-03-12T10:30:00.000Z', '2024-03-12T10:30:01.000Z']);
  });

  it('rejects impossible calendar dates', () => {
    for (const v of ['2024-02-30', '2023-02-29', '2024-04-31', '2024-13', '2024-00', '2024-01-00', '2024-01-32']) {
      expect([v, fhirDateRange(v)]).toEqual([v, undefined]);
    }
  });

  it('rejects impossible calendar dates that carry a time', () => {
    for (const v of ['2024-02-30T10:00:00Z', '2023-02-29T00:00:00+05:30', '2024-04-31T12:00:00Z']) {
      expect([v, fhirDateRange(v)]).toEqual([v, undefined]);
    }
  });

  it('rejects impossible times', () => {
    for (const v of ['2024-03-12T25:00:00Z', '2024-03-12T10:61:00Z', '2024-03-12T10:00:00+25:00']) {
      expect([v, fhirDateRange(v)]).toEqual([v, undefined]);
    }
  });

  it('rejects text that is not a FHIR date', () => {
    for (const v of [
      '',
      '24',
      '2024-3',
      '2024-03-1',
      '2024/03/12',
      '12-03-2024',
      '2024-03-12T',
      '2024-03-12T10',
      '2024-03-12 10:30:00Z',
      'x2024',
      '2024-03-12Z',
    ]) {
      expect([v, fhirDateRange(v)]).toEqual([v, undefined]);
    }
  });

  it('does not shift years below 100 into the 1900s', () => {
    expect(iso(fhirDateRange('0099'))).toEqual(['0099-01-01T00:00:00.000Z', '0100-01-01T00:00:00.000Z']);
    expect(iso(fhirDateRange('0050-06-15'))).toEqual(['0050-06-15T00:00:00.000Z', '0050-06-16T00:00:00.000Z']);
  });
});

describe('fhirDateStart', () => {
  it('is the start of the range for strings and undefined otherwise', () => {
    expect(fhirDateStart('2024-03')?.toISOString()).toBe('2024-03-01T00:00:00.000Z');
    expect(fhirDateStart('2024-03-12T11:24:37+05:30')?.toISOString()).toBe('2024-03-12T05:54:37.000Z');
    expect(fhirDateStart('2024-02-30')).toBeUndefined();
    expect(fhirDateStart(undefined)).toBeUndefined();
    expect(fhirDateStart(20240312)).toBeUndefined();
    expect(fhirDateStart(null)).toBeUndefined();
  });
});

describe('indexKeys of validated fixtures', () => {
  let validator: DocumentValidator;
  const patientName = (doc: any) => {
    const n = doc.facts.patient.resource.name[0];
    return n.text ?? [...(n.given ?? []), n.family].join(' ');
  };
  beforeAll(() => {
    validator = new DocumentValidator({ maxBytes: 10 * 1024 * 1024, maxDepth: 64, abhaSystems: DEFAULT_ABHA_SYSTEMS });
  });

  it('prescription.json', () => {
    const doc = validator.validateText(example('prescription'));
    expect(indexKeys(doc)).toEqual({
      identifierKey: '["https://sanjeevani-hospital.example.in/documents","4215ad2d-17af-4ef7-b5fa-be2a83a287b8"]',
      hiType: 'Prescription',
      abhaNumber: '91441720935586',
      abhaAddress: 'ravi.kumar@sbx',
      recordDate: new Date(Date.parse(doc.facts.composition.date)),
      demographicKey: createHash('sha256')
        .update(
          `${patientName(doc).toLowerCase()}|${doc.facts.patient.resource.gender === 'male' ? 'M' : 'F'}|${doc.facts.patient.resource.birthDate.slice(0, 4)}`,
        )
        .digest('hex'),
      title: 'Prescription record',
      author: ['Dr. Meera Kulkarni'],
    });
  });

  it("author: a reference's display, else the name of what it resolves to", () => {
    const b = JSON.parse(example('prescription'));
    const composition = b.entry[0].resource;
    composition.author[0].display = '  '; // nothing to show: the Practitioner's name instead
    expect(indexKeys(validator.validateText(JSON.stringify(b))).author).toEqual(['Dr. Meera Kulkarni']);
    const practitioner = b.entry.find((e: any) => e.fullUrl === composition.author[0].reference).resource;
    practitioner.name = [{ text: 'Meera K.', family: 'Kulkarni' }];
    expect(indexKeys(validator.validateText(JSON.stringify(b))).author).toEqual(['Meera K.']);
  });

  it('demographicKey: normalised name, gender code and year; null when one is missing', () => {
    const k = demographicKey('Ravi  KUMAR', 'male', '1985');
    expect(k).toBe(demographicKey('ravi kumar', 'M', 1985));
    expect(k).not.toBe(demographicKey('ravi kumar', 'F', 1985));
    expect(k).not.toBe(demographicKey('ravi kumar', 'M', 1986));
    expect(demographicKey(undefined, 'M', 1985)).toBeNull();
    expect(demographicKey('ravi', 'X', 1985)).toBeNull();
    expect(demographicKey('ravi', 'M', 85)).toBeNull();
  });

  it('discharge-summary.json (ABHA number typed HIN)', () => {
    const doc = validator.validateText(example('discharge-summary'));
    const keys = indexKeys(doc);
    expect(keys.hiType).toBe('DischargeSummary');
    expect(keys.abhaNumber).toBe('91225088163391');
    expect(keys.abhaAddress).toBe('priya_nair92@abdm');
    expect(keys.identifierKey).toBe(
      '["https://lotus-city.example.in/documents","766fe4b8-7fff-4f55-aa42-7e7bd85e9507"]',
    );
  });

  it('uses Composition.date, falling back to Bundle.timestamp', () => {
    const doc = validator.validateText(example('diagnostic-report'));
    doc.facts.composition.date = '2024-05-06';
    expect(indexKeys(doc).recordDate.toISOString()).toBe('2024-05-06T00:00:00.000Z');
    delete doc.facts.composition.date;
    expect(indexKeys(doc).recordDate.toISOString()).toBe('2024-05-06T08:35:12.000Z'); // 14:05:12+05:30
  });

  it('stores null for an ABHA part the patient lacks', () => {
    const bundle = JSON.parse(example('prescription'));
    const patient = bundle.entry.find((e: any) => e.resource.resourceType === 'Patient').resource;
    patient.identifier = patient.identifier.filter((i: any) => !i.value.includes('@'));
    const keys = indexKeys(validator.validateText(JSON.stringify(bundle)));
    expect(keys.abhaNumber).toBe('91441720935586');
    expect(keys.abhaAddress).toBeNull();
  });
});

describe('normaliseAbhaNumber', () => {
  it('returns the 14 digits of a number with or without dashes', () => {
    expect(normaliseAbhaNumber('91-4417-2093-5586')).toBe('91441720935586');
    expect(normaliseAbhaNumber('91441720935586')).toBe('91441720935586');
    expect(normaliseAbhaNumber('  91-4417-2093-5586\n')).toBe('91441720935586');
  });

  it('rejects other shapes', () => {
    for (const v of [
      '',
      '9144172093558',
      '914417209355861',
      '9144-1720-9355-86',
      '91-4417-2093-558',
      '91 4417 2093 5586',
      '91-44172093-5586',
      'ab-cdef-ghij-klmn',
      '٩١٤٤١٧٢٠٩٣٥٥٨٦',
    ]) {
      expect([v, normaliseAbhaNumber(v)]).toEqual([v, undefined]);
    }
  });
});

describe('normaliseAbhaAddress', () => {
  it('lower-cases a valid address at @abdm or @sbx', () => {
    expect(normaliseAbhaAddress('Ravi.Kumar@SBX')).toBe('ravi.kumar@sbx');
    expect(normaliseAbhaAddress('priya_nair92@abdm')).toBe('priya_nair92@abdm');
    expect(normaliseAbhaAddress(' abc@Abdm ')).toBe('abc@abdm');
  });

  it('rejects other shapes', () => {
    for (const v of [
      '',
      'ab@abdm',
      '.abc@abdm',
      'abc.@abdm',
      '_abc@sbx',
      'ra vi@sbx',
      'ravi@gmail.com',
      'ravi@abdm.in',
      'ravi@',
      '@abdm',
      'ravi-k@abdm',
      'ravi@@abdm',
    ]) {
      expect([v, normaliseAbhaAddress(v)]).toEqual([v, undefined]);
    }
  });
});

describe('parseAbhaParam', () => {
  it('classifies numbers and addresses', () => {
    expect(parseAbhaParam('91-4417-2093-5586')).toEqual({ abhaNumber: '91441720935586' });
    expect(parseAbhaParam('91441720935586')).toEqual({ abhaNumber: '91441720935586' });
    expect(parseAbhaParam('Ravi.Kumar@sbx')).toEqual({ abhaAddress: 'ravi.kumar@sbx' });
    expect(parseAbhaParam('ravi')).toBeUndefined();
    expect(parseAbhaParam('')).toBeUndefined();
  });
});

// abhaIdentity (which identifiers are the patient's ABHA) is tested rule by rule in test/fhir/abha.test.ts.

describe('maskAbhaNumber', () => {
  it('keeps only the last four digits', () => {
    expect(maskAbhaNumber('91441720935586')).toBe('xx-xxxx-xxxx-5586');
  });
});
