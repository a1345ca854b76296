// The five record types added from the ABDM IG 6.5.0 (OPConsultRecord, ImmunizationRecord,
// HealthDocumentRecord, WellnessRecord, InvoiceRecord), driven through DocumentValidator on the IG's
// own examples (read from ../shared/corpus at runtime, each accepted as it is) with one fault put in
// at a time: each fault is reported with its FHIRPath and the IG element that states the rule.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { DEFAULT_ABHA_SYSTEMS } from '../../src/fhir/abha.js';
import { FhirError, type Issue } from '../../src/fhir/outcome.js';

const corpus = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'corpus');
const example = (f: string) => JSON.parse(readFileSync(path.join(corpus, 'abdm-examples', f), 'utf8'));
const C = 'Bundle.entry[0].resource';

let v: DocumentValidator;
beforeAll(() => {
  v = new DocumentValidator({ maxBytes: 10 * 1024 * 1024, maxDepth: 64, abhaSystems: DEFAULT_ABHA_SYSTEMS });
});

function issues(bundle: unknown): Issue[] {
  try {
    v.validate(bundle);
  } catch (e) {
    if (e instanceof FhirError) return e.issues;
    throw e;
  }
  return [];
}
const shown = (b: unknown) => issues(b).map((i) => [i.code, i.expression, i.diagnostics]);
/** The entry index of the first resource of `type`, and its reference (the entry's fullUrl). */
const entryOf = (b: any, type: string) => {
  const i = b.entry.findIndex((e: any) => e.resource.resourceType === type);
  return { i, ref: b.entry[i].fullUrl as string };
};

describe('OPConsultRecord (hiType OPConsultation)', () => {
  const load = () => example('op-consult-01.json');

  it('accepts the IG example as an OPConsultation', () => {
    expect(v.validate(load()).profile.hiType).toBe('OPConsultation');
  });

  it('requires the encounter', () => {
    const b = load();
    delete b.entry[0].resource.encounter;
    expect(shown(b)).toEqual([
      ['required', `${C}.encounter`, 'encounter is required [OPConsultRecord: Composition.encounter]'],
    ]);
  });

  it('requires each sliced section’s code display and each entry’s reference', () => {
    const b = load();
    delete b.entry[0].resource.section[0].code.coding[0].display; // Chief complaints
    b.entry[0].resource.section[1].entry[0] = { display: 'peanut allergy' }; // Allergies
    expect(shown(b)).toEqual([
      [
        'required',
        `${C}.section[0].code.coding[0].display`,
        'code.coding.display is required in section ChiefComplaints [OPConsultRecord: Composition.section:ChiefComplaints.code.coding.display]',
      ],
      [
        'required',
        `${C}.section[1].entry[0].reference`,
        'entry.reference is required in section Allergies [OPConsultRecord: Composition.section:Allergies.entry.reference]',
      ],
    ]);
  });

  it('allows only the slice’s resource types in a sliced section', () => {
    const b = load();
    const obs = { resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'BP' } };
    b.entry.push({ fullUrl: 'urn:uuid:6f1c2b0e-2a8a-4f39-9d64-0c8c1d5e7a10', resource: obs });
    b.entry[0].resource.section[0].entry.push({ reference: 'urn:uuid:6f1c2b0e-2a8a-4f39-9d64-0c8c1d5e7a10' });
    expect(shown(b)).toEqual([
      [
        'structure',
        `${C}.section[0].entry[1]`,
        'A Observation is not allowed in section ChiefComplaints; allowed: Condition [OPConsultRecord: Composition.section:ChiefComplaints.entry]',
      ],
    ]);
  });

  it('uses its own section codes: medical history is 371529009, not the discharge summary’s 1003642006', () => {
    const b = load();
    b.entry[0].resource.section.push(structuredClone(b.entry[0].resource.section[2])); // a second Medical History
    expect(shown(b)).toEqual([
      [
        'structure',
        `${C}.section`,
        'Section MedicalHistory (371529009) must occur 0..1 times, found 2 [OPConsultRecord: Composition.section:MedicalHistory]',
      ],
    ]);
    const c = load();
    c.entry[0].resource.section[2].code.coding[0].code = '1003642006'; // no OP slice: open at end, base R4 only
    expect(issues(c)).toEqual([]);
  });

  it('accepts MedicationStatement and MedicationRequest in Medications, and checks MedicationStatement’s rules', () => {
    const b = load();
    const { i } = entryOf(b, 'MedicationStatement');
    delete b.entry[i].resource.medicationCodeableConcept.coding[0].display;
    expect(shown(b)).toEqual([
      [
        'required',
        `Bundle.entry[${i}].resource.medicationCodeableConcept.coding[0].display`,
        'MedicationStatement.medicationCodeableConcept.coding.display is required [MedicationStatement: MedicationStatement.medication[x].coding.display]',
      ],
    ]);
  });

  it('checks ServiceRequest (investigation advice) and Appointment (follow-up) rules', () => {
    const b = load();
    const sr = entryOf(b, 'ServiceRequest').i;
    const ap = entryOf(b, 'Appointment').i;
    delete b.entry[sr].resource.requester;
    delete b.entry[ap].resource.start;
    // the example's follow-up section is coded 736271009, no OPConsultRecord slice: its Appointment is held to no
    // IG profile until the section is the FollowUp slice (390906007)
    const followUp = b.entry[0].resource.section.find((x: any) => x.code.coding[0].code === '736271009');
    followUp.code.coding[0] = { system: 'http://snomed.info/sct', code: '390906007', display: 'Follow-up encounter' };
    expect(issues(b).map((x) => [x.expression, x.diagnostics])).toEqual(
      expect.arrayContaining([
        [
          `Bundle.entry[${sr}].resource.requester`,
          'ServiceRequest.requester is required [ServiceRequest: ServiceRequest.requester]',
        ],
        [`Bundle.entry[${ap}].resource.start`, 'Appointment.start is required [Appointment: Appointment.start]'],
      ]),
    );
  });
});

describe('ImmunizationRecord', () => {
  const load = () => example('immunization-01.json');

  it('accepts the IG example', () => {
    expect(v.validate(load()).profile.hiType).toBe('ImmunizationRecord');
  });

  it('requires Reference.type on every entry (the entries are sliced by type) and matches it to the resource', () => {
    const b = load();
    delete b.entry[0].resource.section[0].entry[0].type;
    b.entry[0].resource.section[0].entry[1].type = 'Immunization';
    expect(shown(b)).toEqual([
      [
        'value',
        `${C}.section[0].entry[1].type`,
        "Reference.type is 'Immunization' but the reference resolves to a ImmunizationRecommendation [R4 Reference.type: SHALL be consistent with the reference]",
      ],
      [
        'required',
        `${C}.section[0].entry[0].type`,
        'Section entry must state its resource type in Reference.type [ImmunizationRecord: Composition.section.entry:Immunization.type]',
      ],
    ]);
  });

  it('allows one ImmunizationRecommendation and no other resource types (closed slicing)', () => {
    const b = load();
    const rec = b.entry[0].resource.section[0].entry[1];
    b.entry[0].resource.section[0].entry.push(structuredClone(rec));
    const { ref } = entryOf(b, 'Practitioner');
    b.entry[0].resource.section[0].entry.push({ reference: ref, type: 'Practitioner' });
    expect(shown(b)).toEqual([
      [
        'structure',
        `${C}.section[0].entry[4]`,
        'A Practitioner is not allowed in section ImmunizationRecord; allowed: Immunization, ImmunizationRecommendation, DocumentReference [ImmunizationRecord: Composition.section.entry]',
      ],
      [
        'structure',
        `${C}.section[0].entry`,
        'Section ImmunizationRecord must have 0..1 ImmunizationRecommendation entries, found 2 [ImmunizationRecord: Composition.section.entry:ImmunizationRecommendation]',
      ],
    ]);
  });

  it('checks the Immunization profile’s required elements', () => {
    const b = load();
    const { i } = entryOf(b, 'Immunization');
    delete b.entry[i].resource.vaccineCode.coding[0].system;
    expect(shown(b)).toEqual([
      [
        'required',
        `Bundle.entry[${i}].resource.vaccineCode.coding[0].system`,
        'Immunization.vaccineCode.coding.system is required [Immunization: Immunization.vaccineCode.coding.system]',
      ],
    ]);
  });
});

describe('HealthDocumentRecord', () => {
  const load = () => example('health-document-01.json');

  it('accepts the IG example (its section carries no code: Composition.section.code is 0..1)', () => {
    expect(v.validate(load()).profile.hiType).toBe('HealthDocumentRecord');
  });

  it('requires at least one entry, and only DocumentReferences', () => {
    const b = load();
    b.entry[0].resource.section[0].entry = [{ reference: entryOf(b, 'Practitioner').ref }];
    expect(shown(b)).toEqual([
      [
        'structure',
        `${C}.section[0].entry[0]`,
        'A Practitioner is not allowed in section HealthDocumentRecord; allowed: DocumentReference [HealthDocumentRecord: Composition.section.entry]',
      ],
    ]);
    const c = load();
    delete c.entry[0].resource.section[0].entry;
    c.entry[0].resource.section[0].text = {
      status: 'generated',
      div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
    };
    expect(shown(c).map((x) => x[2])).toContain(
      'Section HealthDocumentRecord must have 1..* entries, found 0 [HealthDocumentRecord: Composition.section.entry]',
    );
  });

  it('fixes the section code when one is given', () => {
    const b = load();
    b.entry[0].resource.section[0].code = { coding: [{ system: 'http://snomed.info/sct', code: '371530004' }] };
    expect(shown(b)).toEqual([
      [
        'code-invalid',
        `${C}.section[0].code.coding[0].code`,
        "Section code '371530004' is not allowed; section HealthDocumentRecord has code 419891008 [HealthDocumentRecord: Composition.section.code.coding.code]",
      ],
      [
        'required',
        `${C}.section[0].code.coding[0].display`,
        'code.coding.display is required in section HealthDocumentRecord [HealthDocumentRecord: Composition.section.code.coding.display]',
      ],
    ]);
  });
});

describe('WellnessRecord (recognised by Composition.type.text; sections sliced by title)', () => {
  const load = () => example('wellness-01.json');

  it('accepts the IG example, whose Composition.type has no coding', () => {
    expect(v.validate(load()).profile.hiType).toBe('WellnessRecord');
  });

  it('takes a record with no type text for a WellnessRecord by its meta.profile, and a wrong text is reported', () => {
    const b = load();
    b.entry[0].resource.type = { text: 'Wellness record' };
    expect(shown(b)).toEqual([
      [
        'value',
        `${C}.type.text`,
        "Composition.type.text must be Wellness Record, found 'Wellness record' [WellnessRecord: Composition.type.text]",
      ],
    ]);
    b.entry[0].resource.type = { coding: [{ system: 'http://loinc.org', code: '11502-2' }] };
    expect(issues(b)).toEqual([]); // type.text is 0..1 with a fixed value; the coding is unconstrained
  });

  it('matches sections by title, allowing only their slice’s resources, once each', () => {
    const b = load();
    const comp = b.entry[0].resource;
    comp.section.push(structuredClone(comp.section[0])); // a second "Vital Signs"
    const dr = entryOf(b, 'DocumentReference').ref;
    comp.section[1].entry.push({ reference: dr }); // a DocumentReference in "Body Measurement"
    expect(shown(b)).toEqual([
      [
        'structure',
        `${C}.section[1].entry[3]`,
        'A DocumentReference is not allowed in section BodyMeasurement; allowed: Observation [WellnessRecord: Composition.section:BodyMeasurement.entry]',
      ],
      [
        'structure',
        `${C}.section`,
        "Section VitalSigns ('Vital Signs') must occur 0..1 times, found 2 [WellnessRecord: Composition.section:VitalSigns]",
      ],
    ]);
  });

  it('leaves a section with another title to base R4 (the slicing is open at the end)', () => {
    const b = load();
    b.entry[0].resource.section[1].title = 'Anthropometry';
    expect(issues(b)).toEqual([]);
  });
});

describe('InvoiceRecord (hiType Invoice)', () => {
  const load = () => example('invoice-01.json');

  it('accepts the IG example', () => {
    expect(v.validate(load()).profile.hiType).toBe('Invoice');
  });

  it('allows exactly one entry, the Invoice: a ChargeItem is reached only through Invoice.lineItem.chargeItem', () => {
    const b = load();
    b.entry[0].resource.section[0].entry.push({ reference: entryOf(b, 'ChargeItem').ref, type: 'ChargeItem' });
    expect(shown(b)).toEqual([
      [
        'structure',
        `${C}.section[0].entry[1]`,
        'A ChargeItem is not allowed in section InvoiceRecord; allowed: Invoice [InvoiceRecord: Composition.section.entry]',
      ],
    ]);
  });

  it('checks the Invoice and ChargeItem profiles’ required elements', () => {
    const b = load();
    const inv = entryOf(b, 'Invoice').i;
    const ci = entryOf(b, 'ChargeItem').i;
    delete b.entry[inv].resource.totalGross;
    delete b.entry[inv].resource.lineItem[0].priceComponent[0].code.coding[0].display;
    delete b.entry[ci].resource.quantity;
    expect(issues(b).map((x) => [x.expression, x.diagnostics])).toEqual([
      [
        `Bundle.entry[${inv}].resource.lineItem[0].priceComponent[0].code.coding[0].display`,
        'Invoice.lineItem.priceComponent.code.coding.display is required [Invoice: Invoice.lineItem.priceComponent.code.coding.display]',
      ],
      [`Bundle.entry[${inv}].resource.totalGross`, 'Invoice.totalGross is required [Invoice: Invoice.totalGross]'],
      [`Bundle.entry[${ci}].resource.quantity`, 'ChargeItem.quantity is required [ChargeItem: ChargeItem.quantity]'],
    ]);
  });

  it('takes either form of ChargeItem.product[x], and requires one', () => {
    const b = load();
    const ci = entryOf(b, 'ChargeItem').i;
    const product = b.entry[ci].resource.productReference ?? b.entry[ci].resource.productCodeableConcept;
    delete b.entry[ci].resource.productReference;
    delete b.entry[ci].resource.productCodeableConcept;
    expect(issues(b).map((x) => [x.expression, x.diagnostics])).toEqual([
      [`Bundle.entry[${ci}].resource.product`, 'ChargeItem.product[x] is required [ChargeItem: ChargeItem.product[x]]'],
    ]);
    b.entry[ci].resource.productCodeableConcept = { text: String(product?.display ?? 'Paracetamol 500 mg') };
    expect(issues(b)).toEqual([]);
  });
});

describe('values the IG fixes, and codings it slices by system', () => {
  it('fixes the display of the record type and of each section code', () => {
    const b = example('op-consult-01.json');
    b.entry[0].resource.type.coding[0].display = 'Clinical Consultation Report';
    b.entry[0].resource.section[1].code.coding[0].display = 'Allergies'; // the Allergies slice fixes 'Allergy record'
    expect(shown(b)).toEqual([
      [
        'value',
        `${C}.type.coding[0].display`,
        "type.coding.display must be 'Clinical consultation report', found 'Clinical Consultation Report' [OPConsultRecord: Composition.type.coding.display]",
      ],
      [
        'value',
        `${C}.section[1].code.coding[0].display`,
        "code.coding.display must be 'Allergy record' in section Allergies, found 'Allergies' [OPConsultRecord: Composition.section:Allergies.code.coding.display]",
      ],
    ]);
  });

  it('fixes code systems inside entry profiles (a Procedure is coded in SNOMED CT)', () => {
    const b = example('op-consult-01.json');
    const { i } = entryOf(b, 'Procedure');
    b.entry[i].resource.code.coding[0].system = 'http://www.icd10data.com/icd10pcs';
    expect(shown(b)).toEqual([
      [
        'value',
        `Bundle.entry[${i}].resource.code.coding[0].system`,
        "Procedure.code.coding.system must be 'http://snomed.info/sct', found 'http://www.icd10data.com/icd10pcs' [Procedure: Procedure.code.coding.system]",
      ],
    ]);
  });

  it('allows an Observation coded only in LOINC or SNOMED CT, each coding with its code and display', () => {
    const b = example('wellness-01.json');
    const { i } = entryOf(b, 'Observation');
    const coding = b.entry[i].resource.code.coding;
    coding.push({ system: 'http://example.org/local-codes', code: 'HR' });
    delete coding[0].display;
    const profiles = 'ObservationVitalSigns'; // the first section is "Vital Signs", whose entries are held to it
    expect(shown(b)).toEqual([
      [
        'required',
        `Bundle.entry[${i}].resource.code.coding[0].display`,
        `Observation.code.coding.display is required in a ${coding[0].system === 'http://loinc.org' ? 'LOINC' : 'SNOMEDCT'} coding [${profiles}: Observation.code.coding:${coding[0].system === 'http://loinc.org' ? 'LOINC' : 'SNOMEDCT'}.display]`,
      ],
      [
        'code-invalid',
        `Bundle.entry[${i}].resource.code.coding[${coding.length - 1}].system`,
        `Observation.code.coding system 'http://example.org/local-codes' is not allowed; allowed: http://loinc.org (LOINC), http://snomed.info/sct (SNOMEDCT) [${profiles}: Observation.code.coding]`,
      ],
    ]);
  });

  it('allows a Condition coded in ICD-10 or SNOMED CT only', () => {
    const b = example('op-consult-01.json');
    const { i } = entryOf(b, 'Condition');
    b.entry[i].resource.code.coding = [{ code: 'R51', display: 'Headache' }];
    expect(shown(b).map((x) => x[2])).toEqual([
      "Condition.code.coding system '(none)' is not allowed; allowed: http://hl7.org/fhir/sid/icd-10 (ICD-10), http://snomed.info/sct (SNOMEDCT) [Condition: Condition.code.coding]",
    ]);
  });
});

// Each case below was found by a review that probed the engine against the IG; each failed before its fix.
describe('resources are held to the IG profiles the references reaching them name', () => {
  const urn = (n: number) =>
    `urn:uuid:${String(n).repeat(8)}-${String(n).repeat(4)}-4${String(n).repeat(3)}-8${String(n).repeat(3)}-${String(n).repeat(12)}`;
  const id = (n: number) => urn(n).slice('urn:uuid:'.length);

  it('a section entry naming a resource the Composition contains (#id) is checked like any entry', () => {
    const b = example('prescription-01.json');
    const comp = b.entry[0].resource;
    comp.contained = [
      {
        resourceType: 'MedicationRequest',
        id: 'm1',
        status: 'active',
        intent: 'order',
        subject: { reference: comp.subject.reference },
        medicationReference: { display: 'Paracetamol' },
      },
    ];
    comp.section[0].entry = [{ reference: '#m1', type: 'MedicationRequest' }];
    expect(shown(b).map((x) => [x[1], x[2]])).toEqual([
      [
        `${C}.contained[0].medicationCodeableConcept`,
        'MedicationRequest.medicationCodeableConcept is required [MedicationRequest: MedicationRequest.medication[x]]',
      ],
      [
        `${C}.contained[0].authoredOn`,
        'MedicationRequest.authoredOn is required [MedicationRequest: MedicationRequest.authoredOn]',
      ],
      [
        `${C}.contained[0].requester`,
        'MedicationRequest.requester is required [MedicationRequest: MedicationRequest.requester]',
      ],
      [
        `${C}.contained[0].dosageInstruction`,
        'MedicationRequest.dosageInstruction is required [MedicationRequest: MedicationRequest.dosageInstruction]',
      ],
    ]);
    comp.contained = [{ resourceType: 'Patient', id: 'm1' }];
    expect(shown(b).map((x) => x[2])).toEqual([
      "Reference.type is 'MedicationRequest' but the reference resolves to a Patient [R4 Reference.type: SHALL be consistent with the reference]",
      'A Patient is not allowed in section PrescriptionRecord; allowed: MedicationRequest, Binary [PrescriptionRecord: Composition.section.entry]',
    ]);
  });

  it('a contained resource an IG reference reaches is held to its profile (DiagnosticReportLab.result → Observation)', () => {
    const b = example('diagnostic-report-lab-01.json');
    const { i } = entryOf(b, 'DiagnosticReport');
    const dr = b.entry[i].resource;
    dr.contained = [
      {
        resourceType: 'Observation',
        id: 'o1',
        status: 'final',
        code: { coding: [{ system: 'http://local', code: 'x' }] },
      },
    ];
    dr.result.push({ reference: '#o1' });
    expect(shown(b).map((x) => [x[1], x[2]])).toEqual([
      [
        `Bundle.entry[${i}].resource.contained[0].code.coding[0].system`,
        "Observation.code.coding system 'http://local' is not allowed; allowed: http://loinc.org (LOINC), http://snomed.info/sct (SNOMEDCT) [Observation: Observation.code.coding]",
      ],
    ]);
  });

  it('a resource only base R4 references reach is held to base R4 only (a Location’s managing Organization)', () => {
    const b = example('discharge-summary-01.json');
    entryOf(b, 'Encounter');
    b.entry[entryOf(b, 'Encounter').i].resource.location = [{ location: { reference: urn(2) } }];
    b.entry.push({
      fullUrl: urn(2),
      resource: { resourceType: 'Location', id: id(2), name: 'Ward 3B', managingOrganization: { reference: urn(3) } },
    });
    b.entry.push({
      fullUrl: urn(3),
      resource: { resourceType: 'Organization', id: id(3), name: 'Cardiology Department' },
    });
    expect(issues(b)).toEqual([]);
    // the same Organization as the Composition's custodian (an IG Organization) is held to the profile
    b.entry[0].resource.custodian = { reference: urn(3) };
    expect(shown(b).map((x) => x[2])).toContain(
      'Organization.identifier is required [Organization: Organization.identifier]',
    );
  });

  it('a Practitioner that only authors a section (Composition.section.author targets base R4) is held to base R4', () => {
    const b = example('op-consult-01.json');
    b.entry.push({
      fullUrl: urn(4),
      resource: { resourceType: 'Practitioner', id: id(4), name: [{ text: 'Dr. Scribe' }] },
    });
    b.entry[0].resource.section[0].author = [{ reference: urn(4) }];
    expect(issues(b)).toEqual([]);
  });
});

describe('sections, types and messages (review findings)', () => {
  it('a section carrying another coding besides the slice code is of no slice (FHIRPath equality on the codings)', () => {
    const b = example('op-consult-01.json');
    const cc = b.entry[0].resource.section.shift();
    cc.code.coding.push({
      system: 'http://loinc.org',
      code: '10154-3',
      display: 'Chief complaint Narrative - Reported',
    });
    b.entry[0].resource.section.push(cc); // open at the end: checked against base R4 only
    expect(issues(b)).toEqual([]);
  });

  it('a null section is left to the structure stage and the profile rules still report the rest', () => {
    const b = example('prescription-01.json');
    b.entry[0].resource.section.push(null);
    const { i } = entryOf(b, 'MedicationRequest');
    delete b.entry[i].resource.authoredOn;
    expect(shown(b).map((x) => x[1])).toEqual([
      `${C}.section[1]`,
      `${C}.section`,
      `Bundle.entry[${i}].resource.authoredOn`,
    ]);
  });

  it('a Wellness record its meta.profile names may carry any type coding (WellnessRecord puts no rule on it)', () => {
    const b = example('wellness-01.json');
    b.entry[0].resource.type.coding = [
      { system: 'http://snomed.info/sct', code: '371530004', display: 'Clinical consultation report' },
    ];
    expect(v.validate(b).profile.recordType).toBe('WellnessRecord');
  });

  it('a missing Reference.type cites the entry slice of the resource it names', () => {
    const b = example('prescription-01.json');
    const binary = b.entry[0].resource.section[0].entry.findIndex((e: any) => e.type === 'Binary');
    delete b.entry[0].resource.section[0].entry[binary].type;
    expect(shown(b).map((x) => x[2])).toEqual([
      'Section entry must state its resource type in Reference.type [PrescriptionRecord: Composition.section.entry:Binary.type]',
    ]);
  });

  it('Reference.type must agree with the resource everywhere, in a section no slice matches too (R4)', () => {
    const b = example('op-consult-01.json');
    const fu = b.entry[0].resource.section.findIndex((x: any) => x.code.coding[0].code === '736271009');
    b.entry[0].resource.section[fu].entry[0].type = 'Observation';
    expect(shown(b)).toEqual([
      [
        'value',
        `${C}.section[${fu}].entry[0].type`,
        "Reference.type is 'Observation' but the reference resolves to a Appointment [R4 Reference.type: SHALL be consistent with the reference]",
      ],
    ]);
  });
});

// Found by a second review; each failed before its fix.
describe('references: what they name, and Reference.type', () => {
  it('Reference.type is a resource type name: an absolute URL is refused (R4: only for logical models)', () => {
    const b = example('prescription-01.json');
    b.entry[0].resource.section[0].entry[0].type = 'http://hl7.org/fhir/StructureDefinition/MedicationRequest';
    expect(shown(b).map((x) => x[2])).toContain(
      "Reference.type is 'http://hl7.org/fhir/StructureDefinition/MedicationRequest' but the reference resolves to a MedicationRequest (an absolute URL is allowed only for logical models) [R4 Reference.type: SHALL be consistent with the reference]",
    );
  });

  it('Reference.type is checked on #id references too, and "#" is the resource itself', () => {
    const b = example('prescription-01.json');
    const comp = b.entry[0].resource;
    const mr = b.entry[entryOf(b, 'MedicationRequest').i].resource;
    comp.contained = [{ ...structuredClone(mr), id: 'mr1' }];
    comp.section[0].entry = [{ reference: '#mr1', type: 'Binary' }];
    expect(shown(b).map((x) => x[2])).toEqual([
      "Reference.type is 'Binary' but the reference resolves to a MedicationRequest [R4 Reference.type: SHALL be consistent with the reference]",
    ]);
    comp.section[0].entry = [{ reference: '#', type: 'MedicationRequest' }];
    expect(shown(b).map((x) => x[2])).toEqual([
      "Reference.type is 'MedicationRequest' but the reference resolves to a Composition [R4 Reference.type: SHALL be consistent with the reference]",
      'A Composition is not allowed in section PrescriptionRecord; allowed: MedicationRequest, Binary [PrescriptionRecord: Composition.section.entry]',
    ]);
  });

  it('a relative Type/id resolves against the referencing entry’s base; one under two bases it cannot tell is ambiguous', () => {
    // the IG's Type/id-era example (fullUrls `Patient/1`, relative references), put under a server base
    const b = example('prescription-02.json');
    for (const e of b.entry) e.fullUrl = `https://hospital.example/fhir/${e.fullUrl}`;
    const p = entryOf(b, 'Patient');
    expect(issues(b)).toEqual([]);
    // another server's Patient/1, with no ABHA identity
    const copy = structuredClone(b.entry[p.i]);
    copy.fullUrl = 'http://other.example/fhir/Patient/1';
    copy.resource.identifier = [{ system: 'http://other.example/mrn', value: 'X1' }];
    b.entry.push(copy);
    // the Composition's base is the real Patient's: the other server's Patient/1 is not the subject
    expect(issues(b)).toEqual([]);
    expect(v.validate(b).facts.patient.index).toBe(p.i);
    // without a base of its own, the Composition cannot tell the two Patient/1 apart
    b.entry[0].fullUrl = 'urn:uuid:0b4a6f2e-9d1c-4e57-8a3b-5c2d7e9f1a60';
    expect(shown(b).map((x) => x[2])).toContain(
      `Reference 'Patient/1' is ambiguous: entries ${p.i}, ${b.entry.length - 1} are each Patient/1 under different bases, and the referencing entry's fullUrl does not say which [R4 §2.36.4 resolving references in Bundles]`,
    );
    b.entry[0].fullUrl = 'https://hospital.example/fhir/Composition/1';
    // an absolute reference names the entry with that fullUrl and nothing else
    b.entry[0].resource.subject.reference = 'http://third.example/fhir/Patient/1';
    expect(shown(b).map((x) => x[2])).toContain(
      "Reference 'http://third.example/fhir/Patient/1' does not resolve to an entry of this bundle (by fullUrl, or as a relative Type/id) [documents are self-contained, R4 §3.3]",
    );
  });

  it('the subject is the Patient entry, not a contained resource', () => {
    const b = example('prescription-01.json');
    b.entry[0].resource.contained = [{ resourceType: 'Patient', id: 'p' }];
    b.entry[0].resource.subject = { reference: '#p' };
    expect(shown(b).map((x) => [x[1], x[2]])).toContainEqual([
      `${C}.subject.reference`,
      'Composition.subject must reference the Patient entry of the bundle, not a contained resource: the patient is identified by that entry',
    ]);
  });

  it('a DiagnosticReportRecord code in the wrong system is the system’s fault, not an unknown type', () => {
    const b = example('diagnostic-report-lab-01.json');
    delete b.entry[0].resource.meta.profile;
    b.entry[0].resource.type.coding[0].system = 'http://loinc.org';
    expect(shown(b).map((x) => x[2])).toEqual([
      'Composition.type must carry a coding of http://snomed.info/sct [DiagnosticReportRecord: Composition.type.coding.system]',
    ]);
  });
});
