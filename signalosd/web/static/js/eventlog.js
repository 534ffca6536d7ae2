// The event log: the last 500 events, a type filter, auto-scroll.
import { html, useState, useRef, useEffect, useLayoutEffect, useMemo, memo, useThrottled } from "./lib.js";
import { time, money, price, digitsOf, lots, count } from "./trade_fmt.js";
import { head } from "./trades.js";

const actor = (a) => (!a ? "" : a.kind === "system" ? "system" : [a.label || a.id, a.source].filter(Boolean).join(" · "));

export function summary({ type: t, data: d }) {
  const p = (v) => price(v, digitsOf(v));
  if (t.startsWith("trade_")) return `#${d.id} ${d.symbol} ${d.side} ${lots(d.volume)} @ ${p(d.open_price)} → ${p(d.current_price)} ${d.status} P&L ${money(d.profit)}`;
  if (t.startsWith("command_")) return [d.type, (d.command_id || "").slice(0, 8), d.trade_id != null && "trade #" + d.trade_id, d.reason || d.error].filter(Boolean).join(" · ");
  if (t === "emergency_stop") return `${d.message}${d.close_all ? " (close all)" : ""}; ${count(d.cancelled_commands)} entries cancelled`;
  if (t === "mt5_status_update") return `balance ${money(d.balance)} equity ${money(d.equity)} ${d.connected ? "connected" : "disconnected"}`;
  if (t.startsWith("signal_")) return `${d.symbol} ${d.side} ${lots(d.volume)} ${d.status}${d.reason ? ": " + d.reason : ""}`;
  if (d.message) return d.message + (d.reason ? ": " + d.reason : "");
  const j = JSON.stringify(d);
  return j.length > 160 ? j.slice(0, 157) + "…" : j;
}

// "trade_*, command_failed" → a predicate; `*` is the only wildcard.
export function typeFilter(text) {
  const res = text.split(/[,\s]+/).filter(Boolean).map((p) => new RegExp("^" + p.split("*").map((x) => x.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$", "i"));
  return res.length ? (type) => res.some((r) => r.test(type)) : null;
}

const Row = memo(({ e }) => html`<tr data-seq=${e.seq}><td class="num">${e.seq}</td><td>${time(e.ts)}</td>
  <td class=${"et-" + e.type.split("_")[0]}>${e.type}</td><td>${actor(e.actor)}</td><td class="summary">${summary(e)}</td></tr>`);

export function EventLog(props) {
  const events = useThrottled(props.events, 300);
  const [filter, setFilter] = useState("");
  const [paused, setPaused] = useState(false);
  const box = useRef(null);
  const pred = useMemo(() => typeFilter(filter), [filter]);
  const shown = useMemo(() => (pred ? events.filter((e) => pred(e.type)) : events), [events, pred]);
  const on = useRef({ seen: true });
  on.current.paused = paused;
  const end = () => void (on.current.paused || !on.current.seen || (box.current.scrollTop = box.current.scrollHeight));
  useEffect(() => {
    const o = new IntersectionObserver(([x]) => ((on.current.seen = x.isIntersecting), end()));
    o.observe(box.current);
    return () => o.disconnect();
  }, []);
  useLayoutEffect(end, [shown, paused]);
  return html`<section class="panel" aria-labelledby="evlog-h">
    <div class="panel-head">
      <h2 id="evlog-h">Event log</h2>
      <label class="inline">Filter by type <input type="search" value=${filter} placeholder="e.g. trade_*" onInput=${(e) => setFilter(e.currentTarget.value)} /></label>
      <button class="btn btn-small btn-toggle" aria-pressed=${String(paused)} onClick=${() => setPaused(!paused)}>Pause auto-scroll</button>
      <span class="muted">${shown.length}/${events.length}</span>
    </div>
    <div class="scroll" ref=${box} tabindex="0">
      <table aria-label="Event log" class="grid ev">
        ${head(["seq", "time", "type", "actor", "summary"])}
        <tbody>${shown.map((e) => html`<${Row} key=${e.seq} e=${e} />`)}</tbody>
      </table>
    </div>
  </section>`;
}
