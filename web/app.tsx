/**
 * The page's shell: a skip link, the header (product, who is signed in, language, sign out), the navigation of the
 * signed-in role, and the screen the hash names in <main>. It holds the session, the API client and the records
 * loaded under each consent (loaded once per visit: each search under a consent counts a pull).
 */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { currentZone, setZone as showTimesIn, zoneChoices } from './format.js';
import { Api, type Session, currentSession, signOut } from './api.js';
import { type Labels, type Lang, LangContext, initialLang, rememberLang, useT } from './i18n.js';
import { AppContext, type AppContextValue, type ConsentRecords } from './components/app-context.js';
import { common, roleLabels } from './components/labels.js';
import { type LoadedRecord, loadedFromEntry } from './components/loaded.js';
import { ErrorNotice, Loading } from './components/notices.js';
import { type Route, href, navigate, useRoute } from './components/route.js';
import { Title } from './components/title.js';
import { AdminConsents } from './screens/admin-consents.js';
import { AdminTransfers } from './screens/admin-transfers.js';
import { ConsentRecordScreen, ConsentScreen } from './screens/consent.js';
import { ConsentList } from './screens/consents.js';
import { RecordScreen } from './screens/record.js';
import { RecordsSearch } from './screens/records-search.js';
import { SignIn, type SignInNotice } from './screens/sign-in.js';

const labels: Labels<
  | 'skip'
  | 'product'
  | 'signedInAs'
  | 'language'
  | 'zone'
  | 'signOut'
  | 'nav'
  | 'consents'
  | 'records'
  | 'transfers'
  | 'adminConsents'
  | 'checking'
> = {
  en: {
    skip: 'Skip to main content',
    product: 'abha-vault',
    signedInAs: 'Signed in as',
    language: 'Language',
    zone: 'Time zone',
    signOut: 'Sign out',
    nav: 'Main',
    consents: 'Consents',
    records: 'Records',
    transfers: 'Transfers',
    adminConsents: 'Consents',
    checking: 'Checking your session…',
  },
  hi: {
    skip: 'मुख्य सामग्री पर जाएँ',
    product: 'abha-vault',
    signedInAs: 'साइन इन:',
    language: 'भाषा',
    zone: 'समय क्षेत्र',
    signOut: 'साइन आउट',
    nav: 'मुख्य',
    consents: 'सहमतियाँ',
    records: 'रिकॉर्ड',
    transfers: 'स्थानांतरण',
    adminConsents: 'सहमतियाँ',
    checking: 'आपका सत्र जाँचा जा रहा है…',
  },
};

type NavKey = 'consents' | 'records' | 'transfers' | 'adminConsents';
const NAV: Record<Session['role'], { key: NavKey; path: string[] }[]> = {
  hiu: [{ key: 'consents', path: ['consents'] }],
  hip: [{ key: 'records', path: ['records'] }],
  admin: [
    { key: 'transfers', path: ['admin', 'transfers'] },
    { key: 'adminConsents', path: ['admin', 'consents'] },
  ],
};

const homeOf = (role: Session['role']) => href(NAV[role][0].path);

/** Which role a route is for (null: none, it is not a screen). */
function roleOfRoute(path: string[]): Session['role'] | null {
  if (path[0] === 'consents') return 'hiu';
  if (path[0] === 'records') return 'hip';
  if (path[0] === 'admin' && (path[1] === 'transfers' || path[1] === 'consents') && path.length === 2) return 'admin';
  return null;
}

function LanguageSwitch({ lang, setLang }: { lang: Lang; setLang: (l: Lang) => void }) {
  const t = useT(labels);
  const choice = (l: Lang, name: string) => (
    <button type="button" lang={l} aria-pressed={lang === l} class="lang-button" onClick={() => setLang(l)}>
      {name}
    </button>
  );
  return (
    <div class="lang-switch" role="group" aria-labelledby="lang-label">
      <span id="lang-label" class="lang-label">
        {t('language')}
      </span>
      {choice('en', 'English')}
      {choice('hi', 'हिन्दी')}
    </div>
  );
}

/** Which zone times are shown in (Asia/Kolkata unless chosen): a labelled select, remembered in this browser. */
function ZoneChoice({ zone, setZone }: { zone: string; setZone: (z: string) => void }) {
  const t = useT(labels);
  return (
    <label class="zone-choice">
      <span class="lang-label">{t('zone')}</span>
      <select value={zone} onChange={(e) => setZone((e.currentTarget as HTMLSelectElement).value)}>
        {zoneChoices().map((z) => (
          <option key={z} value={z}>
            {z}
          </option>
        ))}
      </select>
    </label>
  );
}

function NotFound({ wrongRole }: { wrongRole?: boolean }) {
  const t = useT(common);
  return (
    <>
      <Title text={wrongRole ? t('wrongRoleTitle') : t('notFoundTitle')} />
      <p>{wrongRole ? t('wrongRoleBody') : t('notFoundBody')}</p>
      <p>
        <a href="#/">{t('home')}</a>
      </p>
    </>
  );
}

function Screen({ route, role }: { route: Route; role: Session['role'] }) {
  const p = route.path;
  const forRole = roleOfRoute(p);
  if (forRole && forRole !== role) return <NotFound wrongRole />;
  if (p[0] === 'consents') {
    if (p.length === 1) return <ConsentList />;
    if (p.length === 2) return <ConsentScreen key={p[1]} id={p[1]} />;
    if (p.length === 4 && p[2] === 'records')
      return <ConsentRecordScreen key={p[1] + p[3]} id={p[1]} recordId={p[3]} />;
  }
  if (p[0] === 'records') {
    if (p.length === 1) return <RecordsSearch route={route} />;
    if (p.length === 2) return <RecordScreen id={p[1]} />;
    if (p.length === 4 && p[2] === '_history') return <RecordScreen id={p[1]} vid={p[3]} />;
  }
  if (p[0] === 'admin' && p[1] === 'transfers' && p.length === 2) return <AdminTransfers route={route} />;
  if (p[0] === 'admin' && p[1] === 'consents' && p.length === 2) return <AdminConsents route={route} />;
  return <NotFound />;
}

/** The records loaded under each consent, and the care contexts of a provider's listed records. */
function useLoadedState(api: Api | null, session: Session | null): AppContextValue | null {
  const [byConsent, setByConsent] = useState<Record<string, ConsentRecords>>({});
  const current = useRef(byConsent);
  current.current = byConsent;
  const generation = useRef(new Map<string, number>());
  const careContexts = useRef(new Map<string, LoadedRecord['careContext']>());

  // A new session (or none) starts with nothing loaded.
  useEffect(() => {
    setByConsent({});
    generation.current.clear();
    careContexts.current.clear();
  }, [session?.token]);

  const update = useCallback((id: string, f: (s: ConsentRecords | undefined) => ConsentRecords | undefined) => {
    setByConsent((all) => {
      const next = { ...all };
      const value = f(all[id]);
      if (value) next[id] = value;
      else delete next[id];
      current.current = next;
      return next;
    });
  }, []);

  const load = useCallback(
    async (id: string, again = false) => {
      if (!api) return;
      const was = current.current[id];
      if (was && !again && (was.state === 'loading' || was.loadedAt || was.state === 'error')) return;
      const gen = (generation.current.get(id) ?? 0) + 1;
      generation.current.set(id, gen);
      update(id, (s) => ({
        state: 'loading',
        records: s?.records ?? [],
        loadedAt: s?.loadedAt,
        hidden: s?.hidden ?? [],
      }));
      try {
        const entries = await api.all('/fhir/Bundle?_count=100', { consentId: id });
        const records = entries.map(loadedFromEntry).filter((r): r is LoadedRecord => r !== null);
        if (generation.current.get(id) !== gen) return;
        update(id, (s) => ({
          state: 'ready',
          records,
          loadedAt: new Date(),
          hidden: (s?.hidden ?? []).filter((h) => records.some((r) => r.hiType === h)),
        }));
      } catch (error) {
        if (generation.current.get(id) !== gen) return;
        update(id, (s) => ({
          state: 'error',
          error,
          records: s?.records ?? [],
          loadedAt: s?.loadedAt,
          hidden: s?.hidden ?? [],
        }));
      }
    },
    [api, update],
  );

  return useMemo(() => {
    if (!api || !session) return null;
    return {
      api,
      session,
      consentRecords: (id) => byConsent[id],
      loadConsentRecords: (id, again) => void load(id, again),
      forgetConsentRecords: (id) => {
        if (!current.current[id]) return;
        generation.current.set(id, (generation.current.get(id) ?? 0) + 1);
        update(id, () => undefined);
      },
      setHiddenTypes: (id, hidden) => update(id, (s) => (s ? { ...s, hidden } : s)),
      setLastOpened: (id, recordId) =>
        update(id, (s) => (s && s.lastOpened !== recordId ? { ...s, lastOpened: recordId } : s)),
      careContextOf: (recordId) => careContexts.current.get(recordId),
      rememberCareContexts: (records) => {
        for (const r of records) if (r.careContext) careContexts.current.set(r.recordId, r.careContext);
      },
    };
  }, [api, session, byConsent, load, update]);
}

export function App() {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const setLang = useCallback((l: Lang) => {
    setLangState(l);
    rememberLang(l);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);
  const langValue = useMemo(() => ({ lang, setLang }), [lang, setLang]);

  const route = useRoute();
  /** undefined: still asking the server; null: not signed in. */
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [bootError, setBootError] = useState<unknown>(null);
  const [notice, setNotice] = useState<SignInNotice>(null);

  const ask = useCallback(() => {
    setBootError(null);
    currentSession().then(setSession, (e) => setBootError(e));
  }, []);
  useEffect(ask, [ask]);

  const expired = useCallback(() => {
    setSession(null);
    setNotice('sessionEnded');
  }, []);
  const api = useMemo(() => (session ? new Api(session, expired) : null), [session, expired]);

  // The session ends at its expiry even when nothing is asked of the API.
  useEffect(() => {
    if (!session) return;
    const ms = Date.parse(session.expiresAt) - Date.now();
    if (!Number.isFinite(ms)) return;
    const timer = setTimeout(expired, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    return () => clearTimeout(timer);
  }, [session, expired]);

  // Signed in on the start page or the sign-in page: to the role's first screen.
  useEffect(() => {
    if (session && (route.path.length === 0 || route.path[0] === 'sign-in')) navigate(homeOf(session.role), true);
  }, [session, route.hash]);

  // A new screen: to its top, and its heading focused (so that a screen reader says where it is). Not the first
  // screen shown after the page loads: there, focus starts at the top of the page as usual.
  const settled = useRef<string | null>(null);
  const screenKey = `${session === undefined ? 'checking' : session ? 'in' : 'out'} ${route.hash}`;
  useEffect(() => {
    if (session === undefined) return;
    if (settled.current === null) {
      settled.current = screenKey;
      return;
    }
    if (settled.current === screenKey) return;
    settled.current = screenKey;
    // A screen that placed focus itself (the timeline, back at the record last opened) keeps it; so does a control
    // of the screen that stays (a search form's button).
    const active = document.activeElement;
    const main = document.getElementById('main');
    if (active && active !== main && main?.contains(active)) return;
    window.scrollTo(0, 0);
    document.getElementById('screen-title')?.focus({ preventScroll: true });
  }, [screenKey]);

  const app = useLoadedState(api, session ?? null);

  const onSignedIn = async () => {
    const s = await currentSession();
    if (!s) throw new Error('Signed in, but the server has no session for this browser (are cookies allowed?)');
    setNotice(null);
    setSession(s);
  };
  const doSignOut = async () => {
    await signOut().catch(() => undefined);
    setSession(null);
    setNotice('signedOut');
    navigate('#/', true);
  };

  return (
    <LangContext.Provider value={langValue}>
      <Shell session={session ?? null} route={route} lang={lang} setLang={setLang} onSignOut={doSignOut}>
        {session === undefined && !bootError && <Checking />}
        {bootError !== null && <ErrorNotice error={bootError} onRetry={ask} />}
        {session === null && (
          <SignIn
            error={route.path[0] === 'sign-in' ? route.query.get('error') : null}
            notice={notice}
            onSignedIn={onSignedIn}
          />
        )}
        {session && app && (
          <AppContext.Provider value={app}>
            <Screen route={route} role={session.role} />
          </AppContext.Provider>
        )}
      </Shell>
    </LangContext.Provider>
  );
}

function Checking() {
  const t = useT(labels);
  return (
    <>
      <Title text="abha-vault" />
      <Loading text={t('checking')} />
    </>
  );
}

function Shell({
  session,
  route,
  lang,
  setLang,
  onSignOut,
  children,
}: {
  session: Session | null;
  route: Route;
  lang: Lang;
  setLang: (l: Lang) => void;
  onSignOut: () => void;
  children: ComponentChildren;
}) {
  const t = useT(labels);
  const tr = useT(roleLabels);
  // A new zone re-renders the screen from scratch (key on <main>), so every time on it is written in that zone.
  const [zone, setZoneState] = useState(currentZone);
  const setZone = (z: string) => {
    showTimesIn(z);
    setZoneState(currentZone());
  };
  const skip = (e: Event) => {
    e.preventDefault();
    document.getElementById('main')?.focus();
  };
  return (
    <>
      <a class="skip-link" href="#main" onClick={skip}>
        {t('skip')}
      </a>
      <header class="site-header">
        <div class="header-bar">
          <a class="product" href="#/">
            {t('product')}
          </a>
          {session && (
            <p class="who">
              <span class="visually-hidden">{t('signedInAs')} </span>
              <span class="who-role">{tr(session.role)}</span> · <span class="who-facility">{session.facility}</span>
            </p>
          )}
          <div class="header-actions">
            <LanguageSwitch lang={lang} setLang={setLang} />
            <ZoneChoice zone={zone} setZone={setZone} />
            {session && (
              <button type="button" class="button button-small sign-out" onClick={onSignOut}>
                {t('signOut')}
              </button>
            )}
          </div>
        </div>
        {session && (
          <nav class="site-nav" aria-label={t('nav')}>
            <ul>
              {NAV[session.role].map((item) => {
                const active = item.path.every((seg, i) => route.path[i] === seg);
                return (
                  <li key={item.key}>
                    <a href={href(item.path)} aria-current={active ? 'page' : undefined}>
                      {t(item.key)}
                    </a>
                  </li>
                );
              })}
            </ul>
          </nav>
        )}
      </header>
      <main id="main" tabIndex={-1} key={zone}>
        {children}
      </main>
    </>
  );
}
