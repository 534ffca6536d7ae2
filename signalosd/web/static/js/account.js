// Account: the MT5 figures, an equity and balance chart.
import { html, useState, useEffect, useRef, uPlot } from "./lib.js";
import { money, pnlClass, dtf, DASH } from "./trade_fmt.js";

const RANGES = [["24 h", 864e5], ["7 d", 6048e5], ["30 d", 2592e6]];
const FIELDS = [["balance", "Balance"], ["equity", "Equity"], ["margin", "Margin"], ["margin_free", "Free margin"], ["margin_level", "Margin level"], ["profit", "Floating profit"]];
const H = 220;
const show = (k, v) => (v == null ? DASH : k === "margin_level" ? money(v) + " %" : money(v));

const HR = 3600, DAY = 86400;
const TICK = [dtf({ hour: "2-digit", minute: "2-digit" }), dtf({ month: "short", day: "numeric" })];
const INCRS = [[1, 2, 3, 4, 6, 12].map((n) => n * HR), [1, 2, 3, 5, 7, 10].map((n) => n * DAY)];
const padY = (u, lo, hi) => (lo == null ? [0, 1] : ((p) => [lo - p, hi + p])(Math.max((hi - lo) / 10, Math.abs(hi) * 1e-4, 0.01)));

function opts(el, width, ms) {
  const cs = getComputedStyle(el), c = (n) => cs.getPropertyValue(n).trim(), day = ms > DAY * 1000 ? 1 : 0;
  const axis = { stroke: c("--muted"), grid: { stroke: c("--line") }, ticks: { show: false } };
  const fmt = (u, v) => (v == null ? DASH : money(v));
  const band = { stroke: "transparent", width: 0, points: { show: false }, value: fmt };
  const last = { show: true, size: 7, filter: (u) => [u.data[0].length - 1] };
  return {
    width, height: H, cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: () => ((t) => [t - ms / 1000, t])(Date.now() / 1000) }, y: { range: padY } },
    series: [{}, { label: "Balance", stroke: c("--warn"), width: 1.5, value: fmt, points: last },
      { label: "Equity", stroke: c("--accent"), width: 2, value: fmt, points: last }, { label: "Equity low", ...band }, { label: "Equity high", ...band }],
    bands: [{ series: [4, 3], fill: "rgba(59,130,246,.18)" }],
    axes: [{ ...axis, space: 56, incrs: INCRS[day], values: (u, vs) => vs.map((v) => TICK[day].format(v * 1000)) },
      { ...axis, size: 72, values: (u, vs) => vs.map((v) => money(v)) }],
  };
}

export function AccountPanel({ mt5, api, accountKey }) {
  const [range, setRange] = useState(0);
  const [hist, setHist] = useState(null);
  const [err, setErr] = useState(null);
  const box = useRef(), plot = useRef(null), data = useRef(null), liveT = useRef(0);

  useEffect(() => {
    const ro = new ResizeObserver((es) => { const w = Math.floor(es[0].contentRect.width); w > 0 && plot.current?.setSize({ width: w, height: H }); });
    ro.observe(box.current);
    const tick = setInterval(() => plot.current?.setScale("x", {}), 3e4);
    return () => { ro.disconnect(); clearInterval(tick); plot.current?.destroy(); plot.current = null; };
  }, []);

  useEffect(() => {
    let gone = false;
    const to = new Date(), from = new Date(to - RANGES[range][1]);
    setErr(null);
    api.get("/api/account/history", { from: from.toISOString(), to: to.toISOString(), points: 500 }).then(
      (r) => !gone && setHist(r),
      (e) => !gone && (setErr(e.message || String(e)), setHist(null)));
    return () => { gone = true; };
  }, [range, accountKey]);

  useEffect(() => {
    const ps = hist?.points || [], d = [[], [], [], [], []];
    for (const p of ps) {
      d[0].push(Date.parse(p.t) / 1000); d[1].push(p.balance); d[2].push(p.equity);
      d[3].push(p.equity_min ?? p.equity); d[4].push(p.equity_max ?? p.equity);
    }
    data.current = ps.length ? d : null;
    liveT.current = 0;
    if (!ps.length) { plot.current?.destroy(); plot.current = null; return; }
    const ms = RANGES[range][1];
    if (plot.current?.ms === ms) return plot.current.setData(d);
    plot.current?.destroy();
    plot.current = new uPlot(opts(box.current, box.current.clientWidth || 600, ms), d, box.current);
    plot.current.ms = ms;
  }, [hist]);

  useEffect(() => {
    const d = data.current;
    if (!d || !mt5 || mt5.equity == null || mt5.balance == null) return;
    const t = Date.now() / 1000, n = d[0].length;
    if (t <= d[0][n - 1]) return;
    // one live point per bucket
    const i = liveT.current && t - liveT.current < (hist?.bucket_s || 60) ? n - 1 : n;
    if (i === n) liveT.current = t;
    d[0][i] = t; d[1][i] = mt5.balance; d[2][i] = mt5.equity;
    d[3][i] = Math.min(mt5.equity, i < n ? d[3][i] : mt5.equity); d[4][i] = Math.max(mt5.equity, i < n ? d[4][i] : mt5.equity);
    plot.current?.setData(d);
  }, [mt5]);

  const empty = hist && !hist.points?.length;
  return html`<section class="ac" aria-labelledby="ac-h"><div class="panel-head"><h2 id="ac-h">Account${mt5?.currency ? ` · ${mt5.currency}` : ""}</h2></div>
<dl class="ac-grid">${FIELDS.map(([k, l]) => html`<div><dt>${l}</dt><dd data-testid=${k} class=${k === "profit" ? pnlClass(mt5?.[k]) : ""}>${show(k, mt5?.[k])}</dd></div>`)}</dl>
<figure aria-label="Equity and balance" class="ac-fig" aria-busy=${!hist && !err ? "true" : "false"}>
<div class="ac-ranges">${RANGES.map(([l], i) => html`<button type="button" class="btn btn-small btn-toggle" aria-pressed=${i === range ? "true" : "false"} onClick=${() => setRange(i)}>${l}</button>`)}</div>
<div class="ac-chart" ref=${box}></div>
${err ? html`<p role="alert" class="form-error">Could not load the account history: ${err}</p>`
    : empty ? html`<p class="empty">No account history yet: the daemon samples the account status while the agent reports it.</p>`
    : !hist && html`<p class="empty">Loading…</p>`}</figure></section>`;
}
