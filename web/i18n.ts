/**
 * The page's labels in English and Hindi. Clinical content is shown as
 * recorded; only the page's own words are translated. Each part of the page
 * keeps its labels beside it (a `Labels` table with both languages) and
 * reads them with `useT(table)`; the chosen language is remembered in this
 * browser (localStorage) and set on <html lang>.
 */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export type Lang = 'en' | 'hi';
export const LANGS: readonly Lang[] = ['en', 'hi'];
/** A part of the page's labels: every key in both languages. */
export type Labels<K extends string> = Record<Lang, Record<K, string>>;

export const LangContext = createContext<{ lang: Lang; setLang: (l: Lang) => void }>({
  lang: 'en',
  setLang: () => undefined,
});

const STORAGE_KEY = 'abha-vault.lang';

export function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'hi') return saved;
  } catch {
    /* storage unavailable: English */
  }
  return 'en';
}

export function rememberLang(lang: Lang): void {
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    /* not remembered */
  }
}

/** The current language's labels of one table; `{name}` placeholders filled from `vars`. */
export function useT<K extends string>(table: Labels<K>): (key: K, vars?: Record<string, string | number>) => string {
  const { lang } = useContext(LangContext);
  return (key, vars) => {
    const text = table[lang][key] ?? table.en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m)) : text;
  };
}

export const useLang = () => useContext(LangContext);
