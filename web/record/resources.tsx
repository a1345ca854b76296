/**
 * One renderer per resource type a record holds; anything else is shown generically (every top-level element,
 * compactly). Each renderer shows its resource's main elements as fields, and the rest behind "More details".
 */
import type { ComponentChildren } from 'preact';
import { AttachmentView } from './attachment.js';
import {
  arr,
  codingText,
  conceptsText,
  conceptText,
  humanName,
  isObj,
  joinText,
  type Json,
  listText,
  moneyText,
  num,
  periodText,
  quantityText,
  rangeText,
  ratioText,
  type Resource,
  resourceName,
  str,
} from './fhir.js';
import { UNITS } from './labels.js';
import { DiagnosticReportView, ObservationTable } from './observations.js';
import { Card, compact, CompactList, Fields, notesOf, RecordTable, type Row, useRecord } from './values.js';

type Ctx = ReturnType<typeof useRecord>;
interface Props<R = Resource> {
  resource: R;
  level: number;
}

/** A dateTime, Period, Age, Range or string choice element (`onset`, `performed`, `occurrence`…) as text. */
function choiceText(r: Json, base: string, c: Ctx): string | undefined {
  const dt = str(r[`${base}DateTime`]) ?? str(r[`${base}Date`]) ?? str(r[`${base}Instant`]);
  if (dt) return c.date(dt);
  if (isObj(r[`${base}Period`])) return periodText(r[`${base}Period`], c.date);
  if (isObj(r[`${base}Age`])) return quantityText(r[`${base}Age`], c.lang);
  if (isObj(r[`${base}Range`])) return rangeText(r[`${base}Range`], c.lang);
  if (isObj(r[`${base}Timing`])) return timingText(r[`${base}Timing`] as Json, c);
  if (typeof r[`${base}Boolean`] === 'boolean') return r[`${base}Boolean`] ? c.t('yes') : c.t('no');
  return str(r[`${base}String`]);
}
const choiceKeys = (base: string) =>
  ['DateTime', 'Date', 'Instant', 'Period', 'Age', 'Range', 'Timing', 'Boolean', 'String'].map((s) => base + s);

const reasonOf = (r: Json, c: Ctx, host: Resource) => {
  const parts = [
    conceptsText(r.reasonCode),
    ...arr(r.reasonReference).map((ref) => {
      const target = c.index.resolve(ref, host) as Json | undefined;
      return (target && conceptText(target.code)) ?? c.ref(ref, host);
    }),
  ].filter(Boolean);
  return parts.length ? parts.join('; ') : undefined;
};

// ---------------------------------------------------------------------------------------------------------------
// Medications

function unitName(unit: string, plural: boolean, c: Ctx): string {
  const u = UNITS[c.lang][unit] ?? UNITS.en[unit];
  return u ? u[plural ? 1 : 0] : unit;
}

/** Timing as people read it: its code, how often, when, how many times. */
export function timingText(timing: Json, c: Ctx): string | undefined {
  const parts: string[] = [];
  const code = conceptText(timing.code);
  if (code) parts.push(code);
  const rep = isObj(timing.repeat) ? timing.repeat : undefined;
  if (rep) {
    const period = num(rep.period);
    const unit = str(rep.periodUnit);
    const freq = num(rep.frequency) ?? (period ? 1 : undefined);
    const freqText = num(rep.frequencyMax) ? `${freq}–${rep.frequencyMax}` : String(freq);
    const periodShown = num(rep.periodMax) ? `${period}–${rep.periodMax}` : String(period);
    if (period && unit) {
      if (period === 1 && !num(rep.periodMax))
        parts.push(c.t(freqText === '1' ? 'oncePer' : 'timesPer', { n: freqText, unit: unitName(unit, false, c) }));
      else if (freq === 1 && !num(rep.frequencyMax))
        parts.push(c.t('every', { p: periodShown, unit: unitName(unit, true, c) }));
      else parts.push(c.t('timesEvery', { n: freqText, p: periodShown, unit: unitName(unit, true, c) }));
    } else if (freq) parts.push(c.t('forCount', { n: freqText }));
    const when = [...arr(rep.when), ...arr(rep.timeOfDay), ...arr(rep.dayOfWeek)].map((w) => str(w)).filter(Boolean);
    if (when.length) parts.push(when.join(', '));
    if (num(rep.offset)) parts.push(`± ${rep.offset} min`);
    if (num(rep.count))
      parts.push(c.t('forCount', { n: num(rep.countMax) ? `${rep.count}–${rep.countMax}` : String(rep.count) }));
    if (isObj(rep.boundsPeriod)) parts.push(periodText(rep.boundsPeriod, c.date) ?? '');
    if (isObj(rep.boundsRange)) parts.push(rangeText(rep.boundsRange, c.lang) ?? '');
  }
  const events = arr(timing.event).map((e) => (str(e) ? c.date(e as string) : ''));
  parts.push(...events);
  const out = parts.filter(Boolean);
  return out.length ? out.join(', ') : undefined;
}

function DosageView({ d, c }: { d: Json; c: Ctx }) {
  const timing = isObj(d.timing) ? d.timing : undefined;
  const rep = timing && isObj(timing.repeat) ? timing.repeat : undefined;
  const doses = listText(d.doseAndRate, (dr) =>
    joinText(
      [
        quantityText(dr.doseQuantity, c.lang) ?? rangeText(dr.doseRange, c.lang),
        quantityText(dr.rateQuantity, c.lang) ?? ratioText(dr.rateRatio, c.lang) ?? rangeText(dr.rateRange, c.lang),
      ],
      ', ',
    ),
  );
  const asNeeded =
    d.asNeededBoolean === true
      ? c.t('asNeeded')
      : isObj(d.asNeededCodeableConcept)
        ? c.t('asNeededFor', { reason: conceptText(d.asNeededCodeableConcept) ?? '' })
        : undefined;
  const maxDose = joinText([
    ratioText(d.maxDosePerPeriod, c.lang),
    quantityText(d.maxDosePerAdministration, c.lang),
    quantityText(d.maxDosePerLifetime, c.lang),
  ]);
  const instructions = joinText([conceptsText(d.additionalInstruction), str(d.patientInstruction)]);
  return (
    <>
      {str(d.text) && <p class="rv-dosage-text">{d.text as string}</p>}
      <Fields
        rows={[
          [c.t('dose'), doses],
          [c.t('frequency'), timing ? timingText(timing, c) : undefined],
          [c.t('duration'), rep ? quantityText(rep.boundsDuration, c.lang) : undefined],
          [c.t('asNeeded'), asNeeded],
          [c.t('route'), conceptText(d.route)],
          [c.t('method'), conceptText(d.method)],
          [c.t('site'), conceptText(d.site)],
          [c.t('maxDose'), maxDose],
          [c.t('instructions'), instructions],
        ]}
      />
    </>
  );
}

function medicationName(r: Json, c: Ctx, host: Resource): string {
  if (isObj(r.medicationCodeableConcept)) return conceptText(r.medicationCodeableConcept) ?? '—';
  const med = c.index.resolve(r.medicationReference, host);
  return resourceName(med) ?? c.ref(r.medicationReference, host) ?? c.t('medication');
}

function MedicationView({ resource, level }: Props<fhir4.MedicationRequest | fhir4.MedicationStatement>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const dosages = arr(r.dosageInstruction ?? r.dosage).filter(isObj);
  const dispense = isObj(r.dispenseRequest) ? r.dispenseRequest : undefined;
  const med = c.index.resolve(r.medicationReference, resource) as Json | undefined;
  const form = med ? conceptText(med.form) : undefined;
  const statement = resource.resourceType === 'MedicationStatement';
  return (
    <Card
      resource={resource}
      level={level}
      title={medicationName(r, c, resource)}
      status={r.status}
      handled={[
        'medicationCodeableConcept',
        'medicationReference',
        'dosageInstruction',
        'dosage',
        'dispenseRequest',
        'reasonCode',
        'reasonReference',
        'note',
        'intent',
        'authoredOn',
        'requester',
        'effectiveDateTime',
        'effectivePeriod',
        'dateAsserted',
      ]}
    >
      {form && <p class="rv-muted">{form}</p>}
      {dosages.map((d, i) => (
        <DosageView key={i} d={d} c={c} />
      ))}
      <Fields
        rows={[
          [c.t('supplyDuration'), dispense ? quantityText(dispense.expectedSupplyDuration, c.lang) : undefined],
          [c.t('quantity'), dispense ? quantityText(dispense.quantity, c.lang) : undefined],
          [
            c.t('repeats'),
            dispense && num(dispense.numberOfRepeatsAllowed) !== undefined
              ? String(dispense.numberOfRepeatsAllowed)
              : undefined,
          ],
          [c.t('reason'), reasonOf(r, c, resource)],
          statement && [c.t('taken'), choiceText(r, 'effective', c)],
          [c.t('authoredOn'), c.dateOf(r.authoredOn)],
          [c.t('prescriber'), c.ref(r.requester, resource)],
          [c.t('intent'), str(r.intent)],
          [c.t('notes'), notesOf(r.note)],
        ]}
      />
    </Card>
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Conditions, allergies, procedures, family history

function ConditionView({ resource, level }: Props<fhir4.Condition>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.code) ?? c.t('condition')}
      status={r.clinicalStatus}
      handled={[
        'code',
        'clinicalStatus',
        'verificationStatus',
        'category',
        'severity',
        'bodySite',
        'recordedDate',
        'note',
        ...choiceKeys('onset'),
        ...choiceKeys('abatement'),
      ]}
      rows={[
        [c.t('clinicalStatus'), conceptText(r.clinicalStatus)],
        [c.t('verificationStatus'), conceptText(r.verificationStatus)],
        [c.t('category'), conceptsText(r.category)],
        [c.t('severity'), conceptText(r.severity)],
        [c.t('onset'), choiceText(r, 'onset', c)],
        [c.t('abatement'), choiceText(r, 'abatement', c)],
        [c.t('bodySite'), conceptsText(r.bodySite)],
        [c.t('recorded'), c.dateOf(r.recordedDate)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

function AllergyView({ resource, level }: Props<fhir4.AllergyIntolerance>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const reactions = listText(r.reaction, (x) =>
    joinText(
      [conceptsText(x.manifestation), str(x.severity), conceptText(x.substance), str(x.description), c.dateOf(x.onset)],
      ', ',
    ),
  );
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.code) ?? '—'}
      status={r.clinicalStatus}
      handled={[
        'code',
        'clinicalStatus',
        'verificationStatus',
        'type',
        'category',
        'criticality',
        'reaction',
        'recordedDate',
        'note',
        ...choiceKeys('onset'),
      ]}
      rows={[
        [c.t('criticality'), str(r.criticality)],
        [c.t('reaction'), reactions],
        [c.t('clinicalStatus'), conceptText(r.clinicalStatus)],
        [c.t('verificationStatus'), conceptText(r.verificationStatus)],
        [c.t('type'), str(r.type)],
        [c.t('category'), arr(r.category).join(', ')],
        [c.t('onset'), choiceText(r, 'onset', c)],
        [c.t('recorded'), c.dateOf(r.recordedDate)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

function ProcedureView({ resource, level }: Props<fhir4.Procedure>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const performers = listText(r.performer, (p) => c.ref(p.actor, resource));
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.code) ?? '—'}
      status={r.status}
      handled={[
        'code',
        'category',
        'outcome',
        'bodySite',
        'complication',
        'followUp',
        'reasonCode',
        'reasonReference',
        'note',
        'performer',
        ...choiceKeys('performed'),
      ]}
      rows={[
        [c.t('performed'), choiceText(r, 'performed', c)],
        [c.t('category'), conceptText(r.category)],
        [c.t('performer'), performers],
        [c.t('bodySite'), conceptsText(r.bodySite)],
        [c.t('reason'), reasonOf(r, c, resource)],
        [c.t('outcome'), conceptText(r.outcome)],
        [c.t('complication'), conceptsText(r.complication)],
        [c.t('followUp'), conceptsText(r.followUp)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

function FamilyHistoryView({ resource, level }: Props<fhir4.FamilyMemberHistory>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const conditions = arr(r.condition)
    .filter(isObj)
    .map((x) => {
      const onset = choiceText(x, 'onset', c);
      return [conceptText(x.code), conceptText(x.outcome), onset, notesOf(x.note)]
        .filter((v) => typeof v === 'string' && v)
        .join(', ');
    })
    .filter(Boolean);
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.relationship) ?? str(r.name) ?? '—'}
      status={r.status}
      handled={[
        'relationship',
        'name',
        'sex',
        'condition',
        'note',
        ...choiceKeys('deceased'),
        ...choiceKeys('age'),
        ...choiceKeys('born'),
      ]}
      rows={[
        [c.t('condition'), conditions.length > 1 ? <CompactList items={conditions} /> : conditions[0]],
        [c.t('name'), str(r.name)],
        [c.t('sex'), conceptText(r.sex)],
        [c.t('age'), choiceText(r, 'age', c)],
        [c.t('deceased'), choiceText(r, 'deceased', c)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Immunization

function doseText(pa: Json, c: Ctx): string | undefined {
  const n = num(pa.doseNumberPositiveInt) ?? str(pa.doseNumberString);
  const m = num(pa.seriesDosesPositiveInt) ?? str(pa.seriesDosesString);
  if (n !== undefined && m !== undefined) return c.t('doseOf', { n, m });
  return n !== undefined ? String(n) : undefined;
}

function ImmunizationView({ resource, level }: Props<fhir4.Immunization>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const performers = listText(r.performer, (p) => c.ref(p.actor, resource));
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.vaccineCode) ?? c.t('vaccine')}
      status={r.status}
      handled={[
        'vaccineCode',
        'lotNumber',
        'expirationDate',
        'manufacturer',
        'route',
        'site',
        'doseQuantity',
        'protocolApplied',
        'performer',
        'note',
        'reasonCode',
        'primarySource',
        'reportOrigin',
        ...choiceKeys('occurrence'),
      ]}
      rows={[
        [c.t('date'), choiceText(r, 'occurrence', c)],
        [c.t('doseNumber'), listText(r.protocolApplied, (p) => doseText(p, c))],
        [c.t('series'), listText(r.protocolApplied, (p) => str(p.series))],
        [c.t('targetDisease'), listText(r.protocolApplied, (p) => conceptsText(p.targetDisease))],
        [c.t('lot'), str(r.lotNumber)],
        [c.t('expiry'), c.dateOf(r.expirationDate)],
        [c.t('manufacturer'), c.ref(r.manufacturer, resource)],
        [c.t('route'), conceptText(r.route)],
        [c.t('site'), conceptText(r.site)],
        [c.t('dose'), quantityText(r.doseQuantity, c.lang)],
        [c.t('performer'), performers],
        [c.t('reason'), conceptsText(r.reasonCode)],
        [
          c.t('reportedFrom'),
          r.primarySource === false ? (conceptText(r.reportOrigin) ?? c.t('no')) : conceptText(r.reportOrigin),
        ],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

/** Several doses as one table: vaccine, date, dose, lot, manufacturer, route. */
export function ImmunizationTable({ items, label }: { items: Resource[]; label: string }) {
  const c = useRecord();
  return (
    <RecordTable
      label={label}
      class="rv-imm"
      columns={[c.t('vaccine'), c.t('date'), c.t('doseNumber'), c.t('lot'), c.t('manufacturer'), c.t('route')]}
    >
      {items.map((item, i) => {
        const r = item as unknown as Json;
        const protocols = arr(r.protocolApplied).filter(isObj);
        return (
          <tr key={i}>
            <th scope="row">
              {conceptText(r.vaccineCode) ?? '—'}
              {str(r.status) && r.status !== 'completed' && <span class="rv-pill">{r.status as string}</span>}
              <details class="rv-more">
                <summary>{c.t('moreDetails')}</summary>
                <ImmunizationView resource={item as fhir4.Immunization} level={0} />
              </details>
            </th>
            <td>{choiceText(r, 'occurrence', c)}</td>
            <td>
              {protocols.map((p, j) => (
                <div key={j}>
                  {doseText(p, c)}
                  {str(p.series) && <div class="rv-muted rv-small">{p.series as string}</div>}
                </div>
              ))}
            </td>
            <td>{str(r.lotNumber)}</td>
            <td>{c.ref(r.manufacturer, item)}</td>
            <td>{conceptText(r.route)}</td>
          </tr>
        );
      })}
    </RecordTable>
  );
}

function RecommendationView({ resource, level }: Props<fhir4.ImmunizationRecommendation>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const recs = arr(r.recommendation).filter(isObj);
  return (
    <Card
      resource={resource}
      level={level}
      title={c.t('recommendation')}
      handled={['recommendation', 'date', 'authority']}
      rows={[
        [c.t('date'), c.dateOf(r.date)],
        [c.t('authors'), c.ref(r.authority, resource)],
      ]}
    >
      <ul class="rv-list">
        {recs.map((x, i) => (
          <li key={i}>
            <strong>{conceptsText(x.vaccineCode) ?? conceptText(x.targetDisease) ?? '—'}</strong>{' '}
            <Fields
              rows={[
                [c.t('forecast'), conceptText(x.forecastStatus)],
                [c.t('targetDisease'), conceptText(x.targetDisease)],
                [
                  c.t('dueDates'),
                  arr(x.dateCriterion)
                    .filter(isObj)
                    .map((d) => `${conceptText(d.code) ?? ''}: ${c.dateOf(d.value) ?? ''}`)
                    .join('; '),
                ],
                [
                  c.t('doseNumber'),
                  doseText(
                    {
                      doseNumberPositiveInt: x.doseNumberPositiveInt,
                      doseNumberString: x.doseNumberString,
                      seriesDosesPositiveInt: x.seriesDosesPositiveInt,
                      seriesDosesString: x.seriesDosesString,
                    },
                    c,
                  ),
                ],
                [c.t('series'), str(x.series)],
                [c.t('description'), str(x.description)],
              ]}
            />
          </li>
        ))}
      </ul>
    </Card>
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Appointments, requests, care plans

function AppointmentView({ resource, level }: Props<fhir4.Appointment>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const who = listText(r.participant, (p) => c.ref(p.actor, resource));
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptsText(r.serviceType) ?? str(r.description) ?? c.t('followUp')}
      status={r.status}
      handled={[
        'start',
        'end',
        'description',
        'serviceType',
        'serviceCategory',
        'appointmentType',
        'specialty',
        'reasonCode',
        'reasonReference',
        'participant',
        'comment',
        'minutesDuration',
        'created',
      ]}
      rows={[
        [c.t('start'), c.dateOf(r.start)],
        [c.t('end'), c.dateOf(r.end)],
        [c.t('description'), str(r.description)],
        [
          c.t('serviceType'),
          joinText([
            conceptsText(r.serviceCategory),
            conceptsText(r.serviceType),
            conceptsText(r.specialty),
            conceptText(r.appointmentType),
          ]),
        ],
        [c.t('reason'), reasonOf(r, c, resource)],
        [c.t('participants'), who],
        [c.t('notes'), str(r.comment)],
      ]}
    />
  );
}

function ServiceRequestView({ resource, level }: Props<fhir4.ServiceRequest>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.code) ?? c.t('request')}
      status={r.status}
      handled={[
        'code',
        'intent',
        'category',
        'priority',
        'authoredOn',
        'requester',
        'performer',
        'performerType',
        'reasonCode',
        'reasonReference',
        'note',
        'patientInstruction',
        'bodySite',
        ...choiceKeys('occurrence'),
      ]}
      rows={[
        [c.t('category'), conceptsText(r.category)],
        [c.t('occurrence'), choiceText(r, 'occurrence', c)],
        [c.t('reason'), reasonOf(r, c, resource)],
        [c.t('performer'), joinText([conceptText(r.performerType), c.refs(r.performer, resource)])],
        [c.t('requester'), c.ref(r.requester, resource)],
        [c.t('authoredOn'), c.dateOf(r.authoredOn)],
        [c.t('priority'), str(r.priority)],
        [c.t('intent'), str(r.intent)],
        [c.t('bodySite'), conceptsText(r.bodySite)],
        [c.t('instructions'), str(r.patientInstruction)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

function CarePlanView({ resource, level }: Props<fhir4.CarePlan>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const activities = arr(r.activity)
    .filter(isObj)
    .map((a) => {
      if (isObj(a.detail)) {
        const d = a.detail;
        return joinText(
          [
            conceptText(d.code) ?? conceptText(d.kind),
            str(d.description),
            str(d.status),
            choiceText(d, 'scheduled', c),
            quantityText(d.dailyAmount, c.lang),
          ],
          ', ',
        );
      }
      const target = c.index.resolve(a.reference, resource) as Json | undefined;
      return (
        (target &&
          (conceptText(target.code) ?? conceptText(target.medicationCodeableConcept) ?? str(target.description))) ??
        c.ref(a.reference, resource) ??
        notesOf(a.progress)
      );
    })
    .filter(Boolean);
  return (
    <Card
      resource={resource}
      level={level}
      title={str(r.title) ?? conceptsText(r.category) ?? c.t('carePlan')}
      status={r.status}
      handled={[
        'title',
        'description',
        'intent',
        'category',
        'period',
        'activity',
        'goal',
        'note',
        'addresses',
        'created',
        'author',
      ]}
      rows={[
        [c.t('description'), str(r.description)],
        [c.t('category'), conceptsText(r.category)],
        [c.t('period'), periodText(r.period, c.date)],
        [c.t('addresses'), c.refs(r.addresses, resource)],
        [c.t('activities'), activities.length ? <CompactList items={activities} /> : undefined],
        [c.t('goals'), c.refs(r.goal, resource)],
        [c.t('authors'), c.ref(r.author, resource)],
        [c.t('created'), c.dateOf(r.created)],
        [c.t('intent'), str(r.intent)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Documents

function DocumentReferenceView({ resource, level }: Props<fhir4.DocumentReference>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const contents = arr(r.content).filter(isObj);
  const firstTitle = contents.map((x) => (isObj(x.attachment) ? str(x.attachment.title) : undefined)).find(Boolean);
  const context = isObj(r.context) ? r.context : undefined;
  return (
    <Card
      resource={resource}
      level={level}
      title={str(r.description) ?? conceptText(r.type) ?? firstTitle ?? c.t('document')}
      status={r.docStatus ?? r.status}
      handled={['description', 'type', 'category', 'date', 'author', 'custodian', 'content', 'docStatus', 'context']}
      rows={[
        [c.t('docType'), conceptText(r.type)],
        [c.t('category'), conceptsText(r.category)],
        [c.t('date'), c.dateOf(r.date)],
        [c.t('authors'), c.refs(r.author, resource)],
        [c.t('facility'), c.ref(r.custodian, resource)],
        [c.t('period'), context ? periodText(context.period, c.date) : undefined],
        [c.t('encounter'), context ? c.refs(context.encounter, resource) : undefined],
      ]}
    >
      <div class="rv-attachments">
        {contents.map((x, i) => (
          <div key={i}>
            <AttachmentView attachment={x.attachment as fhir4.Attachment} />
            {isObj(x.format) && <p class="rv-muted">{codingText(x.format)}</p>}
          </div>
        ))}
      </div>
    </Card>
  );
}

function BinaryView({ resource, level }: Props<fhir4.Binary>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  return (
    <Card
      resource={resource}
      level={level}
      title={c.t('document')}
      handled={['contentType', 'data', 'securityContext']}
    >
      <AttachmentView attachment={{ contentType: str(r.contentType), data: str(r.data) }} />
    </Card>
  );
}

function MediaView({ resource, level }: Props<fhir4.Media>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  return (
    <Card
      resource={resource}
      level={level}
      title={
        conceptText(r.type) ??
        conceptText(r.modality) ??
        (isObj(r.content) ? str(r.content.title) : undefined) ??
        c.t('images')
      }
      status={r.status}
      handled={['type', 'modality', 'view', 'bodySite', 'content', 'note', ...choiceKeys('created')]}
      rows={[
        [c.t('created'), choiceText(r, 'created', c)],
        [c.t('method'), joinText([conceptText(r.modality), conceptText(r.view)], ', ')],
        [c.t('bodySite'), conceptText(r.bodySite)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    >
      <AttachmentView attachment={r.content as fhir4.Attachment} />
    </Card>
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Invoices

function priceComponents(list: unknown, c: Ctx): ComponentChildren {
  const items = arr(list)
    .filter(isObj)
    .map((p) => {
      const name = [conceptText(p.code), str(p.type)].filter(Boolean);
      const label =
        name.length === 2 && name[0]!.toLowerCase() !== name[1]!.toLowerCase() ? `${name[0]} (${name[1]})` : name[0];
      const factor = num(p.factor) !== undefined ? ` × ${p.factor}` : '';
      return `${label ?? '—'}: ${moneyText(p.amount, c.lang) ?? ''}${factor}`;
    });
  if (!items.length) return null;
  return <CompactList items={items} />;
}

function InvoiceView({ resource, level }: Props<fhir4.Invoice>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const participants = listText(r.participant, (p) => joinText([c.ref(p.actor, resource), conceptText(p.role)], ', '));
  const lines = arr(r.lineItem).filter(isObj);
  const ids = listText(r.identifier, (i) => str(i.value));
  return (
    <Card
      resource={resource}
      level={level}
      title={`${c.t('invoice')}${ids ? ` ${ids}` : ''}`}
      status={r.status}
      handled={[
        'identifier',
        'type',
        'date',
        'issuer',
        'participant',
        'recipient',
        'lineItem',
        'totalPriceComponent',
        'totalNet',
        'totalGross',
        'paymentTerms',
        'note',
        'account',
      ]}
      rows={[
        [c.t('type'), conceptText(r.type)],
        [c.t('date'), c.dateOf(r.date)],
        [c.t('issuer'), c.ref(r.issuer, resource)],
        [c.t('recipient'), c.ref(r.recipient, resource)],
        [c.t('participants'), participants],
      ]}
    >
      {lines.length > 0 && (
        <RecordTable
          label={c.t('lineItems')}
          class="rv-invoice"
          columns={['#', c.t('item'), c.t('quantity'), c.t('priceComponents')]}
        >
          {lines.map((line, i) => {
            const charge = c.index.resolve(line.chargeItemReference, resource) as Json | undefined;
            const name =
              conceptText(line.chargeItemCodeableConcept) ??
              (charge && (conceptText(charge.code) ?? conceptText(charge.productCodeableConcept))) ??
              c.ref(line.chargeItemReference, resource) ??
              '—';
            const product = charge
              ? (conceptText(charge.productCodeableConcept) ??
                c.ref(charge.productReference, charge as unknown as Resource))
              : undefined;
            return (
              <tr key={i}>
                <td>{num(line.sequence) ?? i + 1}</td>
                <th scope="row">
                  {name}
                  {product && product !== name && <div class="rv-muted">{product}</div>}
                  {charge && (
                    <details class="rv-more">
                      <summary>{c.t('moreDetails')}</summary>
                      <ChargeItemView resource={charge as unknown as fhir4.ChargeItem} level={0} />
                    </details>
                  )}
                </th>
                <td>{charge ? quantityText(charge.quantity, c.lang) : undefined}</td>
                <td>{priceComponents(line.priceComponent, c)}</td>
              </tr>
            );
          })}
        </RecordTable>
      )}
      <Fields
        class="rv-dl rv-totals"
        rows={[
          [c.t('priceComponents'), priceComponents(r.totalPriceComponent, c)],
          [c.t('totalNet'), moneyText(r.totalNet, c.lang)],
          [c.t('totalGross'), moneyText(r.totalGross, c.lang)],
          [c.t('paymentTerms'), str(r.paymentTerms)],
          [c.t('notes'), notesOf(r.note)],
        ]}
      />
    </Card>
  );
}

function ChargeItemView({ resource, level }: Props<fhir4.ChargeItem>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const performers = listText(r.performer, (p) => c.ref(p.actor, resource));
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptText(r.code) ?? c.t('chargeItem')}
      status={r.status}
      handled={[
        'code',
        'quantity',
        'performer',
        'productCodeableConcept',
        'productReference',
        'priceOverride',
        'factorOverride',
        'note',
        'enteredDate',
        'performingOrganization',
        ...choiceKeys('occurrence'),
      ]}
      rows={[
        [c.t('occurrence'), choiceText(r, 'occurrence', c)],
        [c.t('quantity'), quantityText(r.quantity, c.lang)],
        [c.t('product'), conceptText(r.productCodeableConcept) ?? c.ref(r.productReference, resource)],
        [c.t('amount'), moneyText(r.priceOverride, c.lang)],
        [c.t('performer'), joinText([performers, c.ref(r.performingOrganization, resource)])],
        [c.t('recorded'), c.dateOf(r.enteredDate)],
        [c.t('notes'), notesOf(r.note)],
      ]}
    />
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Encounter, people and organisations

export function EncounterView({ resource, level }: Props<fhir4.Encounter>) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const hosp = isObj(r.hospitalization) ? r.hospitalization : undefined;
  const diagnoses = listText(r.diagnosis, (d) => {
    const cond = c.index.resolve(d.condition, resource) as Json | undefined;
    return joinText([(cond && conceptText(cond.code)) ?? c.ref(d.condition, resource), conceptText(d.use)], ', ');
  });
  const participants = listText(r.participant, (p) =>
    joinText([c.ref(p.individual, resource), conceptsText(p.type)], ', '),
  );
  const cls = isObj(r.class) ? codingText(r.class) : undefined;
  return (
    <Card
      resource={resource}
      level={level}
      title={conceptsText(r.type) ?? cls ?? c.t('encounter')}
      status={r.status}
      handled={[
        'class',
        'type',
        'period',
        'serviceProvider',
        'participant',
        'reasonCode',
        'reasonReference',
        'diagnosis',
        'hospitalization',
        'location',
        'serviceType',
        'priority',
      ]}
      rows={[
        [c.t('class'), cls],
        [c.t('period'), periodText(r.period, c.date)],
        [c.t('serviceType'), conceptText(r.serviceType)],
        [c.t('serviceProvider'), c.ref(r.serviceProvider, resource)],
        [c.t('participants'), participants],
        [c.t('reason'), reasonOf(r, c, resource)],
        [c.t('diagnosis'), diagnoses],
        [c.t('admitted'), hosp ? conceptText(hosp.admitSource) : undefined],
        [c.t('discharge'), hosp ? conceptText(hosp.dischargeDisposition) : undefined],
        [c.t('location'), listText(r.location, (l) => c.ref(l.location, resource))],
        [c.t('priority'), conceptText(r.priority)],
      ]}
    />
  );
}

function PartyView({ resource, level }: Props) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const telecom = listText(r.telecom, (x) => str(x.value));
  return (
    <Card
      resource={resource}
      level={level}
      title={resourceName(resource, c.index) ?? humanName(r.name) ?? resource.resourceType}
      kind={resource.resourceType}
      handled={['name', 'gender', 'birthDate', 'telecom', 'address']}
      rows={[
        [c.t('gender'), str(r.gender)],
        [c.t('birthDate'), c.dateOf(r.birthDate)],
        [c.t('telecom'), telecom],
        [c.t('address'), compact(r.address, c, resource)],
      ]}
    />
  );
}

/** Any other resource: every top-level element, compactly. */
function GenericView({ resource, level }: Props) {
  const c = useRecord();
  const r = resource as unknown as Json;
  const title = resourceName(resource, c.index) ?? conceptText(r.type) ?? str(r.description) ?? resource.resourceType;
  return (
    <Card
      resource={resource}
      level={level}
      title={title}
      kind={title === resource.resourceType ? undefined : resource.resourceType}
      status={r.status}
      handled={Object.keys(r)}
    >
      <Fields
        rows={Object.keys(r)
          .filter(
            (k) =>
              !['resourceType', 'id', 'meta', 'text', 'contained', 'status', 'implicitRules', 'language'].includes(k),
          )
          .map((k): Row => [k, compact(r[k], c, resource)])}
      />
    </Card>
  );
}

/** One resource, by its type. */
export function ResourceView({ resource, level }: Props) {
  switch (resource.resourceType) {
    case 'MedicationRequest':
    case 'MedicationStatement':
      return <MedicationView resource={resource} level={level} />;
    case 'Condition':
      return <ConditionView resource={resource} level={level} />;
    case 'AllergyIntolerance':
      return <AllergyView resource={resource} level={level} />;
    case 'Procedure':
      return <ProcedureView resource={resource} level={level} />;
    case 'FamilyMemberHistory':
      return <FamilyHistoryView resource={resource} level={level} />;
    case 'Observation':
      return <ObservationTable observations={[resource]} label={conceptText(resource.code) ?? 'Observation'} />;
    case 'DiagnosticReport':
      return <DiagnosticReportView resource={resource} level={level} />;
    case 'Immunization':
      return <ImmunizationView resource={resource} level={level} />;
    case 'ImmunizationRecommendation':
      return <RecommendationView resource={resource} level={level} />;
    case 'Appointment':
      return <AppointmentView resource={resource} level={level} />;
    case 'ServiceRequest':
      return <ServiceRequestView resource={resource} level={level} />;
    case 'CarePlan':
      return <CarePlanView resource={resource} level={level} />;
    case 'DocumentReference':
      return <DocumentReferenceView resource={resource} level={level} />;
    case 'Binary':
      return <BinaryView resource={resource} level={level} />;
    case 'Media':
      return <MediaView resource={resource} level={level} />;
    case 'Invoice':
      return <InvoiceView resource={resource} level={level} />;
    case 'ChargeItem':
      return <ChargeItemView resource={resource} level={level} />;
    case 'Encounter':
      return <EncounterView resource={resource} level={level} />;
    case 'Patient':
    case 'Practitioner':
    case 'Organization':
    case 'PractitionerRole':
    case 'RelatedPerson':
      return <PartyView resource={resource} level={level} />;
    default:
      return <GenericView resource={resource} level={level} />;
  }
}
