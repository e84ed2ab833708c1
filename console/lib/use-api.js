// Loads /v1 data for a view: {data, error, loading, reload}. A newer load replaces an older one
// still in flight (the older is aborted), so a slow answer never overwrites a newer one.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export function useApi(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const current = useRef(null);
  const run = useCallback(() => {
    current.current?.abort();
    const controller = new AbortController();
    current.current = controller;
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => !controller.signal.aborted && setState({ data, error: null, loading: false }),
      (error) => !controller.signal.aborted && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, deps);
  useEffect(() => {
    run();
    return () => current.current?.abort();
  }, [run]);
  return { ...state, reload: run };
}
