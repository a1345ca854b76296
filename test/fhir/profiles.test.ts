// Unit tests for the ABDM profile stage (src/fhir/profiles.ts) driven through DocumentValidator
// (src/fhir/validate.ts): record-type selection, section slicing, required elements of entry
// resources, the patient's ABHA identity, and missingPaths semantics.
import { describe, it, expect, beforeAll } from 'vitest';
import { DocumentValidator, type ValidDocument } from '../../src/fhir/validate.js';
import { DEFAULT_ABHA_SYSTEMS, NDHM_IDENTIFIER_TYPE } from '../../src/fhir/abha.js';
import { missingPaths, compilePath } from '../../src/fhir/profiles.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { FIXTURES, texts, load, brief, type FixtureName } from '../support/fixtures.js';

let v: DocumentValidator;
beforeAll(() => {
  v = new DocumentValidator({ maxBytes: 10 * 1024 * 1024, maxDepth: 64, abhaSystems: DEFAULT_ABHA_SYSTEMS });
});

/** The FhirError a rejected document throws (fails the test if the document is accepted or anything else is thrown). */
function rejection(input: unknown): FhirError {
  let result: ValidDocument | undefined;
  try {
    result = v.validate(input);
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    return e as FhirError;
  }
  throw new Error(`document was accepted as ${result?.profile.hiType}`);
}

const MR_TYPE = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const identifier = (code: string, system: string, value: string, typeSystem = MR_TYPE) => ({
  type: { coding: [{ system: typeSystem, code, display: code }] },
  system,
  value,
});

describe('DocumentValidator on the fixtures', () => {
  const expected: Record<FixtureName, { hiType: string; recordType: string; patient: string }> = {
    prescription: { hiType: 'Prescription', recordType: 'PrescriptionRecord', patient: 'Ravi Kumar' },
    'diagnostic-report': { hiType: 'DiagnosticReport', recordType: 'DiagnosticReportRecord', patient: 'Asha Verma' },
    'discharge-summary': { hiType: 'DischargeSummary', recordType: 'DischargeSummaryRecord', patient: 'Priya Nair' },
  };
  for (const name of FIXTURES) {
    it(`accepts ${name}.json as ${expected[name].hiType}`, () => {
      const doc = v.validateText(texts[name]);
      expect(doc.profile.hiType).toBe(expected[name].hiType);
      expect(doc.profile.recordType).toBe(expected[name].recordType);
      expect(doc.facts.patient.index).toBe(1);
      expect(doc.facts.patient.resource.name[0].text).toBe(expected[name].patient);
      expect(doc.bundle).toEqual(JSON.parse(texts[name]));
    });
  }

  it('lists the eight ABDM record types', () => {
    expect(v.profiles.profiles.map((p) => p.hiType).sort()).toEqual([
      'DiagnosticReport',
      'DischargeSummary',
      'HealthDocumentRecord',
      'ImmunizationRecord',
      'Invoice',
      'OPConsultation',
      'Prescription',
      'WellnessRecord',
    ]);
    expect(v.profiles.supported).toContain('Prescription (440545006)');
    expect(v.profiles.supported).toContain('OPConsultation (371530004)');
    expect(v.profiles.supported).toContain("WellnessRecord (text 'Wellness Record')");
    expect(v.profiles.supported).toContain('DischargeSummary (373942005)');
    expect(v.profiles.supported).toMatch(/DiagnosticReport \([0-9 |]*721981007[0-9 |]*\)/);
  });
});

describe('DocumentValidator: pipeline entry points', () => {
  it('passes guard refusals through: too deep is 400, unparsable is 400 structure (the size is counted once, while the body streams: test/http/body.test.ts)', () => {
    const shallow = new DocumentValidator(
      { maxBytes: 10_000_000, maxDepth: 8, abhaSystems: DEFAULT_ABHA_SYSTEMS },
      v.structure,
    );
    try {
      shallow.validateText(texts.prescription);
    } catch (e) {
      expect((e as FhirError).status).toBe(400);
      expect((e as FhirError).issues[0].code).toBe('too-costly');
    }
    try {
      v.validateText('{"resourceType":');
    } catch (e) {
      expect((e as FhirError).status).toBe(400);
      expect((e as FhirError).issues[0].code).toBe('structure');
    }
    expect.assertions(4);
  });

  it('rejects a non-object and a non-Bundle with 422', () => {
    for (const input of [null, [], 'Bundle', 42]) {
      const e = rejection(input);
      expect(e.status).toBe(422);
      expect(brief(e.issues)).toEqual([['structure', 'Bundle']]);
    }
    const e = rejection({ resourceType: 'Patient' });
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toEqual([['structure', 'resourceType']]);
    expect(e.issues[0].diagnostics).toContain("found 'Patient'");
  });

  it('caps the number of issues at maxIssues', () => {
    const capped = new DocumentValidator(
      { maxBytes: 10 * 1024 * 1024, maxDepth: 64, abhaSystems: DEFAULT_ABHA_SYSTEMS, maxIssues: 3 },
      v.structure,
    );
    const b = load('discharge-summary');
    for (const e of b.entry) e.resource.bogus = true;
    try {
      capped.validate(b);
    } catch (e) {
      expect((e as FhirError).issues).toHaveLength(3);
    }
    expect(rejection(b).issues.length).toBeGreaterThanOrEqual(b.entry.length);
    expect.assertions(3);
  });
});

describe('profile selection', () => {
  it('rejects an unknown Composition.type with 422 not-supported listing the supported types', () => {
    const b = load('prescription');
    b.entry[0].resource.type.coding[0] = { system: 'http://snomed.info/sct', code: '24642003', display: 'Psychiatry' };
    delete b.entry[0].resource.meta.profile;
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toEqual([['not-supported', 'Bundle.entry[0].resource.type']]);
    const d = e.issues[0].diagnostics;
    expect(d).toContain('Unsupported record type (Composition.type 24642003)');
    expect(d).toContain('Prescription (440545006)');
    expect(d).toContain('DischargeSummary (373942005)');
    expect(d).toContain('OPConsultation (371530004)');
    expect(d).toContain('DiagnosticReport (');
  });

  it('names Composition.type.text when there is no coding and no record profile is claimed', () => {
    const b = load('prescription');
    b.entry[0].resource.type = { text: 'Sick note' };
    delete b.entry[0].resource.meta.profile;
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['not-supported', 'Bundle.entry[0].resource.type']]);
    expect(e.issues[0].diagnostics).toContain('(Composition.type Sick note)');
  });

  it('checks a Composition against the record profile its meta.profile claims when its type names none', () => {
    const b = load('prescription');
    b.entry[0].resource.type = { text: 'Sick note' };
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([
      ['code-invalid', 'Bundle.entry[0].resource.type'],
      ['required', 'Bundle.entry[0].resource.type.coding'],
    ]);
    expect(e.issues[0].diagnostics).toBe(
      'Composition.type must carry the code 440545006 [PrescriptionRecord: Composition.type.coding.code]',
    );
  });

  it('holds a Composition to the record profile its meta.profile claims, whatever its type says', () => {
    const b = load('prescription');
    b.entry[0].resource.type = { text: 'Wellness Record' }; // a WellnessRecord by its type, claiming PrescriptionRecord
    expect(brief(rejection(b).issues)).toEqual([
      ['code-invalid', 'Bundle.entry[0].resource.type'],
      ['required', 'Bundle.entry[0].resource.type.coding'],
    ]);
  });

  it('refuses a Composition claiming two record profiles', () => {
    const b = load('prescription');
    b.entry[0].resource.meta.profile.push('https://nrces.in/ndhm/fhir/r4/StructureDefinition/WellnessRecord|6.5.0');
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['business-rule', 'Bundle.entry[0].resource.meta.profile']]);
    expect(e.issues[0].diagnostics).toBe(
      'Composition.meta.profile claims PrescriptionRecord and WellnessRecord; a record is of one type [R4 Resource.meta.profile]',
    );
  });

  it('takes any SNOMED CT type for a DiagnosticReportRecord its meta.profile names (the binding is only preferred)', () => {
    const b = load('diagnostic-report');
    b.entry[0].resource.type.coding[0] = {
      system: 'http://snomed.info/sct',
      code: '4241000179101',
      display: 'Laboratory report',
    };
    b.entry[0].resource.type.coding[0].code = '16310003'; // ultrasonography: not among the value set's listed codes
    expect(v.validate(b).profile.hiType).toBe('DiagnosticReport');
    b.entry[0].resource.type.coding[0].system = 'http://loinc.org';
    expect(brief(rejection(b).issues)).toContainEqual(['code-invalid', 'Bundle.entry[0].resource.type']);
  });

  it('requires the profile code system when a coding names one', () => {
    const b = load('prescription');
    b.entry[0].resource.type.coding[0].system = 'http://loinc.org';
    const expected = [
      'code-invalid',
      'Bundle.entry[0].resource.type.coding[0].system',
      "Composition.type.coding.system must be http://snomed.info/sct for the code 440545006, found 'http://loinc.org' [PrescriptionRecord: Composition.type.coding.system]",
    ];
    expect(rejection(b).issues.map((i) => [i.code, i.expression, i.diagnostics])).toEqual([expected]);
    delete b.entry[0].resource.meta.profile; // recognised by its code all the same, and the system is the fault
    expect(rejection(b).issues.map((i) => [i.code, i.expression, i.diagnostics])).toEqual([expected]);
  });

  it('recognises the other codes of the DiagnosticReportRecord value set', () => {
    const b = load('diagnostic-report');
    b.entry[0].resource.type.coding[0] = {
      system: 'http://snomed.info/sct',
      code: '4241000179101',
      display: 'Laboratory report',
    };
    expect(v.validate(b).profile.hiType).toBe('DiagnosticReport');
  });
});

describe('patient ABHA identity', () => {
  const PATIENT = 'Bundle.entry[1].resource';

  it('requires an ABHA number or address among Patient.identifier', () => {
    const b = load('prescription');
    // Keep only the hospital MRN.
    b.entry[1].resource.identifier = b.entry[1].resource.identifier.filter((i: any) => i.value.startsWith('MRN-'));
    expect(b.entry[1].resource.identifier).toHaveLength(1);
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toEqual([['required', `${PATIENT}.identifier`]]);
    expect(e.issues[0].diagnostics).toMatch(/^The patient must be identified by an ABHA number/);
  });

  it('reports both the profile rule and the ABHA rule when Patient.identifier is absent', () => {
    const b = load('prescription');
    delete b.entry[1].resource.identifier;
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([
      ['required', `${PATIENT}.identifier`],
      ['required', `${PATIENT}.identifier`],
    ]);
    expect(e.issues[0].diagnostics).toContain('[Patient: Patient.identifier]');
    expect(e.issues[1].diagnostics).toContain('ABHA');
  });

  it('accepts an ABHA number with or without dashes under an ABHA system', () => {
    for (const value of ['91-4417-2093-5586', '91441720935586', ' 91441720935586 ']) {
      const b = load('prescription');
      b.entry[1].resource.identifier = [identifier('MR', 'https://healthid.ndhm.gov.in/', value)];
      expect(v.validate(b).facts.patient.index).toBe(1);
    }
  });

  it('takes no ABHA-shaped value under another system as ABHA, dashed or plain, unless its type claims it', () => {
    let b = load('prescription');
    b.entry[1].resource.identifier = [identifier('MR', 'https://hospital.example.in/mrn', '91-4417-2093-5586')];
    expect(brief(rejection(b).issues)).toEqual([['required', `${PATIENT}.identifier`]]);
    b = load('prescription');
    b.entry[1].resource.identifier = [identifier('MR', 'https://hospital.example.in/mrn', '91441720935586')];
    expect(brief(rejection(b).issues)).toEqual([['required', `${PATIENT}.identifier`]]);
    b = load('prescription');
    b.entry[1].resource.identifier = [
      identifier('HIN', 'https://hospital.example.in/mrn', '91441720935586', NDHM_IDENTIFIER_TYPE),
    ];
    expect(v.validate(b).profile.hiType).toBe('Prescription');
  });

  it('accepts an ABHA address alone', () => {
    const b = load('prescription');
    b.entry[1].resource.identifier = [
      identifier('ABHA', 'https://example.in/any', 'Ravi.Kumar@SBX', NDHM_IDENTIFIER_TYPE),
    ];
    expect(v.validate(b).profile.hiType).toBe('Prescription');
  });

  it('reports a claimed ABHA identifier whose value has neither shape', () => {
    const b = load('prescription');
    b.entry[1].resource.identifier[0].value = '9144-1720';
    b.entry[1].resource.identifier[1].value = 'ravi kumar';
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([
      ['value', `${PATIENT}.identifier[0].value`],
      ['value', `${PATIENT}.identifier[1].value`],
      ['required', `${PATIENT}.identifier`],
    ]);
    expect(e.issues[0].diagnostics).toContain("ABHA identifier '9144-1720' is neither");
  });
});

describe('sections and their entries', () => {
  const C = 'Bundle.entry[0].resource';

  it('rejects a Prescription section entry of a disallowed resource type', () => {
    const b = load('prescription');
    b.entry[0].resource.section[0].entry[1] = { reference: b.entry[5].fullUrl, type: 'Condition' };
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['structure', `${C}.section[0].entry[1]`]]);
    expect(e.issues[0].diagnostics).toBe(
      'A Condition is not allowed in section PrescriptionRecord; allowed: MedicationRequest, Binary [PrescriptionRecord: Composition.section.entry]',
    );
  });

  it('rejects a DischargeSummary section entry of a disallowed resource type', () => {
    const b = load('discharge-summary');
    // Chief complaints (section 0) admit Conditions only; point one entry at an Observation.
    const obs = b.entry.findIndex((x: any) => x.resource.resourceType === 'Observation');
    b.entry[0].resource.section[0].entry[0] = { reference: b.entry[obs].fullUrl, type: 'Observation' };
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['structure', `${C}.section[0].entry[0]`]]);
    expect(e.issues[0].diagnostics).toContain('not allowed in section ChiefComplaints; allowed: Condition');
  });

  it('reports a Reference.type that disagrees with the resolved entry', () => {
    const b = load('prescription');
    b.entry[0].resource.section[0].entry[0].type = 'Condition';
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['value', `${C}.section[0].entry[0].type`]]);
    expect(e.issues[0].diagnostics).toBe(
      "Reference.type is 'Condition' but the reference resolves to a MedicationRequest [R4 Reference.type: SHALL be consistent with the reference]",
    );
  });

  it('requires Reference.type on Prescription section entries', () => {
    const b = load('prescription');
    delete b.entry[0].resource.section[0].entry[2].type;
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['required', `${C}.section[0].entry[2].type`]]);
    expect(e.issues[0].diagnostics).toContain('[PrescriptionRecord: Composition.section.entry:MedicationRequest.type]');
  });

  it('does not require Reference.type on DischargeSummary section entries', () => {
    const b = load('discharge-summary');
    for (const s of b.entry[0].resource.section) for (const e of s.entry) delete e.type;
    expect(v.validate(b).profile.hiType).toBe('DischargeSummary');
  });

  it('rejects a Prescription section code other than 440545006', () => {
    const b = load('prescription');
    b.entry[0].resource.section[0].code.coding[0].code = '10160-0';
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['code-invalid', `${C}.section[0].code.coding[0].code`]]);
    expect(e.issues[0].diagnostics).toBe(
      "Section code '10160-0' is not allowed; section PrescriptionRecord has code 440545006 [PrescriptionRecord: Composition.section.code.coding.code]",
    );
  });

  it('accepts a Prescription section with no code (Composition.section.code is 0..1 in the IG)', () => {
    const b = load('prescription');
    delete b.entry[0].resource.section[0].code;
    expect(v.validate(b).profile.hiType).toBe('Prescription');
  });

  it('enforces the DiagnosticReport section entry count (1..2)', () => {
    const b = load('diagnostic-report');
    delete b.entry[0].resource.section[0].entry;
    b.entry[0].resource.section[0].text = {
      status: 'generated',
      div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
    };
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['structure', `${C}.section[0].entry`]]);
    expect(e.issues[0].diagnostics).toContain('must have 1..2 entries, found 0');
  });

  it('enforces per-slice occurrence limits (one ChiefComplaints section)', () => {
    const b = load('discharge-summary');
    b.entry[0].resource.section.push(JSON.parse(JSON.stringify(b.entry[0].resource.section[0])));
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['structure', `${C}.section`]]);
    expect(e.issues[0].diagnostics).toContain('Section ChiefComplaints (422843007) must occur 0..1 times, found 2');
  });

  it('allows an unsliced extra DischargeSummary section (open slicing)', () => {
    const b = load('discharge-summary');
    b.entry[0].resource.section.push({
      title: 'Notes',
      code: { coding: [{ system: 'http://snomed.info/sct', code: '371524004', display: 'Clinical report' }] },
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Notes</div>' },
    });
    expect(v.validate(b).profile.hiType).toBe('DischargeSummary');
  });
});

describe('required elements', () => {
  it('requires Composition.encounter in a DischargeSummary', () => {
    const b = load('discharge-summary');
    delete b.entry[0].resource.encounter;
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['required', 'Bundle.entry[0].resource.encounter']]);
    expect(e.issues[0].diagnostics).toBe('encounter is required [DischargeSummaryRecord: Composition.encounter]');
  });

  it('does not require Composition.encounter in a Prescription', () => {
    const b = load('prescription');
    delete b.entry[0].resource.encounter;
    expect(v.validate(b).profile.hiType).toBe('Prescription');
  });

  it('requires MedicationRequest.authoredOn, citing the IG element', () => {
    const b = load('prescription');
    delete b.entry[8].resource.authoredOn;
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['required', 'Bundle.entry[8].resource.authoredOn']]);
    expect(e.issues[0].diagnostics).toBe(
      'MedicationRequest.authoredOn is required [MedicationRequest: MedicationRequest.authoredOn]',
    );
  });

  it('applies resource rules in every record type (DischargeSummary MedicationRequest)', () => {
    const b = load('discharge-summary');
    const i = b.entry.findIndex((x: any) => x.resource.resourceType === 'MedicationRequest');
    delete b.entry[i].resource.authoredOn;
    delete b.entry[i].resource.dosageInstruction[0].route.coding[0].display;
    expect(brief(rejection(b).issues)).toEqual([
      ['required', `Bundle.entry[${i}].resource.authoredOn`],
      ['required', `Bundle.entry[${i}].resource.dosageInstruction[0].route.coding[0].display`],
    ]);
  });

  it('requires medicationCodeableConcept: a medicationReference does not satisfy it', () => {
    const b = load('prescription');
    delete b.entry[7].resource.medicationCodeableConcept;
    b.entry[7].resource.medicationReference = { reference: b.entry[7].fullUrl };
    const e = rejection(b);
    expect(brief(e.issues)).toEqual([['required', 'Bundle.entry[7].resource.medicationCodeableConcept']]);
    expect(e.issues[0].diagnostics).toContain('[MedicationRequest: MedicationRequest.medication[x]]');
  });

  it('reports faults from the structure, document and profile stages together', () => {
    const b = load('prescription');
    b.entry[1].resource.foo = 'bar'; // R4 structure
    b.entry[7].resource.requester.reference = 'urn:uuid:0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f'; // document: dangling
    delete b.entry[9].resource.authoredOn; // profile
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(e.issues.length).toBeGreaterThanOrEqual(3);
    expect(brief(e.issues)).toEqual([
      ['structure', 'Bundle.entry[1].resource.foo'],
      ['not-found', 'Bundle.entry[7].resource.requester.reference'],
      ['required', 'Bundle.entry[9].resource.authoredOn'],
    ]);
    for (const i of e.issues) {
      expect(i.severity).toBe('error');
      expect(i.diagnostics.length).toBeGreaterThan(10);
    }
  });
});

describe('robustness: wrong JSON types reach the profile stage as 422, never as a crash', () => {
  // Structural faults do not stop the later stages (the pipeline lists every problem), so the
  // profile stage must tolerate any JSON where it expects an array or a string.
  it('a non-string Patient.identifier.system', () => {
    const b = load('prescription');
    b.entry[1].resource.identifier[2].system = 123;
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toContainEqual(['value', 'Bundle.entry[1].resource.identifier[2].system']);
  });

  it('a Patient.identifier.type.coding given as an object', () => {
    const b = load('prescription');
    b.entry[1].resource.identifier[2].type.coding = b.entry[1].resource.identifier[2].type.coding[0];
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toContainEqual(['structure', 'Bundle.entry[1].resource.identifier[2].type.coding']);
  });

  it('a Composition.type.coding given as an object', () => {
    const b = load('prescription');
    b.entry[0].resource.type.coding = b.entry[0].resource.type.coding[0];
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toContainEqual(['structure', 'Bundle.entry[0].resource.type.coding']);
  });

  it('a Composition.section.code.coding given as an object', () => {
    const b = load('prescription');
    b.entry[0].resource.section[0].code.coding = b.entry[0].resource.section[0].code.coding[0];
    const e = rejection(b);
    expect(e.status).toBe(422);
    expect(brief(e.issues)).toContainEqual(['structure', 'Bundle.entry[0].resource.section[0].code.coding']);
  });
});

describe('missingPaths', () => {
  it('compiles dotted paths with alternatives', () => {
    expect(compilePath('a|b.c')).toEqual([['a', 'b'], ['c']]);
    expect(compilePath('x')).toEqual([['x']]);
  });

  it('requires a top-level step', () => {
    expect(missingPaths({}, 'a', 'X')).toEqual(['X.a']);
    expect(missingPaths({ a: null }, 'a', 'X')).toEqual(['X.a']);
    expect(missingPaths({ a: 0 }, 'a', 'X')).toEqual([]);
    expect(missingPaths({ a: '' }, 'a', 'X')).toEqual([]);
    expect(missingPaths({ a: false }, 'a', 'X')).toEqual([]);
  });

  it('checks the last step only where its parent is present', () => {
    expect(missingPaths({}, 'a.b', 'X')).toEqual([]);
    expect(missingPaths({ a: null }, 'a.b', 'X')).toEqual([]);
    expect(missingPaths({ a: {} }, 'a.b', 'X')).toEqual(['X.a.b']);
    expect(missingPaths({ a: { b: 1 } }, 'a.b', 'X')).toEqual([]);
    expect(missingPaths({ a: { c: {} } }, 'a.b.c', 'X')).toEqual([]);
  });

  it('checks every item of an array parent', () => {
    const node = { a: [{ b: 1 }, {}, { b: null }, 'text', null, { b: 2 }] };
    expect(missingPaths(node, 'a.b', 'X')).toEqual(['X.a[1].b', 'X.a[2].b']);
    expect(missingPaths({ a: [] }, 'a.b', 'X')).toEqual([]);
  });

  it('walks nested arrays', () => {
    const node = { c: [{ coding: [{ system: 's', code: '1' }, { system: 's' }] }, { coding: [{ code: '2' }] }] };
    expect(missingPaths(node, 'c.coding.code', 'R')).toEqual(['R.c[0].coding[1].code']);
    expect(missingPaths(node, 'c.coding.system', 'R')).toEqual(['R.c[1].coding[0].system']);
  });

  it('accepts any alternative and names all of them when none is present', () => {
    expect(missingPaths({ b: 1 }, 'a|b', 'X')).toEqual([]);
    expect(missingPaths({}, 'a|b', 'X')).toEqual(['X.a|b']);
    // a choice element's alternatives are named by its stem, as FHIRPath names the element
    expect(missingPaths({}, 'valueQuantity|valueString', 'X')).toEqual(['X.value']);
    expect(missingPaths({ b: { c: 1 } }, 'a|b.c', 'X')).toEqual([]);
    expect(missingPaths({ b: {} }, 'a|b.c', 'X')).toEqual(['X.b.c']);
    // The first present alternative is the one walked.
    expect(missingPaths({ a: {}, b: { c: 1 } }, 'a|b.c', 'X')).toEqual(['X.a.c']);
  });

  it('accepts a precompiled path and ignores non-object parents', () => {
    expect(missingPaths({ a: { b: 1 } }, compilePath('a.b'), 'X')).toEqual([]);
    expect(missingPaths({ a: 'scalar' }, 'a.b', 'X')).toEqual([]);
    expect(missingPaths({ a: 5 }, 'a.b.c', 'X')).toEqual([]);
  });
});
