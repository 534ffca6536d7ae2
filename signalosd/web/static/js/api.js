// The REST client: bearer token, one Idempotency-Key per action (reused only on its own
// retries after a network failure), the daemon's error shape as ApiError.
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

const NO_ANSWER = "The daemon did not answer (network error): check that signalosd runs and the network is up";
const RETRIES = [400, 1500]; // backoff before the 2nd and 3rd try of an action

function newKey() {
  if (crypto.randomUUID) return "dash-" + crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return "dash-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function createApi({ token, onUnauthorized }) {
  async function request(method, path, { query, body, headers = {}, timeout = 15000 } = {}) {
    let url = path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q.set(k, v);
      const s = q.toString();
      if (s) url += (url.includes("?") ? "&" : "?") + s;
    }
    const h = { Authorization: "Bearer " + token, "X-SignalOS-Source": "dashboard", ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout);
    let res;
    try {
      res = await fetch(url, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctl.signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      throw new ApiError(0, "network_error", NO_ANSWER, { cause: String(e && e.message) });
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    const text = await res.text().catch(() => "");
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const e = new ApiError(
        res.status,
        err.code || "http_" + res.status,
        err.message || `The daemon answered ${res.status} ${res.statusText} to ${method} ${path}`,
        err.details,
      );
      if (res.status === 401 && onUnauthorized) onUnauthorized(e);
      throw e;
    }
    return data;
  }

  return {
    request,
    get: (path, query, opts) => request("GET", path, { ...opts, query }),
    // A trading action: never queued while offline; retried (same key) only when no answer came.
    async action(method, path, body) {
      if (navigator.onLine === false)
        throw new ApiError(0, "offline", "The browser is offline: the action was not sent; try again when the network is back");
      const key = newKey();
      for (let i = 0; ; i++) {
        try {
          return await request(method, path, { body: body === undefined ? {} : body, headers: { "Idempotency-Key": key } });
        } catch (e) {
          if (e.status !== 0 || i >= RETRIES.length) throw e;
          await sleep(RETRIES[i] * (0.8 + Math.random() * 0.4));
        }
      }
    },
  };
}

// A 401 message the sign-in screen shows.
export const refusedMessage = (e) =>
  `The daemon refused this token (${(e && e.code) || "unauthorized"}): paste a valid token from the token file.`;
