// A modal dialog: role=dialog, aria-modal, labelled by its heading; focuses its first field,
// keeps Tab inside, closes on Escape and gives focus back to the element that opened it.
import { html, useEffect, useRef } from "./lib.js";

let n = 0;
const FOCUSABLE = "input:not([disabled]),select:not([disabled]),textarea:not([disabled]),button:not([disabled]),[href],[tabindex]:not([tabindex='-1'])";

export function Dialog({ title, onClose, children, className = "", describedBy }) {
  const ref = useRef(null);
  const id = useRef("dlg-" + ++n).current;
  useEffect(() => {
    const opener = document.activeElement;
    const el = ref.current;
    const first = el.querySelector("input:not([disabled]),select:not([disabled]),textarea:not([disabled])") || el.querySelector(FOCUSABLE);
    (first || el).focus();
    return () => opener && opener.isConnected && opener.focus();
  }, []);
  const onKey = (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      onClose && onClose();
    } else if (e.key === "Tab") {
      const f = Array.from(ref.current.querySelectorAll(FOCUSABLE));
      if (!f.length) return;
      const i = f.indexOf(document.activeElement);
      if (e.shiftKey && i <= 0) e.preventDefault(), f[f.length - 1].focus();
      else if (!e.shiftKey && i === f.length - 1) e.preventDefault(), f[0].focus();
    }
  };
  return html`<div class="backdrop" onMouseDown=${(e) => e.target === e.currentTarget && onClose && onClose()}>
    <div ref=${ref} class=${"dialog " + className} role="dialog" aria-modal="true" aria-labelledby=${id + "-h"}
      aria-describedby=${describedBy} tabindex="-1" onKeyDown=${onKey}>
      <h2 id=${id + "-h"} class="dialog-title">${title}</h2>
      ${children}
    </div>
  </div>`;
}
