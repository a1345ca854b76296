/**
 * The page's entry: the shell (app.tsx) into #root, with the style sheet and the Devanagari font faces bundled
 * alongside. The Devanagari faces are loaded before the first render (for at most a second): text drawn before a
 * face arrives may otherwise stay drawn without it (Chromium keeps the missing glyphs of the first layout).
 */
import { render } from 'preact';
import '@fontsource/noto-sans-devanagari/400.css';
import '@fontsource/noto-sans-devanagari/700.css';
import './styles.css';
import { App } from './app.js';

const SAMPLE = 'हिन्दी';

async function fontsReady(): Promise<void> {
  if (!document.fonts?.load) return;
  const faces = Promise.all([
    document.fonts.load(`400 1em "Noto Sans Devanagari"`, SAMPLE),
    document.fonts.load(`700 1em "Noto Sans Devanagari"`, SAMPLE),
  ]);
  await Promise.race([faces, new Promise((resolve) => setTimeout(resolve, 1000))]).catch(() => undefined);
}

void fontsReady().then(() => render(<App />, document.getElementById('root')!));
