/**
 * Delivery of linking one-time codes (LINK_OTP_DELIVERY).
 *
 * The code goes to a contact the provider holds for the patient, never to
 * whoever asked: the message names the patient by the provider's own
 * identifiers (the ABHA number and address on the matched care-context
 * documents) and lists the care contexts, and the provider's system looks up
 * the patient's phone and sends the SMS.
 *
 *   console  development only: prints the code on the server's console (never
 *            to the log). Refused with NODE_ENV=production.
 *   webhook  POSTs the message as JSON to LINK_OTP_WEBHOOK_URL, signed:
 *              X-Abha-Vault-Timestamp: <unix seconds>
 *              X-Abha-Vault-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body bytes)>
 *            Retried with exponential backoff on network errors, timeouts, 5xx
 *            and 429; any other answer but 2xx fails at once. The timestamp
 *            (and so the signature) is fresh on each attempt; the body is the
 *            same bytes every time, so receivers can deduplicate by
 *            linkRefNumber.
 *
 * The code itself is never logged.
 */
import { createHmac } from 'node:crypto';
import type { Config } from '../config.js';
import type { Log } from '../log.js';

/** What the provider's system needs to send the code to the patient it holds. */
export interface OtpMessage {
  linkRefNumber: string;
  /** The provider (HIP id, X-HIP-ID) whose patient this is. */
  provider: string;
  /** The patient as the provider holds them: identifiers from the matched care-context documents. */
  patient: { abhaNumbers: string[]; abhaAddresses: string[] };
  /** The care contexts being linked (referenceNumbers). */
  careContexts: string[];
  otp: string;
  expiresAt: Date;
}

/** Delivers a one-time code to the patient; rejects when it could not. */
export interface OtpNotifier {
  send(message: OtpMessage): Promise<void>;
}

export class OtpDeliveryError extends Error {
  override name = 'OtpDeliveryError';
}
export class LinkingConfigError extends Error {
  override name = 'LinkingConfigError';
}

/** Development notifier: prints the code on the server's console (not to the log). */
export const consoleNotifier: OtpNotifier = {
  async send(m) {
    console.log(
      `[link] one-time code for link request ${m.linkRefNumber} at ${m.provider} (care contexts ${m.careContexts.join(', ')}): ${m.otp} (expires ${m.expiresAt.toISOString()})`,
    );
  },
};

export const SIGNATURE_HEADER = 'X-Abha-Vault-Signature';
export const TIMESTAMP_HEADER = 'X-Abha-Vault-Timestamp';

/** The JSON body the webhook receives. */
export function webhookBody(m: OtpMessage): string {
  return JSON.stringify({
    linkRefNumber: m.linkRefNumber,
    provider: m.provider,
    patient: { abhaNumbers: m.patient.abhaNumbers, abhaAddresses: m.patient.abhaAddresses },
    careContexts: m.careContexts.map((referenceNumber) => ({ referenceNumber })),
    otp: m.otp,
    expiresAt: m.expiresAt.toISOString(),
  });
}

/** `sha256=<hex>` of HMAC-SHA256(secret, `${timestamp}.${body}`). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

export interface WebhookOptions {
  url: string;
  secret: string;
  attempts: number;
  backoffMs: number;
  timeoutMs: number;
  log?: Log;
  now?: () => Date;
  fetchImpl?: typeof fetch;
}

const retriable = (status: number) => status >= 500 || status === 429;

export function webhookNotifier(o: WebhookOptions): OtpNotifier {
  const now = o.now ?? (() => new Date());
  const doFetch = o.fetchImpl ?? fetch;
  return {
    async send(m) {
      const body = webhookBody(m);
      let why = 'not attempted';
      for (let attempt = 1; attempt <= o.attempts; attempt++) {
        if (attempt > 1) await new Promise((r) => setTimeout(r, o.backoffMs * 2 ** (attempt - 2)));
        const timestamp = String(Math.floor(now().getTime() / 1000));
        let again = true;
        try {
          const res = await doFetch(o.url, {
            method: 'POST',
            headers: {
              'Content-Type': 'application/json',
              [TIMESTAMP_HEADER]: timestamp,
              [SIGNATURE_HEADER]: webhookSignature(o.secret, timestamp, body),
            },
            body,
            redirect: 'manual', // the code goes to the configured system, not wherever it points
            signal: AbortSignal.timeout(o.timeoutMs),
          });
          await res.body?.cancel().catch(() => {});
          if (res.ok) return;
          why = `HTTP ${res.status}`;
          again = retriable(res.status);
        } catch (e) {
          const err = e as Error & { cause?: { code?: string } };
          why =
            err.name === 'TimeoutError'
              ? `timed out after ${o.timeoutMs} ms`
              : `network error ${err.cause?.code ?? err.name}`;
        }
        o.log?.warn({ linkRefNumber: m.linkRefNumber, attempt, why }, 'one-time code delivery attempt failed');
        if (!again) break;
      }
      throw new OtpDeliveryError(`one-time code delivery failed: ${why}`);
    },
  };
}

/** The delivery in effect: LINK_OTP_DELIVERY, else console outside production (none in production). */
export function otpDelivery(config: Config): 'console' | 'webhook' | undefined {
  return config.LINK_OTP_DELIVERY ?? (config.NODE_ENV === 'production' ? undefined : 'console');
}

/** What is wrong with the linking configuration, one line per variable (empty when fine). */
export function checkLinkingConfig(config: Config): string[] {
  const problems: string[] = [];
  const delivery = otpDelivery(config);
  if (config.NODE_ENV === 'production' && delivery !== 'webhook') {
    problems.push(
      `LINK_OTP_DELIVERY: NODE_ENV=production refuses ${config.LINK_OTP_DELIVERY ? 'LINK_OTP_DELIVERY=console' : 'an unset LINK_OTP_DELIVERY (console)'}, which prints one-time codes on the server console; set LINK_OTP_DELIVERY=webhook with LINK_OTP_WEBHOOK_URL and LINK_OTP_WEBHOOK_SECRET`,
    );
  }
  if (delivery === 'webhook') {
    if (!config.LINK_OTP_WEBHOOK_URL) problems.push('LINK_OTP_WEBHOOK_URL: required when LINK_OTP_DELIVERY=webhook');
    if (!config.LINK_OTP_WEBHOOK_SECRET)
      problems.push('LINK_OTP_WEBHOOK_SECRET: required when LINK_OTP_DELIVERY=webhook');
  }
  return problems;
}

/** Throws LinkingConfigError naming each variable at fault (the server's start refuses such a configuration). */
export function assertLinkingConfig(config: Config): void {
  const problems = checkLinkingConfig(config);
  if (problems.length)
    throw new LinkingConfigError(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/** The notifier the configuration asks for (throws LinkingConfigError when it is not allowed). */
export function otpNotifierFor(config: Config, log?: Log): OtpNotifier {
  assertLinkingConfig(config);
  if (otpDelivery(config) === 'webhook') {
    return webhookNotifier({
      url: config.LINK_OTP_WEBHOOK_URL!,
      secret: config.LINK_OTP_WEBHOOK_SECRET!,
      attempts: config.LINK_OTP_WEBHOOK_ATTEMPTS,
      backoffMs: config.LINK_OTP_WEBHOOK_BACKOFF_MS,
      timeoutMs: config.LINK_OTP_WEBHOOK_TIMEOUT_MS,
      log,
    });
  }
  return consoleNotifier;
}
