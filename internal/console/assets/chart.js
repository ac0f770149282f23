// Small SVG charts for the console: stacked bars (events per type per
// time bucket) and lines (metrics over time). Drawn with createElementNS
// and attributes only — no inline style, no markup strings — so the
// console's CSP stays strict and no label can become markup. Colours
// come from CSS classes (app.css: .s0 … .s12). Every chart is an image
// with a title; the views put the same numbers in a text table.

import { when } from "/console/dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 220;
const pad = { left: 52, right: 10, top: 10, bottom: 28 };

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// frame empties svg and draws its axes; returns y(v) for values 0..max.
function frame(svg, title, max, format) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.append(el("title", {}, title));
  const y = (v) => pad.top + (H - pad.top - pad.bottom) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(el("line", { x1: pad.left, x2: W - pad.right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: pad.left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, format(v)));
  }
  return y;
}

// stackedBars draws one bar per bucket, stacked by series:
// buckets: [{label, values: Map(series → n)}]; series: [{key, name, cls}].
export function stackedBars(svg, { title, buckets, series, format = String }) {
  let max = 0;
  for (const b of buckets) {
    let t = 0;
    for (const v of b.values.values()) t += v;
    max = Math.max(max, t);
  }
  max = niceMax(max);
  const y = frame(svg, title, max, format);
  const n = Math.max(buckets.length, 1);
  const slot = (W - pad.left - pad.right) / n;
  const bw = Math.max(1, slot * 0.8);
  buckets.forEach((b, i) => {
    const x = pad.left + i * slot + (slot - bw) / 2;
    let acc = 0;
    for (const s of series) {
      const v = b.values.get(s.key) || 0;
      if (!v) continue;
      const r = el("rect", { x: x.toFixed(1), y: y(acc + v).toFixed(1), width: bw.toFixed(1),
        height: Math.max(0.5, y(acc) - y(acc + v)).toFixed(1), class: `bar ${s.cls}` });
      r.dataset.series = s.key;
      r.dataset.count = String(v);
      r.append(el("title", {}, `${s.name}: ${v} (${b.label})`));
      svg.append(r);
      acc += v;
    }
  });
  // A few time labels along the bottom.
  const every = Math.max(1, Math.ceil(n / 6));
  buckets.forEach((b, i) => {
    if (i % every !== 0) return;
    svg.append(el("text", { x: pad.left + i * slot + slot / 2, y: H - 8, class: "tick", "text-anchor": "middle" }, b.short || b.label));
  });
}

// lines draws series of points over time: series: [{key, name, cls,
// points: [[t (ms), v or null]]}], from t0 to t1; null breaks a line.
export function lines(svg, { title, series, t0, t1, format = String }) {
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v !== null && Number.isFinite(v)) max = Math.max(max, v);
  max = niceMax(max);
  const y = frame(svg, title, max, format);
  const span = Math.max(t1 - t0, 1);
  const x = (t) => pad.left + (W - pad.left - pad.right) * ((t - t0) / span);
  for (const s of series) {
    let d = "";
    let pen = "M";
    let count = 0;
    for (const [t, v] of s.points) {
      if (v === null || !Number.isFinite(v)) { pen = "M"; continue; }
      d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
      count++;
    }
    if (!d) continue;
    const p = el("path", { d: d.trim(), class: `line ${s.cls}` });
    p.dataset.series = s.key;
    p.dataset.points = String(count);
    p.append(el("title", {}, s.name));
    svg.append(p);
    if (count === 1) {
      // A lone point has no line to show it.
      const [t, v] = s.points.find(([, v]) => v !== null && Number.isFinite(v));
      svg.append(el("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3, class: `dot ${s.cls}` }));
    }
  }
  // The ends' times of day, as when() writes them.
  const clock = (t) => when(new Date(t).toISOString()).slice(11);
  svg.append(el("text", { x: pad.left, y: H - 8, class: "tick" }, clock(t0)));
  svg.append(el("text", { x: W - pad.right, y: H - 8, class: "tick", "text-anchor": "end" }, clock(t1)));
}

// legend fills ul with the series' names beside their colours.
export function legend(ul, series) {
  ul.replaceChildren(...series.map((s) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = `swatch ${s.cls}`;
    sw.setAttribute("aria-hidden", "true");
    li.append(sw, document.createTextNode(s.name));
    return li;
  }));
}
