// The agents view: one page of the agents the caller may see, with their
// ids, versions and entrypoints, from GET /api/v1/agents (paged on the
// server). Everything from the API is set as text.

import { cell } from "/console/dom.js";

const pageSize = 20;
let offset = 0;

// shortVersion shows the start of a content hash; the title has it all.
function shortVersion(v) {
  const hex = (v || "").replace(/^sha256:/, "");
  return hex.slice(0, 12);
}

export async function showAgents(ctx) {
  const root = ctx.root;
  const data = await ctx.request("GET", `/api/v1/agents?limit=${pageSize}&offset=${offset}&include=entrypoints`);
  if (data.agents.length === 0 && offset > 0 && data.total > 0) {
    offset = Math.max(0, data.total - pageSize);
    return showAgents(ctx);
  }
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
  root.querySelector("#agents-empty").hidden = data.total !== 0;
  const last = Math.min(offset + data.agents.length, data.total);
  root.querySelector("#agents-page").textContent = data.total ? `${offset + 1}–${last} of ${data.total}` : "";
  const prev = root.querySelector("#agents-prev");
  const next = root.querySelector("#agents-next");
  prev.disabled = offset === 0;
  next.disabled = offset + pageSize >= data.total;
  prev.onclick = () => { offset = Math.max(0, offset - pageSize); showAgents(ctx).catch((e) => ctx.say(e.message)); };
  next.onclick = () => { offset += pageSize; showAgents(ctx).catch((e) => ctx.say(e.message)); };
  performance.mark("agents-rendered");
  document.body.dataset.view = "agents";
}
