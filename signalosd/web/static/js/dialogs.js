// A modal dialog: focus on its first field and kept inside, Escape closes, focus returns.
import { html, useEffect, useRef } from "./lib.js";

let n = 0;
const F = "input:not([disabled]),select:not([disabled]),textarea:not([disabled])";
const ALL = F + ",button:not([disabled]),[href],[tabindex]:not([tabindex='-1'])";

export function Dialog({ title, onClose, children, className = "" }) {
  const ref = useRef(null), id = useRef("dlg" + ++n).current;
  useEffect(() => {
    const opener = document.activeElement, el = ref.current;
    (el.querySelector(F) || el.querySelector(ALL) || el).focus();
    return () => opener && opener.isConnected && opener.focus();
  }, []);
  const onKey = (e) => {
    if (e.key === "Escape") return e.preventDefault(), e.stopPropagation(), onClose();
    if (e.key !== "Tab") return;
    const f = [...ref.current.querySelectorAll(ALL)], i = f.indexOf(document.activeElement);
    if (e.shiftKey ? i <= 0 : i === f.length - 1) e.preventDefault(), f[e.shiftKey ? f.length - 1 : 0].focus();
  };
  return html`<div class="backdrop">
    <div ref=${ref} class=${"dialog " + className} role="dialog" aria-modal="true" aria-labelledby=${id} tabindex="-1" onKeyDown=${onKey}>
      <h2 id=${id} class="dialog-title">${title}</h2>
      ${children}
    </div>
  </div>`;
}
