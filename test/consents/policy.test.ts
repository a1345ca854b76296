/**
 * The pure consent policy (src/consents/policy.ts), no database: one base
 * consent and one matching record, then one rule at a time, changing exactly
 * one input and checking decide() denies with that rule's reason.
 */
import { describe, expect, it } from 'vitest';
import {
  consentFilter,
  consentUsable,
  decide,
  frequencyWindow,
  patientKey,
  type RecordFacts,
  type Viewer,
} from '../../src/consents/policy.js';
import type { ConsentDoc, ConsentTerms } from '../../src/consents/store.js';

const NOW = new Date('2025-06-01T10:00:00.000Z');
const DATE_FROM = new Date('2024-01-01T00:00:00.000Z');
const DATE_TO = new Date('2024-12-31T23:59:59.999Z');
const ERASE_AT = new Date('2026-01-01T00:00:00.000Z');

const baseTerms = (): ConsentTerms => ({
  patient: 'asha.verma@sbx',
  hip: 'HIP-1',
  hiu: 'HIU-1',
  careContexts: ['CC-1', 'CC-2'],
  hiTypes: ['Prescription', 'DischargeSummary'],
  purpose: 'CAREMGT',
  accessMode: 'VIEW',
  dateFrom: new Date(DATE_FROM),
  dateTo: new Date(DATE_TO),
  dataEraseAt: new Date(ERASE_AT),
  frequency: { unit: 'HOUR', value: 5, repeats: 0 },
});

/** The base consent, with the given changes to its terms (or the document itself). */
function consent(terms: Partial<ConsentTerms> = {}, doc: Partial<ConsentDoc> = {}): ConsentDoc {
  return {
    _id: 'c-1',
    status: 'GRANTED',
    statusAt: new Date('2025-01-01T00:00:00Z'),
    history: [{ status: 'GRANTED', at: new Date('2025-01-01T00:00:00Z') }],
    createdAt: new Date('2025-01-01T00:00:00Z'),
    erasedAt: null,
    terms: { ...baseTerms(), ...terms },
    artefact: '{}',
    ...doc,
  };
}

const record = (over: Partial<RecordFacts> = {}): RecordFacts => ({
  provider: 'HIP-1',
  abhaNumber: '91770266310458',
  abhaAddress: 'asha.verma@sbx',
  careContext: 'CC-1',
  hiType: 'Prescription',
  recordDate: new Date('2024-06-15T12:00:00.000Z'),
  ...over,
});

const viewer = (over: Partial<Viewer> = {}): Viewer => ({ role: 'hiu', facilityId: 'HIU-1', ...over });

const ALLOW = { allow: true };
const denied = (reason: string | RegExp) => ({
  allow: false,
  reason: typeof reason === 'string' ? reason : expect.stringMatching(reason),
});

describe('decide: the base case', () => {
  it("allows the matching record to the consent's HIU while the consent is live", () => {
    expect(decide(consent(), record(), viewer(), NOW)).toEqual(ALLOW);
    expect(consentUsable(consent(), viewer(), NOW)).toEqual(ALLOW);
  });

  it('allows each listed care context and each listed hiType', () => {
    for (const careContext of ['CC-1', 'CC-2']) {
      for (const hiType of ['Prescription', 'DischargeSummary']) {
        expect(decide(consent(), record({ careContext, hiType }), viewer(), NOW)).toEqual(ALLOW);
      }
    }
  });
});

describe('decide: the consent must exist and be live', () => {
  it('denies without a consent', () => {
    expect(decide(null, record(), viewer(), NOW)).toEqual(denied('consent not found'));
    expect(consentUsable(null, viewer(), NOW)).toEqual(denied('consent not found'));
  });

  it.each(['REVOKED', 'EXPIRED', 'DENIED'] as const)(
    'denies a %s consent (even with its terms still present)',
    (status) => {
      expect(decide(consent({}, { status }), record(), viewer(), NOW)).toEqual(denied(`consent is ${status}`));
    },
  );

  it.each(['REVOKED', 'EXPIRED', 'DENIED'] as const)('denies a %s consent whose terms were erased', (status) => {
    expect(
      decide(consent({}, { status, terms: undefined, artefact: undefined, erasedAt: NOW }), record(), viewer(), NOW),
    ).toEqual(denied(`consent is ${status}`));
  });

  it('denies a GRANTED consent whose terms were erased', () => {
    const c = consent();
    delete c.terms;
    expect(decide(c, record(), viewer(), NOW)).toEqual(denied('consent has been erased'));
  });

  it('denies at dataEraseAt exactly: access ends AT dataEraseAt', () => {
    expect(decide(consent(), record(), viewer(), new Date(ERASE_AT))).toEqual(
      denied('consent has expired (dataEraseAt reached)'),
    );
  });

  it('allows 1 ms before dataEraseAt', () => {
    expect(decide(consent(), record(), viewer(), new Date(ERASE_AT.getTime() - 1))).toEqual(ALLOW);
  });

  it('denies after dataEraseAt', () => {
    expect(decide(consent(), record(), viewer(), new Date(ERASE_AT.getTime() + 1))).toEqual(
      denied('consent has expired (dataEraseAt reached)'),
    );
  });
});

describe("decide: the caller must be the consent's HIU", () => {
  it.each(['hip', 'cm', 'admin', 'HIU', ''])('denies role %j', (role) => {
    expect(decide(consent(), record(), viewer({ role }), NOW)).toEqual(
      denied('only a health information user (role hiu) fetches under a consent'),
    );
  });

  it("denies another HIU's facility", () => {
    expect(decide(consent(), record(), viewer({ facilityId: 'HIU-2' }), NOW)).toEqual(
      denied('consent was granted to another health information user'),
    );
  });

  it('facility ids are compared exactly (no case folding)', () => {
    expect(decide(consent(), record(), viewer({ facilityId: 'hiu-1' }), NOW)).toEqual(
      denied('consent was granted to another health information user'),
    );
  });

  it('denies every HIU when the consent names none (hiu null)', () => {
    expect(decide(consent({ hiu: null }), record(), viewer(), NOW)).toEqual(
      denied('consent was granted to another health information user'),
    );
    expect(decide(consent({ hiu: null }), record(), viewer({ facilityId: '' }), NOW)).toEqual(
      denied('consent was granted to another health information user'),
    );
  });

  it('denies an empty facility when the consent names an empty hiu', () => {
    expect(decide(consent({ hiu: '' }), record(), viewer({ facilityId: '' }), NOW)).toEqual(
      denied('consent was granted to another health information user'),
    );
  });
});

describe('decide: accessMode', () => {
  it('denies STREAM (served only through the health-information push)', () => {
    expect(decide(consent({ accessMode: 'STREAM' }), record(), viewer(), NOW)).toEqual(
      denied('consent accessMode STREAM does not allow a direct fetch'),
    );
  });

  it.each(['VIEW', 'QUERY', 'STORE'])('allows %s', (accessMode) => {
    expect(decide(consent({ accessMode }), record(), viewer(), NOW)).toEqual(ALLOW);
  });

  it('denies an unknown or lower-case mode', () => {
    expect(decide(consent({ accessMode: 'view' }), record(), viewer(), NOW)).toEqual(denied(/accessMode view/));
  });
});

describe('decide: the record must be within the consent', () => {
  it('denies a record of another provider', () => {
    expect(decide(consent(), record({ provider: 'HIP-2' }), viewer(), NOW)).toEqual(
      denied("record is not the consent's provider's"),
    );
  });

  it('denies a record of another patient (by address)', () => {
    expect(
      decide(consent(), record({ abhaAddress: 'ravi.kumar@sbx', abhaNumber: '91441720935586' }), viewer(), NOW),
    ).toEqual(denied("record is not the consent's patient's"));
  });

  it('denies a record without an ABHA address when the consent names an address', () => {
    expect(decide(consent(), record({ abhaAddress: null }), viewer(), NOW)).toEqual(
      denied("record is not the consent's patient's"),
    );
  });

  it('compares ABHA addresses case-insensitively: consent Asha.Verma@SBX matches record asha.verma@sbx', () => {
    expect(
      decide(consent({ patient: 'Asha.Verma@SBX' }), record({ abhaAddress: 'asha.verma@sbx' }), viewer(), NOW),
    ).toEqual(ALLOW);
    expect(decide(consent({ patient: '  ASHA.VERMA@sbx ' }), record(), viewer(), NOW)).toEqual(ALLOW);
  });

  it('an address on another domain (@abdm vs @sbx) is another patient', () => {
    expect(decide(consent({ patient: 'asha.verma@abdm' }), record(), viewer(), NOW)).toEqual(
      denied("record is not the consent's patient's"),
    );
  });

  it("a consent naming an ABHA number (dashed) matches the record's ABHA number digits", () => {
    expect(decide(consent({ patient: '91-7702-6631-0458' }), record(), viewer(), NOW)).toEqual(ALLOW);
    expect(decide(consent({ patient: '91770266310458' }), record(), viewer(), NOW)).toEqual(ALLOW);
    // matched by number even when the record has no address
    expect(decide(consent({ patient: '91-7702-6631-0458' }), record({ abhaAddress: null }), viewer(), NOW)).toEqual(
      ALLOW,
    );
  });

  it('a consent naming an ABHA number denies a record with another number, or none, even at the same address', () => {
    expect(decide(consent({ patient: '91-7702-6631-0459' }), record(), viewer(), NOW)).toEqual(
      denied("record is not the consent's patient's"),
    );
    expect(decide(consent({ patient: '91-7702-6631-0458' }), record({ abhaNumber: null }), viewer(), NOW)).toEqual(
      denied("record is not the consent's patient's"),
    );
  });

  it('denies a care context not listed', () => {
    expect(decide(consent(), record({ careContext: 'CC-3' }), viewer(), NOW)).toEqual(
      denied('care context not in the consent'),
    );
    expect(decide(consent(), record({ careContext: 'cc-1' }), viewer(), NOW)).toEqual(
      denied('care context not in the consent'),
    );
  });

  it('denies an hiType not listed', () => {
    expect(decide(consent(), record({ hiType: 'DiagnosticReport' }), viewer(), NOW)).toEqual(
      denied('record type not in the consent'),
    );
  });

  it('allows a record dated exactly at dateFrom and exactly at dateTo (inclusive range)', () => {
    expect(decide(consent(), record({ recordDate: new Date(DATE_FROM) }), viewer(), NOW)).toEqual(ALLOW);
    expect(decide(consent(), record({ recordDate: new Date(DATE_TO) }), viewer(), NOW)).toEqual(ALLOW);
  });

  it('denies a record dated 1 ms before dateFrom', () => {
    expect(decide(consent(), record({ recordDate: new Date(DATE_FROM.getTime() - 1) }), viewer(), NOW)).toEqual(
      denied("record date outside the consent's dateRange"),
    );
  });

  it('denies a record dated 1 ms after dateTo', () => {
    expect(decide(consent(), record({ recordDate: new Date(DATE_TO.getTime() + 1) }), viewer(), NOW)).toEqual(
      denied("record date outside the consent's dateRange"),
    );
  });

  it('a one-instant range (from == to) allows only that instant', () => {
    const at = new Date('2024-06-15T12:00:00.000Z');
    const c = consent({ dateFrom: at, dateTo: at });
    expect(decide(c, record({ recordDate: at }), viewer(), NOW)).toEqual(ALLOW);
    expect(decide(c, record({ recordDate: new Date(at.getTime() + 1) }), viewer(), NOW)).toEqual(
      denied("record date outside the consent's dateRange"),
    );
  });

  it('consent-level reasons come before record-level ones', () => {
    const other = record({ provider: 'HIP-2', careContext: 'CC-9', hiType: 'Invoice' });
    expect(decide(consent({}, { status: 'REVOKED' }), other, viewer(), NOW)).toEqual(denied('consent is REVOKED'));
    expect(decide(consent(), other, viewer({ facilityId: 'HIU-2' }), NOW)).toEqual(
      denied('consent was granted to another health information user'),
    );
  });
});

describe('patientKey', () => {
  it('classifies numbers (dashed or not) and addresses (lower-cased)', () => {
    expect(patientKey('91-7702-6631-0458')).toEqual({ abhaNumber: '91770266310458' });
    expect(patientKey('91770266310458')).toEqual({ abhaNumber: '91770266310458' });
    expect(patientKey('Asha.Verma@SBX')).toEqual({ abhaAddress: 'asha.verma@sbx' });
    expect(patientKey(' Odd-Id ')).toEqual({ abhaAddress: 'odd-id' });
  });
});

describe('consentFilter', () => {
  it('is the record-level rules as a database filter (address consent)', () => {
    expect(consentFilter(consent({ patient: 'Asha.Verma@SBX' }))).toEqual({
      provider: 'HIP-1',
      abhaAddress: 'asha.verma@sbx',
      careContext: { $in: ['CC-1', 'CC-2'] },
      hiType: { $in: ['Prescription', 'DischargeSummary'] },
      recordDate: { $gte: DATE_FROM, $lte: DATE_TO },
    });
  });

  it('matches by ABHA number digits when the consent names a number', () => {
    const f = consentFilter(consent({ patient: '91-7702-6631-0458' }));
    expect(f).toEqual({
      provider: 'HIP-1',
      abhaNumber: '91770266310458',
      careContext: { $in: ['CC-1', 'CC-2'] },
      hiType: { $in: ['Prescription', 'DischargeSummary'] },
      recordDate: { $gte: DATE_FROM, $lte: DATE_TO },
    });
    expect(f).not.toHaveProperty('abhaAddress');
  });
});

describe('frequencyWindow (UTC calendar units)', () => {
  const w = (unit: string, now: string) => {
    const r = frequencyWindow(unit, new Date(now));
    return { start: r.start.toISOString(), end: r.end.toISOString() };
  };

  it('HOUR', () => {
    expect(w('HOUR', '2025-06-01T10:37:12.345Z')).toEqual({
      start: '2025-06-01T10:00:00.000Z',
      end: '2025-06-01T11:00:00.000Z',
    });
    expect(w('HOUR', '2025-12-31T23:59:59.999Z')).toEqual({
      start: '2025-12-31T23:00:00.000Z',
      end: '2026-01-01T00:00:00.000Z',
    });
    expect(w('HOUR', '2025-06-01T10:00:00.000Z')).toEqual({
      start: '2025-06-01T10:00:00.000Z',
      end: '2025-06-01T11:00:00.000Z',
    });
  });

  it('DAY', () => {
    expect(w('DAY', '2025-06-01T10:37:12.345Z')).toEqual({
      start: '2025-06-01T00:00:00.000Z',
      end: '2025-06-02T00:00:00.000Z',
    });
    expect(w('DAY', '2024-02-29T23:59:59.999Z')).toEqual({
      start: '2024-02-29T00:00:00.000Z',
      end: '2024-03-01T00:00:00.000Z',
    });
  });

  it('WEEK starts on Monday', () => {
    // 2025-06-04 is a Wednesday
    expect(w('WEEK', '2025-06-04T10:00:00.000Z')).toEqual({
      start: '2025-06-02T00:00:00.000Z',
      end: '2025-06-09T00:00:00.000Z',
    });
    // Monday 00:00 starts its own week
    expect(w('WEEK', '2025-06-02T00:00:00.000Z')).toEqual({
      start: '2025-06-02T00:00:00.000Z',
      end: '2025-06-09T00:00:00.000Z',
    });
    // Sunday belongs to the week that began the Monday before
    expect(w('WEEK', '2025-06-08T23:59:59.999Z')).toEqual({
      start: '2025-06-02T00:00:00.000Z',
      end: '2025-06-09T00:00:00.000Z',
    });
    // across a month and a year boundary: Thursday 2026-01-01
    expect(w('WEEK', '2026-01-01T12:00:00.000Z')).toEqual({
      start: '2025-12-29T00:00:00.000Z',
      end: '2026-01-05T00:00:00.000Z',
    });
  });

  it('every WEEK window is 7 days long, starts on a Monday and contains now', () => {
    for (let i = 0; i < 60; i++) {
      const now = new Date(Date.UTC(2024, 0, 1) + i * 37 * 3600_000 + i * 1234);
      const r = frequencyWindow('WEEK', now);
      expect(r.start.getUTCDay()).toBe(1);
      expect(r.end.getTime() - r.start.getTime()).toBe(7 * 86400_000);
      expect(r.start.getTime()).toBeLessThanOrEqual(now.getTime());
      expect(now.getTime()).toBeLessThan(r.end.getTime());
    }
  });

  it('MONTH', () => {
    expect(w('MONTH', '2025-06-15T10:00:00.000Z')).toEqual({
      start: '2025-06-01T00:00:00.000Z',
      end: '2025-07-01T00:00:00.000Z',
    });
    expect(w('MONTH', '2025-12-31T23:59:59.999Z')).toEqual({
      start: '2025-12-01T00:00:00.000Z',
      end: '2026-01-01T00:00:00.000Z',
    });
    expect(w('MONTH', '2024-02-10T00:00:00.000Z')).toEqual({
      start: '2024-02-01T00:00:00.000Z',
      end: '2024-03-01T00:00:00.000Z',
    });
  });

  it('YEAR', () => {
    expect(w('YEAR', '2025-06-15T10:00:00.000Z')).toEqual({
      start: '2025-01-01T00:00:00.000Z',
      end: '2026-01-01T00:00:00.000Z',
    });
    expect(w('YEAR', '2024-01-01T00:00:00.000Z')).toEqual({
      start: '2024-01-01T00:00:00.000Z',
      end: '2025-01-01T00:00:00.000Z',
    });
  });
});
