// The keys view (admins): one page of the project's API keys (GET
// /api/v1/keys, paged on the server), a form that creates a key narrowed
// from the caller's own — it offers only the roles, scopes, agents and
// users the caller holds, and the server refuses anything wider anyway —
// and rotate and revoke. A new key's secret is shown once, in a panel
// with a copy button; dismissing the panel, leaving the view or
// reloading the page removes it: the page never keeps it.

import { Pages, cell, timeCell, timeOf, agentLabel, button, pager, refuse, fillAgents, report } from "/console/dom.js";

// rolePerms mirrors core.Role.Permissions: a role is offered when its
// permissions lie within the caller's role's.
const rolePerms = {
  viewer: ["read"],
  user: ["read", "write", "stream"],
  streamer: ["read", "stream"],
  admin: ["read", "write", "stream", "admin"],
  owner: ["read", "write", "stream", "admin"],
};

const pages = new Pages();

const $ = (id) => document.getElementById(id);

// hideSecret takes a shown key out of the page.
function hideSecret() {
  $("key-secret-value").value = "";
  $("key-secret-for").textContent = "";
  $("key-secret-copied").textContent = "";
  $("key-secret").hidden = true;
}

// showSecret shows a new key's secret, once.
function showSecret(ctx, data, what) {
  $("key-secret-for").textContent = `${what} ${data.details.name} (${data.details.key_id})`;
  const input = $("key-secret-value");
  input.value = data.key;
  $("key-secret").hidden = false;
  input.focus();
  input.select();
}

// A key shown once never outlives the view: leaving it (another view,
// or a sign-out, which hide it) takes the key out of the page.
new MutationObserver(() => {
  if ($("view-keys").hidden) hideSecret();
}).observe($("view-keys"), { attributes: true, attributeFilter: ["hidden"] });

$("key-secret-done").addEventListener("click", () => {
  hideSecret();
  $("keys-title").focus();
});

$("key-secret-copy").addEventListener("click", async () => {
  const input = $("key-secret-value");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  $("key-secret-copied").textContent = "Copied.";
});

function state(k) {
  const now = Date.now();
  if (k.revoked_at) return "revoked";
  if (k.expires_at && new Date(k.expires_at).getTime() <= now) return "expired";
  if (k.replaced_by) return "rotated";
  return "active";
}

// stateCell shows state(k); a rotated key says to which key, and until
// when it still works.
function stateCell(k, st) {
  if (st !== "rotated") return cell(st, "State", "state");
  const td = cell(`rotated to ${k.replaced_by}; works until `, "State", "state");
  td.append(timeOf(k.expires_at));
  return td;
}

// agentNames maps the ids of the agents the caller may see to their
// names (filled with the form's agent list); complete says it holds them
// all, so that an id not in it is an agent since deleted.
let agentNames = new Map();
let agentNamesComplete = false;

// agentName shows one of a key's agents: its name; "deleted agent <short
// id>" for one since deleted; its id when the list may just not hold it.
function agentName(id) {
  if (agentNames.has(id)) return agentNames.get(id);
  return agentNamesComplete ? agentLabel(id, "") : id;
}

function limits(k) {
  const parts = [];
  if (k.scopes && k.scopes.length) parts.push(`scopes ${k.scopes.join(", ")}`);
  if (k.agents && k.agents.length) parts.push(`agents ${k.agents.map(agentName).join(", ")}`);
  if (k.users && k.users.length) parts.push(`users ${k.users.join(", ")}`);
  if (k.rate_limit) parts.push(`${k.rate_limit.requests} per ${k.rate_limit.period_seconds} s`);
  return parts.join("; ") || "as its role";
}

async function list(ctx) {
  const root = ctx.root;
  const data = await ctx.request("GET", `/api/v1/keys${pages.query()}`);
  if (data.keys.length === 0 && pages.back()) return list(ctx);
  const rows = data.keys.map((k) => {
    const tr = document.createElement("tr");
    tr.dataset.keyId = k.key_id;
    const st = state(k);
    const lim = cell(limits(k), "Limits");
    if (k.agents && k.agents.length) lim.title = `agent ids: ${k.agents.join(", ")}`;
    const used = timeCell(k.last_used_at, "Last used", "never");
    if (k.last_used_at) used.append(` from ${k.last_used_ip || "?"}`);
    tr.append(cell(k.name, "Name", "name"), cell(k.key_id, "Key id", "mono token"), lim,
      timeCell(k.expires_at, "Expires"), used, stateCell(k, st));
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.dataset.needs = "admin";
    if (st === "active") {
      actions.append(
        button("Rotate", () => rotate(ctx, k), { label: `Rotate key ${k.name}` }),
        button("Revoke", () => revoke(ctx, k), { label: `Revoke key ${k.name}`, className: "danger" }),
      );
    }
    tr.append(actions);
    return tr;
  });
  root.querySelector("#keys-body").replaceChildren(...rows);
  ctx.applyRole(root);
  root.querySelector("#keys-empty").hidden = data.keys.length !== 0;
  pager(root, "keys", pages, data.keys.length, data.next_cursor || "", () => list(ctx).catch((e) => report(ctx, e)));
  document.body.dataset.view = "keys";
}

async function rotate(ctx, k) {
  if (!window.confirm(`Rotate key ${k.name} (${k.key_id})? A new key is made and shown once; this one keeps working for 24 hours.`)) return;
  try {
    const data = await ctx.request("POST", `/api/v1/keys/${encodeURIComponent(k.key_id)}/rotate`, {});
    showSecret(ctx, data, "Successor of");
    ctx.say(`Rotated key ${k.name}.`);
    await list(ctx);
  } catch (e) {
    report(ctx, e);
  }
}

async function revoke(ctx, k) {
  if (!window.confirm(`Revoke key ${k.name} (${k.key_id})? It stops working at once, and so do its console sessions.`)) return;
  try {
    await ctx.request("POST", `/api/v1/keys/${encodeURIComponent(k.key_id)}/revoke`);
    ctx.say(`Revoked key ${k.name}.`);
    await list(ctx);
  } catch (e) {
    report(ctx, e);
  }
}

function checkbox(name, value, text) {
  const label = document.createElement("label");
  label.className = "check";
  const input = document.createElement("input");
  input.type = "checkbox";
  input.name = name;
  input.value = value;
  label.append(input, document.createTextNode(` ${text}`));
  return label;
}

function checked(name) {
  return [...document.querySelectorAll(`#key-form input[name="${name}"]:checked`)].map((i) => i.value);
}

// fillForm offers what the caller holds (GET /api/v1/whoami): roles
// within its role, its permissions as scopes, the agents it reaches, its
// end users, and at most the days until its own key expires.
async function fillForm(ctx) {
  const me = await ctx.request("GET", "/api/v1/whoami");
  const mine = rolePerms[me.role] || [];
  const role = $("key-role");
  const keep = role.value || "user";
  role.replaceChildren(...Object.keys(rolePerms)
    .filter((r) => (r !== "owner" || me.owner) && rolePerms[r].every((p) => mine.includes(p)))
    .map((r) => {
      const o = document.createElement("option");
      o.value = r;
      o.textContent = r;
      return o;
    }));
  if ([...role.options].some((o) => o.value === keep)) role.value = keep;
  $("key-scopes").replaceChildren(...me.permissions.map((p) => checkbox("scope", p, p)));
  syncScopes();
  // The agents the caller may see are the ones it may give.
  const agents = document.createElement("select");
  await fillAgents(ctx, agents);
  agentNames = new Map([...agents.options].map((o) => [o.value, o.dataset.name]));
  agentNamesComplete = agents.dataset.complete === "true";
  $("key-agents").replaceChildren(...[...agents.options].map((o) => checkbox("agent", o.value, o.textContent)));
  $("key-agents-none").hidden = agents.options.length !== 0;
  const users = me.users || [];
  $("key-users-row").hidden = users.length === 0;
  $("key-users-hint").textContent = users.length ? `Within yours: ${users.join(", ")}.` : "";
  const days = $("key-days");
  days.removeAttribute("max");
  let hint = "Empty: the server's default.";
  if (!me.owner && me.key_expires_at) {
    const left = Math.floor((new Date(me.key_expires_at).getTime() - Date.now()) / 86400000);
    hint = ["Empty: the default, no later than your key's end (", timeOf(me.key_expires_at), ")."];
    if (left >= 1) days.max = String(Math.min(left, 3650));
    else days.disabled = true;
  } else {
    days.max = "3650";
  }
  $("key-days-hint").replaceChildren(...[hint].flat());
  $("key-project-row").hidden = !me.owner;
}

// syncScopes offers as scopes only the chosen role's permissions.
function syncScopes() {
  const perms = rolePerms[$("key-role").value] || [];
  for (const input of document.querySelectorAll('#key-form input[name="scope"]')) {
    input.disabled = !perms.includes(input.value);
    if (input.disabled) input.checked = false;
  }
}

function readForm() {
  const body = { name: $("key-name").value.trim(), kind: $("key-kind").value, role: $("key-role").value };
  const scopes = checked("scope");
  if (scopes.length) body.scopes = scopes;
  const agents = checked("agent");
  if (agents.length) body.agents = agents;
  const users = $("key-users").value.split(",").map((u) => u.trim()).filter((u) => u);
  if (users.length && !$("key-users-row").hidden) body.users = users;
  const days = $("key-days").value;
  if (days) body.expires_in_days = Number(days);
  const req = $("key-rate-requests").value;
  const per = $("key-rate-period").value;
  if (req || per) body.rate_limit = { requests: Number(req), period_seconds: Number(per) };
  const project = $("key-project").value.trim();
  if (project && !$("key-project-row").hidden) body.project_id = project;
  return body;
}

export async function showKeys(ctx) {
  ctx.say(""); // a message of another view does not belong here
  hideSecret();
  if (refuse(ctx, "admin", "API keys")) return;
  const form = $("key-form");
  if (!form.dataset.ready) {
    form.dataset.ready = "1";
    $("key-role").addEventListener("change", syncScopes);
    form.addEventListener("reset", () => setTimeout(syncScopes));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = $("key-form-error");
      err.textContent = "";
      try {
        const data = await ctx.request("POST", "/api/v1/keys", readForm());
        form.reset();
        showSecret(ctx, data, "New key");
        ctx.say(`Created key ${data.details.name}.`);
        pages.first();
        await list(ctx);
      } catch (e) {
        if (e.status === 401) report(ctx, e);
        else err.textContent = e.message;
      }
    });
  }
  await fillForm(ctx);
  await list(ctx);
  performance.mark("keys-rendered");
}
