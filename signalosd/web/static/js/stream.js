// /ws: backoff 1 s → 30 s, 10 tries, then error; ≤ 100 queued offline.
export const MAX_ATTEMPTS = 10, QUEUE_MAX = 100;
export const backoff = (n) => Math.round(Math.min(30000, 1000 * 2 ** Math.max(0, n - 1)) * (0.75 + Math.random() * 0.25));
const J = JSON.stringify, T = ["retry", "auth", "beat", "dead"];

export class Stream {
  // onAuthenticated(data) → the seq to subscribe from (null: live; undefined: none).
  constructor(o) {
    Object.assign(this, { url: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" }, o);
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
    for (const n of names) clearTimeout(this.t[n]);
  }
  listen(f) {
    f("online", this.online);
    f("offline", this.offline);
  }
  start() {
    this.stopped = false;
    this.listen(addEventListener);
    this.connect(1);
  }
  stop(detail = "") {
    this.stopped = true;
    this.listen(removeEventListener);
    this.clear(...T);
    this.drop();
    this.set({ status: "disconnected", attempt: 0, detail });
  }
  retry() {
    if (!this.stopped) this.clear("retry"), this.drop(), this.connect(1);
  }
  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) (ws.onopen = ws.onmessage = ws.onclose = null), ws.close();
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
  connect(n) {
    this.clear(...T);
    this.authed = false;
    this.set({ status: "connecting", attempt: n, detail: "" });
    let ws;
    try {
      ws = this.ws = new WebSocket(this.url);
    } catch (e) {
      return this.failed(n, e.message);
    }
    ws.onopen = () => {
      this.raw(J({ type: "authenticate", data: { token: this.token } }));
      this.t.auth = setTimeout(() => this.dead(n, "no authenticated reply"), 10000);
    };
    ws.onmessage = (ev) => this.receive(ev.data, n);
    ws.onclose = (ev) => this.closed(ev, n);
  }
  async receive(text, n) {
    this.clear("dead");
    this.onFrame && this.onFrame("in", text);
    let m, since;
    try { m = JSON.parse(text); } catch {}
    if (!m) return;
    if (m.type === "error") this.lastError = m.data || {};
    if (m.type === "pong") return;
    if (m.type !== "authenticated") return this.onMessage && this.onMessage(m);
    this.clear("auth");
    this.authed = true;
    const ws = this.ws;
    try {
      since = this.onAuthenticated && (await this.onAuthenticated(m.data || {}));
    } catch (e) {
      return this.ws === ws && ((this.authed = false), this.dead(n, "snapshot failed: " + e.message));
    }
    if (this.ws !== ws) return;
    if (since !== undefined) this.raw(J({ type: "subscribe", data: since === null ? {} : { since } }));
    const q = this.queue.splice(0);
    this.set({ status: "connected", attempt: 0, detail: "" });
    q.forEach((t) => this.raw(t));
    this.t.beat = setInterval(() => {
      this.raw(J({ type: "ping", data: { timestamp: new Date().toISOString() } }));
      this.clear("dead");
      this.t.dead = setTimeout(() => this.dead(n, "no pong within 10 s"), 10000);
    }, 30000);
  }
  dead(n, reason) {
    this.drop();
    this.closed({ code: 1006, reason }, n);
  }
  closed({ code, reason }, n) {
    const authed = this.authed;
    this.clear(...T);
    this.ws = null;
    this.authed = false;
    if (this.stopped) return;
    if (code === 4401) {
      const e = this.lastError || {}, message = reason || e.message || "authentication failed";
      this.stop(message);
      return this.onSignedOut && this.onSignedOut({ code: e.code || "unauthorized", message });
    }
    this.failed(authed ? 0 : n, code === 4008 ? "slow consumer: resuming" : code === 1001 ? "daemon shutting down" : reason, code === 4008 ? 250 : null);
  }
  failed(n, detail = "", delay) {
    if (this.stopped) return;
    if (navigator.onLine === false) return this.set({ status: "disconnected", detail: "browser offline" });
    if (++n > MAX_ATTEMPTS) return this.set({ status: "error", attempt: MAX_ATTEMPTS, detail: detail || "gave up" });
    this.set({ status: "connecting", attempt: n, detail });
    this.t.retry = setTimeout(() => this.connect(n), delay ?? backoff(n));
  }
}
