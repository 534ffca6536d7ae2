// Toasts: a polite role=log, the newest three shown.
import { html, useState, useCallback } from "./lib.js";

let n = 0;
const SHOWN = 3;
export function useToasts() {
  const [list, setList] = useState([]);
  const dismiss = useCallback((id) => setList((l) => l.filter((t) => t.id !== id)), []);
  const toast = useCallback((message, kind) => {
    const id = ++n;
    setList((l) => [...l.slice(-5), { id, message: String(message), kind: kind || "info" }].map((t, i, a) => (i < a.length - SHOWN ? { ...t, old: 1 } : t)));
    setTimeout(() => dismiss(id), kind === "error" ? 12000 : 6000);
  }, []);
  return [list, toast, dismiss];
}

export const Toasts = ({ list, dismiss }) => html`<div class="toasts" role="log" aria-live="polite">
  ${list.map((t) => html`<div key=${t.id} class=${t.old ? "toast-old" : "toast toast-" + t.kind}><span>${t.message}</span>
    ${!t.old && html`<button type="button" class="toast-x" aria-label="Dismiss" onClick=${() => dismiss(t.id)}>×</button>`}</div>`)}
</div>`;
