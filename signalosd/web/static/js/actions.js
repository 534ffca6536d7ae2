// Quick actions: Emergency stop (with its result), Pause / Resume (resume from a halt asks
// again), Stealth, Sync. Each shows a loading state, then a toast with the daemon's message.
import { html, useState } from "./lib.js";
import { Dialog } from "./dialogs.js";

const DONE = new Set(["succeeded", "failed", "expired", "cancelled"]);

function said(r, fallback) {
  if (r && r.message) return r.message;
  return r && r.changed === false ? fallback[1] : fallback[0];
}

export function Actions({ s, api, toast, canOperate, readOnlyReason, onReply }) {
  const [busy, setBusy] = useState(null);
  const [dlg, setDlg] = useState(null);
  const ro = !canOperate;
  const dis = (x) => ro || busy === x;
  const desc = ro ? "ro-note" : undefined;

  async function run(name, call, words) {
    setBusy(name);
    try {
      const r = await call();
      onReply(r);
      toast(said(r, words), "ok");
      return r;
    } catch (e) {
      toast(e.message, "error");
      throw e;
    } finally {
      setBusy(null);
    }
  }
  const quiet = (p) => p.catch(() => {});
  const pause = () => quiet(run("pause", () => api.action("POST", "/api/trading/pause", {}), ["Trading paused", "Already paused: nothing changed"]));
  const resume = () => {
    if (s.mode === "halted") return setDlg("resume");
    run("resume", () => api.action("POST", "/api/trading/resume", {}), ["Trading resumed", "Already running: nothing changed"]).catch(
      (e) => e.code === "halt_confirmation_required" && setDlg("resume"),
    );
  };
  const stealth = () =>
    quiet(run("stealth", () => api.action("POST", "/api/trading/stealth-toggle", { enabled: !s.stealth }), [!s.stealth ? "Stealth on" : "Stealth off", "Stealth unchanged"]));
  const sync = () =>
    quiet(run("sync", () => api.action("POST", "/api/firebridge/force-sync", {}), ["Sync requested: the agent sends a full snapshot", ""]));

  return html`<section class="actions" aria-label="Quick actions">
    <button type="button" class=${"btn btn-stop" + (busy === "stop" ? " busy" : "")} disabled=${ro}
      aria-describedby=${desc} onClick=${() => setDlg("stop")}>Emergency stop</button>
    <button type="button" class=${"btn" + (busy === "pause" ? " busy" : "")} disabled=${dis("pause") || s.mode === "paused" || s.mode === "halted"}
      aria-describedby=${desc} aria-busy=${busy === "pause"} onClick=${pause}>Pause</button>
    <button type="button" class=${"btn" + (busy === "resume" ? " busy" : "")} disabled=${dis("resume") || s.mode === "running"}
      aria-describedby=${desc} aria-busy=${busy === "resume"} onClick=${resume}>Resume</button>
    <button type="button" class=${"btn btn-toggle" + (busy === "stealth" ? " busy" : "")} disabled=${dis("stealth")}
      aria-pressed=${s.stealth ? "true" : "false"} aria-describedby=${desc} aria-busy=${busy === "stealth"} onClick=${stealth}>Stealth</button>
    <button type="button" class=${"btn" + (busy === "sync" ? " busy" : "")} disabled=${dis("sync")}
      aria-describedby=${desc} aria-busy=${busy === "sync"} onClick=${sync}>Sync</button>
    ${ro && html`<span id="ro-note" class="ro-note">${readOnlyReason}</span>`}
    ${s.mode && s.mode !== "running" && html`<span class=${"mode-note mode-" + s.mode}>Trading ${s.mode}${s.reason ? ": " + s.reason : ""}</span>`}
    ${dlg === "stop" && html`<${StopDialog} s=${s} api=${api} run=${run} onClose=${() => setDlg(null)} />`}
    ${dlg === "resume" &&
    html`<${ResumeDialog} busy=${busy === "resume"} onClose=${() => setDlg(null)}
      onConfirm=${() =>
        run("resume", () => api.action("POST", "/api/trading/resume", { confirm_halt: true }), ["Trading resumed from the halt", "Already running"]).then(
          () => setDlg(null),
          () => {},
        )} />`}
  </section>`;
}

function ResumeDialog({ busy, onClose, onConfirm }) {
  return html`<${Dialog} title="Resume from halt" onClose=${onClose}>
    <p>Trading is halted by an emergency stop. Resuming lets new signals open positions again.</p>
    <div class="dialog-buttons">
      <button type="button" class="btn btn-primary" disabled=${busy} aria-busy=${busy} onClick=${onConfirm}>Confirm resume</button>
      <button type="button" class="btn" onClick=${onClose}>Cancel</button>
    </div>
  <//>`;
}

function StopDialog({ s, run, api, onClose }) {
  const [closeAll, setCloseAll] = useState(false);
  const [sending, setSending] = useState(false);
  const [err, setErr] = useState(null);
  const [reply, setReply] = useState(null);
  const confirm = async () => {
    setSending(true);
    setErr(null);
    try {
      const r = await run(
        "stop",
        () => api.action("POST", "/api/trading/emergency-stop", { close_all: closeAll, reason: "dashboard emergency stop" }),
        ["Emergency stop activated: trading halted", "Emergency stop sent again (already halted)"],
      );
      setReply({ ...r, close_all: closeAll });
    } catch (e) {
      setErr(e.message);
    } finally {
      setSending(false);
    }
  };
  return html`<${Dialog} title="Emergency stop" onClose=${onClose} className="dialog-stop">
    ${reply
      ? html`<${StopResult} s=${s} reply=${reply} />
          <div class="dialog-buttons"><button type="button" class="btn" onClick=${onClose}>Close</button></div>`
      : html`<p>Halts trading at once: queued entries are cancelled and the agent stops opening positions.</p>
          <label class="check"><input type="checkbox" checked=${closeAll} onChange=${(e) => setCloseAll(e.currentTarget.checked)} /> Close all positions</label>
          ${err && html`<p role="alert" class="form-error">${err}</p>`}
          <div class="dialog-buttons">
            <button type="button" class="btn btn-stop" disabled=${sending} aria-busy=${sending} onClick=${confirm}>${sending ? "Stopping…" : "Confirm stop"}</button>
            <button type="button" class="btn" onClick=${onClose}>Cancel</button>
          </div>`}
  <//>`;
}

function StopResult({ s, reply }) {
  const id = reply.command && reply.command.id;
  const c = (id && s.commands.get(id)) || (reply.command && { status: reply.command.status });
  const ev = s.lastStop && s.lastStop.halt_gen === reply.halt_gen ? s.lastStop : null;
  const res = (c && c.data) || {};
  const closed = res.closed || [];
  const failed = res.failed || [];
  const done = c && DONE.has(c.status);
  return html`<div class="stop-result">
    <p><strong>Trading ${s.mode || reply.mode}.</strong> ${reply.changed === false ? "It was already halted; the stop was sent again." : ""}</p>
    <ul>
      <li data-testid="stop-cancelled">Entries cancelled: ${ev ? ev.cancelled_commands : "…"}</li>
      <li data-testid="stop-command">Stop command: ${c ? c.status : "queued"}${c && c.reason ? " — " + c.reason : ""}</li>
      ${reply.close_all &&
      html`<li data-testid="stop-closed">Positions closed: ${done ? closed.length : "…"}${closed.length ? " (" + closed.join(", ") + ")" : ""}</li>
        <li data-testid="stop-failed" class=${failed.length ? "pnl-neg" : ""}>Positions failing: ${done ? failed.length : "…"}
          ${failed.length > 0 && html`<ul>${failed.map((f) => html`<li key=${f.ticket}>${f.ticket}: ${f.error}</li>`)}</ul>`}</li>
        <li>Positions still open: ${s.trades.filter((t) => t.status !== "pending").length}</li>`}
    </ul>
  </div>`;
}

