// Trades: open and closed, the row actions and their outcome.
import { h, html, useState, useRef, useCallback, useEffect, memo } from "./lib.js";
import { TradeDialog, ACTION_PATH } from "./trade_dialogs.js";
import { digitsOf, price, lots, money, stepDigits, pnlClass, time, DASH } from "./trade_fmt.js";
import { DONE } from "./state.js";

function cmdText(c) {
  if (!c) return "";
  if (!DONE.has(c.status)) return "pending";
  if (c.status === "succeeded") return "succeeded";
  const r = c.reason || c.result?.reason || c.result?.error;
  return r ? `${c.status}: ${r}` : c.status;
}
const trail = (v) => (v && typeof v === "object" ? v.distance : v);
const LABEL = { close: "close", partial: "partial close", modify: "modify", trail: "trailing stop" };

const Row = memo(({ t, c, ro }) => {
    const d = digitsOf(t.open_price ?? t.current_price), off = ro || t.status !== "open", desc = ro ? "tp-ro" : undefined;
    const why = !ro && off ? `trade is ${t.status}` : undefined;
    const b = (k, l) => html`<button type="button" class="btn btn-small" data-act=${k} disabled=${off} aria-describedby=${desc} title=${why}>${l}</button>`;
    return html`<tr data-trade-id=${t.id} class=${"tp-" + t.status}>
<td data-col="id">${t.id}</td><td data-col="ticket">${t.ticket ?? DASH}</td><td data-col="symbol">${t.symbol}</td>
<td data-col="side" class=${"tp-" + t.side}>${t.side}</td><td data-col="volume">${lots(t.volume, stepDigits(t.volume_step))}</td>
<td data-col="open_price">${price(t.open_price, d)}</td><td data-col="current_price"><span class="tp-hot">${price(t.current_price, d)}</span></td>
<td data-col="sl">${price(t.sl, d)}</td><td data-col="tp">${price(t.tp, d)}</td><td data-col="trailing">${price(trail(t.trailing), d)}</td>
<td data-col="profit" class=${pnlClass(t.profit)}><span class="tp-hot">${money(t.profit)}</span></td><td data-col="swap">${money(t.swap)}</td>
<td data-col="status">${t.status}</td><td data-col="opened_at">${time(t.opened_at)}</td>
<td data-col="command" class=${"tp-cmd tp-c-" + (c ? c.status : "none")} title=${c ? c.type : undefined}>${cmdText(c)}</td>
<td class="tp-act">${b("close", "Close")}${b("partial", "Partial close")}${b("modify", "Modify")}${b("trail", "Trail")}</td></tr>`;
});

const ClosedRow = memo(({ t }) => {
    const d = digitsOf(t.open_price ?? t.current_price);
    return html`<tr data-trade-id=${t.id} class=${"tp-" + t.status}>
<td data-col="id">${t.id}</td><td data-col="symbol">${t.symbol}</td><td data-col="side" class=${"tp-" + t.side}>${t.side}</td>
<td data-col="volume">${lots(t.volume, stepDigits(t.volume_step))}</td><td data-col="open_price">${price(t.open_price, d)}</td>
<td data-col="close_price">${price(t.close_price ?? t.current_price, d)}</td><td data-col="reason">${t.close_reason || t.status}</td>
<td data-col="profit" class=${pnlClass(t.profit)}>${money(t.profit)}</td><td data-col="closed_at">${time(t.closed_at)}</td></tr>`;
});

// "x>": a number column
export const head = (cols) => html`<thead><tr>${cols.map((c) => c.endsWith(">") ? html`<th scope="col" class="num">${c.slice(0, -1)}</th>` : html`<th scope="col">${c}</th>`)}</tr></thead>`;
const OPEN_COLS = ["ID>", "Ticket>", "Symbol", "Side", "Volume>", "Open>", "Price>", "SL>", "TP>", "Trailing>", "P&L>", "Swap>", "Status", "Opened", "Command", "Actions"];
const CLOSED_COLS = ["ID>", "Symbol", "Side", "Volume>", "Open price>", "Close price>", "Reason", "Profit>", "Closed at"];
const TABS = ["open", "closed"];

export function TradesPanel({ trades = [], closed = [], commands, canOperate, readOnlyReason, api, toast, followCommand }) {
  const [tab, setTab] = useState("open");
  const [dlg, setDlg] = useState(null);
  // trade id → the command this page last started for it
  const [mine, setMine] = useState(() => new Map());
  const live = useRef();
  live.current = trades;
  const ro = !canOperate;
  const onClick = useCallback((e) => {
    const b = e.target.closest("button[data-act]");
    if (!b || b.disabled) return;
    const id = +b.closest("tr").dataset.tradeId, t = live.current.find((x) => x.id === id);
    if (t) setDlg({ kind: b.dataset.act, id, t });
  }, []);
  const close = useCallback(() => setDlg(null), []);

  const last = new Map();
  if (commands) for (const c of commands.values()) if (c.trade_id != null && c.type !== "open_trade") last.set(c.trade_id, c);
  const cmdOf = (id) => {
    const m = mine.get(id);
    return m && !(m.id && commands?.has(m.id)) ? m : last.get(id);
  };
  const told = useRef(new Set());
  useEffect(() => {
    for (const [id, m] of mine) {
      const c = m.id && commands?.get(m.id);
      if (!c || !DONE.has(c.status) || told.current.has(c.id)) continue;
      told.current.add(c.id);
      toast(`Trade ${id}: ${LABEL[m.kind] || c.type} ${cmdText(c)}`, c.status === "succeeded" ? "ok" : "error");
    }
  }, [commands, mine]);
  const put = (id, c) => setMine((m) => { const n = new Map(m); c ? n.set(id, c) : n.delete(id); return n; });

  const send = async (body) => {
    const { kind, t } = dlg, [method, path] = ACTION_PATH(kind, t.id), prev = mine.get(t.id);
    put(t.id, { status: "queued", type: kind, kind });
    try {
      const r = await api.action(method, path, body), c = r && r.command;
      if (c) { followCommand(c.id, t.id, c); put(t.id, { ...c, kind }); }
      toast(`Trade ${t.id}: ${LABEL[kind]} queued${c ? ` (command ${c.id.slice(0, 8)})` : ""}.`, "ok");
      setDlg(null);
    } catch (e) {
      put(t.id, prev);
      toast(`Trade ${t.id}: ${LABEL[kind]} ${e.status ? "refused" : "not sent"}: ${e.message}`, "error");
      throw e;
    }
  };

  const key = (e) => {
    const i = ["ArrowLeft", "ArrowRight", "Home", "End"].indexOf(e.key);
    if (i < 0) return;
    e.preventDefault();
    const n = i === 2 ? "open" : i === 3 ? "closed" : TABS[1 - TABS.indexOf(tab)];
    setTab(n);
    document.getElementById("tp-tab-" + n)?.focus();
  };
  const tabBtn = (k, label, n) => html`<button type="button" role="tab" id=${"tp-tab-" + k} aria-selected=${tab === k ? "true" : "false"}
aria-controls="tp-panel" tabindex=${tab === k ? 0 : -1} onClick=${() => setTab(k)}>${label}<span class="tp-n" aria-hidden="true">${n}</span></button>`;
  const dt = dlg && (trades.find((x) => x.id === dlg.id) || closed.find((x) => x.id === dlg.id) || dlg.t);

  return html`<section class="tp" aria-labelledby="tp-h"><div class="panel-head"><h2 id="tp-h">Trades</h2>
<div role="tablist" aria-label="Trades" class="tp-tabs" onKeyDown=${key}>${tabBtn("open", "Open", trades.length)}${tabBtn("closed", "Closed", closed.length)}</div></div>
${ro && html`<p id="tp-ro" class="tp-note">Trade actions are disabled: ${readOnlyReason}.</p>`}
<div role="tabpanel" id="tp-panel" aria-labelledby=${"tp-tab-" + tab} class="tp-scroll">${tab === "open"
    ? html`<table aria-label="Live trades" class="grid tp-table" onClick=${onClick}>${head(OPEN_COLS)}
<tbody>${trades.map((t) => h(Row, { key: t.id, t, c: cmdOf(t.id), ro }))}</tbody></table>
${trades.length === 0 && html`<p class="empty">No open trades.</p>`}`
    : html`<table aria-label="Closed trades" class="grid tp-table">${head(CLOSED_COLS)}
<tbody>${closed.map((t) => h(ClosedRow, { key: t.id, t }))}</tbody></table>
${closed.length === 0 && html`<p class="empty">No closed trades yet.</p>`}`}</div>
${dt && html`<${TradeDialog} kind=${dlg.kind} t=${dt} send=${send} onClose=${close}/>`}</section>`;
}
