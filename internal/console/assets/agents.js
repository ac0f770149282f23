// The agents view: one page of the agents the caller may see, with their
// ids, versions and entrypoints, from GET /api/v1/agents (paged on the
// server by cursor). Everything from the API is set as text.

import { Pages, cell, pager, report } from "/console/dom.js";

const pages = new Pages();

// shortVersion shows the start of a content hash; the title has it all.
function shortVersion(v) {
  const hex = (v || "").replace(/^sha256:/, "");
  return hex.slice(0, 12);
}

export async function showAgents(ctx) {
  const root = ctx.root;
  const data = await ctx.request("GET", `/api/v1/agents${pages.query()}&include=entrypoints`);
  // A page left empty (its agents deleted) shows the one before it.
  if (data.agents.length === 0 && pages.back()) return showAgents(ctx);
  const rows = [];
  for (const a of data.agents) {
    const tr = document.createElement("tr");
    tr.dataset.agentId = a.agent_id;
    // Each cell names its column, which narrow screens show (app.css).
    const name = cell("", "Name", "name");
    const open = document.createElement("a");
    open.href = `#agent/${encodeURIComponent(a.agent_id)}`;
    open.textContent = a.agent_name;
    name.append(open);
    tr.append(name, cell(a.agent_id, "Agent id", "mono"));
    const ver = cell(shortVersion(a.current_version), "Version", "mono");
    ver.title = a.current_version || "";
    tr.append(ver);
    const eps = cell("", "Entrypoints");
    const ul = document.createElement("ul");
    ul.className = "tags";
    for (const e of a.entrypoints || []) {
      const li = document.createElement("li");
      li.textContent = e.streaming ? `${e.tag} (stream)` : e.tag;
      ul.append(li);
    }
    eps.append(ul);
    tr.append(eps);
    const actions = document.createElement("td");
    actions.dataset.needs = "admin";
    const del = document.createElement("button");
    del.type = "button";
    del.className = "danger";
    del.textContent = "Delete";
    del.setAttribute("aria-label", `Delete agent ${a.agent_name}`);
    del.addEventListener("click", async () => {
      if (!window.confirm(`Delete agent ${a.agent_name} (${a.agent_id})? Its versions and secrets are removed; its invocations are kept.`)) return;
      try {
        await ctx.request("DELETE", `/api/v1/agents/${encodeURIComponent(a.agent_id)}`);
        ctx.say(`Deleted agent ${a.agent_name}.`);
        await showAgents(ctx);
      } catch (e) {
        ctx.say(e.message);
      }
    });
    actions.append(del);
    tr.append(actions);
    rows.push(tr);
  }
  root.querySelector("#agents-body").replaceChildren(...rows);
  ctx.applyRole(root);
  root.querySelector("#agents-empty").hidden = data.agents.length !== 0;
  pager(root, "agents", pages, data.agents.length, data.next_cursor || "", () => showAgents(ctx).catch((e) => report(ctx, e)));
  performance.mark("agents-rendered");
  document.body.dataset.view = "agents";
}
