/**
 * How the page writes dates, times and ABHA numbers: times in the viewer's
 * zone (Asia/Kolkata unless they choose another), in the page's language.
 */
import type { Lang } from './i18n.js';

/** The zone dates and times are shown in unless the viewer chooses another (the header's time-zone choice). */
export const DEFAULT_ZONE = 'Asia/Kolkata';
const ZONE_KEY = 'abha-vault.zone';

function savedZone(): string {
  try {
    const saved = localStorage.getItem(ZONE_KEY);
    if (saved && zoneValid(saved)) return saved;
  } catch {
    /* storage unavailable */
  }
  return DEFAULT_ZONE;
}

function zoneValid(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

let zone = savedZone();

/** The zone times are shown in now. */
export const currentZone = () => zone;

/** Shows times in `z` from now on, remembered in this browser. */
export function setZone(z: string): void {
  if (!zoneValid(z)) return;
  zone = z;
  try {
    localStorage.setItem(ZONE_KEY, z);
  } catch {
    /* not remembered */
  }
}

/** The zones offered: India's, this browser's own when it differs, and UTC. */
export function zoneChoices(): string[] {
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return [...new Set([DEFAULT_ZONE, own, 'UTC', zone].filter((z) => z && zoneValid(z)))];
}

const locale = (lang: Lang) => (lang === 'hi' ? 'hi-IN' : 'en-IN');

/**
 * A FHIR date or dateTime for people: a date alone (`2024-05-01`, `2024-05`, `2024`) as written, without a time or a
 * zone shift; a dateTime with its time in the current zone.
 */
export function formatDate(value: string | undefined | null, lang: Lang, withTime = true): string {
  if (!value) return '';
  if (/^\d{4}$/.test(value)) return value;
  if (/^\d{4}-\d{2}$/.test(value)) {
    const [y, m] = value.split('-').map(Number);
    return new Intl.DateTimeFormat(locale(lang), { year: 'numeric', month: 'short', timeZone: 'UTC' }).format(
      new Date(Date.UTC(y, m - 1, 1)),
    );
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const [y, m, d] = value.split('-').map(Number);
    return new Intl.DateTimeFormat(locale(lang), { dateStyle: 'medium', timeZone: 'UTC' }).format(
      new Date(Date.UTC(y, m - 1, d)),
    );
  }
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return value;
  return new Intl.DateTimeFormat(locale(lang), {
    dateStyle: 'medium',
    ...(withTime ? { timeStyle: 'short' } : {}),
    timeZone: currentZone(),
  }).format(t);
}

/** The calendar day of a FHIR date or dateTime in the current zone, as YYYY-MM-DD (for grouping). */
export function dayOf(value: string): string {
  if (/^\d{4}(-\d{2}(-\d{2})?)?$/.test(value)) return value;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return value.slice(0, 10);
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: currentZone(),
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(t);
}

/** An ABHA number as XX-XXXX-XXXX-XXXX (14 digits, with or without dashes); anything else as given. */
export function formatAbha(value: string | undefined | null): string {
  if (!value) return '';
  const digits = value.replace(/-/g, '');
  if (!/^\d{14}$/.test(digits)) return value;
  return `${digits.slice(0, 2)}-${digits.slice(2, 6)}-${digits.slice(6, 10)}-${digits.slice(10)}`;
}
