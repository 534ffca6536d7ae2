// The app state: the snapshot loaded over REST, then events applied in order, coalesced into
// one new (immutable) state object per animation frame. Unchanged trades keep their identity.
export const LOG_MAX = 500;
const CLOSED_MAX = 200;
const SIGNALS_MAX = 100;
const COMMANDS_MAX = 1000;
const OPEN = new Set(["pending", "open", "closing"]);
const DONE = new Set(["succeeded", "failed", "expired", "cancelled"]);

export const initialState = () => ({
  ready: false,
  mode: null,
  stealth: false,
  reason: null,
  halt_gen: null,
  agent: null,
  mt5: null,
  devMode: false,
  account: null,
  role: null,
  trades: [],
  tradeMap: new Map(),
  closed: [],
  commands: new Map(),
  signals: [],
  events: [],
  lastSeq: 0,
  accountKey: 0,
  lastStop: null,
});

// A REST event {seq, ts, …} and a /ws one {seq, timestamp, id, …} as one shape.
export const normEvent = (e) => ({
  seq: e.seq,
  type: e.type,
  ts: e.ts || e.timestamp,
  actor: e.actor || null,
  account: e.account,
  data: e.data || {},
});

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const newestFirst = (a, b) => (b.id < a.id ? -1 : b.id > a.id ? 1 : 0);

function capMap(m, max) {
  if (m.size <= max) return;
  for (const k of m.keys()) {
    m.delete(k);
    if (m.size <= max) break;
  }
}

// Pure: apply `events` (in seq order) to state `s`; returns s itself when nothing applied.
export function applyEvents(s, events, notice) {
  const fresh = [];
  let last = s.lastSeq;
  for (const e of events) if (e.seq > last) fresh.push(e), (last = e.seq);
  if (!fresh.length) return s;
  const n = { ...s, lastSeq: last };
  let tradeMap = null, closed = null, commands = null, signals = null;
  const cmd = (id, patch) => {
    if (!id) return;
    commands = commands || new Map(s.commands);
    const old = commands.get(id);
    if (old && DONE.has(old.status) && patch.status && !DONE.has(patch.status)) return;
    commands.set(id, { id, type: null, trade_id: null, status: "queued", reason: null, ...old, ...patch });
  };
  for (const e of fresh) {
    const d = e.data, t = e.type;
    if (t === "trade_opened" || t === "trade_update" || t === "trade_closed") {
      if (d.id == null) continue;
      tradeMap = tradeMap || new Map(s.tradeMap);
      if (OPEN.has(d.status)) tradeMap.set(d.id, d);
      else {
        tradeMap.delete(d.id);
        closed = [d, ...(closed || s.closed).filter((x) => x.id !== d.id)].slice(0, CLOSED_MAX);
      }
    } else if (t.startsWith("command_")) {
      const st = t.slice(8);
      if (st === "late_result") continue;
      const patch = { status: st };
      if (d.type) patch.type = d.type;
      if (d.trade_id !== undefined) patch.trade_id = d.trade_id;
      if (d.reason || d.error) patch.reason = d.reason || d.error;
      if (d.data !== undefined) patch.data = d.data;
      if (d.retcode !== undefined) patch.retcode = d.retcode;
      cmd(d.command_id, patch);
    } else if (t === "trading_paused") n.mode = "paused", (n.reason = d.reason);
    else if (t === "trading_resumed") n.mode = "running", (n.reason = d.reason);
    else if (t === "emergency_stop") {
      n.mode = "halted";
      n.reason = d.reason;
      n.halt_gen = d.halt_gen;
      n.lastStop = { seq: e.seq, ...d };
    } else if (t === "mode_kept_by_restore") n.mode = d.mode || n.mode;
    else if (t === "stealth_changed") n.stealth = !!d.enabled;
    else if (t === "agent_connected") n.agent = { ...(n.agent || {}), ...d, connected: true, last_seen: e.ts, connected_at: e.ts };
    else if (t === "agent_disconnected") n.agent = { ...(n.agent || {}), connected: false, last_seen: e.ts };
    else if (t === "mt5_status_update") {
      n.mt5 = d;
      if (n.agent) n.agent = { ...n.agent, last_seen: e.ts };
    } else if (t === "signal_created" || t === "signal_skipped") {
      signals = [d, ...(signals || s.signals).filter((x) => x.id !== d.id)].slice(0, SIGNALS_MAX);
    } else if (t === "sync_completed" && notice) {
      notice(
        `Sync completed: ${d.positions ?? 0} positions, ${d.adopted ?? 0} adopted, ${d.updated ?? 0} updated, ${d.closed ?? 0} closed`,
        "ok",
      );
    }
  }
  if (tradeMap) (n.tradeMap = tradeMap), (n.trades = Array.from(tradeMap.values()).sort(byId));
  if (closed) n.closed = closed;
  if (commands) capMap(commands, COMMANDS_MAX), (n.commands = commands);
  if (signals) n.signals = signals;
  const log = s.events.length + fresh.length > LOG_MAX ? s.events.slice(s.events.length + fresh.length - LOG_MAX) : s.events.slice();
  for (const e of fresh.length > LOG_MAX ? fresh.slice(-LOG_MAX) : fresh) log.push(e);
  n.events = log;
  return n;
}

// Read the events (seq ≤ upto) the log holds in (lo, upto], following last_seq page by page.
async function readRange(api, lo, upto, out) {
  let since = lo;
  for (let i = 0; i < 50 && since < upto; i++) {
    const page = await api.get("/api/events", { since, limit: 1000 });
    for (const e of page.events) if (e.seq <= upto) out.push(normEvent(e));
    if (!(page.last_seq > since)) break;
    since = page.last_seq;
  }
}

async function lastEvents(api, upto) {
  const out = [];
  let lo = Math.max(0, upto - LOG_MAX);
  await readRange(api, lo, upto, out);
  // Other accounts' events share the seqs: look further back until 500 or the start.
  for (let i = 0; out.length < LOG_MAX && lo > 0 && i < 3; i++) {
    const lo2 = Math.max(0, lo - 5000), more = [];
    await readRange(api, lo2, lo, more);
    out.unshift(...more);
    lo = lo2;
  }
  return out.slice(-LOG_MAX);
}

// The whole snapshot over REST; with `upto` (the authenticated reply's last_seq), the last
// 500 events too, and lastSeq = upto so that the subscription continues right after it.
export async function loadSnapshot(api, prev, upto) {
  const [st, health, open, done, sig, events] = await Promise.all([
    api.get("/api/trading/state"),
    api.get("/api/system/health"),
    api.get("/api/trades"),
    api.get("/api/trades", { status: "closed,failed", limit: CLOSED_MAX }),
    api.get("/api/signals", { limit: SIGNALS_MAX }),
    upto == null ? null : lastEvents(api, upto),
  ]);
  const tradeMap = new Map();
  for (const t of open.trades) tradeMap.set(t.id, (prev.tradeMap.get(t.id) && same(prev.tradeMap.get(t.id), t)) || t);
  return {
    ...prev,
    ready: true,
    account: st.account,
    mode: st.mode,
    stealth: !!st.stealth,
    reason: st.reason,
    halt_gen: st.halt_gen,
    agent: health.agent || null,
    mt5: health.mt5 || null,
    devMode: !!health.dev_mode,
    tradeMap,
    trades: Array.from(tradeMap.values()).sort(byId),
    closed: done.trades.slice().sort(newestFirst).slice(0, CLOSED_MAX),
    signals: sig.signals.slice(0, SIGNALS_MAX),
    events: events || prev.events,
    lastSeq: upto == null ? prev.lastSeq : upto,
    accountKey: prev.accountKey + 1,
  };
}

function same(a, b) {
  if (a.updated_at !== b.updated_at) return null;
  for (const k in b) if (a[k] !== b[k] && typeof b[k] !== "object") return null;
  return a;
}

// The store: holds the state, buffers events, flushes once per animation frame.
export function createStore(notice) {
  let state = initialState();
  let buf = [];
  let scheduled = false;
  let holding = false;
  const subs = new Set();
  const emit = () => subs.forEach((f) => f(state));
  const flush = () => {
    scheduled = false;
    if (holding || !buf.length) return;
    const evs = buf;
    buf = [];
    const next = applyEvents(state, evs, notice);
    if (next !== state) (state = next), emit();
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    if (document.hidden) setTimeout(flush, 250);
    else requestAnimationFrame(flush);
  };
  return {
    get: () => state,
    subscribe(f) {
      subs.add(f);
      return () => subs.delete(f);
    },
    set(patch) {
      state = typeof patch === "function" ? patch(state) : { ...state, ...patch };
      emit();
    },
    push(ev) {
      buf.push(ev);
      schedule();
    },
    // While a snapshot loads, events wait in the buffer (those it covers are dropped after).
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      schedule();
    },
    clearBuffer() {
      buf = [];
    },
    reset() {
      buf = [];
      state = initialState();
      emit();
    },
  };
}
