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

export interface SearchQuery {
  filter: Record<string, unknown>;
  count: number;
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
  return { filter, count, cursorToken };
}

/** The keyset condition for the page after (or before) the cursor's record. */
export function cursorFilter(c: Cursor): Record<string, unknown> {
  const d = new Date(c.d);
  const op = c.dir === 'next' ? '$lt' : '$gt';
  return { $or: [{ recordDate: { [op]: d } }, { recordDate: d, _id: { [op]: c.i } }] };
}
