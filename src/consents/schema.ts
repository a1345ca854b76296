/**
 * ABDM consent notifications as the consent manager sends them to a HIP
 * (v0.5 `/v0.5/consents/hip/notify`, v3 `/api/v3/consent/request/hip/notify`),
 * validated with zod. Unknown fields are allowed (ABDM adds fields over time);
 * the fields the store enforces are required and checked.
 */
import { z } from 'zod';
import { parseAbdmDateTime } from '../fhir/datetime.js';

export const HI_TYPES = [
  'Prescription',
  'DiagnosticReport',
  'OPConsultation',
  'DischargeSummary',
  'ImmunizationRecord',
  'HealthDocumentRecord',
  'WellnessRecord',
  'Invoice',
] as const;
export const ACCESS_MODES = ['VIEW', 'STORE', 'QUERY', 'STREAM'] as const;
export const FREQUENCY_UNITS = ['HOUR', 'DAY', 'WEEK', 'MONTH', 'YEAR'] as const;
export const STATUSES = ['GRANTED', 'REVOKED', 'EXPIRED', 'DENIED'] as const;

/** An ABDM date-time (fhir/datetime.ts): ISO 8601, a real calendar instant; without an offset it is UTC. */
export const isoDateTime = z
  .string()
  .max(64)
  .refine(
    (s) => parseAbdmDateTime(s) !== undefined,
    'must be an ISO 8601 date-time of a real calendar instant (YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]; no offset means UTC)',
  );
/** `from` at its first instant is not after `to` at its last. */
export const orderedRange = (r: { from: string; to: string }) => {
  const from = parseAbdmDateTime(r.from, 'start'),
    to = parseAbdmDateTime(r.to, 'end');
  return !from || !to || from.getTime() <= to.getTime(); // an unreadable end is reported on its own field
};
const id = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

export const ConsentDetail = z
  .object({
    schemaVersion: z.string().max(16).optional(),
    consentId: id,
    createdAt: isoDateTime,
    patient: z.object({ id: z.string().min(3).max(128) }),
    careContexts: z
      .array(
        z.object({
          patientReference: z.string().max(128).optional(),
          careContextReference: z.string().min(1).max(128),
        }),
      )
      .min(1)
      .max(10_000),
    purpose: z.object({
      text: z.string().max(256).optional(),
      code: z.string().min(1).max(32),
      refUri: z.string().max(512).optional(),
    }),
    hip: z.object({ id, name: z.string().max(256).optional() }),
    hiu: z.object({ id, name: z.string().max(256).optional() }).optional(),
    consentManager: z.object({ id: z.string().max(128) }).optional(),
    requester: z.unknown().optional(),
    hiTypes: z.array(z.enum(HI_TYPES)).min(1),
    permission: z.object({
      accessMode: z.enum(ACCESS_MODES),
      dateRange: z
        .object({ from: isoDateTime, to: isoDateTime })
        .refine(orderedRange, 'dateRange.from must not be after dateRange.to'),
      dataEraseAt: isoDateTime,
      frequency: z.object({
        unit: z.enum(FREQUENCY_UNITS),
        value: z.number().int().min(1).max(1_000_000),
        repeats: z.number().int().min(0).optional(),
      }),
    }),
  })
  .passthrough();
export type ConsentDetail = z.infer<typeof ConsentDetail>;

const Notification = z
  .object({
    consentId: id,
    status: z.enum(STATUSES),
    consentDetail: ConsentDetail.optional(),
    signature: z.string().max(8192).optional(),
    grantAcknowledgement: z.boolean().optional(),
  })
  .passthrough()
  .superRefine((n, ctx) => {
    if (n.status === 'GRANTED' && !n.consentDetail)
      ctx.addIssue({ code: 'custom', message: 'a GRANTED notification needs consentDetail', path: ['consentDetail'] });
    if (n.consentDetail && n.consentDetail.consentId !== n.consentId)
      ctx.addIssue({
        code: 'custom',
        message: 'consentDetail.consentId differs from notification.consentId',
        path: ['consentDetail', 'consentId'],
      });
  });

export const ConsentNotifyV05 = z
  .object({
    requestId: z.string().max(128).optional(),
    timestamp: z.unknown().optional(), // an envelope field the store does not need: never a reason to refuse
    notification: Notification,
  })
  .passthrough();

export const ConsentNotifyV3 = z.object({ notification: Notification }).passthrough();
export type ConsentNotification = z.infer<typeof Notification>;
