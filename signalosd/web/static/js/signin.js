// Sign-in: the token is kept in sessionStorage only.
import { html, useState } from "./lib.js";
import { refusedMessage } from "./api.js";

const KEY = "signalos.token";
export const savedToken = () => sessionStorage.getItem(KEY);
export const forgetToken = () => sessionStorage.removeItem(KEY);

export function SignIn({ message, check, onSignedIn }) {
  const [token, setToken] = useState("");
  const [err, setErr] = useState(message);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const t = token.trim();
    if (!t) return setErr("Paste a token first: the daemon's token file (e.g. admin.token) holds one.");
    setBusy(true);
    setErr(null);
    try {
      await check(t);
      sessionStorage.setItem(KEY, t);
      onSignedIn(t);
    } catch (ex) {
      setErr(ex.status === 401 || ex.status === 403 ? refusedMessage(ex) : ex.message);
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <form class="signin-box" onSubmit=${submit}>
      <h1>SignalOS</h1>
      <p class="muted">Paste an API token (viewer, operator or admin); it stays in this tab only.</p>
      <label for="token">Token</label>
      <input id="token" type="password" autocomplete="off" value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
      ${err && html`<p role="alert" class="form-error">${err}</p>`}
      <button type="submit" class="btn btn-primary" disabled=${busy} aria-busy=${busy}>Sign in</button>
    </form>
  </main>`;
}
