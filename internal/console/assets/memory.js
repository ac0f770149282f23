// The persistent memory view (admins): for one agent, one page of the
// users that have a store (GET /api/v1/agents/{id}/memory, paged on the
// server) with its size, files and last use, and a button that erases a
// user's store after a confirmation. A server without persistent memory
// says so.

import { Pages, cell, timeCell, button, bytes, pager, refuse, fillAgents, report } from "/console/dom.js";

const pages = new Pages();

const $ = (id) => document.getElementById(id);

async function list(ctx) {
  const root = ctx.root;
  const agent = $("memory-agent").value;
  let data = { memories: [] };
  const off = $("memory-off");
  off.hidden = true;
  if (agent) {
    try {
      data = await ctx.request("GET", `/api/v1/agents/${encodeURIComponent(agent)}/memory${pages.query()}`);
    } catch (e) {
      // A server without persistent memory says so here (404).
      if (e.status !== 404) throw e;
      off.textContent = e.message;
      off.hidden = false;
    }
    if (data.memories.length === 0 && pages.back()) return list(ctx);
  }
  const rows = data.memories.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.user = m.user_id;
    tr.append(cell(m.user_id, "User", "name"), cell(`${bytes(m.used_bytes)} of ${bytes(m.cap_bytes)}`, "Used"),
      cell(m.files, "Files"), timeCell(m.last_used_at, "Last used"));
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.dataset.needs = "admin";
    actions.append(button("Delete", () => remove(ctx, agent, m.user_id), { label: `Delete the memory of user ${m.user_id}`, className: "danger" }));
    tr.append(actions);
    return tr;
  });
  root.querySelector("#memory-body").replaceChildren(...rows);
  ctx.applyRole(root);
  root.querySelector("#memory-empty").hidden = data.memories.length !== 0 || !off.hidden;
  pager(root, "memory", pages, data.memories.length, data.next_cursor || "", () => list(ctx).catch((e) => report(ctx, e)));
  document.body.dataset.view = "memory";
}

async function remove(ctx, agent, user) {
  if (!window.confirm(`Delete the persistent memory of user ${user}? Its files are erased for good.`)) return;
  try {
    await ctx.request("DELETE", `/api/v1/agents/${encodeURIComponent(agent)}/memory/${encodeURIComponent(user)}`);
    ctx.say(`Deleted the memory of user ${user}.`);
    await list(ctx);
  } catch (e) {
    report(ctx, e);
  }
}

export async function showMemory(ctx) {
  ctx.say(""); // a message of another view does not belong here
  if (refuse(ctx, "admin", "Persistent memory")) return;
  const select = $("memory-agent");
  if (!select.dataset.ready) {
    select.dataset.ready = "1";
    select.addEventListener("change", () => {
      pages.first();
      list(ctx).catch((e) => report(ctx, e));
    });
  }
  await fillAgents(ctx, select);
  $("memory-no-agents").hidden = select.options.length !== 0;
  await list(ctx);
}
