// Signals and the New trade form.
import { html, useState } from "./lib.js";
import { lots, time } from "./trade_fmt.js";
import { head } from "./trades.js";
import { useRun } from "./dialogs.js";

const WHY = { halted: "Trading is halted: resume from the halt to open positions." };
const NUM = /^\s*(\d+\.?\d*|\.\d+)\s*$/;

function NewTrade({ mode, canOperate, readOnlyReason, api, toast }) {
  const [f, setF] = useState({ symbol: "EURUSD", side: "buy", volume: "0.1", sl: "", tp: "" });
  const [busy, err, setErr, run] = useRun();
  const why = mode && mode !== "running" ? WHY[mode] || `Trading is ${mode}: resume to open positions.` : null;
  const off = !canOperate || !!why || busy;
  const desc = [!canOperate && "sg-ro", why && "sg-why"].filter(Boolean).join(" ") || undefined;
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  const inp = (k, label, extra = {}) => html`<div class="sg-f"><label for=${"sg-" + k}>${label}</label>
<input id=${"sg-" + k} type="text" autocomplete="off" value=${f[k]} onInput=${set(k)} ...${extra}/></div>`;
  const submit = (e) => {
    e.preventDefault();
    if (off) return;
    const body = { symbol: f.symbol.trim().toUpperCase(), side: f.side, volume: parseFloat(f.volume) };
    for (const k of ["sl", "tp"]) {
      const v = f[k].trim();
      if (v === "") continue;
      if (!NUM.test(v)) return setErr(`${k === "sl" ? "Stop loss" : "Take profit"} must be a price, or empty.`);
      body[k] = k === "tp" ? [parseFloat(v)] : parseFloat(v);
    }
    if (!body.symbol) return setErr("Enter a symbol, e.g. EURUSD.");
    if (!NUM.test(f.volume) || !(body.volume > 0)) return setErr("Volume must be a number of lots above 0, e.g. 0.1.");
    run(async () => {
      const r = await api.action("POST", "/api/signals", body).catch((x) => { toast(`Signal refused: ${x.message}`, "error"); throw x; }), s = r?.signal;
      if (s?.status === "skipped") toast(`Signal ${s.id} skipped: ${s.reason}`, "info");
      else toast(`Signal ${s?.id} accepted: ${body.side} ${body.volume} ${body.symbol} queued for the agent${r?.duplicate ? " (duplicate)" : ""}.`, "ok");
    });
  };
  return html`<form class="sg-form" onSubmit=${submit} aria-labelledby="sg-nt" novalidate>
<h3 id="sg-nt">New trade</h3><fieldset disabled=${!canOperate}>
${inp("symbol", "Symbol", { autocapitalize: "characters", spellcheck: false })}
<div class="sg-f"><label for="sg-side">Side</label><select id="sg-side" value=${f.side} onChange=${set("side")}>
<option value="buy">buy</option><option value="sell">sell</option></select></div>
${inp("volume", "Volume", { inputmode: "decimal" })}${inp("sl", "Stop loss", { inputmode: "decimal" })}${inp("tp", "Take profit", { inputmode: "decimal" })}
</fieldset><div class="sg-go"><button type="submit" class=${"btn btn-primary" + (busy ? " busy" : "")} disabled=${off} aria-describedby=${desc}>Open trade</button>
${why && html`<span id="sg-why" class="sg-note">${why}</span>`}
${!canOperate && html`<span id="sg-ro" class="sg-note">New trades are disabled: ${readOnlyReason}.</span>`}</div>
${err && html`<p role="alert" class="form-error">${err}</p>`}</form>`;
}

const TH = ["Time", "Symbol", "Side", "Volume>", "Status", "Reason"];
export function SignalsPanel({ signals = [], mode, canOperate, readOnlyReason, api, toast }) {
  return html`<section class="sg" aria-labelledby="sg-h"><div class="panel-head"><h2 id="sg-h">Signals</h2></div>
<${NewTrade} mode=${mode} canOperate=${canOperate} readOnlyReason=${readOnlyReason} api=${api} toast=${toast}/>
<div class="scroll"><table aria-label="Signals" class="grid tp-table">${head(TH)}
<tbody>${signals.map((s) => html`<tr key=${s.id} data-signal-id=${s.id} class=${"sg-" + s.status}>
<td data-col="time">${time(s.created_at)}</td><td data-col="symbol">${s.symbol}</td><td data-col="side" class=${"tp-" + s.side}>${s.side}</td>
<td data-col="volume">${lots(s.volume)}</td>
<td data-col="status">${s.status}</td><td data-col="reason">${s.reason || ""}</td></tr>`)}</tbody></table>
${signals.length === 0 && html`<p class="empty">No signals yet.</p>`}</div></section>`;
}
