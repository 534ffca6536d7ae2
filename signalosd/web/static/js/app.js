// Sign-in, then the stream, the store and the panels.
import { html, render, useState, useEffect, useLayoutEffect, useMemo, useRef, useCallback, memo } from "./lib.js";
import { createApi, refusedMessage } from "./api.js";
import { Stream } from "./stream.js";
import { createStore, fetchSnapshot, withSnapshot, normEvent, DONE } from "./state.js";
import { Header, connText } from "./header.js";
import { Actions } from "./actions.js";
import { EventLog } from "./eventlog.js";
import { Toasts, useToasts } from "./toasts.js";
import { SignIn, savedToken, forgetToken } from "./signin.js";
import { WsTester } from "./wstester.js";
import { TradesPanel } from "./trades.js";
import { AccountPanel } from "./account.js";
import { SignalsPanel } from "./signals.js";
import { RiskPanel } from "./risk.js";

const RO = "needs an operator token";
const [Trades, Account, Signals, Risk] = [TradesPanel, AccountPanel, SignalsPanel, RiskPanel].map((c) => memo(c));

function App() {
  const [token, setToken] = useState(savedToken);
  const [msg, setMsg] = useState(null);
  const pre = useRef(null); // sign-in's snapshot
  const signOut = useCallback((m) => (forgetToken(), setMsg(m || null), setToken(null)), []);
  const check = useCallback((t) => (pre.current = fetchSnapshot(createApi({ token: t }), null)).st, []);
  return token
    ? html`<${Dashboard} key=${token} token=${token} pre=${pre} signOut=${signOut} />`
    : html`<${SignIn} message=${msg} check=${check} onSignedIn=${(t) => (setMsg(null), setToken(t))} />`;
}

const fromCommand = (c) => ({ id: c.id, type: c.type, trade_id: c.trade_id, status: c.status,
  reason: (c.result && (c.result.reason || c.result.error)) || null, data: c.result && (c.result.data || c.result) });

function Dashboard({ token, pre, signOut }) {
  const [toasts, toast, dismiss] = useToasts();
  const store = useMemo(() => createStore(toast), []);
  const [s, setS] = useState(store.get);
  const [conn, setConn] = useState({ status: "connecting", attempt: 0, max: 10, queued: 0, detail: "" });
  const [later, setLater] = useState(false);
  const connRef = useRef(conn), streamRef = useRef(null);
  const api = useMemo(() => createApi({ token, onUnauthorized: (e) => signOut(refusedMessage(e)) }), [token]);
  // Layout effects: at mount, not after a paint; /ws once the quick snapshot showed.
  const quick = useMemo(() => ((p) => ((pre.current = null), p || fetchSnapshot(api, null)))(pre.current), []);
  useLayoutEffect(() => store.subscribe(setS), []);
  useLayoutEffect(() => {
    let loaded = false, started = false, gone = false;
    const go = () => gone || started || ((started = true), setLater(true), st.start());
    const t = setTimeout(go, 1500);
    const bump = () => store.set((x) => ({ ...x, accountKey: x.accountKey + 1 }));
    const load = async (snap) => {
      store.hold();
      try {
        const d = await snap.all, full = snap.upto != null;
        if (full || !loaded) store.set((x) => withSnapshot(x, d, snap.upto)), (loaded ||= full);
      } finally {
        store.release();
      }
    };
    load(quick).catch((e) => (e.status === 401 ? signOut(refusedMessage(e)) : toast(e.message, "error")))
      .finally(() => requestAnimationFrame(() => setTimeout(go)));
    const st = (streamRef.current = new Stream({
      token,
      onChange: (c) => {
        const prev = connRef.current.status;
        setConn((connRef.current = c));
        if (prev === c.status) return;
        toast(`Live stream ${connText(c)}${c.detail ? ": " + c.detail : ""}`, { connected: "ok", error: "error" }[c.status]);
      },
      onAuthenticated: async (d) => {
        store.set({ role: d.role, account: d.account });
        if (!loaded) return await load(fetchSnapshot(api, d.last_seq)), d.last_seq;
        bump();
        return store.get().lastSeq;
      },
      onMessage: (m) => {
        if (m.type === "reset") {
          store.clearBuffer();
          toast(`The event log was reset (${m.data.reason}): reloading`);
          load(fetchSnapshot(api, m.data.last_seq)).then(bump, (e) => toast(e.message, "error"));
        } else if (typeof m.seq === "number") store.push(normEvent(m));
        else if (m.type === "error" && m.data) toast(`Stream error (${m.data.code}): ${m.data.message}`, "error");
      },
      onSignedOut: (e) => signOut(refusedMessage({ code: e.message || e.code })),
    }));
    return () => ((gone = true), clearTimeout(t), st.stop());
  }, []);

  const followCommand = useCallback(async (id, trade_id, cmd) => {
    const put = (c) => store.set((x) => ({ ...x, commands: new Map(x.commands).set(id, { ...x.commands.get(id), ...c }) }));
    if (!store.get().commands.has(id)) put(cmd ? fromCommand(cmd) : { id, type: null, trade_id, status: "queued", reason: null });
    for (let i = 0; i < 6 && connRef.current.status !== "connected"; i++) {
      const { command: c } = await api.get("/api/commands/" + encodeURIComponent(id), { wait: 20 }, { timeout: 30000 }).catch(() => ({}));
      if (!c) return;
      put(fromCommand(c));
      if (DONE.has(c.status)) return;
    }
  }, []);
  const onReply = useCallback((r) => {
    if (r && r.mode) store.set((x) => ({ ...x, mode: r.mode, stealth: !!r.stealth, reason: r.reason, halt_gen: r.halt_gen ?? x.halt_gen }));
    if (r && r.command) followCommand(r.command.id, r.command.trade_id, r.command);
  }, []);

  const canOperate = !s.role || s.role === "operator" || s.role === "admin";
  const ro = canOperate ? null : RO;
  return html`<div class="app">
    <div class="sticky">
      <${Header} conn=${conn} s=${s} onRetry=${() => streamRef.current.retry()} onSignOut=${() => signOut()} />
      <${Actions} s=${s} api=${api} toast=${toast} canOperate=${canOperate} readOnlyReason=${ro} onReply=${onReply} />
    </div>
    <main class="layout">
      ${!s.ready && html`<p class="loading">Loading…</p>`}
      <div class="col-main panel">
        <${Trades} trades=${s.trades} closed=${s.closed} commands=${s.commands} mode=${s.mode} canOperate=${canOperate}
          readOnlyReason=${ro} api=${api} toast=${toast} followCommand=${followCommand} />
      </div>
      <div class="col-side">
        <div class="panel"><${Risk} api=${api} toast=${toast} tick=${s.riskSeq + "/" + s.accountKey} canOperate=${canOperate} /></div>
        <div class="panel"><${Account} mt5=${s.mt5} api=${api} accountKey=${String(s.accountKey)} /></div>
        <div class="panel"><${Signals} signals=${s.signals} mode=${s.mode} canOperate=${canOperate} readOnlyReason=${ro} api=${api} toast=${toast} /></div>
      </div>
      <div class="col-full">${later && html`<${EventLog} events=${s.events} />`}</div>
      ${later && s.devMode && html`<div class="col-full"><${WsTester} token=${token} /></div>`}
    </main>
    <${Toasts} list=${toasts} dismiss=${dismiss} />
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
