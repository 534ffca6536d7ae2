// Toasts: a polite live log of the daemon's messages (never role=status: that is the
// connection indicator's alone).
import { html, useState, useCallback, useRef } from "./lib.js";

const LIFE = { ok: 6000, info: 6000, error: 12000 };
const MAX = 6;

export function useToasts() {
  const [list, setList] = useState([]);
  const seq = useRef(0);
  const dismiss = useCallback((id) => setList((l) => l.filter((t) => t.id !== id)), []);
  const toast = useCallback((message, kind = "info") => {
    const id = ++seq.current;
    setList((l) => [...l, { id, message: String(message), kind }].slice(-MAX));
    setTimeout(() => dismiss(id), LIFE[kind] || LIFE.info);
  }, []);
  return [list, toast, dismiss];
}

export function Toasts({ list, dismiss }) {
  return html`<div class="toasts" role="log" aria-live="polite" aria-label="Notifications">
    ${list.map(
      (t) => html`<div key=${t.id} class=${"toast toast-" + t.kind}>
        <span class="toast-msg">${t.message}</span>
        <button type="button" class="toast-x" aria-label="Dismiss" onClick=${() => dismiss(t.id)}>×</button>
      </div>`,
    )}
  </div>`;
}
