// /ws: connected / connecting / error / disconnected; backoff 1 s → 30 s with jitter, 10 tries
// then error (Retry); a ping every 30 s with a dead-link check; ≤ 100 messages queued offline.
export const MAX_ATTEMPTS = 10, QUEUE_MAX = 100;
const BEAT = 30000, DEAD = 10000, AUTH = 10000;
export const wsUrl = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
export const backoff = (n) => Math.min(30000, Math.round(Math.min(30000, 1000 * 2 ** Math.max(0, n - 1)) * (0.75 + Math.random() * 0.5)));
const J = JSON.stringify;

export class Stream {
  // onAuthenticated(data) → the seq to subscribe from (null: live; undefined: no subscribe).
  constructor(o) {
    Object.assign(this, { url: wsUrl() }, o);
    this.s = { status: "disconnected", attempt: 0, max: MAX_ATTEMPTS, queued: 0, detail: "" };
    this.queue = [];
    this.t = {};
    this.stopped = true;
    this.online = () => this.stopped || this.s.status === "connected" || this.retry();
    this.offline = () => this.stopped || this.s.status === "connected" || (this.clear("retry"), this.set({ status: "disconnected", detail: "browser offline" }));
  }
  set(p) {
    this.s = { ...this.s, ...p, queued: this.queue.length };
    this.onChange && this.onChange(this.s);
  }
  clear(...names) {
    for (const n of names) clearTimeout(this.t[n]), clearInterval(this.t[n]);
  }
  start() {
    this.stopped = false;
    addEventListener("online", this.online);
    addEventListener("offline", this.offline);
    this.connect(1);
  }
  stop(detail = "") {
    this.stopped = true;
    removeEventListener("online", this.online);
    removeEventListener("offline", this.offline);
    this.clear("retry", "auth", "beat", "dead");
    this.drop();
    this.set({ status: "disconnected", attempt: 0, detail });
  }
  retry() {
    if (this.stopped) return;
    this.clear("retry");
    this.drop();
    this.connect(1);
  }
  drop() {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(1000); } catch {}
  }
  raw(text) {
    this.ws.send(text);
    this.onFrame && this.onFrame("out", text);
  }
  send(msg) {
    const text = typeof msg === "string" ? msg : J(msg);
    if (this.s.status === "connected" && this.ws && this.ws.readyState === 1) return this.raw(text);
    if (this.queue.push(text) > QUEUE_MAX) this.queue.shift();
    this.set({});
  }
  connect(attempt) {
    this.clear("retry", "auth", "beat", "dead");
    this.authed = false;
    this.set({ status: "connecting", attempt, detail: "" });
    let ws;
    try {
      ws = this.ws = new WebSocket(this.url);
    } catch (e) {
      return this.failed(attempt, e.message);
    }
    ws.onopen = () => {
      this.raw(J({ type: "authenticate", data: { token: this.token } }));
      this.t.auth = setTimeout(() => this.dead(attempt, "no authenticated reply"), AUTH);
    };
    ws.onmessage = (ev) => this.receive(ev.data, attempt);
    ws.onclose = (ev) => this.closed(ev, attempt);
  }
  async receive(text, attempt) {
    this.clear("dead");
    this.onFrame && this.onFrame("in", text);
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (!m || typeof m !== "object") return;
    if (m.type === "error") this.lastError = m.data || {};
    if (m.type === "pong") return;
    if (m.type !== "authenticated") return this.onMessage && this.onMessage(m);
    this.clear("auth");
    this.authed = true;
    const ws = this.ws;
    let since;
    try {
      since = this.onAuthenticated ? await this.onAuthenticated(m.data || {}) : undefined;
    } catch (e) {
      if (this.ws !== ws) return;
      this.authed = false;
      return this.dead(attempt, "snapshot failed: " + e.message);
    }
    if (this.ws !== ws) return;
    if (since !== undefined) this.raw(J({ type: "subscribe", data: since === null ? {} : { since } }));
    const q = this.queue.splice(0);
    this.set({ status: "connected", attempt: 0, detail: "" });
    q.forEach((t) => this.raw(t));
    this.t.beat = setInterval(() => this.beat(attempt), BEAT);
  }
  beat(attempt) {
    if (!this.ws || this.ws.readyState !== 1) return;
    this.raw(J({ type: "ping", data: { timestamp: new Date().toISOString() } }));
    this.clear("dead");
    this.t.dead = setTimeout(() => this.dead(attempt, "no pong within 10 s"), DEAD);
  }
  dead(attempt, why) {
    this.drop();
    this.closed({ code: 1006, reason: why }, attempt);
  }
  closed({ code, reason }, attempt) {
    const authed = this.authed;
    this.clear("auth", "beat", "dead");
    this.ws = null;
    this.authed = false;
    if (this.stopped) return;
    if (code === 4401) {
      const e = this.lastError || {}, msg = reason || e.message || "authentication failed";
      this.stop(msg);
      return this.onSignedOut && this.onSignedOut({ code: e.code || "unauthorized", message: msg });
    }
    const detail = code === 4008 ? "slow consumer: resuming" : code === 1001 ? "daemon shutting down" : reason || "";
    this.failed(authed ? 0 : attempt, detail, code === 4008 ? 250 : null);
  }
  failed(attempt, detail, delay = null) {
    if (this.stopped) return;
    if (navigator.onLine === false) return this.set({ status: "disconnected", detail: "browser offline" });
    const next = attempt + 1;
    if (next > MAX_ATTEMPTS) return this.set({ status: "error", attempt: MAX_ATTEMPTS, detail: detail || "gave up" });
    this.set({ status: "connecting", attempt: next, detail });
    this.t.retry = setTimeout(() => this.connect(next), delay ?? backoff(next));
  }
}
