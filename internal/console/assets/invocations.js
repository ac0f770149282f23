// The invocations view: one page of the runs the caller may see, from
// GET /api/v1/invocations (filtered and paged by cursor on the server),
// and one run's detail (#invocations/<id>): input, output, logs, error,
// its timeline, live updates while it runs (its stream rejoined over
// Server-Sent Events, or a long poll for a plain call) and Cancel.
// Everything from the API is set as text. Agents show by name (the API
// sends agent_name beside agent_id), times as dom.js when() writes them.

import { agentLink, timeOf } from "/console/dom.js";

const pageSize = 25;
const columns = ["Invocation", "Created", "Agent", "Entrypoint", "Status", "User", "Duration"];

// The list's state: its filters and the cursors of the pages before the
// one shown (cursors[0] is "" for the first page).
let filters = {};
let cursors = [""];
let page = 0;
let agentsLoaded = false;

// live is what updates the open detail (an EventSource or a poll's
// AbortController); it is closed whenever the view is shown again.
let live = null;

function stopLive() {
  if (live) live.close();
  live = null;
}

const el = (tag, text, className) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
};


function duration(ms) {
  if (ms === undefined || ms === null) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function pretty(raw) {
  if (raw === undefined || raw === null) return "";
  return JSON.stringify(raw, null, 2);
}

// cancelledBy is who cancelled a run through the API, as its error
// message records it ("cancelled by key:… (POST …/cancel)").
function cancelledBy(inv) {
  if (inv.status !== "cancelled") return "";
  const m = /^cancelled by (\S+)/.exec(inv.error_message || "");
  return m ? m[1] : "";
}

export async function showInvocations(ctx) {
  stopLive();
  const root = ctx.root;
  const id = ctx.path || "";
  root.querySelector("#inv-list").hidden = !!id;
  root.querySelector("#inv-detail").hidden = !id;
  if (id) return showDetail(ctx, decodeURIComponent(id));
  await loadAgents(ctx);
  wireFilters(ctx);
  return showList(ctx);
}

// loadAgents fills the agent filter once (the agents the caller may see).
async function loadAgents(ctx) {
  if (agentsLoaded) return;
  const data = await ctx.request("GET", "/api/v1/agents?limit=100");
  const sel = ctx.root.querySelector("#inv-agent");
  for (const a of data.agents) {
    const o = el("option", `${a.agent_name} (${a.agent_id.slice(0, 8)})`);
    o.value = a.agent_id;
    sel.append(o);
  }
  agentsLoaded = true;
}

function wireFilters(ctx) {
  const form = ctx.root.querySelector("#inv-filter");
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const v = (id) => ctx.root.querySelector(id).value.trim();
    const iso = (s) => (s ? new Date(s).toISOString() : "");
    filters = { agent_id: v("#inv-agent"), status: v("#inv-status"), user_id: v("#inv-user"), since: iso(v("#inv-since")), until: iso(v("#inv-until")) };
    cursors = [""];
    page = 0;
    showList(ctx).catch((e) => ctx.say(e.message));
  };
}

async function showList(ctx) {
  const root = ctx.root;
  const q = new URLSearchParams({ limit: String(pageSize) });
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  if (cursors[page]) q.set("cursor", cursors[page]);
  const data = await ctx.request("GET", `/api/v1/invocations?${q}`);
  const rows = data.invocations.map((inv) => {
    const tr = el("tr");
    tr.dataset.invocationId = inv.invocation_id;
    const open = el("a", inv.invocation_id, "mono");
    open.href = `#invocations/${encodeURIComponent(inv.invocation_id)}`;
    const first = el("td");
    first.append(open);
    const status = el("td");
    status.append(el("span", inv.status, `badge ${inv.status}`));
    const created = el("td", undefined, "time");
    created.append(timeOf(inv.created_at, "—"));
    const agent = el("td");
    agent.append(agentLink(inv.agent_id, inv.agent_name));
    tr.append(first, created, agent, el("td", inv.entrypoint_tag), status,
      el("td", inv.user_id || "—"), el("td", inv.status === "running" ? "—" : duration(inv.duration_ms)));
    // Narrow screens show each row as a card, each cell named by this.
    [...tr.children].forEach((td, i) => { td.dataset.label = columns[i]; });
    return tr;
  });
  root.querySelector("#inv-body").replaceChildren(...rows);
  root.querySelector("#inv-empty").hidden = rows.length !== 0;
  root.querySelector("#inv-page").textContent = rows.length ? `Page ${page + 1}` : "";
  const prev = root.querySelector("#inv-prev");
  const next = root.querySelector("#inv-next");
  prev.disabled = page === 0;
  next.disabled = !data.next_cursor;
  prev.onclick = () => { page--; showList(ctx).catch((e) => ctx.say(e.message)); };
  next.onclick = () => {
    cursors[page + 1] = data.next_cursor;
    page++;
    showList(ctx).catch((e) => ctx.say(e.message));
  };
  document.body.dataset.view = "invocations";
}

async function showDetail(ctx, id) {
  const inv = await ctx.request("GET", `/api/v1/invocations/${encodeURIComponent(id)}`);
  render(ctx, inv);
  if (inv.status === "running") follow(ctx, inv);
}

// render shows one invocation.
function render(ctx, inv) {
  const root = ctx.root;
  root.querySelector("#inv-detail-title").textContent = `Invocation ${inv.invocation_id}`;
  const badge = root.querySelector("#inv-detail-status");
  badge.textContent = inv.status;
  badge.className = `badge ${inv.status}`;
  // The agent by name (linked to its view), its id on a second line.
  const agent = el("span");
  agent.append(agentLink(inv.agent_id, inv.agent_name), el("br"), el("span", inv.agent_id, "mono sub"));
  const rows = [
    ["Agent", agent], ["Entrypoint", inv.entrypoint_tag], ["Caller", inv.caller], ["User", inv.user_id || "—"],
    ["Created", timeOf(inv.created_at, "—")],
    // A run starts as it is recorded: the record is made when its sandbox is.
    ["Started", timeOf(inv.created_at, "—")],
    ["Completed", timeOf(inv.completed_at, "—")],
    ["Duration", inv.status === "running" ? "running…" : duration(inv.duration_ms)],
    ["Node", inv.node_id || "—"],
    ["Cancelled by", cancelledBy(inv) || "—"],
  ];
  const dl = root.querySelector("#inv-timeline");
  const dd = (v) => {
    if (!(v instanceof Node)) return el("dd", v);
    const d = el("dd");
    d.append(v);
    return d;
  };
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", k), dd(v)]));
  root.querySelector("#inv-input").textContent = pretty({ args: inv.input_args, kwargs: inv.input_kwargs });
  const out = root.querySelector("#inv-output");
  out.textContent = inv.output === undefined ? "" : pretty(inv.output);
  root.querySelector("#inv-output-none").hidden = inv.output !== undefined || inv.status === "running";
  root.querySelector("#inv-logs").textContent = inv.logs || "";
  root.querySelector("#inv-logs-none").hidden = !!inv.logs;
  const err = root.querySelector("#inv-error-box");
  err.hidden = !inv.error_message && !inv.error_code;
  root.querySelector("#inv-error-code").textContent = inv.error_code || "";
  root.querySelector("#inv-error").textContent = inv.error_message || "";
  root.querySelector("#inv-live").textContent = inv.status === "running" ? "Running: updated live." : "";
  const cancel = root.querySelector("#inv-cancel");
  cancel.hidden = inv.status !== "running" || !ctx.can("write");
  cancel.disabled = false;
  cancel.onclick = async () => {
    cancel.disabled = true;
    try {
      const after = await ctx.request("POST", `/api/v1/invocations/${encodeURIComponent(inv.invocation_id)}/cancel`);
      stopLive();
      render(ctx, after);
      ctx.say(`Invocation ${after.invocation_id} is ${after.status}.`);
    } catch (e) {
      cancel.disabled = false;
      ctx.say(e.message);
    }
  };
  document.body.dataset.view = "invocation";
}

// later follows inv again in a while: it still runs but this server
// could not wait on it (a run on another node, or one whose end is not
// yet recorded).
function later(ctx, inv) {
  const t = setTimeout(() => {
    if (live && live.timer === t) {
      live = null;
      follow(ctx, inv);
    }
  }, 2000);
  live = { timer: t, close: () => clearTimeout(t) };
}

// follow updates a running invocation until it ends: a stream's chunks
// as they come (rejoined from its first event; the session cookie goes
// with the EventSource), a plain call by waiting on its record.
function follow(ctx, inv) {
  const id = encodeURIComponent(inv.invocation_id);
  const out = ctx.root.querySelector("#inv-output");
  const refresh = async () => {
    stopLive();
    try {
      const now = await ctx.request("GET", `/api/v1/invocations/${id}`);
      render(ctx, now);
      // Ended but not yet recorded: look again shortly.
      if (now.status === "running") later(ctx, now);
    } catch (e) {
      ctx.say(e.message);
    }
  };
  if (inv.streaming) {
    const es = new EventSource(`/api/v1/invocations/${id}/stream`);
    live = es;
    out.textContent = "";
    const chunks = [];
    es.addEventListener("data", (ev) => {
      try {
        chunks.push(JSON.parse(ev.data).content);
      } catch {
        return;
      }
      out.textContent = chunks.join("\n");
      ctx.root.querySelector("#inv-live").textContent = `${chunks.length} chunk${chunks.length === 1 ? "" : "s"} so far`;
    });
    es.addEventListener("status", (ev) => {
      if (!/"stream_started"/.test(ev.data)) refresh();
    });
    es.addEventListener("error", (ev) => {
      // The end of a failed stream is an "error" event with data; a
      // dropped connection has none: either way, read the record.
      if (live === es) refresh();
    });
    return;
  }
  const ac = new AbortController();
  live = { close: () => ac.abort() };
  ctx.request("GET", `/api/v1/invocations/${id}?wait=30s`, undefined, {}, ac.signal).then((now) => {
    if (ac.signal.aborted) return;
    live = null;
    render(ctx, now);
    if (now.status === "running") later(ctx, now);
  }, (e) => {
    if (!ac.signal.aborted) ctx.say(e.message);
  });
}

// Leaving a run's detail stops following it.
window.addEventListener("hashchange", () => {
  if (!location.hash.startsWith("#invocations/")) stopLive();
});
