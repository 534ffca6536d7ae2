// The /ws connection manager: connected / connecting / error / disconnected, exponential
// backoff 1 s → 30 s with jitter, at most MAX_ATTEMPTS tries, an application heartbeat and a
// dead-connection check, and a bounded queue of outgoing messages while offline.
export const MAX_ATTEMPTS = 10;
export const QUEUE_MAX = 100;
const HEARTBEAT_MS = 30000;
const DEAD_MS = 10000; // no pong (nor anything else) this long after a ping: the link is dead
const AUTH_MS = 10000;

export const wsUrl = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

export function backoff(attempt) {
  const base = Math.min(30000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.min(30000, Math.round(base * (0.75 + Math.random() * 0.5)));
}

export class Stream {
  // onAuthenticated(data) → since to subscribe from (number/null), or undefined: no subscribe.
  constructor({ token, url = wsUrl(), onMessage, onChange, onAuthenticated, onSignedOut, onFrame }) {
    Object.assign(this, { token, url, onMessage, onChange, onAuthenticated, onSignedOut, onFrame });
    this.s = { status: "disconnected", attempt: 0, max: MAX_ATTEMPTS, queued: 0, detail: "" };
    this.queue = [];
    this.ws = null;
    this.timers = {};
    this.stopped = true;
    this.lastError = null;
    this.onOnline = () => this.stopped || (this.s.status !== "connected" && this.retry());
    this.onOffline = () => {
      if (this.stopped || this.s.status === "connected") return;
      this.clear("retry");
      this.set({ status: "disconnected", detail: "browser offline" });
    };
  }
  get state() {
    return this.s;
  }
  set(patch) {
    this.s = { ...this.s, ...patch, queued: this.queue.length };
    this.onChange && this.onChange(this.s);
  }
  clear(...names) {
    for (const n of names) {
      clearTimeout(this.timers[n]);
      clearInterval(this.timers[n]);
      delete this.timers[n];
    }
  }
  start() {
    this.stopped = false;
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    this.connect(1);
  }
  stop(detail = "") {
    this.stopped = true;
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
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
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, "client closing");
      } catch {}
    }
  }
  raw(text) {
    this.ws.send(text);
    this.onFrame && this.onFrame("out", text);
  }
  // Send now when authenticated; otherwise queue (oldest dropped past QUEUE_MAX).
  send(msg) {
    const text = typeof msg === "string" ? msg : JSON.stringify(msg);
    if (this.s.status === "connected" && this.ws && this.ws.readyState === 1) return this.raw(text);
    this.queue.push(text);
    if (this.queue.length > QUEUE_MAX) this.queue.shift();
    this.set({});
  }
  connect(attempt) {
    this.clear("retry", "auth", "beat", "dead");
    this.authed = false;
    this.set({ status: "connecting", attempt, detail: "" });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      return this.failed(attempt, String(e.message || e));
    }
    this.ws = ws;
    ws.onopen = () => {
      this.raw(JSON.stringify({ type: "authenticate", data: { token: this.token } }));
      this.timers.auth = setTimeout(() => this.dead(attempt, "no authenticated reply"), AUTH_MS);
    };
    ws.onmessage = (ev) => this.receive(ev.data, attempt);
    ws.onclose = (ev) => this.closed(ev, attempt);
  }
  async receive(text, attempt) {
    this.clear("dead");
    this.onFrame && this.onFrame("in", text);
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "error") this.lastError = msg.data || {};
    if (msg.type === "authenticated") {
      this.clear("auth");
      this.authed = true;
      const ws = this.ws;
      this.role = msg.data && msg.data.role;
      let since;
      try {
        since = this.onAuthenticated ? await this.onAuthenticated(msg.data || {}) : undefined;
      } catch (e) {
        if (this.ws !== ws) return;
        this.authed = false;
        return this.dead(attempt, "snapshot failed: " + (e.message || e));
      }
      if (this.ws !== ws || !ws) return;
      if (since !== undefined) {
        const data = since === null ? {} : { since };
        this.raw(JSON.stringify({ type: "subscribe", data }));
      }
      const q = this.queue.splice(0);
      this.set({ status: "connected", attempt: 0, detail: "" });
      for (const t of q) this.raw(t);
      if (q.length) this.set({});
      this.timers.beat = setInterval(() => this.beat(attempt), HEARTBEAT_MS);
      return;
    }
    if (msg.type === "pong") return;
    this.onMessage && this.onMessage(msg);
  }
  beat(attempt) {
    if (!this.ws || this.ws.readyState !== 1) return;
    this.raw(JSON.stringify({ type: "ping", data: { timestamp: new Date().toISOString() } }));
    this.clear("dead");
    this.timers.dead = setTimeout(() => this.dead(attempt, "no pong within 10 s"), DEAD_MS);
  }
  dead(attempt, why) {
    this.drop();
    this.closed({ code: 1006, reason: why }, attempt);
  }
  closed(ev, attempt) {
    const wasAuthed = this.authed;
    this.clear("auth", "beat", "dead");
    this.ws = null;
    this.authed = false;
    if (this.stopped) return;
    const code = ev.code;
    if (code === 4401) {
      const err = this.lastError || {};
      this.stop(ev.reason || err.message || "authentication failed");
      this.onSignedOut && this.onSignedOut({ code: err.code || "unauthorized", message: ev.reason || err.message });
      return;
    }
    const detail = code === 4008 ? "slow consumer: resuming" : code === 1001 ? "daemon shutting down" : ev.reason || "";
    // A session that got as far as authenticated starts counting again.
    this.failed(wasAuthed ? 0 : attempt, detail, code === 4008 ? 250 : null);
  }
  failed(attempt, detail, delay = null) {
    if (this.stopped) return;
    if (navigator.onLine === false) return this.set({ status: "disconnected", detail: "browser offline" });
    const next = attempt + 1;
    if (next > MAX_ATTEMPTS) return this.set({ status: "error", attempt: MAX_ATTEMPTS, detail: detail || "gave up" });
    this.set({ status: "connecting", attempt: next, detail });
    this.timers.retry = setTimeout(() => this.connect(next), delay === null ? backoff(next) : delay);
  }
}
