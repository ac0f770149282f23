// The security events view (owners): a chart of the events over time by
// type, from the counts the server makes per time bucket (GET
// /api/v1/events/counts), with the same numbers in a table; and a page of
// the events themselves (GET /api/v1/events, newest first, paged by
// offset), both under one set of filters.

import { cell, timeCell, timeOf, button, definitions, toggleDetail, when, ownersOnly } from "/console/dom.js";
import { stackedBars, legend } from "/console/chart.js";

// types are core.AllEventTypes, in order: a type's index picks its colour.
const types = ["auth_failure", "rate_limit_exceeded", "client_blocked", "input_rejected", "sandbox_violation",
  "egress_denied", "key_created", "key_rotated", "key_revoked", "config_changed", "privilege_refused",
  "alert_fired", "user_denied"];
// ranges are the times the chart can show: [seconds, bucket seconds].
const ranges = { "1h": [3600, 150], "24h": [86400, 3600], "7d": [7 * 86400, 6 * 3600], "30d": [30 * 86400, 86400] };
const pageSize = 25;
let offset = 0;
let wired = false;
// shown is the query of the chart and page shown: paging keeps its time.
let shown = null;

function classOf(type) {
  const i = types.indexOf(type);
  return `s${i < 0 ? types.length : i}`;
}

// filters reads the form: the query of both calls, without paging.
function filters(root) {
  const form = root.querySelector("#events-filter");
  const p = new URLSearchParams();
  for (const name of ["type", "severity", "principal", "ip", "agent_id"]) {
    const v = form.elements[name].value.trim();
    if (v) p.set(name, v);
  }
  const [secs, bucket] = ranges[form.elements.range.value] || ranges["24h"];
  // Buckets end at a whole bucket from now, so that they start at round
  // times (in UTC).
  const until = new Date(Math.ceil(Date.now() / (bucket * 1000)) * bucket * 1000);
  p.set("since", new Date(until.getTime() - secs * 1000).toISOString());
  p.set("until", until.toISOString());
  return p;
}

// countsQuery is the chart's query: the filters and the bucket.
function countsQuery(p, root) {
  const q = new URLSearchParams(p);
  const [, bucket] = ranges[root.querySelector("#events-filter").elements.range.value] || ranges["24h"];
  q.set("bucket", String(bucket));
  return q;
}

// shortLabel names a bucket under the chart, as when() writes its start:
// "12-07" for a day, "20:00" for less.
function shortLabel(start, secs) {
  const w = when(new Date(start).toISOString());
  return secs >= 86400 ? w.slice(5, 10) : w.slice(11, 16);
}

async function drawChart(ctx, p) {
  const root = ctx.root;
  const data = await ctx.request("GET", `/api/v1/events/counts?${countsQuery(p, root)}`);
  const secs = data.bucket_seconds;
  const since = new Date(data.since).getTime();
  const until = new Date(data.until).getTime();
  const n = Math.ceil((until - since) / (secs * 1000));
  const buckets = [];
  for (let i = 0; i < n; i++) {
    const start = since + i * secs * 1000;
    buckets.push({ start, label: when(new Date(start).toISOString()), short: shortLabel(start, secs), values: new Map() });
  }
  const seen = new Set();
  let total = 0;
  for (const c of data.counts || []) {
    const i = Math.floor((new Date(c.start).getTime() - since) / (secs * 1000));
    if (i < 0 || i >= n) continue;
    buckets[i].values.set(c.type, (buckets[i].values.get(c.type) || 0) + c.count);
    seen.add(c.type);
    total += c.count;
  }
  const series = [...seen].sort((a, b) => types.indexOf(a) - types.indexOf(b)).map((t) => ({ key: t, name: t, cls: classOf(t) }));
  const per = secs >= 3600 ? `${secs / 3600} h` : secs >= 60 ? `${secs / 60} min` : `${secs} s`;
  root.querySelector("#events-chart-title").replaceChildren(`Security events per ${per} by type, ${total} in all, `,
    timeOf(data.since), " to ", timeOf(data.until));
  stackedBars(root.querySelector("#events-chart"), { title: `Security events per ${per} by type`, buckets, series });
  legend(root.querySelector("#events-legend"), series);

  // The same numbers as text: one row per bucket that has events.
  const head = document.createElement("tr");
  const th = (text) => {
    const e = document.createElement("th");
    e.scope = "col";
    e.textContent = text;
    return e;
  };
  head.append(th("From"), ...series.map((s) => th(s.name)), th("All"));
  root.querySelector("#events-counts thead").replaceChildren(head);
  const rows = [];
  for (const b of buckets) {
    if (b.values.size === 0) continue;
    const tr = document.createElement("tr");
    let all = 0;
    tr.append(timeCell(new Date(b.start).toISOString(), "From"));
    for (const s of series) {
      const v = b.values.get(s.key) || 0;
      all += v;
      tr.append(cell(v, s.name));
    }
    tr.append(cell(all, "All"));
    rows.push(tr);
  }
  root.querySelector("#events-counts tbody").replaceChildren(...rows);
  root.querySelector("#events-counts-empty").hidden = rows.length !== 0;
}

function row(ev) {
  const tr = document.createElement("tr");
  tr.dataset.eventId = ev.event_id;
  const type = cell("", "Type");
  const sw = document.createElement("span");
  sw.className = `swatch ${classOf(ev.type)}`;
  sw.setAttribute("aria-hidden", "true");
  type.append(sw, document.createTextNode(ev.type));
  tr.append(timeCell(ev.time, "Time"), type, cell(ev.severity, "Severity", `sev-${ev.severity}`),
    cell(ev.principal, "Principal", "mono"), cell(ev.ip, "IP", "mono"), cell(ev.message, "Message", "message"));
  const td = document.createElement("td");
  const more = button("Details", () => toggleDetail(tr, more, () => detail(ev)), { label: `Details of the ${ev.type} event at ${when(ev.time)}` });
  more.className = "plain";
  more.setAttribute("aria-expanded", "false");
  td.append(more);
  tr.append(td);
  return tr;
}

function detail(ev) {
  const pairs = [["Event id", ev.event_id], ["Agent", ev.agent_id], ["Invocation", ev.invocation_id], ["Request id", ev.request_id]];
  for (const [k, v] of Object.entries(ev.details || {})) pairs.push([k, v]);
  return definitions(pairs);
}

async function listEvents(ctx, p) {
  const root = ctx.root;
  const q = new URLSearchParams(p);
  q.set("limit", String(pageSize));
  q.set("offset", String(offset));
  const data = await ctx.request("GET", `/api/v1/events?${q}`);
  const evs = data.events || [];
  if (evs.length === 0 && offset > 0) {
    // Fewer events than when the page was counted: back one page.
    offset = Math.max(0, offset - pageSize);
    return listEvents(ctx, p);
  }
  root.querySelector("#events-body").replaceChildren(...evs.map(row));
  root.querySelector("#events-empty").hidden = evs.length !== 0;
  root.querySelector("#events-page").textContent = evs.length ? `${offset + 1}–${offset + evs.length}` : "";
  root.querySelector("#events-prev").disabled = offset === 0;
  root.querySelector("#events-next").disabled = evs.length < pageSize;
}

async function load(ctx) {
  const p = filters(ctx.root);
  shown = p;
  await Promise.all([drawChart(ctx, p), listEvents(ctx, p)]);
  document.body.dataset.view = "events";
}

function wire(ctx) {
  const root = ctx.root;
  const sel = root.querySelector("#events-type");
  for (const t of types) {
    const o = document.createElement("option");
    o.value = t;
    o.textContent = t;
    sel.append(o);
  }
  const again = () => load(ctx).catch((e) => ctx.say(e.message));
  const form = root.querySelector("#events-filter");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    offset = 0;
    again();
  });
  form.addEventListener("reset", () => {
    offset = 0;
    setTimeout(again);
  });
  root.querySelector("#events-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - pageSize);
    listEvents(ctx, shown).catch((e) => ctx.say(e.message));
  });
  root.querySelector("#events-next").addEventListener("click", () => {
    offset += pageSize;
    listEvents(ctx, shown).catch((e) => ctx.say(e.message));
  });
}

export async function showEvents(ctx) {
  if (!ownersOnly(ctx, "The security log")) return;
  if (!wired) {
    wire(ctx);
    wired = true;
  }
  await load(ctx);
}
