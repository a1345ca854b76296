/**
 * Hash routing: `#/consents/<id>` and the like. A fragment that does not start with `#/` (the skip link's `#main`)
 * is not a route and leaves the current one in place.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** The path's segments, decoded: `#/consents/a%2Fb` is ['consents', 'a/b']. */
  path: string[];
  query: URLSearchParams;
  /** The hash as it was, for keys and comparisons. */
  hash: string;
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The route a hash names, or null when it is not a route (a plain fragment). */
export function parseHash(hash: string): Route | null {
  if (hash === '' || hash === '#' || hash === '#/') return { path: [], query: new URLSearchParams(), hash: '#/' };
  if (!hash.startsWith('#/')) return null;
  const body = hash.slice(2);
  const q = body.indexOf('?');
  const pathPart = q < 0 ? body : body.slice(0, q);
  return {
    path: pathPart.split('/').filter(Boolean).map(decode),
    query: new URLSearchParams(q < 0 ? '' : body.slice(q + 1)),
    hash,
  };
}

/** The hash of a route: segments encoded, and the query when it has any parameter. */
export function href(segments: string[], query?: URLSearchParams | Record<string, string>): string {
  const q = query instanceof URLSearchParams ? query : new URLSearchParams(query ?? {});
  const qs = q.toString();
  return `#/${segments.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`;
}

/** Goes to a route; `replace` leaves no history entry (a redirect). */
export function navigate(hash: string, replace = false): void {
  if (replace) {
    history.replaceState(history.state, '', hash);
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}

/** The current route, following hash changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => parseHash(location.hash) ?? parseHash('')!);
  useEffect(() => {
    const changed = () => {
      const next = parseHash(location.hash);
      if (next) setRoute((prev) => (prev.hash === next.hash ? prev : next));
    };
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}
