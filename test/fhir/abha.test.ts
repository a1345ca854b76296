// Unit tests of abhaIdentity (src/fhir/abha.ts): which Patient.identifier entries are taken as the
// patient's ABHA number and ABHA address. One describe per rule of the file header.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { abhaIdentity, DEFAULT_ABHA_SYSTEMS, NDHM_IDENTIFIER_TYPE } from '../../src/fhir/abha.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { indexKeys } from '../../src/records/index-keys.js';
import { sharedStructure } from '../support/app.js';

const V2 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const MRN_SYSTEM = 'https://hospital.example.in/mrn';
type Coding = { system?: string; code?: string; display?: string };
/** An identifier: value, then optional system and type codings. */
const id = (value: unknown, system?: string, ...coding: Coding[]) => ({
  ...(coding.length ? { type: { coding } } : {}),
  ...(system ? { system } : {}),
  value,
});
const MR: Coding = { system: V2, code: 'MR', display: 'Medical record number' };
const ABHA: Coding = { system: NDHM_IDENTIFIER_TYPE, code: 'ABHA', display: 'ABHA ID' };
const HIN: Coding = { system: NDHM_IDENTIFIER_TYPE, code: 'HIN', display: 'Health ID number' };
const identity = (ids: unknown[], systems: readonly string[] = DEFAULT_ABHA_SYSTEMS) => abhaIdentity(ids, systems);

describe('abhaIdentity: the reported defect', () => {
  it('indexes the ABHA-system number, not a hospital MRN shaped like an ABHA number that comes first', () => {
    // Before the fix the first dashed-shape value won: abhaNumber was 22333344445555.
    const ids = [id('22-3333-4444-5555', MRN_SYSTEM, MR), id('91-4417-2093-5586', 'https://healthid.abdm.gov.in')];
    expect(identity(ids)).toEqual({ abhaNumber: '91441720935586', malformed: [], conflicts: [] });
  });
});

describe('rule 1: an identifier is claimed ABHA by its type coding or its system', () => {
  it('claims by the IG identifier-type codes ABHA and HIN, under any system', () => {
    for (const code of [ABHA, HIN]) {
      expect(identity([id('91441720935586', MRN_SYSTEM, code)], [])).toEqual({
        abhaNumber: '91441720935586',
        malformed: [],
        conflicts: [],
      });
    }
  });

  it('claims by a configured system, a trailing slash ignored', () => {
    for (const system of [
      'https://healthid.ndhm.gov.in',
      'https://healthid.abdm.gov.in/',
      'https://abha.abdm.gov.in',
    ]) {
      expect(identity([id('91441720935586', system)]).abhaNumber).toBe('91441720935586');
    }
    expect(
      identity([id('91441720935586', 'https://my-abha.example.in')], ['https://my-abha.example.in']).abhaNumber,
    ).toBe('91441720935586');
    // Only the configured systems count.
    expect(
      identity([id('91441720935586', 'https://healthid.ndhm.gov.in')], ['https://my-abha.example.in']).abhaNumber,
    ).toBeUndefined();
  });

  it('lets a claim win over any other type coding (the IG examples: v2-0203 MR or NNIND under healthid.ndhm.gov.in)', () => {
    for (const other of [MR, { system: V2, code: 'NNIND' }]) {
      expect(identity([id('22-7225-4829-5255', 'https://healthid.ndhm.gov.in', other)]).abhaNumber).toBe(
        '22722548295255',
      );
    }
    expect(identity([id('ravi.kumar@sbx', MRN_SYSTEM, MR, ABHA)]).abhaAddress).toBe('ravi.kumar@sbx');
  });

  it('does not take ABHA or HIN from another code system as a claim', () => {
    expect(identity([id('91441720935586', MRN_SYSTEM, { system: V2, code: 'ABHA' })])).toEqual({
      malformed: [],
      conflicts: [],
    });
  });

  it('reports a claimed identifier whose value has neither shape, by index', () => {
    const ids = [
      id('MRN-1', MRN_SYSTEM, MR),
      id('9144-1720', 'https://healthid.abdm.gov.in'),
      id('not an address', undefined, ABHA),
      id('ravi.kumar@sbx', 'https://healthid.abdm.gov.in'),
    ];
    expect(identity(ids)).toEqual({
      abhaAddress: 'ravi.kumar@sbx',
      malformed: [
        { index: 1, value: '9144-1720' },
        { index: 2, value: 'not an address' },
      ],
      conflicts: [],
    });
  });
});

describe('rule 2: an unclaimed identifier with a system or a type is never ABHA', () => {
  it('ignores an ABHA-shaped number or address under another system', () => {
    for (const value of ['91-4417-2093-5586', '91441720935586', 'ravi.kumar@sbx']) {
      expect(identity([id(value, MRN_SYSTEM)])).toEqual({ malformed: [], conflicts: [] });
    }
  });

  it('ignores an ABHA-shaped value typed MR without a system, and one with a type that has no coding', () => {
    expect(identity([id('91-4417-2093-5586', undefined, MR)])).toEqual({ malformed: [], conflicts: [] });
    expect(identity([{ type: { text: 'MRN' }, value: '91-4417-2093-5586' }])).toEqual({ malformed: [], conflicts: [] });
  });

  it('does not report such an identifier as malformed, nor a system of the wrong JSON type as a claim', () => {
    expect(identity([id('MRN-00418827', MRN_SYSTEM, MR), { system: 123, value: '91-4417-2093-5586' }])).toEqual({
      malformed: [],
      conflicts: [],
    });
  });
});

describe('rule 3: only a bare identifier is recognised by shape alone', () => {
  it('takes a bare dashed or plain 14-digit number, and a bare name@abdm / name@sbx address', () => {
    expect(identity([id('91-4417-2093-5586')]).abhaNumber).toBe('91441720935586');
    expect(identity([id('91441720935586')]).abhaNumber).toBe('91441720935586');
    expect(identity([id('Ravi.Kumar@SBX')]).abhaAddress).toBe('ravi.kumar@sbx');
    expect(identity([id('priya_nair92@abdm')]).abhaAddress).toBe('priya_nair92@abdm');
  });

  it('ignores a bare value of neither shape without reporting it', () => {
    expect(identity([id('MRN-1'), id('9144-1720'), id('ravi@gmail.com')])).toEqual({ malformed: [], conflicts: [] });
  });
});

describe('rule 4: claimed identifiers are used first, bare ones only for a kind no claim gives', () => {
  it('prefers a claimed number to a bare one listed before it, and does not call them a conflict', () => {
    const ids = [id('11-1111-1111-1111'), id('22222222222222', 'https://healthid.abdm.gov.in')];
    expect(identity(ids)).toEqual({ abhaNumber: '22222222222222', malformed: [], conflicts: [] });
  });

  it('takes a bare address when only the number is claimed', () => {
    const ids = [id('22222222222222', 'https://healthid.abdm.gov.in'), id('ravi.kumar@sbx')];
    expect(identity(ids)).toEqual({
      abhaNumber: '22222222222222',
      abhaAddress: 'ravi.kumar@sbx',
      malformed: [],
      conflicts: [],
    });
  });

  it('takes a bare number when the only claimed identifier is malformed', () => {
    const ids = [id('9144-1720', 'https://healthid.abdm.gov.in'), id('91-4417-2093-5586')];
    expect(identity(ids)).toEqual({
      abhaNumber: '91441720935586',
      malformed: [{ index: 0, value: '9144-1720' }],
      conflicts: [],
    });
  });
});

describe('rule 5: two different numbers or addresses among those that count conflict', () => {
  it('reports two different claimed numbers with both positions', () => {
    const ids = [
      id('91-4417-2093-5586', 'https://healthid.abdm.gov.in'),
      id('ravi.kumar@sbx', undefined, ABHA),
      id('22-3333-4444-5555', 'https://healthid.ndhm.gov.in'),
    ];
    expect(identity(ids)).toEqual({
      abhaNumber: '91441720935586',
      abhaAddress: 'ravi.kumar@sbx',
      malformed: [],
      conflicts: [
        {
          kind: 'number',
          first: { index: 0, value: '91-4417-2093-5586' },
          second: { index: 2, value: '22-3333-4444-5555' },
        },
      ],
    });
  });

  it('reports two different bare addresses when no address is claimed', () => {
    expect(identity([id('ravi.kumar@sbx'), id('MRN-1', MRN_SYSTEM), id('ravi.other@abdm')]).conflicts).toEqual([
      { kind: 'address', first: { index: 0, value: 'ravi.kumar@sbx' }, second: { index: 2, value: 'ravi.other@abdm' } },
    ]);
  });

  it('does not count the same number written dashed and plain, or the same address in another case, as a conflict', () => {
    const ids = [
      id('91-4417-2093-5586', 'https://healthid.abdm.gov.in'),
      id('91441720935586', undefined, HIN),
      id('Ravi.Kumar@sbx', undefined, ABHA),
      id('ravi.kumar@SBX', 'https://abha.abdm.gov.in'),
    ];
    expect(identity(ids)).toEqual({
      abhaNumber: '91441720935586',
      abhaAddress: 'ravi.kumar@sbx',
      malformed: [],
      conflicts: [],
    });
  });

  it('ignores ABHA-shaped values under other systems when looking for conflicts', () => {
    const ids = [
      id('22-3333-4444-5555', MRN_SYSTEM, MR),
      id('91-4417-2093-5586', 'https://healthid.abdm.gov.in'),
      id('33-3333-4444-5555', 'https://lab.example.in/id'),
    ];
    expect(identity(ids).conflicts).toEqual([]);
  });
});

describe('rule 6: without a number or an address there is no identity', () => {
  it('returns nothing for a missing, non-array or empty identifier list, or only other identifiers', () => {
    for (const v of [undefined, null, {}, 'x', 5, []])
      expect(abhaIdentity(v, DEFAULT_ABHA_SYSTEMS)).toEqual({ malformed: [], conflicts: [] });
    expect(identity([id('22-3333-4444-5555', MRN_SYSTEM, MR)])).toEqual({ malformed: [], conflicts: [] });
  });

  it('skips null entries and non-string values', () => {
    const ids = [
      null,
      id(91441720935586, 'https://healthid.abdm.gov.in'),
      id(undefined, 'https://healthid.abdm.gov.in'),
      id('ravi.kumar@sbx'),
    ];
    expect(identity(ids)).toEqual({ abhaAddress: 'ravi.kumar@sbx', malformed: [], conflicts: [] });
  });
});

describe('callers: the profile stage and the index keys', () => {
  const validator = new DocumentValidator(
    { maxBytes: 10 * 1024 * 1024, maxDepth: 64, abhaSystems: DEFAULT_ABHA_SYSTEMS },
    sharedStructure(),
  );
  const PATIENT = 'Bundle.entry[1].resource';
  /** fixtures/examples/prescription.json with its Patient.identifier replaced. */
  const prescription = (identifiers: unknown[]) => {
    const b = JSON.parse(readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8'));
    expect(b.entry[1].resource.resourceType).toBe('Patient');
    b.entry[1].resource.identifier = identifiers;
    return b;
  };
  const rejection = (b: unknown) => {
    try {
      validator.validate(b);
    } catch (e) {
      expect(e).toBeInstanceOf(FhirError);
      return e as FhirError;
    }
    throw new Error('accepted');
  };

  it('indexes a document under the ABHA-system number, not the MRN shaped like one before it', () => {
    const doc = validator.validate(
      prescription([
        id('22-3333-4444-5555', MRN_SYSTEM, MR),
        id('91-4417-2093-5586', 'https://healthid.abdm.gov.in', MR),
      ]),
    );
    expect(indexKeys(doc)).toMatchObject({ abhaNumber: '91441720935586', abhaAddress: null });
  });

  it('refuses two different ABHA numbers with 422 naming both, the expression at the second', () => {
    const e = rejection(
      prescription([
        id('91-4417-2093-5586', 'https://healthid.abdm.gov.in', MR),
        id('MRN-1', MRN_SYSTEM, MR),
        id('22-3333-4444-5555', undefined, HIN),
      ]),
    );
    expect(e.status).toBe(422);
    expect(e.issues).toEqual([
      {
        severity: 'error',
        code: 'business-rule',
        diagnostics: `${PATIENT}.identifier[0] ('91-4417-2093-5586') and ${PATIENT}.identifier[2] ('22-3333-4444-5555') are two different ABHA numbers; a patient has one`,
        expression: `${PATIENT}.identifier[2].value`,
      },
    ]);
  });

  it('refuses two different ABHA addresses the same way', () => {
    const e = rejection(
      prescription([
        id('ravi.kumar@sbx', undefined, ABHA),
        id('ravi.other@abdm', 'https://healthid.abdm.gov.in', ABHA),
      ]),
    );
    expect(e.issues.map((i) => [i.code, i.expression])).toEqual([['business-rule', `${PATIENT}.identifier[1].value`]]);
    expect(e.issues[0].diagnostics).toContain('two different ABHA addresses');
  });

  it('accepts the same number written dashed and plain', () => {
    const doc = validator.validate(
      prescription([id('91-4417-2093-5586', 'https://healthid.abdm.gov.in', MR), id('91441720935586', undefined, HIN)]),
    );
    expect(indexKeys(doc).abhaNumber).toBe('91441720935586');
  });

  it('says, when only other systems give ABHA-shaped values, that they are not taken as ABHA and how the systems are configured', () => {
    const e = rejection(prescription([id('22-3333-4444-5555', MRN_SYSTEM, MR)]));
    expect(e.issues.map((i) => [i.code, i.expression])).toEqual([['required', `${PATIENT}.identifier`]]);
    expect(e.issues[0].diagnostics).toMatch(/^The patient must be identified by an ABHA number/);
    expect(e.issues[0].diagnostics).toContain('Identifiers under other systems are not taken as ABHA');
    expect(e.issues[0].diagnostics).toContain('ABHA_IDENTIFIER_SYSTEMS');
  });
});
