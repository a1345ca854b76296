/** A screen's one <h1>, which also names the browser tab; focused by the shell when the route changes. */
import type { ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';

export function Title({ text, children }: { text: string; children?: ComponentChildren }) {
  useEffect(() => {
    document.title = text ? `${text} · abha-vault` : 'abha-vault';
  }, [text]);
  return (
    <h1 tabIndex={-1} id="screen-title">
      {children ?? text}
    </h1>
  );
}
