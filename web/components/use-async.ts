/** A value the page asks the API for: loading, then the answer or the refusal; `reload` asks again. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Async<T> {
  loading: boolean;
  data?: T;
  error?: unknown;
  reload: () => void;
}

/**
 * Runs `load` when `deps` change (an answer to an older run is dropped). While a reload runs, the previous answer
 * stays shown; after a change of `deps` it does not.
 */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ loading: boolean; data?: T; error?: unknown }>({ loading: true });
  const [tick, setTick] = useState(0);
  const run = useRef(0);
  const keep = useRef(false);
  useEffect(() => {
    const mine = ++run.current;
    const kept = keep.current;
    keep.current = false;
    setState((s) => ({ loading: true, data: kept ? s.data : undefined }));
    load().then(
      (data) => mine === run.current && setState({ loading: false, data }),
      (error) => mine === run.current && setState({ loading: false, error }),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => {
    keep.current = true;
    setTick((t) => t + 1);
  }, []);
  return { ...state, reload };
}
