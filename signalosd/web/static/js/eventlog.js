// The event log: the last 500 events by seq, a type filter (globs, comma-separated) and a
// toggle to pause auto-scroll.
import { html, useState, useRef, useLayoutEffect, useMemo, memo } from "./lib.js";
import { time, money, price, volume } from "./format.js";

function actorText(a) {
  if (!a) return "";
  if (a.kind === "system") return "system";
  return [a.label || a.id, a.source].filter(Boolean).join(" · ");
}

export function summary(e) {
  const d = e.data || {};
  const t = e.type;
  if (t.startsWith("trade_"))
    return `#${d.id} ${d.symbol || ""} ${d.side || ""} ${volume(d.volume)} @ ${price(d.open_price, d.symbol)} → ${price(d.current_price, d.symbol)} ${d.status || ""} P&L ${money(d.profit)}`;
  if (t.startsWith("command_"))
    return [d.type, d.command_id && String(d.command_id).slice(0, 8), d.trade_id != null && "trade #" + d.trade_id, d.reason || d.error]
      .filter(Boolean)
      .join(" · ");
  if (t === "emergency_stop")
    return `${d.message || "Emergency stop"}${d.close_all ? " (close all)" : ""}; ${d.cancelled_commands ?? 0} entries cancelled`;
  if (t === "mt5_status_update") return `balance ${money(d.balance)} equity ${money(d.equity)} ${d.connected ? "connected" : "disconnected"}`;
  if (t === "signal_created" || t === "signal_skipped")
    return `${d.symbol} ${d.side} ${volume(d.volume)} ${d.status || ""}${d.reason ? ": " + d.reason : ""}`;
  if (d.message) return d.message + (d.reason ? ": " + d.reason : "");
  const j = JSON.stringify(d);
  return j.length > 160 ? j.slice(0, 157) + "…" : j;
}

// "trade_*, command_failed" → a predicate; '*' is the only wildcard.
export function typeFilter(text) {
  const pats = text.split(/[,\s]+/).filter(Boolean);
  if (!pats.length) return null;
  const res = pats.map((p) => new RegExp("^" + p.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$", "i"));
  return (type) => res.some((r) => r.test(type));
}

const Row = memo(({ e }) => html`<tr data-seq=${e.seq}>
  <td class="num">${e.seq}</td><td>${time(e.ts)}</td><td class=${"etype etype-" + e.type.split("_")[0]}>${e.type}</td>
  <td>${actorText(e.actor)}</td><td class="summary">${summary(e)}</td>
</tr>`);

export function EventLog({ events }) {
  const [filter, setFilter] = useState("");
  const [paused, setPaused] = useState(false);
  const box = useRef(null);
  const pred = useMemo(() => typeFilter(filter), [filter]);
  const shown = useMemo(() => (pred ? events.filter((e) => pred(e.type)) : events), [events, pred]);
  useLayoutEffect(() => {
    if (!paused && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown, paused]);
  return html`<section class="panel eventlog" aria-labelledby="evlog-h">
    <div class="panel-head">
      <h2 id="evlog-h">Event log</h2>
      <label class="inline">Filter by type <input type="search" value=${filter} placeholder="trade_*, command_*"
        onInput=${(e) => setFilter(e.currentTarget.value)} /></label>
      <button type="button" class="btn btn-small btn-toggle" aria-pressed=${paused ? "true" : "false"} onClick=${() => setPaused(!paused)}>Pause auto-scroll</button>
      <span class="muted">${shown.length}/${events.length}</span>
    </div>
    <div class="scroll" ref=${box} tabindex="0">
      <table aria-label="Event log" class="grid">
        <thead><tr><th scope="col">seq</th><th scope="col">time</th><th scope="col">type</th><th scope="col">actor</th><th scope="col">summary</th></tr></thead>
        <tbody>${shown.map((e) => html`<${Row} key=${e.seq} e=${e} />`)}</tbody>
      </table>
    </div>
  </section>`;
}
