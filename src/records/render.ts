/**
 * Stored records back to FHIR JSON, built as text so the uploaded bytes
 * (decimal precision included) come back unchanged: only Bundle.id and
 * Bundle.meta.versionId/lastUpdated are set by the server.
 */
import { topLevelMembers, topLevelValue, withTopLevelMembers } from '../fhir/json-text.js';

export interface RecordVersion {
  recordId: string;
  version: number;
  receivedAt: Date;
}

export function renderRecord(text: string, v: RecordVersion): string {
  const members = topLevelMembers(text); // one scan of the text serves both steps
  let meta: Record<string, unknown> = {};
  const raw = topLevelValue(text, 'meta', members);
  if (raw) {
    try {
      const parsed = JSON.parse(raw);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) meta = parsed;
    } catch {
      /* validated on upload; keep an empty meta if not */
    }
  }
  const { versionId: _v, lastUpdated: _l, ...rest } = meta;
  return withTopLevelMembers(
    text,
    {
      resourceType: '"Bundle"',
      id: JSON.stringify(v.recordId),
      meta: JSON.stringify({ versionId: String(v.version), lastUpdated: v.receivedAt.toISOString(), ...rest }),
    },
    members,
  );
}

export interface BundleEntryText {
  fullUrl: string;
  resource: string;
  extra?: Record<string, unknown>;
}

/** A Bundle (searchset or history) whose entries' resources are pre-rendered JSON text. */
export function bundleText(head: Record<string, unknown>, entries: BundleEntryText[]): string {
  const parts = entries.map((e) => {
    const extra = e.extra
      ? Object.entries(e.extra)
          .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
          .join('')
      : '';
    return `{"fullUrl":${JSON.stringify(e.fullUrl)},"resource":${e.resource}${extra}}`;
  });
  const headText = JSON.stringify(head);
  return `${headText.slice(0, -1)}${entries.length ? `,"entry":[${parts.join(',')}]` : ''}}`;
}

export const etag = (version: number) => `W/"${version}"`;

/**
 * The extension on each searchset and history entry (Bundle.entry is a BackboneElement) naming the care context the
 * record was uploaded under (X-Care-Context, and X-Care-Context-Display when one was sent): the visit it belongs to.
 */
export const CARE_CONTEXT_EXTENSION_URL = 'urn:abha-vault:care-context';
/** The record's ABDM hiType (Prescription, DischargeSummary, …), as the store indexed it, on the same entries. */
export const RECORD_TYPE_EXTENSION_URL = 'urn:abha-vault:record-type';

/** The entry's `extension`: its care context as a Coding (code the referenceNumber, display its label), its hiType. */
export function careContextExtension(doc: { careContext: string; careContextDisplay: string | null; hiType: string }) {
  return [
    {
      url: CARE_CONTEXT_EXTENSION_URL,
      valueCoding: {
        code: doc.careContext,
        ...(doc.careContextDisplay !== null && doc.careContextDisplay !== undefined
          ? { display: doc.careContextDisplay }
          : {}),
      },
    },
    { url: RECORD_TYPE_EXTENSION_URL, valueCode: doc.hiType },
  ];
}
