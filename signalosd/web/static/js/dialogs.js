// Modal dialogs: focus kept inside, Escape, focus back to the opener.
import { html, useState, useEffect, useRef } from "./lib.js";

// run(f): busy while f runs; what it throws is the error
export function useRun() {
  const [busy, setBusy] = useState(false), [err, setErr] = useState(null);
  const run = async (f) => {
    setBusy(true), setErr(null);
    try { await f(); } catch (e) { setErr(e.message || String(e)); }
    setBusy(false);
  };
  return [busy, err, setErr, run];
}

let n = 0;
const F = "input:not([disabled]),select:not([disabled]),textarea:not([disabled])";
const ALL = F + ",button:not([disabled]),[href],[tabindex]:not([tabindex='-1'])";
const open = [];

export function Dialog({ title, onClose, children, className = "" }) {
  const ref = useRef(null), id = useRef("dlg" + ++n).current, close = useRef();
  close.current = onClose;
  useEffect(() => {
    const opener = document.activeElement, el = ref.current, top = () => open[open.length - 1] === el;
    const first = () => (el.querySelector(F) || el.querySelector(ALL) || el).focus();
    const keep = () => top() && !el.contains(document.activeElement) && first();
    const esc = (e) => e.key === "Escape" && top() && (e.preventDefault(), close.current());
    const mo = new MutationObserver(keep);
    open.push(el), first(), mo.observe(el, { childList: true, subtree: true, attributes: true, attributeFilter: ["disabled"] });
    document.addEventListener("focusin", keep), document.addEventListener("keydown", esc);
    return () => {
      mo.disconnect(), open.splice(open.indexOf(el), 1);
      document.removeEventListener("focusin", keep), document.removeEventListener("keydown", esc);
      opener && opener.isConnected && opener.focus();
    };
  }, []);
  const onKey = (e) => {
    if (e.key !== "Tab") return;
    const f = [...ref.current.querySelectorAll(ALL)], i = f.indexOf(document.activeElement);
    if (e.shiftKey ? i <= 0 : i === f.length - 1) e.preventDefault(), f[e.shiftKey ? f.length - 1 : 0].focus();
  };
  return html`<div class="backdrop" onMouseDown=${(e) => e.target === e.currentTarget && e.preventDefault()}>
    <div ref=${ref} class=${"dialog " + className} role="dialog" aria-modal="true" aria-labelledby=${id} tabindex="-1" onKeyDown=${onKey}>
      <h2 id=${id} class="dialog-title">${title}</h2>
      ${children}
    </div>
  </div>`;
}

// A form ending in its error, `label` (submit) and Cancel: `go` runs on submit; what it throws is shown.
export function Form({ label, go, onClose, children }) {
  const [busy, err, , run] = useRun();
  return html`<form onSubmit=${(e) => (e.preventDefault(), busy || run(go))} novalidate>${children}
${err && html`<p role="alert" class="form-error">${err}</p>`}
<div class="dialog-buttons"><button type="submit" class=${"btn btn-primary" + (busy ? " busy" : "")} aria-disabled=${busy ? "true" : undefined}>${label}</button>
<button type="button" class="btn" onClick=${onClose}>Cancel</button></div></form>`;
}
export const Confirm = ({ title, onClose, ...p }) => html`<${Dialog} title=${title} onClose=${onClose}><${Form} onClose=${onClose} ...${p} /><//>`;
