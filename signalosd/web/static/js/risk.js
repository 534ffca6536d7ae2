// Risk: the guard's limits, the day, a latched trip and its reset.
import { html, useState, useEffect, useRef, useThrottled } from "./lib.js";
import { Confirm } from "./dialogs.js";
import { money, time, DASH } from "./trade_fmt.js";

const NAME = { daily_loss_money: "Daily loss", daily_loss_pct: "Daily loss (pct)", max_drawdown_money: "Drawdown",
  max_drawdown_pct: "Drawdown (pct)", equity_floor: "Equity floor" };
const lim = (l, v) => (l.endsWith("pct") ? v + " %" : money(v));
const of = (n, max) => n + (max == null ? "" : " / " + max);
const dd = (t, v, id) => html`<div><dt>${t}</dt><dd data-testid=${id}>${v}</dd></div>`;

// the meter green below warn_at_pct, then yellow, red from 100 %
const gauge = (g, warn) => {
  const u = Math.round(g.used_pct), t = NAME[g.limit];
  return html`<li key=${g.limit} data-limit=${g.limit}><div class="rk-l">${t}<strong data-testid="rk-state" class=${"rk-" + g.state}>${g.state}</strong></div>
<meter max="100" low=${warn} high="99.9" optimum="0" value=${u} aria-label=${`${t}: ${u} % used`}></meter>
<small>${u} % used · limit ${lim(g.limit, g.threshold)} · trips below ${money(g.trip_below)}</small></li>`;
};

// GET /api/risk at mount, reconnect, risk_* and status events: at most once a second
export function RiskPanel({ api, toast, tick, canOperate }) {
  const [r, setR] = useState(null), [fail, setFail] = useState(null), [dlg, setDlg] = useState(false);
  const n = useRef(0), key = useThrottled(tick, 1000);
  useEffect(() => {
    const i = ++n.current;
    api.get("/api/risk").then((x) => i === n.current && (setR(x), setFail(null)), (e) => setFail(e.message));
  }, [key]);
  const reset = async () => {
    const x = await api.action("POST", "/api/risk/reset", { confirm: true }).catch((e) => { toast(e.message, "error"); throw e; });
    n.current++, setR(x), setDlg(false), toast(x.message, "ok");
  };
  const { latch: l, day: d, entries: e } = r || {}, close = () => setDlg(false);
  return html`<section aria-labelledby="rk-h"><div class="panel-head"><h2 id="rk-h">Risk</h2></div>
${fail && html`<p role="alert" class="form-error">Risk state: ${fail}</p>`}
${!r ? !fail && html`<p class="empty">Loading…</p>` : !r.guarded ? html`<p class="empty">No risk limits set — <code>signalos risk set …</code></p>` : html`
${r.stale && html`<p class="tp-note">Data stale: no account status from the agent lately.</p>`}
${l && html`<div class="rk-latch"><p><strong>Tripped: ${NAME[l.limit]}</strong> at ${time(l.at)} (${money(l.value)}, limit ${lim(l.limit, l.threshold)}); clears ${l.clears}.</p>
<button class="btn btn-stop" disabled=${!canOperate} aria-describedby=${canOperate ? undefined : "ro-note"} onClick=${() => setDlg(true)}>Reset risk trip</button></div>`}
<ul class="rk-gs">${r.loss_limits.map((g) => gauge(g, r.limits.warn_at_pct))}</ul>
<dl class="ac-grid">${dd("Day anchor", d.anchor == null ? DASH : `${money(d.anchor)} · ${time(d.anchor_at)}`, "rk-anchor")}${dd("Next reset", time(d.next_reset))}
${dd("Trades today", of(e.trades_today, e.max_trades_per_day), "rk-today")}${dd("Open trades", of(e.open_trades, e.max_open_trades), "rk-open")}</dl>`}
${dlg && l && html`<${Confirm} title="Reset risk trip" label="Confirm reset" go=${reset} onClose=${close}>
<p>Clears the ${NAME[l.limit]} trip${l.limit.startsWith("max_") ? " and measures the drawdown again from the equity now" : ""}. Trading stays halted until resumed from the halt.</p>
<//>`}</section>`;
}
