// The WebSocket tester (dev mode only): its own /ws connection with the same token; send any
// JSON frame or a predefined one, and see every frame in and out.
import { html, useState, useEffect, useRef } from "./lib.js";
import { Stream } from "./stream.js";
import { time } from "./format.js";
import { connText } from "./header.js";

const MAX = 300;
const PRESETS = {
  ping: () => ({ type: "ping", data: { timestamp: new Date().toISOString() } }),
  subscribe: () => ({ type: "subscribe", data: { since: 0, types: ["*"] } }),
  ack: () => ({ type: "ack", data: { messageId: "evt_1" } }),
};

export function WsTester({ token }) {
  const [frames, setFrames] = useState([]);
  const [conn, setConn] = useState({ status: "disconnected", attempt: 0, max: 10, queued: 0 });
  const [text, setText] = useState(JSON.stringify(PRESETS.ping()));
  const [err, setErr] = useState(null);
  const stream = useRef(null);
  const n = useRef(0);
  useEffect(() => {
    const st = new Stream({
      token,
      onChange: setConn,
      onFrame: (dir, t) => {
        const shown = dir === "out" && t.includes('"authenticate"') ? t.replace(/"token":"[^"]*"/, '"token":"…"') : t;
        setFrames((f) => [...f, { id: ++n.current, dir, t: shown, at: new Date().toISOString() }].slice(-MAX));
      },
    });
    stream.current = st;
    st.start();
    return () => st.stop();
  }, [token]);
  const send = () => {
    try {
      const v = JSON.parse(text);
      setErr(null);
      stream.current.send(JSON.stringify(v));
    } catch (e) {
      setErr("Not JSON: " + e.message);
    }
  };
  return html`<section class="panel tester" aria-label="WebSocket tester">
    <div class="panel-head"><h2>WebSocket tester</h2>
      <span class=${"conn-ind conn-" + conn.status}><span class="conn-dot" aria-hidden="true"></span>${connText(conn)}</span>
      ${conn.queued > 0 && html`<span class="queued">${conn.queued} queued</span>`}
      <button type="button" class="btn btn-small" onClick=${() => stream.current.retry()}>Reconnect</button>
    </div>
    <div class="tester-body">
      <div class="tester-send">
        <label for="ws-frame">Frame (JSON)</label>
        <textarea id="ws-frame" rows="4" spellcheck="false" value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
        ${err && html`<p role="alert" class="form-error">${err}</p>`}
        <div class="row">
          <button type="button" class="btn btn-primary" onClick=${send}>Send</button>
          ${Object.keys(PRESETS).map((k) => html`<button type="button" class="btn btn-small" key=${k} onClick=${() => setText(JSON.stringify(PRESETS[k]()))}>${k}</button>`)}
          <button type="button" class="btn btn-small" onClick=${() => setFrames([])}>Clear</button>
        </div>
      </div>
      <ol class="frames" aria-label="Frames" tabindex="0">
        ${frames.map((f) => html`<li key=${f.id} class=${"frame frame-" + f.dir}><span class="muted">${time(f.at)} ${f.dir === "in" ? "←" : "→"}</span> <code>${f.t}</code></li>`)}
      </ol>
    </div>
  </section>`;
}
