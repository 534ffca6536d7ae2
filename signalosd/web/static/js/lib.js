// The vendored libraries as ES-module names. They are loaded by index.html as classic scripts
// (their UMD builds set window.preact, window.preactHooks, window.htm and window.uPlot) because
// the ES-module build of preact/hooks imports the bare name "preact", which only an inline
// import map could resolve, and the CSP allows no inline script.
const { h, render, Fragment, createContext, Component } = window.preact;
export const { useState, useEffect, useRef, useMemo, useCallback, useReducer, useContext, useLayoutEffect } =
  window.preactHooks;
export const html = window.htm.bind(h);
export const uPlot = window.uPlot;
export { h, render, Fragment, createContext, Component };
// memo(C): re-render C only when a prop changed (by identity), as preact/compat's memo does.
const same = (a, b) => {
  for (const k in a) if (a[k] !== b[k]) return false;
  for (const k in b) if (!(k in a)) return false;
  return true;
};
export function memo(C, eq = same) {
  class Memo extends Component {
    shouldComponentUpdate(next) {
      return !eq(this.props, next);
    }
    render(props) {
      return h(C, props);
    }
  }
  Memo.displayName = "Memo(" + (C.displayName || C.name) + ")";
  return Memo;
}
