/**
 * What every screen shares: the API client of the session, and the records loaded under each consent. A viewer's
 * search under a consent counts one pull against the consent's frequency, so a consent's records are loaded once per
 * visit and kept here (with the timeline's filter); only "Refresh" pulls again.
 */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api, Session } from '../api.js';
import type { LoadedRecord } from './loaded.js';

export interface ConsentRecords {
  state: 'loading' | 'ready' | 'error';
  records: LoadedRecord[];
  error?: unknown;
  /** When the records shown were loaded. */
  loadedAt?: Date;
  /** The record types the timeline hides (the filter, kept while the visit lasts). */
  hidden: string[];
  /** The record last opened from the timeline: focused again on the way back. */
  lastOpened?: string;
}

export interface AppContextValue {
  api: Api;
  session: Session;
  /** The records loaded under a consent (undefined: not asked for in this visit). */
  consentRecords: (consentId: string) => ConsentRecords | undefined;
  /** Loads a consent's records (every page) unless they are loaded or loading; `again` pulls once more. */
  loadConsentRecords: (consentId: string, again?: boolean) => void;
  /** Drops what was loaded under a consent (it has ended). */
  forgetConsentRecords: (consentId: string) => void;
  setHiddenTypes: (consentId: string, hidden: string[]) => void;
  setLastOpened: (consentId: string, recordId: string) => void;
  /** The care context of a provider's record, as its last search listed it. */
  careContextOf: (recordId: string) => LoadedRecord['careContext'];
  rememberCareContexts: (records: LoadedRecord[]) => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error('useApp outside AppContext');
  return value;
}
