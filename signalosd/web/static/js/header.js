// The header; the connection is the only role=status.
import { html } from "./lib.js";
import { time } from "./trade_fmt.js";

export const connText = (c) => c.status + (c.status !== "connected" && c.attempt ? ` · attempt ${c.attempt}/${c.max}` : "");

export function Connection({ conn: c, onRetry, live = true }) {
  return html`<div class="conn">
    <span class=${"conn-ind conn-" + c.status} role=${live ? "status" : undefined}><span class="conn-dot"></span>${connText(c)}</span>
    ${c.detail && c.status !== "connected" && html`<span class="conn-detail muted">${c.detail}</span>`}
    ${c.queued > 0 && html`<span class="queued">${c.queued} queued</span>`}
    ${(c.status === "error" || c.status === "disconnected" || !live) && html`<button class="btn btn-small" onClick=${onRetry}>${live ? "Retry" : "Reconnect"}</button>`}
  </div>`;
}

const ind = (label, id, text, cls) => html`<div class=${"ind " + cls}><dt>${label}</dt><dd data-testid=${id}>${text}</dd></div>`;

export function Header({ conn, s: { account, role, mode, stealth, agent: a, mt5: m }, onRetry, onSignOut }) {
  return html`<header class="top">
    <div class="brand">SignalOS${account && html`<span class="acct">${account}${role ? " · " + role : ""}</span>`}</div>
    <${Connection} conn=${conn} onRetry=${onRetry} />
    <dl class="inds">
      ${ind("Mode", "mode", mode || "…", "mode-" + mode)}
      ${ind("Stealth", "stealth", stealth ? "on" : "off", stealth ? "ind-on" : "")}
      ${ind("Agent", "agent", !a ? "unknown" : (a.connected ? "connected" : "disconnected") + (a.last_seen ? " · last seen " + time(a.last_seen) : ""), a && a.connected ? "ind-ok" : "ind-bad")}
      ${ind("MT5", "mt5", !m ? "no status" : (m.connected ? "connected" : "disconnected") + (m.connected && m.trade_allowed === false ? " · trading not allowed" : "") + (m.ping_ms != null ? ` · ${Math.round(m.ping_ms)} ms` : ""),
        m && m.connected && m.trade_allowed !== false ? "ind-ok" : "ind-bad")}
    </dl>
    <button class="btn btn-small signout" onClick=${onSignOut}>Sign out</button>
  </header>`;
}
