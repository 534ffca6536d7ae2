// The WebSocket tester (--dev): its own /ws, every frame.
import { html, useState, useEffect, useRef } from "./lib.js";
import { Stream } from "./stream.js";
import { time } from "./trade_fmt.js";
import { Connection } from "./header.js";

const PRESETS = {
  ping: () => ({ type: "ping", data: { timestamp: new Date().toISOString() } }),
  subscribe: () => ({ type: "subscribe", data: { since: 0, types: ["*"] } }),
  ack: () => ({ type: "ack", data: { messageId: "evt_1" } }),
};
let n = 0;

export function WsTester({ token }) {
  const [frames, setFrames] = useState([]);
  const [conn, setConn] = useState({ status: "disconnected", max: 10 });
  const [text, setText] = useState(JSON.stringify(PRESETS.ping()));
  const [err, setErr] = useState(null);
  const st = useRef(null);
  useEffect(() => {
    const s = (st.current = new Stream({ token, onChange: setConn,
      onFrame: (dir, t) => setFrames((f) => [...f.slice(-299), { id: ++n, dir, t: t.replace(/("token":")[^"]*/, "$1…"), at: new Date().toISOString() }]) }));
    s.start();
    return () => s.stop();
  }, [token]);
  const send = () => {
    try {
      st.current.send(JSON.stringify(JSON.parse(text)));
      setErr(null);
    } catch (e) {
      setErr("Not JSON: " + e.message);
    }
  };
  return html`<section class="panel" aria-label="WebSocket tester">
    <div class="panel-head"><h2>WebSocket tester</h2><${Connection} conn=${conn} live=${false} onRetry=${() => st.current.retry()} /></div>
    <div class="tester">
      <div class="tester-send">
        <label for="ws-frame">Frame (JSON)</label>
        <textarea id="ws-frame" rows="4" spellcheck="false" value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
        ${err && html`<p role="alert" class="form-error">${err}</p>`}
        <div class="row">
          <button class="btn btn-primary" onClick=${send}>Send</button>
          ${Object.keys(PRESETS).map((k) => html`<button class="btn btn-small" key=${k} onClick=${() => setText(JSON.stringify(PRESETS[k]()))}>${k}</button>`)}
        </div>
      </div>
      <ol class="frames" aria-label="Frames" tabindex="0">
        ${frames.map((f) => html`<li key=${f.id} class=${"frame-" + f.dir}><span class="muted">${time(f.at)} ${f.dir === "in" ? "←" : "→"}</span> <code>${f.t}</code></li>`)}
      </ol>
    </div>
  </section>`;
}
