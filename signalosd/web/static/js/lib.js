// The vendored UMD builds (index.html loads them: ESM preact/hooks would need an inline import
// map, which the CSP forbids) as module names.
const { h, render, Fragment, createContext, Component } = window.preact;
export const { useState, useEffect, useRef, useMemo, useCallback, useReducer, useContext, useLayoutEffect } =
  window.preactHooks;
export const html = window.htm.bind(h);
export const uPlot = window.uPlot;
export { h, render, Fragment, createContext, Component };
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
