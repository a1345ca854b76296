/** GET /fhir/metadata: what this server supports, stated as FHIR. */
import { SEARCH_PARAMS } from './search.js';
import type { ProfileFile } from '../fhir/profiles.js';

export function capabilityStatement(profiles: ProfileFile[], version: string, now: Date): fhir4.CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: now.toISOString(),
    kind: 'instance',
    software: { name: 'abha-vault', version },
    implementation: { description: 'Consent-gated FHIR R4 document store for ABDM (HIP side)' },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation:
          "Providers (role hip) upload ABDM document Bundles, naming the care context in X-Care-Context; uploads are validated against FHIR R4 and the ABDM profiles listed under supportedProfile. Viewers (role hiu) search and read a patient's records under the consent named in X-Consent-Id.",
        security: {
          service: [
            {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/restful-security-service',
                  code: 'OAuth',
                  display: 'OAuth',
                },
              ],
            },
          ],
          description: 'Bearer JWT (RS256) with claims role (hip, hiu, cm, admin) and facility.',
        },
        resource: [
          {
            type: 'Bundle',
            supportedProfile: [
              'https://nrces.in/ndhm/fhir/r4/StructureDefinition/DocumentBundle',
              ...profiles.map((p) => p.profile),
            ],
            interaction: [
              {
                code: 'create',
                documentation:
                  'POST a document Bundle. Same identifier and content: 200 with the existing record; changed content: 201 with a new version.',
              },
              { code: 'read' },
              { code: 'vread' },
              { code: 'history-instance' },
              { code: 'search-type' },
            ],
            versioning: 'versioned',
            readHistory: true,
            updateCreate: false,
            searchParam: SEARCH_PARAMS.map((p) => ({
              name: p.name,
              type: p.type as fhir4.CapabilityStatementRestResourceSearchParam['type'],
              documentation: p.documentation,
            })),
          },
        ],
      },
    ],
  };
}
