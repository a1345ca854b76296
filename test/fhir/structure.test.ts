// Unit tests for the R4 structural validator (src/fhir/structure.ts), compiled once from the
// R4 StructureDefinitions: the fixtures are clean, and each targeted mutation yields the
// expected issue code at the exact FHIRPath expression.
import { describe, it, expect, beforeAll } from 'vitest';
import { StructureValidator } from '../../src/fhir/structure.js';
import type { Issue } from '../../src/fhir/outcome.js';
import { FIXTURES, load } from '../support/fixtures.js';

let sv: StructureValidator;
beforeAll(() => {
  sv = new StructureValidator();
});

function validate(value: unknown, limit?: number): Issue[] {
  const out: Issue[] = [];
  sv.validateResource(value, 'Bundle', out, limit);
  return out;
}
const brief = (issues: Issue[]) => issues.map((i) => [i.code, i.expression]);

/** Index of the first entry of a given resourceType. */
const entryIndex = (bundle: any, type: string) => bundle.entry.findIndex((e: any) => e.resource.resourceType === type);

describe('StructureValidator on the fixtures', () => {
  it('knows the R4 resource types', () => {
    expect(sv.resourceTypes.has('Bundle')).toBe(true);
    expect(sv.resourceTypes.has('MedicationRequest')).toBe(true);
    expect(sv.resourceTypes.has('DomainResource')).toBe(false); // abstract
    expect(sv.resourceTypes.has('Foo')).toBe(false);
    expect(sv.nodeFor('Patient')?.name).toBe('Patient');
    expect(sv.nodeFor('Resource')).toBeUndefined();
  });

  for (const name of FIXTURES) {
    it(`${name}.json has no structural issues`, () => {
      expect(validate(load(name))).toEqual([]);
    });
  }
});

describe('StructureValidator mutations (prescription.json)', () => {
  // prescription.json: entry[1] Patient, entry[2] Practitioner, entry[7] MedicationRequest.
  const P = 'Bundle.entry[1].resource';
  const MR = 'Bundle.entry[7].resource';

  it('reports an unknown element', () => {
    const b = load('prescription');
    b.entry[1].resource.foo = 'bar';
    const issues = validate(b);
    expect(brief(issues)).toEqual([['structure', `${P}.foo`]]);
    expect(issues[0].severity).toBe('error');
    expect(issues[0].diagnostics).toBe("Unknown element 'foo' in Patient");
  });

  it('reports an unknown element deep inside a datatype', () => {
    const b = load('prescription');
    b.entry[7].resource.dosageInstruction[0].timing.repeat.nonsense = 1;
    expect(brief(validate(b))).toEqual([['structure', `${MR}.dosageInstruction[0].timing.repeat.nonsense`]]);
  });

  it('reports a string where a boolean is expected', () => {
    const b = load('prescription');
    b.entry[1].resource.active = 'true';
    const issues = validate(b);
    expect(brief(issues)).toEqual([['value', `${P}.active`]]);
    expect(issues[0].diagnostics).toContain('Invalid boolean');
  });

  it('reports a number where a string is expected, and an empty string', () => {
    const b = load('prescription');
    b.entry[1].resource.name[0].text = 42;
    b.entry[2].resource.name[0].text = '';
    expect(brief(validate(b))).toEqual([
      ['value', `${P}.name[0].text`],
      ['value', 'Bundle.entry[2].resource.name[0].text'],
    ]);
  });

  it('reports a max-1 element given as an array', () => {
    const b = load('prescription');
    b.entry[1].resource.gender = [b.entry[1].resource.gender];
    const issues = validate(b);
    expect(brief(issues)).toEqual([['structure', `${P}.gender`]]);
    expect(issues[0].diagnostics).toBe('gender has max cardinality 1 and must not be an array');
  });

  it('reports an array element given as an object', () => {
    const b = load('prescription');
    b.entry[1].resource.name = b.entry[1].resource.name[0];
    const issues = validate(b);
    expect(brief(issues)).toEqual([['structure', `${P}.name`]]);
    expect(issues[0].diagnostics).toBe('name must be a JSON array (max *)');
  });

  it('reports an empty array', () => {
    const b = load('prescription');
    b.entry[1].resource.telecom = [];
    const issues = validate(b);
    expect(brief(issues)).toEqual([['structure', `${P}.telecom`]]);
    expect(issues[0].diagnostics).toBe('telecom must not be an empty array');
  });

  it('reports an empty object', () => {
    const b = load('prescription');
    b.entry[7].resource.subject = {};
    expect(brief(validate(b))).toEqual([['structure', `${MR}.subject`]]);
  });

  it('reports a missing required primitive (MedicationRequest.status)', () => {
    const b = load('prescription');
    delete b.entry[7].resource.status;
    const issues = validate(b);
    expect(brief(issues)).toEqual([['required', `${MR}.status`]]);
    expect(issues[0].diagnostics).toBe('Missing required element status (min 1) in MedicationRequest');
  });

  it('reports a missing required choice element as name[x] (MedicationRequest.medication[x])', () => {
    const b = load('prescription');
    delete b.entry[7].resource.medicationCodeableConcept;
    const issues = validate(b);
    expect(brief(issues)).toEqual([['required', `${MR}.medication`]]);
    expect(issues[0].diagnostics).toContain('medication[x]');
  });

  it('reports a code outside a required binding (MedicationRequest.status "bogus")', () => {
    const b = load('prescription');
    b.entry[7].resource.status = 'bogus';
    const issues = validate(b);
    expect(brief(issues)).toEqual([['code-invalid', `${MR}.status`]]);
    expect(issues[0].diagnostics).toContain('http://hl7.org/fhir/ValueSet/medicationrequest-status');
  });

  it('accepts every code of the required binding', () => {
    for (const code of [
      'active',
      'on-hold',
      'cancelled',
      'completed',
      'entered-in-error',
      'stopped',
      'draft',
      'unknown',
    ]) {
      const b = load('prescription');
      b.entry[7].resource.status = code;
      expect(validate(b)).toEqual([]);
    }
  });

  it('reports a dateTime with a time but no timezone', () => {
    const b = load('prescription');
    b.entry[7].resource.authoredOn = '2024-03-12T11:20:00';
    const issues = validate(b);
    expect(brief(issues)).toEqual([['value', `${MR}.authoredOn`]]);
    expect(issues[0].diagnostics).toContain('with a timezone');
  });

  it('accepts partial dateTimes and dateTimes with Z or an offset', () => {
    for (const v of ['2024', '2024-03', '2024-03-12', '2024-03-12T11:20:00Z', '2024-03-12T11:20:00.123+05:30']) {
      const b = load('prescription');
      b.entry[7].resource.authoredOn = v;
      expect(validate(b)).toEqual([]);
    }
    for (const v of ['2024-3-12', '2024-03-12T11:20+05:30', '12/03/2024', '2024-13-01']) {
      const b = load('prescription');
      b.entry[7].resource.authoredOn = v;
      expect(brief(validate(b))).toEqual([['value', `${MR}.authoredOn`]]);
    }
  });

  it('reports an instant without a timezone (Bundle.timestamp)', () => {
    const b = load('prescription');
    b.timestamp = '2024-03-12T11:24:37.282679';
    expect(brief(validate(b))).toEqual([['value', 'Bundle.timestamp']]);
  });

  it('reports two variants of one choice element', () => {
    const b = load('diagnostic-report');
    const i = entryIndex(b, 'Observation');
    expect(b.entry[i].resource.valueQuantity).toBeDefined();
    b.entry[i].resource.valueString = 'high';
    const issues = validate(b);
    expect(brief(issues)).toEqual([['structure', `Bundle.entry[${i}].resource.valueString`]]);
    expect(issues[0].diagnostics).toBe('Only one of value[x] may be present (found valueQuantity and valueString)');
  });

  it('reports an unknown choice variant as an unknown element', () => {
    const b = load('diagnostic-report');
    const i = entryIndex(b, 'Observation');
    b.entry[i].resource.valueFoo = 1;
    expect(brief(validate(b))).toEqual([['structure', `Bundle.entry[${i}].resource.valueFoo`]]);
  });

  it('reports an unknown resourceType in an entry', () => {
    const b = load('prescription');
    b.entry[3].resource.resourceType = 'Hospital';
    const issues = validate(b);
    expect(brief(issues)).toEqual([['structure', 'Bundle.entry[3].resource.resourceType']]);
    expect(issues[0].diagnostics).toBe("Unknown resourceType 'Hospital' (not an R4 resource)");
  });

  it('reports an entry resource without resourceType, or that is not an object', () => {
    const b = load('prescription');
    delete b.entry[3].resource.resourceType;
    b.entry[4].resource = 'Encounter';
    expect(brief(validate(b))).toEqual([
      ['required', 'Bundle.entry[3].resource'],
      ['structure', 'Bundle.entry[4].resource'],
    ]);
  });

  it('accepts a _status extension element on a primitive', () => {
    const b = load('prescription');
    b.entry[7].resource._status = {
      extension: [
        { url: 'http://example.org/fhir/StructureDefinition/status-note', valueString: 'confirmed by phone' },
      ],
    };
    expect(validate(b)).toEqual([]);
  });

  it('accepts a _field element without its value (extension only)', () => {
    const b = load('prescription');
    delete b.entry[1].resource.birthDate;
    b.entry[1].resource._birthDate = {
      extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }],
    };
    expect(validate(b)).toEqual([]);
  });

  it('accepts aligned _field arrays for repeating primitives, with nulls where only one side has content', () => {
    const b = load('prescription');
    const ext = {
      extension: [{ url: 'http://example.org/fhir/StructureDefinition/given-note', valueString: 'nickname' }],
    };
    b.entry[1].resource.name[0].given = ['Ravi', null];
    b.entry[1].resource.name[0]._given = [null, ext];
    expect(validate(b)).toEqual([]);
    b.entry[1].resource.name[0]._given = [ext];
    expect(brief(validate(b))).toEqual([['structure', `${P}.name[0]._given`]]);
    // A null value needs a _given array beside it.
    b.entry[1].resource.name[0]._given = ext;
    expect(brief(validate(b))).toEqual([
      ['value', `${P}.name[0].given[1]`],
      ['structure', `${P}.name[0]._given`],
    ]);
  });

  it('validates the content of a _field element', () => {
    const b = load('prescription');
    b.entry[7].resource._status = { extension: [{ url: 'http://example.org/x', valueString: 'y' }], foo: 1 };
    expect(brief(validate(b))).toEqual([['structure', `${MR}._status.foo`]]);
  });

  it('reports a _field that is not an Element object, or names a complex element', () => {
    const b = load('prescription');
    b.entry[7].resource._status = 'confirmed';
    b.entry[7].resource._subject = { id: 'x' };
    expect(brief(validate(b))).toEqual([
      ['structure', `${MR}._status`],
      ['structure', `${MR}._subject`],
    ]);
  });

  it('reports positiveInt values out of range', () => {
    // Timing.repeat.frequency is positiveInt (>= 1, 32-bit).
    const at = `${MR}.dosageInstruction[0].timing.repeat.frequency`;
    for (const bad of [0, -1, 1.5, 2147483648, '2']) {
      const b = load('prescription');
      b.entry[7].resource.dosageInstruction[0].timing.repeat.frequency = bad;
      const issues = validate(b);
      expect(brief(issues)).toEqual([['value', at]]);
      expect(issues[0].diagnostics).toContain('Invalid positiveInt');
    }
    for (const good of [1, 2147483647]) {
      const b = load('prescription');
      b.entry[7].resource.dosageInstruction[0].timing.repeat.frequency = good;
      expect(validate(b)).toEqual([]);
    }
  });

  it('reports integers out of the 32-bit range', () => {
    const at = `${MR}.dosageInstruction[0].sequence`;
    for (const bad of [2147483648, -2147483649, 1.25]) {
      const b = load('prescription');
      b.entry[7].resource.dosageInstruction[0].sequence = bad;
      expect(brief(validate(b))).toEqual([['value', at]]);
    }
    const b = load('prescription');
    b.entry[7].resource.dosageInstruction[0].sequence = -2147483648;
    expect(validate(b)).toEqual([]);
  });

  it('reports a non-number decimal', () => {
    const b = load('prescription');
    b.entry[7].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value = '1';
    expect(brief(validate(b))).toEqual([['value', `${MR}.dosageInstruction[0].doseAndRate[0].doseQuantity.value`]]);
  });

  it('reports several faults in one pass and honours the issue limit', () => {
    const b = load('prescription');
    b.entry[1].resource.foo = 1;
    b.entry[1].resource.active = 'yes';
    delete b.entry[7].resource.status;
    expect(brief(validate(b))).toEqual([
      ['structure', `${P}.foo`],
      ['value', `${P}.active`],
      ['required', `${MR}.status`],
    ]);
    expect(validate(b, 2)).toHaveLength(2);
  });
});

describe('StructureValidator: base64Binary', () => {
  const binaryEntry = (data: unknown) => ({
    fullUrl: 'urn:uuid:0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f',
    resource: {
      resourceType: 'Binary',
      id: '0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f',
      contentType: 'application/pdf',
      data,
    },
  });

  it('reports invalid base64 in Binary.data', () => {
    for (const bad of ['DUMMY', 'not base64!', 'QUJD=D', 'QUJDRA', '']) {
      const b = load('prescription');
      b.entry.push(binaryEntry(bad));
      const issues = validate(b);
      expect(brief(issues)).toEqual([['value', 'Bundle.entry[10].resource.data']]);
      expect(issues[0].diagnostics).toContain('Invalid base64Binary');
    }
  });

  it('accepts valid base64 in Binary.data, including padding and line breaks', () => {
    for (const good of ['JVBERi0xLjQK', 'QUJDRA==', 'QUJDREU=', 'QUJD\nREVG', 'QUJD\r\nREVG\r\n']) {
      const b = load('prescription');
      b.entry.push(binaryEntry(good));
      expect(validate(b)).toEqual([]);
    }
  });

  it('reports invalid base64 in Attachment.data (DiagnosticReport.presentedForm)', () => {
    const b = load('diagnostic-report');
    const i = entryIndex(b, 'DiagnosticReport');
    b.entry[i].resource.presentedForm = [
      { contentType: 'application/pdf', data: 'JVBERi0xLjQK' },
      { contentType: 'application/pdf', data: 'DUMMY' },
    ];
    const issues = validate(b);
    expect(brief(issues)).toEqual([['value', `Bundle.entry[${i}].resource.presentedForm[1].data`]]);
    expect(issues[0].diagnostics).toBe(
      'Invalid base64Binary: expected base64 (groups of 4 characters from A-Z a-z 0-9 + / =), found a string "DUMMY"',
    );
  });
});
