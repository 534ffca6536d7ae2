// Number and time formats (Intl formatters made once).
const nfs = new Map();
function nf(d, group) {
  const k = d * 2 + (group ? 1 : 0);
  let f = nfs.get(k);
  if (!f) nfs.set(k, (f = new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d, useGrouping: group })));
  return f;
}
export const DASH = "—";
const ok = (v) => typeof v === "number" && isFinite(v);
// a quote's digits: 1.08528 → 5, 151.234 → 3, 2345.61 → 2
export const digitsOf = (p) => (!ok(p) ? 5 : Math.abs(p) < 10 ? 5 : Math.abs(p) < 1000 ? 3 : 2);
export const price = (v, d) => (ok(v) ? nf(d, false).format(v) : DASH);
export const money = (v) => (ok(v) ? nf(2, true).format(v) : DASH);
// a volume step's decimals (0.01 → 2), at least 2
export const stepDigits = (s) => (ok(s) && s > 0 ? Math.max(2, Math.min(8, Math.ceil(-Math.log10(s) - 1e-9))) : 2);
export const lots = (v, d = 2) => price(v, d);
export const count = (x) => (Array.isArray(x) ? x.length : x ?? 0);
export const pnlClass = (v) => (!ok(v) || v === 0 ? "" : v > 0 ? "pnl-pos" : "pnl-neg");
export const dtf = (o) => new Intl.DateTimeFormat(undefined, { hour12: false, ...o });
const D2 = "2-digit", day = dtf({ hour: D2, minute: D2, second: D2 }), full = dtf({ month: D2, day: D2, hour: D2, minute: D2 });
const times = new Map();
export function time(iso) {
  if (!iso) return DASH;
  let s = times.get(iso);
  if (s === undefined) {
    const t = new Date(iso);
    if (isNaN(t)) return String(iso);
    s = (t.toDateString() === new Date().toDateString() ? day : full).format(t);
    if (times.size > 2000) times.clear();
    times.set(iso, s);
  }
  return s;
}
