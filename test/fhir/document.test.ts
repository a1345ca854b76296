// Unit tests for the document-bundle rules (src/fhir/document.ts): R4 bdl-* invariants and the
// IG DocumentBundle requirements, reference resolution by fullUrl and by Type/id.
import { describe, it, expect } from 'vitest';
import { documentRules } from '../../src/fhir/document.js';
import { FIXTURES, texts, load, brief } from '../support/fixtures.js';

/** Rewrites every urn:uuid fullUrl as `${resourceType}/${newId}` and every reference to match. */
function toTypeIdStyle(bundle: any, idFor: (rt: string, i: number) => string, base = ''): any {
  const map = new Map<string, string>();
  bundle.entry.forEach((e: any, i: number) => {
    const rt = e.resource.resourceType;
    const id = idFor(rt, i);
    map.set(e.fullUrl, `${rt}/${id}`);
    e.fullUrl = `${base}${rt}/${id}`;
    e.resource.id = id;
  });
  const text = JSON.stringify(bundle).replace(/"reference":"(urn:uuid:[^"]+)"/g, (m, ref: string) => {
    const to = map.get(ref);
    if (!to) throw new Error(`unmapped reference ${ref}`);
    return `"reference":"${to}"`;
  });
  return JSON.parse(text);
}

describe('documentRules on the fixtures', () => {
  for (const name of FIXTURES) {
    it(`${name}.json has no issues and its subject is the Patient entry`, () => {
      const b = load(name);
      const { issues, facts } = documentRules(b);
      expect(issues).toEqual([]);
      expect(facts).toBeDefined();
      expect(facts!.composition).toBe(b.entry[0].resource);
      expect(facts!.patient?.index).toBe(1);
      expect(facts!.patient?.resource.resourceType).toBe('Patient');
      // Every entry resolves by its own fullUrl.
      b.entry.forEach((e: any, i: number) => expect(facts!.resolve(e.fullUrl)?.index).toBe(i));
      expect(facts!.resolve('urn:uuid:00000000-0000-4000-8000-000000000000')).toBeUndefined();
    });
  }
});

describe('documentRules: Bundle-level requirements', () => {
  it('reports a Bundle that is not a document', () => {
    const b = load('prescription');
    b.type = 'collection';
    const { issues, facts } = documentRules(b);
    expect(brief(issues)).toEqual([['value', 'Bundle.type']]);
    expect(issues[0].diagnostics).toContain("found 'collection'");
    expect(facts).toBeDefined();
  });

  it('reports a missing identifier.system, identifier.value or identifier', () => {
    for (const mutate of [
      (b: any) => delete b.identifier.system,
      (b: any) => delete b.identifier.value,
      (b: any) => delete b.identifier,
    ]) {
      const b = load('prescription');
      mutate(b);
      const { issues } = documentRules(b);
      expect(brief(issues)).toEqual([['required', 'Bundle.identifier']]);
      expect(issues[0].diagnostics).toContain('bdl-9');
    }
  });

  it('reports a missing timestamp', () => {
    const b = load('prescription');
    delete b.timestamp;
    const { issues } = documentRules(b);
    expect(brief(issues)).toEqual([['required', 'Bundle.timestamp']]);
    expect(issues[0].diagnostics).toContain('bdl-10');
  });

  it('reports a missing meta.versionId (and a missing meta)', () => {
    for (const mutate of [(b: any) => delete b.meta.versionId, (b: any) => delete b.meta]) {
      const b = load('diagnostic-report');
      mutate(b);
      expect(brief(documentRules(b).issues)).toEqual([['required', 'Bundle.meta.versionId']]);
    }
  });

  it('reports a first entry that is not a Composition, and gives no facts', () => {
    const b = load('prescription');
    [b.entry[0], b.entry[1]] = [b.entry[1], b.entry[0]];
    const { issues, facts } = documentRules(b);
    expect(brief(issues)).toEqual([['structure', 'Bundle.entry[0].resource']]);
    expect(issues[0].diagnostics).toContain('bdl-11');
    expect(issues[0].diagnostics).toContain('(found Patient)');
    expect(facts).toBeUndefined();
  });

  it('reports a bundle with no entries', () => {
    const b = load('prescription');
    delete b.entry;
    const { issues, facts } = documentRules(b);
    expect(brief(issues)).toEqual([['structure', 'Bundle.entry[0].resource']]);
    expect(issues[0].diagnostics).toContain('(found nothing)');
    expect(facts).toBeUndefined();
  });

  it('reports several Bundle-level faults together', () => {
    const b = load('prescription');
    b.type = 'searchset';
    delete b.timestamp;
    delete b.meta.versionId;
    delete b.identifier;
    expect(brief(documentRules(b).issues)).toEqual([
      ['value', 'Bundle.type'],
      ['required', 'Bundle.identifier'],
      ['required', 'Bundle.timestamp'],
      ['required', 'Bundle.meta.versionId'],
    ]);
  });
});

describe('documentRules: entries and fullUrls', () => {
  it('reports a duplicate fullUrl (bdl-7)', () => {
    const b = load('prescription');
    // Entries 5 and 6 are both Conditions; give 6 the fullUrl of 5 and point its references there too.
    const old = b.entry[6].fullUrl;
    b.entry[6].fullUrl = b.entry[5].fullUrl;
    const fixed = JSON.parse(JSON.stringify(b).split(old).join(b.entry[5].fullUrl));
    const { issues } = documentRules(fixed);
    expect(brief(issues)).toEqual([['duplicate', 'Bundle.entry[6].fullUrl']]);
    expect(issues[0].diagnostics).toContain('used by entries 5 and 6');
    expect(issues[0].diagnostics).toContain('bdl-7');
  });

  it('reports a malformed urn:uuid fullUrl', () => {
    const b = load('prescription');
    const old = b.entry[3].fullUrl;
    const fixed = JSON.parse(JSON.stringify(b).split(old).join('urn:uuid:Organization-c3df1b35'));
    const { issues } = documentRules(fixed);
    expect(brief(issues)).toEqual([['value', 'Bundle.entry[3].fullUrl']]);
    expect(issues[0].diagnostics).toContain("fullUrl 'urn:uuid:Organization-c3df1b35' is not a valid urn:uuid");
  });

  it('reports a missing fullUrl and a missing resource', () => {
    const b = load('prescription');
    const url3 = b.entry[3].fullUrl;
    delete b.entry[3].fullUrl;
    b.entry.push({ fullUrl: 'urn:uuid:0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f' });
    const { issues } = documentRules(b);
    // References to the Organization are urn:uuid fullUrls, so they no longer resolve (no Type/id fallback for urn:).
    const refsToOrg = (texts.prescription.match(new RegExp(`"reference": "${url3}"`, 'g')) ?? []).length;
    expect(refsToOrg).toBeGreaterThan(0);
    expect(issues.filter((i) => i.code === 'required').map((i) => i.expression)).toEqual([
      'Bundle.entry[3].fullUrl',
      'Bundle.entry[10].resource',
    ]);
    expect(issues.filter((i) => i.code === 'not-found')).toHaveLength(refsToOrg);
  });

  it('reports entry.request and entry.response (bdl-3, bdl-4)', () => {
    const b = load('prescription');
    b.entry[3].request = { method: 'POST', url: 'Organization' };
    b.entry[4].response = { status: '201' };
    const { issues } = documentRules(b);
    expect(brief(issues)).toEqual([
      ['structure', 'Bundle.entry[3]'],
      ['structure', 'Bundle.entry[4]'],
    ]);
    expect(issues[0].diagnostics).toContain('bdl-3');
  });
});

describe('documentRules: references', () => {
  it('reports a dangling reference at the exact .reference path', () => {
    const b = load('prescription');
    b.entry[7].resource.requester.reference = 'urn:uuid:0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f';
    b.entry[8].resource.reasonReference[0].reference = 'Condition/nope';
    const { issues } = documentRules(b);
    expect(brief(issues)).toEqual([
      ['not-found', 'Bundle.entry[7].resource.requester.reference'],
      ['not-found', 'Bundle.entry[8].resource.reasonReference[0].reference'],
    ]);
    expect(issues[0].diagnostics).toContain(
      "Reference 'urn:uuid:0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f' does not resolve",
    );
  });

  it('reports a dangling reference inside a Composition section entry', () => {
    const b = load('prescription');
    b.entry[0].resource.section[0].entry[2].reference = 'urn:uuid:11111111-2222-4333-8444-555555555555';
    expect(brief(documentRules(b).issues)).toEqual([
      ['not-found', 'Bundle.entry[0].resource.section[0].entry[2].reference'],
    ]);
  });

  it('resolves #id references against contained resources only', () => {
    const b = load('prescription');
    b.entry[7].resource.contained = [{ resourceType: 'Medication', id: 'med1', status: 'active' }];
    b.entry[7].resource.note = [{ authorReference: { reference: '#med1' }, text: 'x' }];
    expect(documentRules(b).issues).toEqual([]);
    b.entry[7].resource.note[0].authorReference.reference = '#med2';
    expect(brief(documentRules(b).issues)).toEqual([
      ['not-found', 'Bundle.entry[7].resource.note[0].authorReference.reference'],
    ]);
  });

  it('resolves Type/id fullUrls and references', () => {
    const b = toTypeIdStyle(load('prescription'), (rt, i) => (rt === 'Patient' ? 'p1' : `${rt.toLowerCase()}-${i}`));
    expect(b.entry[1].fullUrl).toBe('Patient/p1');
    expect(b.entry[0].resource.subject.reference).toBe('Patient/p1');
    const { issues, facts } = documentRules(b);
    expect(issues).toEqual([]);
    expect(facts!.patient?.index).toBe(1);
    expect(facts!.resolve('Patient/p1')?.index).toBe(1);
    expect(facts!.resolve('MedicationRequest/medicationrequest-8')?.index).toBe(8);
    // A versioned or absolute form of the same Type/id resolves to the same entry.
    expect(facts!.resolve('Patient/p1/_history/2')?.index).toBe(1);
    expect(facts!.resolve('Patient/p2')).toBeUndefined();
  });

  it('resolves relative references against absolute http fullUrls', () => {
    const b = toTypeIdStyle(load('discharge-summary'), (_rt, i) => `e${i}`, 'https://hospital.example.in/fhir/');
    expect(b.entry[1].fullUrl).toBe('https://hospital.example.in/fhir/Patient/e1');
    const { issues, facts } = documentRules(b);
    expect(issues).toEqual([]);
    expect(facts!.patient?.index).toBe(1);
    expect(facts!.resolve('https://hospital.example.in/fhir/Encounter/e4')?.index).toBe(4);
  });

  it('reports a Composition.subject that points to a Practitioner', () => {
    const b = load('prescription');
    b.entry[0].resource.subject.reference = b.entry[2].fullUrl;
    const { issues, facts } = documentRules(b);
    expect(brief(issues)).toEqual([['value', 'Bundle.entry[0].resource.subject']]);
    expect(issues[0].diagnostics).toBe('Composition.subject must be a Patient (found Practitioner)');
    expect(facts).toBeDefined();
    expect(facts!.patient).toBeUndefined();
  });

  it('reports a Composition without subject.reference', () => {
    const b = load('prescription');
    delete b.entry[0].resource.subject;
    const { issues, facts } = documentRules(b);
    expect(brief(issues)).toEqual([['required', 'Bundle.entry[0].resource.subject']]);
    expect(facts!.patient).toBeUndefined();
  });

  it('leaves patient unset when the subject does not resolve (reported once, as not-found)', () => {
    const b = load('prescription');
    b.entry[0].resource.subject.reference = 'urn:uuid:0b1f3c5e-8d2a-4c6b-9e7f-1a2b3c4d5e6f';
    const { issues, facts } = documentRules(b);
    expect(brief(issues)).toEqual([['not-found', 'Bundle.entry[0].resource.subject.reference']]);
    expect(facts!.patient).toBeUndefined();
  });
});
