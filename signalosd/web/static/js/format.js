// Number and time formatting shared by the shell and the panels.
const cache = new Map();
const nf = (d) => {
  let f = cache.get(d);
  if (!f) cache.set(d, (f = new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })));
  return f;
};
const ok = (v) => typeof v === "number" && Number.isFinite(v);
export const money = (v) => (ok(v) ? nf(2).format(v) : "—");
export const signedMoney = (v) => (ok(v) ? (v > 0 ? "+" : "") + nf(2).format(v) : "—");
export const num = (v, d = 2) => (ok(v) ? nf(d).format(v) : "—");
// Digits of a symbol's price: MT5 gives them per symbol; without that, the usual conventions.
export function digitsOf(symbol, value) {
  const s = String(symbol || "").toUpperCase();
  if (/JPY/.test(s)) return 3;
  if (/^(XAU|XAG|BTC|ETH)|(US|DE|UK|JP)\d{2,3}|NAS|SPX|DAX|OIL/.test(s)) return 2;
  if (/^[A-Z]{6}$/.test(s)) return 5;
  if (ok(value)) {
    const m = String(value).split(".")[1];
    return Math.min(m ? m.length : 2, 5);
  }
  return 5;
}
export const price = (v, symbol) => (ok(v) ? v.toFixed(digitsOf(symbol, v)) : "—");
export const volume = (v) => (ok(v) ? String(+v.toFixed(2)) : "—");
export const pct = (v) => (ok(v) ? nf(2).format(v) + " %" : "—");
const pad = (n) => String(n).padStart(2, "0");
export function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(iso)}`;
}
export const pnlClass = (v) => (ok(v) ? (v > 0 ? "pnl-pos" : v < 0 ? "pnl-neg" : "pnl-zero") : "");
