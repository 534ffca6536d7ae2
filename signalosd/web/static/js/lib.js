// The vendored UMD builds as modules (ESM needs an inline import map: the CSP forbids it).
const { h, render, Component } = window.preact;
export const { useState, useEffect, useRef, useMemo, useCallback, useLayoutEffect } = window.preactHooks;
export const html = window.htm.bind(h);
export const uPlot = window.uPlot;
export { h, render };
// memo(C): C re-renders only when a prop changed identity.
const same = (a, b) => {
  for (const k in a) if (a[k] !== b[k]) return false;
  for (const k in b) if (!(k in a)) return false;
  return true;
};
export function memo(C) {
  class Memo extends Component {
    shouldComponentUpdate(next) {
      return !same(this.props, next);
    }
    render(props) {
      return h(C, props);
    }
  }
  return Memo;
}
// v, changed at most every `ms` (the first change at once).
export function useThrottled(v, ms) {
  const [x, setX] = useState(v), r = useRef({ t: 0 });
  r.current.v = v;
  useEffect(() => {
    const o = r.current;
    o.id = o.id || setTimeout(() => ((o.id = 0), (o.t = Date.now()), setX(o.v)), Math.max(0, o.t + ms - Date.now()));
  }, [v]);
  useEffect(() => () => clearTimeout(r.current.id), []);
  return x;
}
