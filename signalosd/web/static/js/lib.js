// The vendored libraries as ES-module names. They are loaded by index.html as classic scripts
// (their UMD builds set window.preact, window.preactHooks, window.htm and window.uPlot) because
// the ES-module build of preact/hooks imports the bare name "preact", which only an inline
// import map could resolve, and the CSP allows no inline script.
const { h, render, Fragment, createContext } = window.preact;
export const { useState, useEffect, useRef, useMemo, useCallback, useReducer, useContext, useLayoutEffect } =
  window.preactHooks;
export const html = window.htm.bind(h);
export const uPlot = window.uPlot;
export { h, render, Fragment, createContext };
