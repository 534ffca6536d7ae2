// Quick actions: busy, then the daemon's message.
import { html, useState } from "./lib.js";
import { Dialog, Confirm, useRun } from "./dialogs.js";
import { DONE } from "./state.js";
import { count } from "./trade_fmt.js";

export function Actions({ s, api, toast, canOperate, readOnlyReason, onReply }) {
  const [busy, setBusy] = useState(null);
  const [dlg, setDlg] = useState(null);
  const ro = !canOperate, close = () => setDlg(null);
  async function run(name, path, body, [done, same]) {
    setBusy(name);
    try {
      const r = await api.action("POST", "/api/" + path, body);
      onReply(r);
      toast((r && r.message) || (r && r.changed === false ? same : done), "ok");
      return r;
    } catch (e) {
      toast(e.message, "error");
      throw e;
    } finally {
      setBusy(null);
    }
  }
  const go = (...a) => () => run(...a).catch((e) => a[0] === "resume" && e.code === "halt_confirmation_required" && setDlg("resume"));
  const btn = (name, label, onClick, off, cls = "", pressed) => html`<button class=${"btn " + cls + (busy === name ? " busy" : "")}
    disabled=${ro || off || busy === name} aria-pressed=${pressed} aria-describedby=${ro ? "ro-note" : undefined} aria-busy=${busy === name} onClick=${onClick}>${label}</button>`;
  return html`<section class="actions" aria-label="Quick actions">
    ${btn("stop", "Emergency stop", () => setDlg("stop"), false, "btn-stop")}
    ${btn("pause", "Pause", go("pause", "trading/pause", {}, ["Trading paused", "Already paused: nothing changed"]), s.mode === "paused" || s.mode === "halted")}
    ${btn("resume", "Resume", s.mode === "halted" ? () => setDlg("resume") : go("resume", "trading/resume", {}, ["Trading resumed", "Already running: nothing changed"]), s.mode === "running")}
    ${btn("stealth", "Stealth", go("stealth", "trading/stealth-toggle", { enabled: !s.stealth }, [s.stealth ? "Stealth off" : "Stealth on", "Stealth unchanged"]), false, "btn-toggle", String(!!s.stealth))}
    ${btn("sync", "Sync", go("sync", "firebridge/force-sync", {}, ["Sync requested: the agent sends a full snapshot"]))}
    ${ro && html`<span id="ro-note" class="ro-note">${readOnlyReason}</span>`}
    ${s.mode && s.mode !== "running" && html`<span class=${"mode-note mode-" + s.mode}>Trading ${s.mode}${s.reason ? ": " + s.reason : ""}</span>`}
    ${dlg === "stop" && html`<${StopDialog} s=${s} run=${run} onClose=${close} />`}
    ${dlg === "resume" && html`<${Confirm} title="Resume from halt" label="Confirm resume" onClose=${close}
      go=${() => run("resume", "trading/resume", { confirm_halt: true }, ["Trading resumed from the halt", "Already running"]).then(close)}>
      <p>Trading is halted. Resuming lets new signals open positions again.</p>
    <//>`}
  </section>`;
}

function StopDialog({ s, run, onClose }) {
  const [all, setAll] = useState(false);
  const [sending, err, , go] = useRun();
  const [reply, setReply] = useState(null);
  const confirm = () => go(async () => {
    const r = await run("stop", "trading/emergency-stop", { close_all: all, reason: "dashboard emergency stop" },
      ["Emergency stop activated: trading halted", "Emergency stop sent again (already halted)"]);
    setReply({ ...r, close_all: all });
  });
  return html`<${Dialog} title="Emergency stop" onClose=${onClose} className="dialog-stop">
    ${reply
      ? html`<${StopResult} s=${s} r=${reply} /><div class="dialog-buttons"><button class="btn" onClick=${onClose}>Close</button></div>`
      : html`<p>Halts trading at once: unfinished entries are cancelled and the agent opens nothing more.</p>
        <label class="check"><input type="checkbox" checked=${all} onChange=${(e) => setAll(e.currentTarget.checked)} /> Close all positions</label>
        ${err && html`<p role="alert" class="form-error">${err}</p>`}
        <div class="dialog-buttons">
          <button class=${"btn btn-stop" + (sending ? " busy" : "")} disabled=${sending} aria-busy=${sending} onClick=${confirm}>Confirm stop</button>
          <button class="btn" onClick=${onClose}>Cancel</button>
        </div>`}
  <//>`;
}

function StopResult({ s, r }) {
  const id = r.command && r.command.id;
  const c = s.commands.get(id) || r.command || {};
  const ev = s.lastStop && s.lastStop.halt_gen === r.halt_gen ? s.lastStop : null;
  const { closed = [], failed = [] } = c.data || {}, cc = r.cancelled_commands ?? (ev && ev.cancelled_commands);
  const done = DONE.has(c.status);
  return html`<div class="stop-result">
    <p><strong>Trading ${s.mode || r.mode}.</strong></p>
    <ul>
      <li data-testid="stop-cancelled">Entries cancelled: ${cc != null ? count(cc) : "…"}</li>
      <li data-testid="stop-command">Stop command: ${c.status || "queued"}${c.reason ? " — " + c.reason : ""}</li>
      ${r.close_all && html`<li data-testid="stop-closed">Positions closed: ${done ? closed.length : "…"}${closed.length ? " (" + closed.slice(0, 8).join(", ") + (closed[8] ? ", …)" : ")") : ""}</li>
        <li data-testid="stop-failed" class=${failed.length ? "pnl-neg" : ""}>Positions failing: ${done ? failed.length : "…"}
          ${failed.length > 0 && html`<ul>${failed.map((f) => html`<li key=${f.ticket}>${f.ticket}: ${f.error}</li>`)}</ul>`}</li>`}
    </ul>
  </div>`;
}
