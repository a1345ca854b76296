/**
 * The upload validation pipeline: guard → FHIR R4 structure → document rules →
 * ABDM profile rules. Every stage runs that can, so a rejection lists every
 * problem found, not only the first. The guard's limits (size, depth, string
 * length, duplicate names, entry count) are all checked in `guard.ts`.
 */
import { type Issue, error, fail, named, shown, unprocessable } from './outcome.js';
import { DOCUMENT, parseBody, type GuardLimits } from './guard.js';
import { StructureValidator } from './structure.js';
import { documentRules, type DocumentFacts } from './document.js';
import { type AbhaIdentity, abhaIdentity } from './abha.js';
import { ProfileEngine, type ProfileFile } from './profiles.js';

export interface ValidatorOptions extends GuardLimits {
  abhaSystems: readonly string[];
  maxIssues?: number;
}

export interface ValidDocument {
  bundle: Record<string, any>;
  profile: ProfileFile;
  facts: DocumentFacts & { patient: NonNullable<DocumentFacts['patient']> };
  /** The patient's ABHA number and address, found once (fhir/abha.ts) for both the profile check and the index keys. */
  identity: AbhaIdentity;
}

export class DocumentValidator {
  readonly structure: StructureValidator;
  readonly profiles: ProfileEngine;

  constructor(
    private options: ValidatorOptions,
    structure?: StructureValidator,
  ) {
    this.structure = structure ?? new StructureValidator();
    this.profiles = new ProfileEngine(options.abhaSystems);
  }

  /**
   * Parses and validates an uploaded document, the text as `readJsonText`
   * returned it (its size was bounded while it streamed in, so it is not
   * measured again); throws FhirError (400/422) when it is not acceptable.
   * The guard's text stage refuses, before anything reads the parsed value,
   * text that names a member twice in one object (the parsed value would be
   * only one reading of it) and a Bundle with more than `maxEntries` entries.
   */
  validateText(text: string): ValidDocument {
    return this.validate(parseBody(text, this.options, DOCUMENT));
  }

  /** Validates a parsed document. The guard's limits are not applied here: `validateText` applies them to the text. */
  validate(parsed: unknown): ValidDocument {
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw unprocessable([error('structure', 'Expected a FHIR resource (a JSON object)', 'Bundle')]);
    }
    const bundle = parsed as Record<string, any>;
    if (bundle.resourceType !== 'Bundle') {
      throw unprocessable([
        error(
          'structure',
          `Expected resourceType 'Bundle' (a FHIR document), found ${shown(bundle.resourceType)}`,
          'resourceType',
        ),
      ]);
    }
    const issues: Issue[] = [];
    const max = this.options.maxIssues ?? 1000;
    this.structure.validateResource(bundle, 'Bundle', issues, max);
    let profile: ProfileFile | undefined;
    let facts: DocumentFacts | undefined;
    let identity: AbhaIdentity | undefined;
    try {
      const doc = documentRules(bundle);
      issues.push(...doc.issues);
      facts = doc.facts;
      if (facts) {
        profile = this.profiles.select(facts.composition);
        identity = facts.patient
          ? abhaIdentity(facts.patient.resource.identifier, this.options.abhaSystems)
          : undefined;
        if (profile) issues.push(...this.profiles.check(profile, bundle, facts, identity));
        else {
          const coding = facts.composition.type?.coding;
          const codes =
            (Array.isArray(coding) ? coding : [])
              .map((c: any) => c?.code)
              .filter((c: unknown) => typeof c === 'string')
              .join(', ') || named(facts.composition.type?.text ?? 'none');
          issues.push(
            error(
              'not-supported',
              `Unsupported record type (Composition.type ${codes}); supported: ${this.profiles.supported}`,
              'Bundle.entry[0].resource.type',
            ),
          );
        }
      }
    } catch (e) {
      // The later stages assume shapes the structure stage checks; when it found faults, those are the answer.
      if (issues.length > 0) throw unprocessable(issues.slice(0, max));
      throw e;
    }
    if (issues.length > 0) throw unprocessable(issues.slice(0, max));
    if (!profile || !facts?.patient || !identity)
      throw fail('unprocessable', 'processing', 'Document could not be validated'); // unreachable: reported above
    return { bundle, profile, facts: facts as ValidDocument['facts'], identity };
  }
}
