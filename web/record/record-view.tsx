/**
 * A stored FHIR document Bundle as a clinician reads it: a header (title, type, date, authors, facility, patient
 * with ABHA number and address, care context, status), then the Composition's sections in order, each entry
 * rendered by its type with references resolved inside the bundle, and last any entry no section reaches (so
 * nothing recorded is dropped). Headings: the record's title is h2 (the screen's title is h1), sections h3, entries
 * h4 (deeper sections one level down each).
 */
import { useId, useMemo } from 'preact/hooks';
import './record.css';
import { formatAbha } from '../format.js';
import {
  abhaOf,
  arr,
  BundleIndex,
  conceptText,
  isObj,
  joinText,
  type Json,
  listText,
  type Resource,
  str,
} from './fhir.js';
import { Narrative } from './narrative.js';
import { ObservationTable } from './observations.js';
import { ImmunizationTable, ResourceView } from './resources.js';
import { recordPatient, recordSummary } from './summary.js';
import { Fields, Heading, RecordContext, StatusPill, useRecord } from './values.js';

type Item =
  | { kind: 'one'; resource: Resource }
  | { kind: 'observations'; resources: Resource[] }
  | { kind: 'immunizations'; resources: Resource[] }
  | { kind: 'missing'; text: string };

type Resolved = Resource | { missing: string };

function resolveEntries(entries: unknown[], index: BundleIndex, host: Resource): Resolved[] {
  const resolved: Resolved[] = [];
  for (const e of entries) {
    const r = index.resolve(e, host);
    if (r) resolved.push(r);
    else if (isObj(e)) resolved.push({ missing: str(e.display) ?? str(e.reference) ?? '—' });
  }
  return resolved;
}

/** Entries grouped: runs of Observations (and of Immunizations) become one table. */
function groupEntries(resolved: Resolved[], index: BundleIndex): Item[] {
  // Observations that a DiagnosticReport of the same section lists are shown beneath that report.
  const underReports = new Set<Resource>();
  for (const r of resolved) {
    if ('resourceType' in r && r.resourceType === 'DiagnosticReport') {
      for (const ref of arr(r.result)) {
        const o = index.resolve(ref, r);
        if (o) underReports.add(o);
      }
    }
  }
  const items: Item[] = [];
  for (const r of resolved) {
    if (!('resourceType' in r)) {
      items.push({ kind: 'missing', text: r.missing });
      continue;
    }
    if (underReports.has(r)) continue;
    const last = items[items.length - 1];
    if (r.resourceType === 'Observation') {
      if (last?.kind === 'observations') last.resources.push(r);
      else items.push({ kind: 'observations', resources: [r] });
    } else if (r.resourceType === 'Immunization') {
      if (last?.kind === 'immunizations') last.resources.push(r);
      else items.push({ kind: 'immunizations', resources: [r] });
    } else items.push({ kind: 'one', resource: r });
  }
  return items;
}

function Items({ items, level, label }: { items: Item[]; level: number; label: string }) {
  const c = useRecord();
  return (
    <>
      {items.map((item, i) => {
        switch (item.kind) {
          case 'observations':
            return <ObservationTable key={i} observations={item.resources} label={label} />;
          case 'immunizations':
            return item.resources.length > 1 ? (
              <ImmunizationTable key={i} items={item.resources} label={label} />
            ) : (
              <ResourceView key={i} resource={item.resources[0]} level={level} />
            );
          case 'missing':
            return (
              <p key={i} class="rv-note">
                {item.text} ({c.t('unresolved')})
              </p>
            );
          default:
            return <ResourceView key={i} resource={item.resource} level={level} />;
        }
      })}
    </>
  );
}

function SectionView({ section, level, host }: { section: fhir4.CompositionSection; level: number; host: Resource }) {
  const c = useRecord();
  const id = useId();
  const s = section as unknown as Json;
  const title = str(s.title) ?? conceptText(s.code) ?? '—';
  const items = groupEntries(resolveEntries(arr(s.entry), c.index, host), c.index);
  const subsections = arr(s.section).filter(isObj) as fhir4.CompositionSection[];
  const hasText = isObj(s.text) && str(s.text.div);
  return (
    <section class="rv-section" aria-labelledby={id}>
      <Heading level={level} id={id} class="rv-section-title">
        {title}
      </Heading>
      {str(s.title) && isObj(s.code) && conceptText(s.code) !== str(s.title) && (
        <p class="rv-muted rv-section-code">{conceptText(s.code)}</p>
      )}
      <Narrative text={s.text} open={!items.length && !subsections.length} />
      <Items items={items} level={level + 1} label={title} />
      {!items.length && !subsections.length && !hasText && <p class="rv-note">{c.t('noEntries')}</p>}
      {isObj(s.emptyReason) && (
        <p class="rv-note">
          {c.t('emptyReason')}: {conceptText(s.emptyReason)}
        </p>
      )}
      {subsections.map((sub, i) => (
        <SectionView key={i} section={sub} level={level + 1} host={host} />
      ))}
    </section>
  );
}

const PARTIES = new Set(['Composition', 'Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'Location']);

/** Every resource the Composition reaches by references (through sections, then transitively). */
function reachable(index: BundleIndex, composition: Resource): Set<Resource> {
  const seen = new Set<Resource>([composition]);
  const queue: Resource[] = [];
  const walk = (value: unknown, host: Resource, depth: number) => {
    if (depth > 12 || value == null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const v of value) walk(v, host, depth + 1);
      return;
    }
    const v = value as Json;
    if (typeof v.reference === 'string') {
      const r = index.resolve(v, host);
      if (r && !seen.has(r)) {
        seen.add(r);
        queue.push(r);
      }
    }
    for (const [k, inner] of Object.entries(v)) if (k !== 'contained') walk(inner, host, depth + 1);
  };
  walk(composition, composition, 0);
  while (queue.length) {
    const r = queue.shift()!;
    walk(r, r, 0);
  }
  return seen;
}

function Header({ bundle, careContext }: { bundle: fhir4.Bundle; careContext?: { code: string; display?: string } }) {
  const c = useRecord();
  const summary = recordSummary(bundle);
  const composition = c.index.composition;
  const patient = c.patient as Json | undefined;
  const abha = abhaOf(c.patient);
  const patientLine = [
    summary.patientName,
    joinText([str(patient?.gender), c.dateOf(patient?.birthDate)], ', '),
  ].filter(Boolean);
  const typeText = composition && isObj(composition.type) ? conceptText(composition.type) : undefined;
  const attesters = listText(composition?.attester, (a) => joinText([c.ref(a.party, composition), str(a.mode)], ', '));
  return (
    <header class="rv-header">
      <Heading level={2} class="rv-title">
        {summary.title}
      </Heading>
      <Fields
        class="rv-dl rv-meta"
        rows={[
          [c.t('type'), typeText ?? summary.typeLabel],
          [c.t('date'), summary.date ? c.date(summary.date) : undefined],
          [c.t('authors'), summary.authors.join('; ')],
          [c.t('facility'), summary.facility],
          [c.t('patient'), patientLine.length > 1 ? `${patientLine[0]} (${patientLine[1]})` : patientLine[0]],
          [c.t('abhaNumber'), abha.number ? <span class="rv-nowrap">{formatAbha(abha.number)}</span> : undefined],
          [c.t('abhaAddress'), abha.address],
          [
            c.t('careContext'),
            careContext
              ? careContext.display && careContext.display !== careContext.code
                ? `${careContext.display} (${careContext.code})`
                : careContext.code
              : undefined,
          ],
          [c.t('status'), composition?.status ? <StatusPill value={composition.status} /> : undefined],
          [c.t('attester'), attesters],
        ]}
      />
      <Narrative text={composition?.text} />
    </header>
  );
}

function Body({ bundle }: { bundle: fhir4.Bundle }) {
  const c = useRecord();
  const composition = c.index.composition;
  const encounterId = useId();
  const othersId = useId();
  const others = useMemo(() => {
    if (!composition) return c.index.resources;
    const seen = reachable(c.index, composition);
    return c.index.resources.filter((r) => !seen.has(r) && !PARTIES.has(r.resourceType));
  }, [c.index, composition]);
  if (!composition) {
    return (
      <>
        <p class="rv-note">{c.t('notDocument')}</p>
        <Items items={groupEntries(others, c.index)} level={3} label={bundle.type ?? ''} />
      </>
    );
  }
  const encounter = c.index.resolve(composition.encounter, composition);
  const sections = arr(composition.section).filter(isObj) as fhir4.CompositionSection[];
  return (
    <>
      {encounter && (
        <section class="rv-section" aria-labelledby={encounterId}>
          <Heading level={3} id={encounterId} class="rv-section-title">
            {c.t('encounter')}
          </Heading>
          <ResourceView resource={encounter} level={4} />
        </section>
      )}
      {sections.map((s, i) => (
        <SectionView key={i} section={s} level={3} host={composition} />
      ))}
      {!sections.length && <p class="rv-note">{c.t('noSections')}</p>}
      {others.length > 0 && (
        <section class="rv-section rv-others" aria-labelledby={othersId}>
          <Heading level={3} id={othersId} class="rv-section-title">
            {c.t('otherEntries')}
          </Heading>
          <Items items={groupEntries(others, c.index)} level={4} label={c.t('otherEntries')} />
        </section>
      )}
    </>
  );
}

/** A stored document as a clinician reads it. */
export function RecordView(props: { bundle: fhir4.Bundle; careContext?: { code: string; display?: string } }) {
  const index = useMemo(() => new BundleIndex(props.bundle), [props.bundle]);
  const ctx = useMemo(() => ({ index, patient: recordPatient(index) }), [index]);
  return (
    <RecordContext.Provider value={ctx}>
      <article class="rv">
        <Header bundle={props.bundle} careContext={props.careContext} />
        <Body bundle={props.bundle} />
      </article>
    </RecordContext.Provider>
  );
}
