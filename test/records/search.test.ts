// Unit tests for the search-parameter parser (src/records/search.ts): FHIR search parameters
// of GET /fhir/Bundle become a database filter, a page size and a keyset cursor. Pure: no database.
import { describe, it, expect } from 'vitest';
import { parseSearch, cursorFilter, SEARCH_PARAMS } from '../../src/records/search.js';
import { FhirError } from '../../src/fhir/outcome.js';

const OPTS = {
  defaultCount: 20,
  maxCount: 100,
  hiTypes: ['Prescription', 'DiagnosticReport', 'DischargeSummary'] as const,
};
const parse = (query: string) => parseSearch(new URLSearchParams(query), OPTS);
const utc = (iso: string) => new Date(iso);

/** The FhirError parseSearch throws for `query`. */
function refusal(query: string): FhirError {
  try {
    parse(query);
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    return e as FhirError;
  }
  throw new Error(`accepted: ${query}`);
}
function expect400(query: string, expression: string, diagnostics?: RegExp) {
  const e = refusal(query);
  expect(e.status).toBe(400);
  expect(e.issues).toHaveLength(1);
  expect(e.issues[0].code).toBe('invalid');
  expect(e.issues[0].expression).toBe(expression);
  if (diagnostics) expect(e.issues[0].diagnostics).toMatch(diagnostics);
}

describe('parseSearch: parameters', () => {
  it('gives an empty filter and the default page size without parameters', () => {
    expect(parse('')).toEqual({ filter: {}, count: 20, cursor: undefined });
  });

  it('documents exactly the parameters it accepts', () => {
    expect(SEARCH_PARAMS.map((p) => p.name)).toEqual([
      'patient-abha',
      'care-context',
      'type',
      'date',
      '_count',
      '_summary',
      '_elements',
      '_cursor',
    ]);
  });

  it('rejects unknown parameters with 400, naming the supported ones', () => {
    expect400(
      'patient=123',
      'patient',
      /^Unknown search parameter 'patient'; supported: patient-abha, care-context, type, date, _count, _summary, _elements, _cursor$/,
    );
    expect400('type=Prescription&_sort=date', '_sort');
    expect400('PATIENT-ABHA=91441720935586', 'PATIENT-ABHA');
  });

  it('rejects a repeated parameter other than date with 400', () => {
    expect400('type=Prescription&type=Prescription', 'type', /may be given once/);
    expect400('patient-abha=91441720935586&patient-abha=ravi.kumar@sbx', 'patient-abha');
    expect400('_count=10&_count=20', '_count');
    expect400('care-context=A&care-context=B', 'care-context');
  });

  it('combines several parameters into one filter', () => {
    expect(parse('patient-abha=ravi.kumar@sbx&type=DischargeSummary&care-context=IP-2024-000457&_count=5')).toEqual({
      filter: { abhaAddress: 'ravi.kumar@sbx', hiType: 'DischargeSummary', careContext: 'IP-2024-000457' },
      count: 5,
      cursor: undefined,
    });
  });
});

describe('parseSearch: patient-abha', () => {
  it('normalises an ABHA number with or without dashes to 14 digits', () => {
    expect(parse('patient-abha=91-4417-2093-5586').filter).toEqual({ abhaNumber: '91441720935586' });
    expect(parse('patient-abha=91441720935586').filter).toEqual({ abhaNumber: '91441720935586' });
    expect(parse('patient-abha=+91441720935586+').filter).toEqual({ abhaNumber: '91441720935586' }); // '+' decodes to a space
  });

  it('lower-cases an ABHA address', () => {
    expect(parse('patient-abha=Ravi.Kumar%40SBX').filter).toEqual({ abhaAddress: 'ravi.kumar@sbx' });
    expect(parse('patient-abha=priya_nair92@abdm').filter).toEqual({ abhaAddress: 'priya_nair92@abdm' });
  });

  it('rejects anything else with 400', () => {
    for (const v of [
      '',
      '9144172093558',
      '914417209355861',
      '9144-1720-9355-86',
      'ravi@gmail.com',
      'ab@abdm',
      'MRN-00418827',
    ]) {
      expect400(`patient-abha=${encodeURIComponent(v)}`, 'patient-abha', /^patient-abha must be an ABHA number/);
    }
  });
});

describe('parseSearch: care-context and type', () => {
  it('takes care-context verbatim, 1 to 128 characters', () => {
    expect(parse('care-context=OP-2024-000123').filter).toEqual({ careContext: 'OP-2024-000123' });
    expect(parse(`care-context=${'x'.repeat(128)}`).filter).toEqual({ careContext: 'x'.repeat(128) });
    expect400('care-context=', 'care-context');
    expect400(`care-context=${'x'.repeat(129)}`, 'care-context');
  });

  it('accepts only the configured hiTypes, case-sensitively', () => {
    for (const t of OPTS.hiTypes) expect(parse(`type=${t}`).filter).toEqual({ hiType: t });
    expect400('type=prescription', 'type', /^type must be one of Prescription, DiagnosticReport, DischargeSummary$/);
    expect400('type=SickNote', 'type');
  });
});

describe('parseSearch: date', () => {
  const range = (query: string) => parse(query).filter.recordDate;

  it('eq (the default) covers the whole year, month, day or instant', () => {
    expect(range('date=2024')).toEqual({ $gte: utc('2024-01-01T00:00:00Z'), $lt: utc('2025-01-01T00:00:00Z') });
    expect(range('date=eq2024')).toEqual({ $gte: utc('2024-01-01T00:00:00Z'), $lt: utc('2025-01-01T00:00:00Z') });
    expect(range('date=eq2024-02')).toEqual({ $gte: utc('2024-02-01T00:00:00Z'), $lt: utc('2024-03-01T00:00:00Z') });
    expect(range('date=eq2024-12')).toEqual({ $gte: utc('2024-12-01T00:00:00Z'), $lt: utc('2025-01-01T00:00:00Z') });
    expect(range('date=2024-03-12')).toEqual({ $gte: utc('2024-03-12T00:00:00Z'), $lt: utc('2024-03-13T00:00:00Z') });
    expect(range('date=2024-03-12T10:30:00Z')).toEqual({
      $gte: utc('2024-03-12T10:30:00Z'),
      $lt: utc('2024-03-12T10:30:01Z'),
    });
  });

  it('ge and gt bound below: ge at the start, gt at the end of the partial date', () => {
    expect(range('date=ge2024-03')).toEqual({ $gte: utc('2024-03-01T00:00:00Z') });
    expect(range('date=gt2024-03')).toEqual({ $gte: utc('2024-04-01T00:00:00Z') });
    expect(range('date=ge2024')).toEqual({ $gte: utc('2024-01-01T00:00:00Z') });
    expect(range('date=gt2024')).toEqual({ $gte: utc('2025-01-01T00:00:00Z') });
    expect(range('date=gt2024-02-29')).toEqual({ $gte: utc('2024-03-01T00:00:00Z') });
  });

  it('le and lt bound above: le at the end, lt at the start of the partial date', () => {
    expect(range('date=le2024-03')).toEqual({ $lt: utc('2024-04-01T00:00:00Z') });
    expect(range('date=lt2024-03')).toEqual({ $lt: utc('2024-03-01T00:00:00Z') });
    expect(range('date=le2024-12-31')).toEqual({ $lt: utc('2025-01-01T00:00:00Z') });
    expect(range('date=lt2024-12-31')).toEqual({ $lt: utc('2024-12-31T00:00:00Z') });
  });

  it('honours the timezone of a dateTime', () => {
    expect(range('date=ge2024-03-12T10:00:00%2B05:30')).toEqual({ $gte: utc('2024-03-12T04:30:00Z') });
    expect(range('date=lt2024-03-12T10:00-02:00')).toEqual({ $lt: utc('2024-03-12T12:00:00Z') });
  });

  it('combines repeated dates into the tightest range', () => {
    expect(range('date=ge2024-01-01&date=lt2025-01-01')).toEqual({
      $gte: utc('2024-01-01T00:00:00Z'),
      $lt: utc('2025-01-01T00:00:00Z'),
    });
    expect(range('date=ge2024&date=ge2024-06')).toEqual({ $gte: utc('2024-06-01T00:00:00Z') });
    expect(range('date=ge2024-06&date=ge2024')).toEqual({ $gte: utc('2024-06-01T00:00:00Z') });
    expect(range('date=le2024-12&date=lt2024-06-15')).toEqual({ $lt: utc('2024-06-15T00:00:00Z') });
    expect(range('date=2024&date=le2024-03')).toEqual({
      $gte: utc('2024-01-01T00:00:00Z'),
      $lt: utc('2024-04-01T00:00:00Z'),
    });
  });

  it('rejects malformed dates and unknown prefixes with 400', () => {
    for (const v of [
      '',
      'ne2024',
      'sa2024-01-01',
      'ap2024',
      '2024-02-30',
      '2023-02-29',
      '2024-13',
      '2024-1-5',
      '12-03-2024',
      'ge',
      'tomorrow',
    ]) {
      expect400(`date=${encodeURIComponent(v)}`, 'date', /is not a FHIR date with an optional prefix/);
    }
    // One bad value among good ones still fails.
    expect400('date=ge2024&date=lt2024-02-30', 'date');
  });
});

describe('parseSearch: _count', () => {
  it('takes a positive integer and clamps it to maxCount', () => {
    expect(parse('_count=1').count).toBe(1);
    expect(parse('_count=37').count).toBe(37);
    expect(parse('_count=100').count).toBe(100);
    expect(parse('_count=101').count).toBe(100);
    expect(parse('_count=999999').count).toBe(100);
    expect(parseSearch(new URLSearchParams('_count=50'), { ...OPTS, maxCount: 10 }).count).toBe(10);
    expect(parseSearch(new URLSearchParams(''), { ...OPTS, defaultCount: 7 }).count).toBe(7);
  });

  it('rejects zero, negatives, fractions, words and empty values with 400', () => {
    for (const v of ['0', '-1', '1.5', '1e2', 'ten', '', ' 5', '0x10', '00']) {
      expect400(`_count=${encodeURIComponent(v)}`, '_count', /^_count must be a positive integer$/);
    }
  });
});

describe('parseSearch: _cursor', () => {
  it('passes the token through unopened (the route opens it, records/cursor.ts); an empty one is 400', () => {
    expect(parse('_cursor=abc.def').cursorToken).toBe('abc.def');
    expect(parse('_cursor=abc.def').cursor).toBeUndefined();
    expect(parse('').cursorToken).toBeUndefined();
    expect400('_cursor=', '_cursor', /^_cursor is empty$/);
  });
});

describe('cursorFilter', () => {
  it('pages after the cursor record for next, before it for prev (recordDate desc, id desc)', () => {
    const d = new Date(1710222877000);
    expect(cursorFilter({ d: d.getTime(), i: 'abc', dir: 'next' })).toEqual({
      $or: [{ recordDate: { $lt: d } }, { recordDate: d, _id: { $lt: 'abc' } }],
    });
    expect(cursorFilter({ d: d.getTime(), i: 'abc', dir: 'prev' })).toEqual({
      $or: [{ recordDate: { $gt: d } }, { recordDate: d, _id: { $gt: 'abc' } }],
    });
  });
});
