// REST; an action's Idempotency-Key is kept only for its retries.
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    Object.assign(this, { status, code, details: details || {} });
  }
}
const NO_ANSWER = "The daemon did not answer (network error): check that signalosd runs and try again";
const RETRIES = [400, 1500];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// getRandomValues, unlike randomUUID, works on a plain-http origin too
const newKey = () => "dash-" + Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, "0")).join("");

export const refusedMessage = (e) => `The daemon refused this token (${(e && e.code) || "unauthorized"}): paste a valid token from the token file.`;

export function createApi({ token, onUnauthorized }) {
  async function request(method, path, { query, body, headers, timeout = 15000 } = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) if (v != null) q.set(k, v);
    const qs = String(q), url = path + (qs ? "?" + qs : "");
    const h = { Authorization: "Bearer " + token, "X-SignalOS-Source": "dashboard", ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    const ctl = new AbortController(), timer = setTimeout(() => ctl.abort(), timeout);
    let res, data = null;
    try {
      res = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal: ctl.signal, cache: "no-store" });
      const text = await res.text();
      try { data = text ? JSON.parse(text) : null; } catch {}
    } catch (e) {
      throw new ApiError(0, "network_error", NO_ANSWER);
    } finally {
      clearTimeout(timer);
    }
    if (res.ok) return data;
    const err = (data && data.error) || {};
    const e = new ApiError(res.status, err.code || "http_" + res.status, err.message || `The daemon answered ${res.status} to ${method} ${path}`, err.details);
    if (res.status === 401 && onUnauthorized) onUnauthorized(e);
    throw e;
  }
  return {
    request,
    get: (path, query, opts) => request("GET", path, { ...opts, query }),
    async action(method, path, body = {}) {
      if (navigator.onLine === false) throw new ApiError(0, "offline", "The browser is offline: nothing was sent; try again when the network is back");
      const headers = { "Idempotency-Key": newKey() };
      for (let i = 0; ; i++) {
        try {
          return await request(method, path, { body, headers });
        } catch (e) {
          if (e.status !== 0 || i >= RETRIES.length) throw e;
          await sleep(RETRIES[i] * (0.8 + Math.random() * 0.4));
        }
      }
    },
  };
}
