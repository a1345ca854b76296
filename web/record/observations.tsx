/**
 * Observations as a clinician reads them: a table of test, result (with its unit and a flag in words and a
 * symbol), reference range and date; components (a blood pressure's systolic and diastolic) and members beneath
 * their panel; and a DiagnosticReport with its results grouped beneath it, its conclusion and its attachments.
 */
import type { ComponentChildren } from 'preact';
import { AttachmentView } from './attachment.js';
import {
  arr,
  conceptsText,
  conceptText,
  isObj,
  type Json,
  observationDate,
  periodText,
  quantityText,
  rangeText,
  ratioText,
  type Resource,
  str,
  valueFlag,
} from './fhir.js';
import { Narrative } from './narrative.js';
import { Card, FlagBadge, Leftovers, notesOf, RecordTable, StatusPill, useRecord } from './values.js';

type Ctx = ReturnType<typeof useRecord>;

/** An Observation's or component's value[x] as text. */
export function valueText(o: Json, c: Ctx): string | undefined {
  const { lang } = c;
  if (isObj(o.valueQuantity)) return quantityText(o.valueQuantity, lang);
  if (isObj(o.valueCodeableConcept)) return conceptText(o.valueCodeableConcept);
  if (typeof o.valueString === 'string') return o.valueString;
  if (typeof o.valueBoolean === 'boolean') return o.valueBoolean ? c.t('yes') : c.t('no');
  if (typeof o.valueInteger === 'number') return String(o.valueInteger);
  if (isObj(o.valueRange)) return rangeText(o.valueRange, lang);
  if (isObj(o.valueRatio)) return ratioText(o.valueRatio, lang);
  if (typeof o.valueTime === 'string') return o.valueTime;
  if (typeof o.valueDateTime === 'string') return c.date(o.valueDateTime);
  if (isObj(o.valuePeriod)) return periodText(o.valuePeriod, c.date);
  if (isObj(o.valueSampledData)) {
    const d = str(o.valueSampledData.data);
    return d ? `${d.slice(0, 120)}${d.length > 120 ? '…' : ''}` : undefined;
  }
  return undefined;
}

/** A reference range as text: low–high (or its text), with what it applies to. */
export function rangesText(ranges: unknown, c: Ctx): string | undefined {
  const parts = arr(ranges)
    .filter(isObj)
    .map((r) => {
      const span = rangeText({ low: r.low, high: r.high }, c.lang) ?? str(r.text);
      const applies = [conceptText(r.type), conceptsText(r.appliesTo), rangeText(r.age, c.lang)]
        .filter(Boolean)
        .join(', ');
      const extra = span !== str(r.text) && str(r.text) ? ` ${r.text}` : '';
      return span ? `${span}${extra}${applies ? ` (${applies})` : ''}` : undefined;
    })
    .filter((s): s is string => !!s);
  return parts.length ? parts.join('; ') : undefined;
}

const OBS_HANDLED = [
  'code',
  'status',
  'valueQuantity',
  'valueCodeableConcept',
  'valueString',
  'valueBoolean',
  'valueInteger',
  'valueRange',
  'valueRatio',
  'valueTime',
  'valueDateTime',
  'valuePeriod',
  'valueSampledData',
  'interpretation',
  'referenceRange',
  'component',
  'hasMember',
  'effectiveDateTime',
  'effectiveInstant',
  'effectivePeriod',
  'note',
  'dataAbsentReason',
];

function Result({ o, c }: { o: Json; c: Ctx }) {
  const value = valueText(o, c);
  const { flag, fromRange } = valueFlag(o.interpretation, o.valueQuantity, o.referenceRange);
  const interp = conceptsText(o.interpretation);
  const absent = conceptText(o.dataAbsentReason);
  return (
    <>
      {value ? (
        <span class="rv-value">{value}</span>
      ) : absent ? (
        <span class="rv-muted">
          {c.t('noValue')}: {absent}
        </span>
      ) : null}{' '}
      <FlagBadge flag={flag} fromRange={fromRange} />
      {interp && !flag && <span class="rv-muted"> {interp}</span>}
    </>
  );
}

interface RowSpec {
  key: string;
  depth: number;
  name: string;
  o: Json;
  resource?: Resource;
}

function rowsOf(obs: Resource, depth: number, seen: Set<Resource>, c: Ctx, out: RowSpec[]) {
  if (seen.has(obs) || depth > 4) return;
  seen.add(obs);
  const o = obs as unknown as Json;
  out.push({ key: `${out.length}`, depth, name: conceptText(o.code) ?? obs.resourceType, o, resource: obs });
  arr(o.component)
    .filter(isObj)
    .forEach((comp) => {
      out.push({ key: `${out.length}`, depth: depth + 1, name: conceptText(comp.code) ?? '—', o: comp });
    });
  for (const m of arr(o.hasMember)) {
    const member = c.index.resolve(m, obs);
    if (member) rowsOf(member, depth + 1, seen, c, out);
    else if (isObj(m))
      out.push({
        key: `${out.length}`,
        depth: depth + 1,
        name: c.ref(m, obs) ?? '—',
        o: { note: [{ text: c.t('unresolved') }] },
      });
  }
}

/** Observations as one table; `label` names it for screen readers (and its scrolling wrapper). */
export function ObservationTable({ observations, label }: { observations: Resource[]; label: string }) {
  const c = useRecord();
  const rows: RowSpec[] = [];
  const seen = new Set<Resource>();
  for (const o of observations) rowsOf(o, 0, seen, c, rows);
  if (!rows.length) return null;
  return (
    <RecordTable
      label={label}
      class="rv-obs"
      columns={[c.t('test'), c.t('result'), c.t('referenceRange'), c.t('date')]}
    >
      {rows.map((r) => {
        const when = observationDate(r.o);
        const { flag } = valueFlag(r.o.interpretation, r.o.valueQuantity, r.o.referenceRange);
        const notes = notesOf(r.o.note);
        return (
          <tr key={r.key} class={flag && flag !== 'normal' ? 'rv-row-flagged' : undefined}>
            <th scope="row" class={`rv-depth-${Math.min(r.depth, 3)}`}>
              {r.depth > 0 && <span aria-hidden="true">↳ </span>}
              {r.name}
              {r.resource && str(r.o.status) && r.o.status !== 'final' && (
                <>
                  {' '}
                  <StatusPill value={r.o.status} />
                </>
              )}
              {r.resource && <RowMore resource={r.resource} />}
            </th>
            <td>
              <Result o={r.o} c={c} />
              {notes && <div class="rv-row-note">{notes}</div>}
            </td>
            <td>{rangesText(r.o.referenceRange, c)}</td>
            <td>{when ? c.date(when) : null}</td>
          </tr>
        );
      })}
    </RecordTable>
  );
}

/** A row's other elements and narrative, in its first cell. */
function RowMore({ resource }: { resource: Resource }) {
  return (
    <>
      <Leftovers resource={resource} handled={OBS_HANDLED} />
      <Narrative text={(resource as unknown as Json).text} />
    </>
  );
}

const DR_HANDLED = [
  'code',
  'status',
  'category',
  'effectiveDateTime',
  'effectivePeriod',
  'issued',
  'performer',
  'resultsInterpreter',
  'specimen',
  'basedOn',
  'result',
  'conclusion',
  'conclusionCode',
  'presentedForm',
  'media',
];

export function DiagnosticReportView({ resource, level }: { resource: fhir4.DiagnosticReport; level: number }) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const name = conceptText(r.code) ?? c.t('results');
  const results: Resource[] = [];
  const missing: string[] = [];
  for (const ref of arr(r.result)) {
    const o = c.index.resolve(ref, resource);
    if (o) results.push(o);
    else if (isObj(ref)) missing.push(c.ref(ref, resource) ?? '—');
  }
  const specimens = arr(r.specimen)
    .map((s) => {
      const sp = c.index.resolve(s, resource) as Json | undefined;
      const type = sp ? conceptText(sp.type) : undefined;
      const collected = sp && isObj(sp.collection) ? str(sp.collection.collectedDateTime) : undefined;
      return type ? `${type}${collected ? ` (${c.date(collected)})` : ''}` : c.ref(s, resource);
    })
    .filter(Boolean)
    .join('; ');
  const basedOn = arr(r.basedOn)
    .map((b) => {
      const req = c.index.resolve(b, resource) as Json | undefined;
      return (req && conceptText(req.code)) ?? c.ref(b, resource);
    })
    .filter(Boolean)
    .join('; ');
  const when = observationDate(r);
  const media = arr(r.media).filter(isObj);
  const forms = arr(r.presentedForm).filter(isObj);
  return (
    <Card
      resource={resource}
      level={level}
      title={name}
      status={r.status}
      handled={DR_HANDLED}
      rows={[
        [c.t('category'), conceptsText(r.category)],
        [c.t('effective'), str(r.effectiveDateTime) ? c.date(when!) : periodText(r.effectivePeriod, c.date)],
        [c.t('issued'), c.dateOf(r.issued)],
        [c.t('performer'), c.refs(r.performer, resource)],
        [c.t('interpreter'), c.refs(r.resultsInterpreter, resource)],
        [c.t('specimen'), specimens],
        [c.t('basedOn'), basedOn],
      ]}
    >
      {results.length > 0 && <ObservationTable observations={results} label={c.t('resultsOf', { name })} />}
      {missing.length > 0 && (
        <p class="rv-note">
          {c.t('results')}: {missing.join('; ')} ({c.t('unresolved')})
        </p>
      )}
      <ReportConclusion r={r} c={c} />
      {media.length > 0 && (
        <div class="rv-attachments">
          <p class="rv-sublabel">{c.t('images')}</p>
          {media.map((m, i) => (
            <MediaLink key={i} link={m} host={resource} />
          ))}
        </div>
      )}
      {forms.length > 0 && (
        <div class="rv-attachments">
          <p class="rv-sublabel">{c.t('attachments')}</p>
          {forms.map((a, i) => (
            <AttachmentView key={i} attachment={a as fhir4.Attachment} />
          ))}
        </div>
      )}
    </Card>
  );
}

function ReportConclusion({ r, c }: { r: Json; c: Ctx }): ComponentChildren {
  const conclusion = str(r.conclusion);
  const codes = conceptsText(r.conclusionCode);
  if (!conclusion && !codes) return null;
  return (
    <div class="rv-conclusion">
      {conclusion && (
        <p>
          <strong>{c.t('conclusion')}:</strong> {conclusion}
        </p>
      )}
      {codes && (
        <p>
          <strong>{c.t('conclusionCode')}:</strong> {codes}
        </p>
      )}
    </div>
  );
}

function MediaLink({ link, host }: { link: Json; host: Resource }) {
  const c = useRecord();
  const media = c.index.resolve(link.link, host) as Json | undefined;
  const comment = str(link.comment);
  return (
    <div class="rv-media">
      {comment && <p>{comment}</p>}
      {media && isObj(media.content) ? (
        <AttachmentView attachment={media.content as fhir4.Attachment} />
      ) : (
        <p class="rv-muted">
          {c.ref(link.link, host)} ({c.t('unresolved')})
        </p>
      )}
    </div>
  );
}
