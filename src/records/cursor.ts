/**
 * Sealed paging cursors. A cursor is AES-256-GCM over its position (the last
 * record's date and id, and the direction), the pull it continues and when
 * that pull's cursors expire, with the request it belongs to (caller, consent
 * and query) as associated data. So a cursor is opaque, cannot be forged or
 * edited, and opens only for the same caller, consent and query, until its
 * pull's expiry. Anything else is a 400.
 *
 * A pull (one viewer's walk through a result) is counted against the
 * consent's frequency once, when its first page is served; its cursors carry
 * the pull's id and expiry, so continuing it needs no count and cannot
 * outlive PAGING_CURSOR_TTL_SEC from its start. Pure but for randomness.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { badRequest } from '../fhir/outcome.js';
import type { PagingKeys } from '../auth/paging-keys.js';
import type { Cursor } from './search.js';

/** What a cursor is bound to: who asks, under which consent, with which query. */
export interface CursorBinding {
  role: string;
  facility: string;
  subject: string;
  consentId: string | null;
  params: URLSearchParams;
}

/** The pull a page belongs to. */
export interface Pull {
  id: string;
  expiresAt: number;
}

export interface OpenedCursor {
  position: Cursor;
  pull: Pull;
}

/**
 * The query a cursor belongs to: every parameter but _cursor and _count (a page size may change mid-walk), in a fixed
 * order.
 */
function bindingText(b: CursorBinding): string {
  const params = [...b.params]
    .filter(([k]) => k !== '_cursor' && k !== '_count')
    .sort(([a, x], [b2, y]) => (a < b2 ? -1 : a > b2 ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const query = createHash('sha256').update(JSON.stringify(params)).digest('base64url');
  return JSON.stringify(['abha-vault cursor v1', b.role, b.facility, b.subject, b.consentId, query]);
}

const invalid = () =>
  badRequest(
    '_cursor is not a cursor this server issued for this query, caller and consent, or it has expired; start again from the first page',
    '_cursor',
  );

export class CursorSealer {
  constructor(
    private keys: PagingKeys,
    private ttlMs: number,
  ) {}

  /** A new pull, starting now. */
  startPull(now: Date): Pull {
    return { id: uuidv4(), expiresAt: now.getTime() + this.ttlMs };
  }

  seal(position: Cursor, pull: Pull, binding: CursorBinding): string {
    const key = this.keys.keys[0];
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
    cipher.setAAD(Buffer.from(bindingText(binding)));
    const plain = JSON.stringify({ d: position.d, i: position.i, dir: position.dir, p: pull.id, e: pull.expiresAt });
    const sealed = Buffer.concat([iv, cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${key.kid}.${sealed.toString('base64url')}`;
  }

  /** The cursor's position and pull; 400 when it was not sealed here for this binding, or its pull has expired. */
  open(token: string, binding: CursorBinding, now: Date): OpenedCursor {
    const dot = token.indexOf('.');
    const key = dot > 0 ? this.keys.keys.find((k) => k.kid === token.slice(0, dot)) : undefined;
    if (!key || token.length > 1024) throw invalid();
    const raw = Buffer.from(token.slice(dot + 1), 'base64url');
    if (raw.length < 12 + 16 + 2) throw invalid();
    let c: { d?: unknown; i?: unknown; dir?: unknown; p?: unknown; e?: unknown };
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.secret, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(bindingText(binding)));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      c = JSON.parse(
        Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8'),
      );
    } catch {
      throw invalid();
    }
    if (
      typeof c.d !== 'number' ||
      typeof c.i !== 'string' ||
      (c.dir !== 'next' && c.dir !== 'prev') ||
      typeof c.p !== 'string' ||
      typeof c.e !== 'number'
    )
      throw invalid();
    if (now.getTime() >= c.e) throw invalid();
    return { position: { d: c.d, i: c.i, dir: c.dir }, pull: { id: c.p, expiresAt: c.e } };
  }
}
