// The metrics view (owners): samples GET /api/v1/metrics (Prometheus
// text) every few seconds while it is shown and charts what changed since
// it was opened — requests per second, latency percentiles, runs by
// outcome, sandboxes ready and busy, memory — with the latest values in
// a table. It stops sampling as soon as the view is hidden; the server
// keeps no history for it.

import { APIError } from "/console/api.js";
import { parse, sum, sumBy, has, rate, buckets, quantile } from "/console/prom.js";
import { lines, legend } from "/console/chart.js";
import { cell, timeOf, ownersOnly } from "/console/dom.js";

let every = 5000; // ms between samples
const keep = 720; // samples kept: an hour at 5 s
let samples = [];
let timer = null;
let opened = 0;
// generation tells a sample in flight that the view was opened anew.
let generation = 0;

// sampleEvery changes the sampling interval (the browser tests sample
// faster than people need).
export function sampleEvery(ms) {
  every = Math.max(100, Number(ms) || 5000);
}

const charts = [
  { id: "requests", title: "Requests per second, by status" },
  { id: "latency", title: "Request latency percentiles (ms)" },
  { id: "runs", title: "Runs per minute, by outcome" },
  { id: "sandboxes", title: "Sandboxes ready and busy" },
  { id: "memory", title: "Server memory (MiB)" },
];

const outcomes = ["completed", "failed", "timeout", "cancelled"];

// reading is what the view keeps of one scrape.
function reading(t, text) {
  const { samples: s } = parse(text);
  const byClass = new Map();
  for (const [status, n] of sumBy(s, "runagent_http_requests_total", "status")) {
    const c = `${String(status)[0] || "?"}xx`;
    byClass.set(c, (byClass.get(c) || 0) + n);
  }
  return {
    t,
    requests: byClass,
    latency: buckets(s, "runagent_http_request_duration_seconds"),
    runs: sumBy(s, "runagent_invocations_total", "outcome"),
    ready: has(s, "runagent_pool_ready_sandboxes") ? sum(s, "runagent_pool_ready_sandboxes") : null,
    busy: has(s, "runagent_invocations_running") ? sum(s, "runagent_invocations_running") : null,
    rss: has(s, "process_resident_memory_bytes") ? sum(s, "process_resident_memory_bytes") : null,
    heap: has(s, "go_memstats_heap_inuse_bytes") ? sum(s, "go_memstats_heap_inuse_bytes") : null,
  };
}

async function scrape() {
  const res = await fetch("/api/v1/metrics", { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/plain" } });
  if (!res.ok) {
    let msg = `the metrics could not be read (HTTP ${res.status})`;
    try {
      const env = await res.json();
      if (env && env.error && env.error.message) msg = env.error.message;
    } catch {
      // Not JSON.
    }
    throw new APIError(res.status, "", msg);
  }
  return res.text();
}

// series derives the charts' series from the readings: counters as rates
// between consecutive readings, histograms as percentiles of what was
// observed between them, gauges as they were read.
function series() {
  const pairs = samples.slice(1).map((b, i) => [samples[i], b, (b.t - samples[i].t) / 1000]);
  const classes = [...new Set(samples.flatMap((r) => [...r.requests.keys()]))].sort();
  const mib = (v) => (v === null ? null : v / 1048576);
  return {
    requests: classes.map((c, i) => ({ key: c, name: c, cls: `s${[6, 4, 1, 0][Number(c[0]) - 2] ?? 10 + i}`,
      points: pairs.map(([a, b, dt]) => [b.t, rate(a.requests.get(c) || 0, b.requests.get(c) || 0, dt)]) })),
    latency: [["p50", 0.5, "s6"], ["p95", 0.95, "s1"], ["p99", 0.99, "s0"]].map(([name, q, cls]) => ({ key: name, name, cls,
      points: pairs.map(([a, b]) => {
        const v = quantile(q, a.latency, b.latency);
        return [b.t, v === null ? null : v * 1000];
      }) })),
    runs: outcomes.map((o, i) => ({ key: o, name: o, cls: ["s6", "s0", "s1", "s9"][i],
      points: pairs.map(([a, b, dt]) => {
        const r = rate(a.runs.get(o) || 0, b.runs.get(o) || 0, dt);
        return [b.t, r === null ? null : r * 60];
      }) })),
    sandboxes: [["ready", "ready", "s6"], ["busy", "busy (running)", "s1"]].map(([k, name, cls]) => ({ key: k, name, cls,
      points: samples.map((r) => [r.t, r[k]]) })),
    memory: [["rss", "resident", "s4"], ["heap", "Go heap in use", "s7"]].map(([k, name, cls]) => ({ key: k, name, cls,
      points: samples.map((r) => [r.t, mib(r[k])]) })),
  };
}

function fmt(v, digits = 2) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return Number(v.toFixed(digits)).toLocaleString();
}

function draw(root) {
  const all = series();
  const t0 = samples.length ? samples[0].t : opened;
  const t1 = samples.length ? samples[samples.length - 1].t : opened;
  for (const c of charts) {
    const s = all[c.id].filter((x) => x.points.some(([, v]) => v !== null));
    lines(root.querySelector(`#metric-${c.id}`), { title: c.title, series: s, t0, t1: Math.max(t1, t0 + every), format: (v) => fmt(v, 1) });
    legend(root.querySelector(`#metric-${c.id}-legend`), s);
  }
  // The latest values, as text.
  const last = (s) => {
    for (let i = s.points.length - 1; i >= 0; i--) if (s.points[i][1] !== null) return s.points[i][1];
    return null;
  };
  const rows = [];
  const add = (what, v, unit) => {
    const tr = document.createElement("tr");
    tr.dataset.metric = what;
    tr.append(cell(what, "Measure"), cell(v === null ? "not reported" : `${fmt(v)}${unit ? " " + unit : ""}`, "Latest"));
    rows.push(tr);
  };
  add("requests per second", all.requests.reduce((a, s) => a + (last(s) || 0), 0), "/s");
  for (const s of all.latency) add(`latency ${s.name}`, last(s), "ms");
  const latest = samples[samples.length - 1];
  for (const o of outcomes) add(`runs ${o} (total)`, latest ? latest.runs.get(o) || 0 : null, "");
  add("sandboxes ready", latest ? latest.ready : null, "");
  add("sandboxes busy", latest ? latest.busy : null, "");
  add("memory resident", latest && latest.rss !== null ? latest.rss / 1048576 : null, "MiB");
  add("Go heap in use", latest && latest.heap !== null ? latest.heap / 1048576 : null, "MiB");
  root.querySelector("#metrics-latest tbody").replaceChildren(...rows);
  root.querySelector("#metrics-note").replaceChildren(
    `Sampled every ${every / 1000} s while this page is shown, from when you opened it at `, timeOf(new Date(opened).toISOString()),
    `: ${samples.length} sample${samples.length === 1 ? "" : "s"}${samples.length >= keep ? " (the latest hour)" : ""}. ` +
      "Sampling stops when you leave the page. Rates are between consecutive samples; requests include the samples' own.");
  root.dataset.samples = String(samples.length);
}

function build(root) {
  const box = root.querySelector("#metrics-charts");
  box.replaceChildren(...charts.map((c) => {
    const fig = document.createElement("figure");
    fig.className = "chart";
    const cap = document.createElement("figcaption");
    cap.id = `metric-${c.id}-title`;
    cap.textContent = c.title;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.id = `metric-${c.id}`;
    svg.setAttribute("aria-labelledby", cap.id);
    const ul = document.createElement("ul");
    ul.className = "legend";
    ul.id = `metric-${c.id}-legend`;
    fig.append(cap, svg, ul);
    return fig;
  }));
}

// stop ends the sampling.
function stop() {
  clearTimeout(timer);
  timer = null;
}

async function tick(ctx, gen) {
  timer = null;
  // Hidden (another view, or signed out): stop, and ask for nothing more.
  if (gen !== generation || ctx.root.hidden) return;
  try {
    const text = await scrape();
    if (gen !== generation) return;
    samples.push(reading(Date.now(), text));
    if (samples.length > keep) samples.shift();
    draw(ctx.root);
  } catch (e) {
    if (e instanceof APIError && e.status === 401) {
      // The session ended: the shell returns to the sign-in and says why
      // (given no failed(), showing the view again meets the 401 and
      // does the same).
      if (ctx.failed) ctx.failed(e);
      else window.dispatchEvent(new HashChangeEvent("hashchange"));
      return;
    }
    ctx.say(`Metrics: ${e.message}`);
  }
  if (gen === generation && !ctx.root.hidden) timer = setTimeout(() => tick(ctx, gen), every);
}

export async function showMetrics(ctx) {
  stop();
  if (!ownersOnly(ctx, "The metrics")) return;
  if (!ctx.root.querySelector("#metrics-charts figure")) build(ctx.root);
  samples = [];
  opened = Date.now();
  const gen = ++generation;
  // The first sample now, so that errors reach the shell (a 401 signs
  // out); the rest on the timer.
  const text = await scrape();
  samples.push(reading(Date.now(), text));
  document.body.dataset.view = "metrics";
  draw(ctx.root);
  timer = setTimeout(() => tick(ctx, gen), every);
}
