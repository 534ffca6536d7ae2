// The row actions' dialogs: checked first, a refusal shown inside.
import { html, useState } from "./lib.js";
import { Dialog, Form as Confirmed } from "./dialogs.js";
import { digitsOf, price, stepDigits, lots } from "./trade_fmt.js";

const NUM = /^\s*-?(\d+\.?\d*|\.\d+)\s*$/;
const num = (s) => (NUM.test(s) ? parseFloat(s) : NaN);
const str = (v) => (v == null ? "" : String(v));

function Field({ id, label, value, set, hint }) {
  return html`<div class="tp-f"><label for=${id}>${label}</label><input id=${id} type="text" inputmode="decimal" autocomplete="off"
value=${value} onInput=${(e) => set(e.currentTarget.value)} aria-describedby=${hint ? id + "-h" : undefined}/>
${hint && html`<small id=${id + "-h"}>${hint}</small>`}</div>`;
}

// check(): { problem } (shown, nothing sent) or { body } to send
function Form({ submit, send, check, ...p }) {
  const go = () => {
    const r = check();
    if (r.problem) throw new Error(r.problem);
    return send(r.body);
  };
  return html`<${Confirmed} label=${submit} go=${go} ...${p} />`;
}

function CloseForm({ t, send, onClose }) {
  return html`<${Form} submit="Confirm close" send=${send} onClose=${onClose} check=${() => ({ body: {} })}>
<p>Close trade ${t.id} (${t.symbol} ${t.side} ${lots(t.volume, stepDigits(t.volume_step))} lots) at the market price?</p><//>`;
}

function PartialForm({ t, send, onClose }) {
  const step = t.volume_step > 0 ? t.volume_step : 0.01, min = t.volume_min ?? step, sd = stepDigits(step);
  const floor = (v) => +(Math.floor(v / step + 1e-9) * step).toFixed(sd);
  const [pct, setPct] = useState("50");
  const [vol, setVol] = useState(() => floor(t.volume / 2).toFixed(sd));
  const [by, setBy] = useState("fraction");
  const onPct = (v) => { setPct(v); setBy("fraction"); const n = num(v); setVol(isNaN(n) ? "" : floor((t.volume * n) / 100).toFixed(sd)); };
  const onVol = (v) => { setVol(v); setBy("volume"); const n = num(v); setPct(isNaN(n) || !t.volume ? "" : String(+((n / t.volume) * 100).toFixed(1))); };
  const want = by === "fraction" ? (t.volume * num(pct)) / 100 : num(vol);
  const close = floor(want), rest = +(t.volume - close).toFixed(sd);
  const check = () => {
    if (!(want > 0)) return { problem: "Enter a percent above 0 or a volume in lots to close." };
    if (close < min - 1e-9) return { problem: `Closing ${close} lots (rounded down to the volume step ${step}) is below the minimum volume ${min}: close a larger part or the whole trade.` };
    if (rest < min - 1e-9) return { problem: `The remaining ${rest} lots would fall below the minimum volume ${min}: close the whole trade instead.` };
    return { body: by === "fraction" ? { fraction: num(pct) / 100 } : { volume: close } };
  };
  return html`<${Form} submit="Confirm partial close" send=${send} onClose=${onClose} check=${check}>
<p>Trade ${t.id}: ${t.symbol} ${t.side} ${lots(t.volume, sd)} lots (step ${step}, minimum ${min}).</p>
<${Field} id="tp-f-pct" label="Percent to close" value=${pct} set=${onPct}/>
<${Field} id="tp-f-vol" label="Volume to close" value=${vol} set=${onVol} hint="lots, rounded down to the volume step"/>
${want > 0 && html`<p class="tp-hint">Closes ${lots(close, sd)} lots, leaves ${lots(rest, sd)}.</p>`}<//>`;
}

function side(t, sl, tp) {
  const p = t.current_price, buy = t.side === "buy", w = [];
  if (typeof p !== "number") return w;
  const ps = price(p, digitsOf(p));
  if (!isNaN(sl) && (buy ? sl >= p : sl <= p)) w.push(`Stop loss ${sl} is not ${buy ? "below" : "above"} the current price ${ps} for a ${t.side}.`);
  if (!isNaN(tp) && (buy ? tp <= p : tp >= p)) w.push(`Take profit ${tp} is not ${buy ? "above" : "below"} the current price ${ps} for a ${t.side}.`);
  return w;
}

function ModifyForm({ t, send, onClose }) {
  const [sl, setSl] = useState(str(t.sl));
  const [tp, setTp] = useState(str(t.tp));
  const lv = (s) => (s.trim() === "" ? null : num(s));
  const warn = side(t, lv(sl) ?? NaN, lv(tp) ?? NaN);
  const check = () => {
    const a = lv(sl), b = lv(tp);
    if (Number.isNaN(a) || Number.isNaN(b)) return { problem: "Stop loss and take profit must be prices (numbers), or empty to remove them." };
    return { body: { sl: a, tp: b } };
  };
  return html`<${Form} submit="Save levels" send=${send} onClose=${onClose} check=${check}>
<p>Trade ${t.id}: ${t.symbol} ${t.side}, price now ${price(t.current_price, digitsOf(t.open_price))}. Empty removes a level.</p>
<${Field} id="tp-f-sl" label="Stop loss" value=${sl} set=${setSl}/>
<${Field} id="tp-f-tp" label="Take profit" value=${tp} set=${setTp}/>
${warn.length > 0 && html`<p class="tp-warn">${warn.join(" ")} The row's price may lag the broker's: it is sent anyway and the daemon decides.</p>`}<//>`;
}

function TrailForm({ t, send, onClose }) {
  const cur = t.trailing && typeof t.trailing === "object" ? t.trailing : { distance: t.trailing };
  const [dist, setDist] = useState(str(cur.distance));
  const [step, setStep] = useState(str(cur.step));
  const check = () => {
    const d = num(dist), s = step.trim() === "" ? null : num(step);
    if (!(d > 0)) return { problem: "Distance must be a price distance above 0 (e.g. 0.0020 for 20 pips on EURUSD)." };
    if (s !== null && !(s > 0 && s <= d)) return { problem: "Step must be above 0 and at most the distance, or empty." };
    return { body: s === null ? { distance: d } : { distance: d, step: s } };
  };
  return html`<${Form} submit="Start trailing" send=${send} onClose=${onClose} check=${check}>
<p>Trade ${t.id}: ${t.symbol} ${t.side}. The stop follows the price at this distance (price units).</p>
<${Field} id="tp-f-dist" label="Distance" value=${dist} set=${setDist}/>
<${Field} id="tp-f-step" label="Step" value=${step} set=${setStep} hint="optional, at most the distance"/><//>`;
}

const KINDS = {
  close: ["Close trade", CloseForm, "POST", "close"],
  partial: ["Partial close", PartialForm, "POST", "partial-close"],
  modify: ["Modify stop loss and take profit", ModifyForm, "PUT", "modify"],
  trail: ["Trailing stop", TrailForm, "POST", "trailing-stop"],
};
export const ACTION_PATH = (kind, id) => [KINDS[kind][2], `/api/trades/${id}/${KINDS[kind][3]}`];

// send(body) resolves when accepted, throws if refused
export function TradeDialog({ kind, t, send, onClose }) {
  const [title, F] = KINDS[kind];
  return html`<${Dialog} title=${`${title} · trade ${t.id}`} onClose=${onClose}>
${t.status !== "open" && html`<p class="tp-warn">This trade is ${t.status} now.</p>`}
<${F} t=${t} send=${send} onClose=${onClose}/><//>`;
}
