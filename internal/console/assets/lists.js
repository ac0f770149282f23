// Small pieces the keys, secrets, blocks and memory views share: table
// cells and buttons made as elements (text only, never HTML), a pager
// over server-side pages, an agent picker, and the refusal a view shows
// to a caller without its role.

export const pageSize = 20;

// cell is a table cell holding text; label names it on narrow screens.
export function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (label) td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

// button is a button with a label and, for screen readers and tests, a
// longer name saying what it acts on.
export function button(text, name, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (name) b.setAttribute("aria-label", name);
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
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

// when formats an API time for people ("" for none).
export function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
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

// pager sets up a view's Previous/Next buttons and "a–b of n" for one
// page of data (total, and the rows shown from offset); go(offset) shows
// another page.
export function pager(root, prefix, offset, shown, total, go) {
  const prev = root.querySelector(`#${prefix}-prev`);
  const next = root.querySelector(`#${prefix}-next`);
  root.querySelector(`#${prefix}-page`).textContent = total ? `${offset + 1}–${offset + shown} of ${total}` : "";
  prev.disabled = offset === 0;
  next.disabled = offset + pageSize >= total;
  prev.onclick = () => go(Math.max(0, offset - pageSize));
  next.onclick = () => go(offset + pageSize);
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
  const data = await ctx.request("GET", "/api/v1/agents?limit=100&offset=0");
  const keep = select.value;
  const opts = data.agents.map((a) => {
    const o = document.createElement("option");
    o.value = a.agent_id;
    o.textContent = `${a.agent_name} (${a.agent_id})`;
    return o;
  });
  select.replaceChildren(...opts);
  if (keep && data.agents.some((a) => a.agent_id === keep)) select.value = keep;
  return select.value;
}
