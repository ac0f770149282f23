// Small DOM helpers the views share: table cells, buttons and
// definition lists made as elements (everything from the API goes in as
// text, never HTML), times and sizes for people, a pager over lists
// the server pages by cursor, an agent picker, and the refusal a view shows to a
// caller without its role.

export const pageSize = 20;

// el makes a tag element: props "text" is its text, "dataset" its data
// attributes, any other an attribute (true: present, empty; false, null
// or undefined: left out); children are appended (nodes, or strings as
// text).
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  }
  e.append(...children);
  return e;
}


// cell is a table cell holding text; label names its column on narrow
// screens, where the table's head is hidden (app.css).
export function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (label) td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

// button is a real button with text (and an accessible name).
export function button(text, onClick, { className, label } = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (className) b.className = className;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// definitions is a <dl> of [term, text] pairs, empty texts left out.
export function definitions(pairs) {
  const dl = document.createElement("dl");
  dl.className = "fields";
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    dl.append(dt, dd);
  }
  return dl;
}

// toggleDetail shows or hides, below row, a row spanning the table that
// holds make()'s content; btn says which.
export function toggleDetail(row, btn, make) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("detail")) {
    next.remove();
    btn.setAttribute("aria-expanded", "false");
    return;
  }
  const tr = document.createElement("tr");
  tr.className = "detail";
  const td = document.createElement("td");
  td.colSpan = row.children.length;
  td.append(make());
  tr.append(td);
  row.after(tr);
  btn.setAttribute("aria-expanded", "true");
}

// isoTime turns a datetime-local input's value (local time) into RFC
// 3339, or "" for an empty one.
export function isoTime(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

const pad = (n) => String(n).padStart(2, "0");

// when shows an RFC 3339 time in the reader's local time, one way in
// every view: "2026-12-07 20:04:51" (year first, 24-hour clock: read the
// same in every locale). "" for none; a time it cannot read as it came.
export function when(t) {
  if (!t) return "";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// timeOf is a <time> showing t as when() does, its datetime and title the
// exact UTC instant (hovering shows it); empty (a text, not an element)
// says what to show for no time.
export function timeOf(t, empty = "") {
  const d = new Date(t || "");
  if (!t || Number.isNaN(d.getTime())) return document.createTextNode(t ? String(t) : empty);
  const el = document.createElement("time");
  el.dateTime = d.toISOString();
  el.title = `${d.toISOString()} (UTC)`;
  el.textContent = when(t);
  return el;
}

// timeCell is a table cell holding timeOf(t, empty), labelled as cell's.
export function timeCell(t, label, empty = "") {
  const td = cell("", label, "time");
  td.append(timeOf(t, empty));
  return td;
}

// agentLabel is what shows an agent to people: its name, or, for an
// agent since deleted (no name), "deleted agent" and the start of its id.
export function agentLabel(id, name) {
  return name || `deleted agent ${String(id || "").slice(0, 8)}`;
}

// agentLink shows an agent by name, linked to its view, its id in the
// title; a deleted agent (no name) is plain text, as it has no view.
export function agentLink(id, name) {
  if (!name) {
    const span = document.createElement("span");
    span.textContent = agentLabel(id, name);
    span.title = id || "";
    return span;
  }
  const a = document.createElement("a");
  a.href = `#agent/${encodeURIComponent(id)}`;
  a.textContent = name;
  a.title = id;
  return a;
}

// bytes formats a size.
export function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

// ownersOnly keeps a view owners may use from anyone else: the view stays
// hidden and the status says why (the server refuses anyway).
export function ownersOnly(ctx, what) {
  if (ctx.can("owner")) return true;
  ctx.root.hidden = true;
  ctx.say(`${what} is for the instance's owners.`);
  return false;
}

// report shows what went wrong with an action. An ended session (401:
// the key was revoked, perhaps by this very page) shows the view again,
// which finds it ended and returns to the sign-in, saying why.
export function report(ctx, e) {
  if (e && e.status === 401) {
    window.dispatchEvent(new HashChangeEvent("hashchange"));
    return;
  }
  ctx.say(e.message || String(e));
}

// Pages is where a view is in a list the server pages by cursor: the
// cursors of the pages up to the one shown ("" for the first).
export class Pages {
  // size is the rows of a page (pageSize unless a view shows fewer).
  constructor(size = pageSize) {
    this.size = size;
    this.cursors = [""];
  }

  // cursor is the ?cursor= of the page to show ("" for the first).
  get cursor() {
    return this.cursors[this.cursors.length - 1];
  }

  // first goes back to the first page.
  first() {
    this.cursors = [""];
  }

  // back goes to the page before, and reports whether there was one (a
  // page left empty by a deletion shows the one before it).
  back() {
    if (this.cursors.length === 1) return false;
    this.cursors.pop();
    return true;
  }

  // query is "?limit=<size>[&cursor=…]" for the page to show.
  query() {
    const q = new URLSearchParams({ limit: String(this.size) });
    if (this.cursor) q.set("cursor", this.cursor);
    return `?${q}`;
  }
}

// pager sets up a view's Previous/Next buttons and "a–b" for the page
// shown (shown rows, and next, its next_cursor: "" on the last page);
// again() shows the page pages then points at.
export function pager(root, prefix, pages, shown, next, again) {
  const prev = root.querySelector(`#${prefix}-prev`);
  const nextButton = root.querySelector(`#${prefix}-next`);
  const from = (pages.cursors.length - 1) * pages.size;
  root.querySelector(`#${prefix}-page`).textContent = shown ? `${from + 1}–${from + shown}` : "";
  prev.disabled = pages.cursors.length === 1;
  nextButton.disabled = !next;
  prev.onclick = () => {
    pages.back();
    again();
  };
  nextButton.onclick = () => {
    pages.cursors.push(next);
    again();
  };
}

// refuse shows, instead of a view's content, that the caller's role
// cannot use it; it reports whether it did.
export function refuse(ctx, need, what) {
  const denied = !ctx.can(need);
  const note = ctx.root.querySelector(".denied");
  const body = ctx.root.querySelector(".view-body");
  note.textContent = denied ? `${what} need the ${need} role; your key does not have it.` : "";
  note.hidden = !denied;
  body.hidden = denied;
  return denied;
}

// fillAgents fills a select with the first 100 agents the caller may
// see (GET /api/v1/agents, one page), keeping the chosen one; it
// returns the chosen agent's id ("" with none).
export async function fillAgents(ctx, select) {
  const data = await ctx.request("GET", "/api/v1/agents?limit=100");
  const keep = select.value;
  const opts = data.agents.map((a) => {
    const o = document.createElement("option");
    o.value = a.agent_id;
    o.textContent = `${a.agent_name} (${a.agent_id})`;
    o.dataset.name = a.agent_name;
    return o;
  });
  select.replaceChildren(...opts);
  // Whether the select holds every agent the caller may see: then an
  // agent id not among them is one since deleted.
  select.dataset.complete = String(!data.next_cursor);
  if (keep && data.agents.some((a) => a.agent_id === keep)) select.value = keep;
  return select.value;
}
