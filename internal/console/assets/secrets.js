// The secrets view (admins): an agent's secrets by name (GET
// /api/v1/agents/{id}/secrets: names and dates, never values, at most
// 100 per agent, all shown), set one (the value is typed into a password
// field and cleared once sent) and delete one (after a confirmation).

import { cell, timeCell, button, refuse, fillAgents, report } from "/console/dom.js";

const $ = (id) => document.getElementById(id);

function agentPath() {
  return `/api/v1/agents/${encodeURIComponent($("secrets-agent").value)}/secrets`;
}

async function list(ctx) {
  const agent = $("secrets-agent").value;
  const rows = [];
  let count = 0;
  if (agent) {
    const data = await ctx.request("GET", agentPath());
    count = data.secrets.length;
    for (const s of data.secrets) {
      const tr = document.createElement("tr");
      tr.dataset.secret = s.name;
      tr.append(cell(s.name, "Name", "name mono"), timeCell(s.updated_at, "Updated"), cell(s.updated_by, "By"));
      const actions = document.createElement("td");
      actions.className = "actions";
      actions.dataset.needs = "admin";
      actions.append(button("Delete", () => remove(ctx, agent, s.name), { label: `Delete secret ${s.name}`, className: "danger" }));
      tr.append(actions);
      rows.push(tr);
    }
  }
  $("secrets-body").replaceChildren(...rows);
  ctx.applyRole(ctx.root);
  $("secrets-empty").hidden = count !== 0;
  $("secrets-form").hidden = !agent;
  document.body.dataset.view = "secrets";
}

async function remove(ctx, agent, name) {
  if (!window.confirm(`Delete secret ${name}? The agent's next runs no longer get it.`)) return;
  try {
    await ctx.request("DELETE", `/api/v1/agents/${encodeURIComponent(agent)}/secrets/${encodeURIComponent(name)}`);
    ctx.say(`Deleted secret ${name}.`);
    await list(ctx);
  } catch (e) {
    report(ctx, e);
  }
}

export async function showSecrets(ctx) {
  ctx.say(""); // a message of another view does not belong here
  if (refuse(ctx, "admin", "Secrets")) return;
  const form = $("secrets-form");
  if (!form.dataset.ready) {
    form.dataset.ready = "1";
    $("secrets-agent").addEventListener("change", () => list(ctx).catch((e) => report(ctx, e)));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = $("secrets-form-error");
      err.textContent = "";
      const name = $("secret-name").value.trim();
      const input = $("secret-value");
      const value = input.value;
      // The value leaves the page with the request, whatever its answer.
      input.value = "";
      try {
        await ctx.request("PUT", `${agentPath()}/${encodeURIComponent(name)}`, { value });
        $("secret-name").value = "";
        ctx.say(`Set secret ${name}.`);
        await list(ctx);
      } catch (e) {
        if (e.status === 401) report(ctx, e);
        else err.textContent = `${e.message} (type the value again)`;
      }
    });
  }
  await fillAgents(ctx, $("secrets-agent"));
  $("secrets-no-agents").hidden = $("secrets-agent").options.length !== 0;
  await list(ctx);
}
