// The header: the connection indicator (the page's only role=status), mode, stealth, agent,
// MT5 and Sign out.
import { html } from "./lib.js";
import { time, num } from "./format.js";

export function connText(c) {
  let t = c.status;
  if (c.status === "connecting" && c.attempt) t += ` · attempt ${c.attempt}/${c.max}`;
  else if (c.status === "error") t += ` · stopped after ${c.max} attempts`;
  return t;
}

export function Connection({ conn, onRetry }) {
  return html`<div class="conn">
    <span class=${"conn-ind conn-" + conn.status} role="status" title=${conn.detail || ""}>
      <span class="conn-dot" aria-hidden="true"></span>${connText(conn)}
    </span>
    ${conn.queued > 0 && html`<span class="queued">${conn.queued} queued</span>`}
    ${(conn.status === "error" || conn.status === "disconnected") &&
    html`<button type="button" class="btn btn-small" onClick=${onRetry}>Retry</button>`}
  </div>`;
}

const agentText = (a) =>
  !a ? "unknown" : (a.connected ? "connected" : "disconnected") + (a.last_seen ? " · last seen " + time(a.last_seen) : "");

function mt5Text(m) {
  if (!m) return "no status";
  let t = m.connected ? "connected" : "disconnected";
  if (m.connected && m.trade_allowed === false) t += " · trading not allowed";
  if (m.ping_ms != null) t += ` · ${num(m.ping_ms, 0)} ms`;
  return t;
}

export function Header({ conn, s, onRetry, onSignOut }) {
  const agentOk = s.agent && s.agent.connected;
  const mt5Ok = s.mt5 && s.mt5.connected && s.mt5.trade_allowed !== false;
  return html`<header class="top">
    <div class="brand">SignalOS${s.account && html`<span class="acct">${s.account}${s.role ? " · " + s.role : ""}</span>`}</div>
    <${Connection} conn=${conn} onRetry=${onRetry} />
    <dl class="inds">
      <div class=${"ind mode-" + (s.mode || "unknown")}><dt>Mode</dt><dd data-testid="mode">${s.mode || "…"}</dd></div>
      <div class=${"ind " + (s.stealth ? "ind-on" : "")}><dt>Stealth</dt><dd data-testid="stealth">${s.stealth ? "on" : "off"}</dd></div>
      <div class=${"ind " + (agentOk ? "ind-ok" : "ind-bad")}><dt>Agent</dt><dd data-testid="agent">${agentText(s.agent)}</dd></div>
      <div class=${"ind " + (mt5Ok ? "ind-ok" : "ind-bad")}><dt>MT5</dt><dd data-testid="mt5">${mt5Text(s.mt5)}</dd></div>
    </dl>
    <button type="button" class="btn btn-small signout" onClick=${onSignOut}>Sign out</button>
  </header>`;
}
