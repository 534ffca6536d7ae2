// The snapshot, then events by seq, one new state per frame.
export const LOG_MAX = 500;
const CLOSED_MAX = 200, SIGNALS_MAX = 100, COMMANDS_MAX = 1000;
const OPEN = new Set(["pending", "open", "closing"]);
export const DONE = new Set(["succeeded", "failed", "expired", "cancelled"]);
const SIG = { pending: "accepted", open: "executed", closing: "executed", closed: "executed", failed: "failed" };

// A signal as its trade left it (executed, or failed with the reason).
export function sigWith(g, t) {
  const st = t && g.status !== "skipped" && SIG[t.status];
  if (!st) return g;
  const reason = st === "failed" ? t.close_reason || g.reason : g.reason;
  return st === g.status && reason === g.reason ? g : { ...g, status: st, reason };
}

export const initialState = () => ({
  mode: null, stealth: false, mt5: null, trades: [], tradeMap: new Map(), closed: [],
  commands: new Map(), signals: [], events: [], lastSeq: 0, accountKey: 0, riskSeq: 0,
});

export const normEvent = (e) => ({ seq: e.seq, type: e.type, ts: e.ts || e.timestamp, actor: e.actor, data: e.data || {} });

const byId = (a, b) => a.id - b.id;

// Pure: s itself when no event is past s.lastSeq.
export function applyEvents(s, events, notice) {
  const fresh = [];
  let last = s.lastSeq;
  for (const e of events) if (e.seq > last) fresh.push(e), (last = e.seq);
  if (!fresh.length) return s;
  const n = { ...s, lastSeq: last };
  let trades, closed, cmds, signals, bySig, byTrade;
  const tradeOf = (id) => id != null && ((trades || s.tradeMap).get(id) || (closed || s.closed).find((x) => x.id === id));
  for (const { type: t, data: d, ts, seq } of fresh) {
    if (t === "mt5_status_update" || t.startsWith("risk_")) n.riskSeq = seq;
    if (t === "trade_opened" || t === "trade_update" || t === "trade_closed") {
      if (d.id == null) continue;
      trades = trades || new Map(s.tradeMap);
      if (d.signal_id != null && (trades.get(d.id) || {}).status !== d.status) (bySig ||= new Map()).set(d.signal_id, d);
      if (OPEN.has(d.status)) trades.set(d.id, d);
      else trades.delete(d.id), (closed = [d, ...(closed || s.closed).filter((x) => x.id !== d.id)].slice(0, CLOSED_MAX));
    } else if (t.startsWith("command_")) {
      const st = t.slice(8), id = d.command_id;
      if (st === "late_result" || !id) continue;
      cmds = cmds || new Map(s.commands);
      const old = cmds.get(id);
      if (old && DONE.has(old.status) && !DONE.has(st)) continue;
      const c = { id, type: null, trade_id: null, reason: null, ...old, status: st };
      if (d.type) c.type = d.type;
      if (d.trade_id !== undefined) c.trade_id = d.trade_id;
      if (d.reason || d.error) c.reason = d.reason || d.error;
      if (d.data !== undefined) c.data = d.data;
      if (c.type === "open_trade" && c.trade_id != null && st !== "succeeded" && DONE.has(st)) (byTrade ||= new Map()).set(c.trade_id, { status: "failed", close_reason: c.reason || st });
      cmds.delete(id), cmds.set(id, c);
    } else if (t === "trading_paused") (n.mode = "paused"), (n.reason = d.reason);
    else if (t === "trading_resumed") (n.mode = "running"), (n.reason = d.reason);
    else if (t === "emergency_stop") Object.assign(n, { mode: "halted", reason: d.reason, halt_gen: d.halt_gen, lastStop: { seq, ...d } });
    else if (t === "mode_kept_by_restore") n.mode = d.mode || n.mode;
    else if (t === "stealth_changed") n.stealth = !!d.enabled;
    else if (t === "agent_connected") n.agent = { ...n.agent, ...d, connected: true, last_seen: ts, connected_at: ts };
    else if (t === "agent_disconnected") n.agent = { ...n.agent, connected: false, last_seen: ts };
    else if (t === "mt5_status_update") (n.mt5 = d), n.agent && (n.agent = { ...n.agent, last_seen: ts });
    else if (t === "signal_created" || t === "signal_skipped")
      signals = [sigWith(d, tradeOf(d.trade_id)), ...(signals || s.signals).filter((x) => x.id !== d.id)].slice(0, SIGNALS_MAX);
    else if (t === "sync_completed" && notice)
      notice(`Sync completed: ${d.positions ?? 0} positions, ${d.adopted ?? 0} adopted, ${d.updated ?? 0} updated, ${d.closed ?? 0} closed`, "ok");
  }
  if (trades) (n.tradeMap = trades), (n.trades = [...trades.values()].sort(byId));
  if (closed) n.closed = closed;
  if (cmds) {
    for (const k of cmds.keys()) if (cmds.size > COMMANDS_MAX) cmds.delete(k); else break;
    n.commands = cmds;
  }
  if (bySig || byTrade) {
    const g0 = signals || s.signals, g1 = g0.map((g) => sigWith(g, (bySig && bySig.get(g.id)) || (byTrade && byTrade.get(g.trade_id))));
    if (g1.some((g, i) => g !== g0[i])) signals = g1;
  }
  if (signals) n.signals = signals;
  n.events = s.events.concat(fresh).slice(-LOG_MAX);
  return n;
}

// Events in (lo, upto], skipping a pruned start.
async function readRange(api, lo, upto, out) {
  for (let since = lo, i = 0; i < 50 && since < upto; i++) {
    const p = await api.get("/api/events", { since, limit: 1000 }).catch((e) => {
      const d = e.details, to = d && (d.pruned_through ?? d.last_seq);
      if (e.code !== "events_reset" || !(to > since)) throw e;
      return { events: [], last_seq: to };
    });
    for (const e of p.events) if (e.seq <= upto) out.push(normEvent(e));
    if (!(p.last_seq > since)) break;
    since = p.last_seq;
  }
  return out;
}

async function lastEvents(api, upto) {
  let lo = Math.max(0, upto - LOG_MAX), out = await readRange(api, lo, upto, []);
  for (let i = 0; out.length < LOG_MAX && lo > 0 && i < 3; i++) {
    const lo2 = Math.max(0, lo - 5000);
    out = (await readRange(api, lo2, lo, [])).concat(out);
    lo = lo2;
  }
  return out.slice(-LOG_MAX);
}

// `upto`: authenticated's last_seq (with the last events); without, the rest wait for the token check
export function fetchSnapshot(api, upto) {
  const st = api.get("/api/trading/state"), rest = () => Promise.all([api.get("/api/system/health"), api.get("/api/trades"),
    api.get("/api/trades", { status: "closed,failed", limit: CLOSED_MAX }), api.get("/api/signals", { limit: SIGNALS_MAX }),
    upto == null ? null : lastEvents(api, upto)]);
  const all = Promise.all([st, upto == null ? st.then(rest) : rest()]).then(([s, r]) => [s, ...r]);
  all.catch(() => {});
  return { st, all, upto };
}

// An unchanged trade, signal or list keeps its object (its row is not rendered again).
const eq = (a, b) => a === b || (typeof a === "object" && JSON.stringify(a) === JSON.stringify(b));
const same = (a, b) => !!a && a.updated_at === b.updated_at && Object.keys(a).length === Object.keys(b).length && Object.keys(b).every((k) => eq(a[k], b[k]));
const ids = (l) => new Map(l.map((t) => [t.id, t]));
const kept = (old, l) => l.map((t) => ((o) => (same(o, t) ? o : t))(old.get(t.id)));
const keep = (l, o) => (l.length === o.length && l.every((x, i) => x === o[i]) ? o : l);

export function withSnapshot(prev, [st, h, open, done, sig, events], upto) {
  const trades = kept(prev.tradeMap, open.trades).sort(byId), closed = kept(ids(prev.closed), done.trades).sort((a, b) => b.id - a.id);
  const tradeMap = ids(trades), all = new Map([...ids(closed), ...tradeMap]);
  return {
    ...prev, ready: true, account: st.account, mode: st.mode, stealth: !!st.stealth, reason: st.reason, halt_gen: st.halt_gen,
    agent: h.agent || null, mt5: h.mt5 || null, devMode: !!h.dev_mode, tradeMap, trades: keep(trades, prev.trades),
    closed: keep(closed, prev.closed), signals: keep(kept(ids(prev.signals), sig.signals).map((g) => sigWith(g, all.get(g.trade_id))), prev.signals), events: events || prev.events,
    lastStop: ((e) => (e ? { seq: e.seq, ...e.data } : prev.lastStop))(events && events.findLast((e) => e.type === "emergency_stop")),
    lastSeq: upto == null ? prev.lastSeq : upto,
  };
}

// Events applied once per frame (250 ms when hidden); hold() while a snapshot loads.
export function createStore(notice) {
  let state = initialState(), buf = [], scheduled = false, holding = 0;
  const subs = new Set();
  const emit = () => subs.forEach((f) => f(state));
  const flush = () => {
    scheduled = false;
    if (holding || !buf.length) return;
    const next = applyEvents(state, buf, notice);
    buf = [];
    if (next !== state) (state = next), emit();
  };
  const schedule = () => scheduled || ((scheduled = true), document.hidden ? setTimeout(flush, 250) : requestAnimationFrame(flush));
  return {
    get: () => state,
    subscribe: (f) => (subs.add(f), () => subs.delete(f)),
    set(p) {
      state = typeof p === "function" ? p(state) : { ...state, ...p };
      emit();
    },
    push: (ev) => (buf.push(ev), schedule()),
    hold: () => holding++,
    release: () => (holding--, schedule()),
    clearBuffer: () => (buf = []),
  };
}
