/**
 * Stored records back to FHIR JSON, built as text so the uploaded bytes
 * (decimal precision included) come back unchanged: only Bundle.id and
 * Bundle.meta.versionId/lastUpdated are set by the server.
 */
import { type MemberSpan, topLevelMembers, topLevelValue, withTopLevelMembers } from '../fhir/json-text.js';
import type { ListedRecord } from './model.js';

export interface RecordVersion {
  recordId: string;
  version: number;
  receivedAt: Date;
  /** Where the stored text's top-level members are (records/model.ts RecordDoc.members), when known. */
  members?: StoredSpans;
}

/**
 * Top-level member spans as stored beside a version: the keys in order, and each one's start and end in turn
 * (fhir/json-text.ts MemberSpan). Flat arrays, as FerretDB stores no arrays of arrays.
 */
export interface StoredSpans {
  keys: string[];
  at: number[];
}

export const storedSpans = (members: MemberSpan[]): StoredSpans => ({
  keys: members.map((m) => m.key),
  at: members.flatMap((m) => [m.start, m.end]),
});

/**
 * The member spans of `text`: the ones stored with its version when they fit it (each starts with its key's quoted
 * name, within the text, in order), so a read does not scan the whole document; else one scan.
 */
export function spansOf(text: string, stored: StoredSpans | undefined): MemberSpan[] {
  const keys = stored?.keys,
    at = stored?.at;
  if (Array.isArray(keys) && Array.isArray(at) && keys.length > 0 && at.length === 2 * keys.length) {
    const spans = keys.map((key, i) => ({ key, start: at[2 * i], end: at[2 * i + 1] }));
    const fits = spans.every(
      (m, i) =>
        typeof m.key === 'string' &&
        Number.isInteger(m.start) &&
        Number.isInteger(m.end) &&
        m.end <= text.length &&
        m.start < m.end &&
        (i === 0 || spans[i - 1].end <= m.start) &&
        text.startsWith(JSON.stringify(m.key), m.start),
    );
    if (fits) return spans;
  }
  return topLevelMembers(text);
}

export function renderRecord(text: string, v: RecordVersion): string {
  const members = spansOf(text, v.members); // stored at upload, or one scan of the text: both steps use them
  const { versionId: _v, lastUpdated: _l, ...rest } = uploadedMeta(text, members);
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

/** The stored text's Bundle.meta, as an object ({} when there is none). */
function uploadedMeta(text: string, members: MemberSpan[]): Record<string, unknown> {
  const raw = topLevelValue(text, 'meta', members);
  if (raw) {
    try {
      const parsed = JSON.parse(raw);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
    } catch {
      /* validated on upload; keep an empty meta if not */
    }
  }
  return {};
}

/** The tag FHIR asks for on a resource that is not whole (a `_summary` or `_elements` listing; R4 search). */
export const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

/** Bundle.identifier from the stored key (records/index-keys.ts bundleIdentifierKey: JSON [system, value]). */
function identifierOf(identifierKey: string | undefined): { system: string; value: string } | undefined {
  try {
    const pair: unknown = identifierKey === undefined ? undefined : JSON.parse(identifierKey);
    if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string')
      return { system: pair[0], value: pair[1] };
  } catch {
    /* a key of an older store (system|value) before its migration: no identifier rather than a wrong one */
  }
  return undefined;
}

/**
 * A record cut to `elements` (records/search.ts ListingView; only the ones the store keeps: id, meta, identifier,
 * type) from its listed facts alone, reading no content. `meta` is what the server sets (versionId, lastUpdated) and
 * the SUBSETTED tag: the uploader's own meta elements (profile, security labels, tags) are in the content only, so
 * they come with a listing that reads it (renderSubset) or with the record itself.
 */
export function renderListed(doc: ListedRecord, elements: readonly string[]): string {
  const out: Record<string, unknown> = {
    resourceType: 'Bundle',
    id: doc._id,
    meta: {
      versionId: String(doc.version),
      ...(doc.receivedAt ? { lastUpdated: doc.receivedAt.toISOString() } : {}),
      tag: [SUBSETTED],
    },
  };
  const identifier = elements.includes('identifier') ? identifierOf(doc.identifierKey) : undefined;
  if (identifier) out.identifier = identifier;
  if (elements.includes('type')) out.type = 'document'; // every stored record is a document (validated at upload)
  return JSON.stringify(out);
}

/**
 * A record cut to `elements` from its stored text: resourceType, id and meta as renderRecord sets them (meta with the
 * SUBSETTED tag added), then each other named top-level member that the text has, in Bundle's element order, its text
 * copied as uploaded. The members are found by one scan of the text; nothing else of it is parsed.
 */
export function renderSubset(text: string, v: RecordVersion, elements: readonly string[]): string {
  const members = topLevelMembers(text);
  const { versionId: _v, lastUpdated: _l, tag, ...rest } = uploadedMeta(text, members);
  const tags = Array.isArray(tag) ? tag : [];
  const subsetted = tags.some((t) => t?.system === SUBSETTED.system && t?.code === SUBSETTED.code);
  const meta = {
    versionId: String(v.version),
    lastUpdated: v.receivedAt.toISOString(),
    ...rest,
    tag: subsetted ? tags : [...tags, SUBSETTED],
  };
  const parts = [`"resourceType":"Bundle"`, `"id":${JSON.stringify(v.recordId)}`, `"meta":${JSON.stringify(meta)}`];
  for (const name of elements) {
    if (name === 'id' || name === 'meta' || name === 'resourceType') continue;
    const raw = topLevelValue(text, name, members);
    if (raw !== undefined) parts.push(`${JSON.stringify(name)}:${raw}`);
  }
  return `{${parts.join(',')}}`;
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
/**
 * On the entries of a listing without bodies (`_summary`, `_elements`): the record date as indexed (Composition.date;
 * a date without a time as the start of that day, UTC), valueDateTime.
 */
export const RECORD_DATE_EXTENSION_URL = 'urn:abha-vault:record-date';
/** On the same entries: Composition.title, valueString (absent until records stored before it are migrated). */
export const TITLE_EXTENSION_URL = 'urn:abha-vault:title';
/**
 * On the same entries, one per author: each Composition.author's display, else the name of the Practitioner or
 * Organization it resolves to (records/index-keys.ts), valueString.
 */
export const AUTHOR_EXTENSION_URL = 'urn:abha-vault:author';

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

/**
 * The `extension` of an entry of a listing without bodies: the care context and record type as on every entry, then
 * the record date, the title and each author, all from what the store keeps beside the record.
 */
export function summaryExtension(doc: ListedRecord) {
  return [
    ...careContextExtension(doc),
    { url: RECORD_DATE_EXTENSION_URL, valueDateTime: doc.recordDate.toISOString() },
    ...(doc.title ? [{ url: TITLE_EXTENSION_URL, valueString: doc.title }] : []),
    ...(doc.author ?? []).map((name) => ({ url: AUTHOR_EXTENSION_URL, valueString: name })),
  ];
}
