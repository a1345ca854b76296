/**
 * Linking one-time codes: six random digits, kept only as a salted SHA-256,
 * compared in constant time. Pure but for randomness.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

export interface StoredCode {
  salt: string;
  otpHash: string;
}

const hash = (salt: string, otp: string) => createHash('sha256').update(salt).update(otp).digest();

/** A fresh code, and what is stored of it. */
export function newCode(): { otp: string } & StoredCode {
  const otp = String(randomInt(0, 1_000_000)).padStart(6, '0');
  const salt = randomBytes(16).toString('hex');
  return { otp, salt, otpHash: hash(salt, otp).toString('hex') };
}

/** Whether `token` is the code stored as `stored`. */
export function codeMatches(stored: StoredCode, token: string): boolean {
  return /^\d{6}$/.test(token) && timingSafeEqual(hash(stored.salt, token), Buffer.from(stored.otpHash, 'hex'));
}
