// The console's shell: sign-in, navigation by role, sign-out, and the
// router that shows one view at a time. Views live in their own modules.

import { request, setCSRF, APIError } from "/console/api.js";
import { showAgents } from "/console/agents.js";
import { showAgent } from "/console/agent.js";
import { showAudit } from "/console/audit.js";
import { showEvents } from "/console/events.js";
import { showMetrics } from "/console/metrics.js";
import { showInvocations } from "/console/invocations.js";
import { showKeys } from "/console/keys.js";
import { showSecrets } from "/console/secrets.js";
import { showBlocks } from "/console/blocks.js";
import { showMemory } from "/console/memory.js";
import { showProviders, signInError } from "/console/oidc.js";

const $ = (id) => document.getElementById(id);

// me is who the session acts as (GET /api/v1/whoami), null signed out.
let me = null;

// can reports whether the signed-in caller has a permission ("read",
// "write", "stream", "admin") or is an instance owner ("owner").
function can(need) {
  if (!me) return false;
  if (need === "owner") return me.owner;
  return me.permissions.includes(need);
}

// applyRole hides everything under root that the caller cannot use (the
// server refuses it anyway).
function applyRole(root) {
  for (const el of root.querySelectorAll("[data-needs]")) {
    el.hidden = !can(el.dataset.needs);
  }
}

function say(text) {
  $("status").textContent = text;
}

const views = {
  agents: { el: "view-agents", show: showAgents },
  agent: { el: "view-agent", show: showAgent, nav: "agents" },
  audit: { el: "view-audit", show: showAudit },
  events: { el: "view-events", show: showEvents },
  metrics: { el: "view-metrics", show: showMetrics },
  invocations: { el: "view-invocations", show: showInvocations },
  keys: { el: "view-keys", show: showKeys },
  secrets: { el: "view-secrets", show: showSecrets },
  memory: { el: "view-memory", show: showMemory },
  blocks: { el: "view-blocks", show: showBlocks },
};

function showOnly(id) {
  for (const el of document.querySelectorAll("#main > section")) {
    el.hidden = el.id !== id;
  }
}

// route shows the view the URL's fragment names (agents by default):
// #name, or #name/arg for one thing of a view (#agent/<agent id>).
async function route() {
  if (!me) return;
  const frag = location.hash.replace(/^#/, "");
  const slash = frag.indexOf("/");
  let name = (slash < 0 ? frag : frag.slice(0, slash)) || "agents";
  let arg = slash < 0 ? "" : frag.slice(slash + 1);
  try {
    arg = decodeURIComponent(arg);
  } catch {
    arg = "";
  }
  if (!views[name] || (views[name].nav && !arg)) name = "agents";
  const view = views[name];
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === (view.nav || name)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  showOnly(view.el);
  try {
    await view.show({ request, can, applyRole, say, failed, arg, path: arg, root: $(view.el) });
  } catch (e) {
    failed(e);
  }
}

// failed shows an error; an ended session returns to the sign-in.
function failed(e) {
  if (e instanceof APIError && e.status === 401) {
    signedOut("Your session has ended; sign in again.");
    return;
  }
  say(e.message || String(e));
}

function signedIn(who) {
  me = who;
  setCSRF(who.session ? who.session.csrf_token : "");
  const name = who.key_id ? `key ${who.key_id}` : who.subject || who.method;
  $("who-name").textContent = `${name} · ${who.role}${who.project_id ? " in " + who.project_id : ""}`;
  $("who").hidden = false;
  // Without a session (a server without authentication) there is
  // nothing to sign out of.
  $("sign-out").hidden = !who.session;
  $("nav").hidden = false;
  applyRole(document);
  say("");
  route();
}

function signedOut(message) {
  me = null;
  setCSRF("");
  $("nav").hidden = true;
  $("who").hidden = true;
  showOnly("sign-in");
  showProviders();
  say(message || "");
  $("api-key").focus();
}

$("sign-in-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("api-key");
  const key = input.value.trim();
  input.value = "";
  if (!key) return;
  say("Signing in…");
  try {
    signedIn(await request("POST", "/api/v1/session", undefined, { Authorization: `Bearer ${key}` }));
  } catch (e) {
    signedOut(e instanceof APIError && e.status === 401 ? "That key was not accepted." : e.message);
  }
});

$("sign-out").addEventListener("click", async () => {
  try {
    await request("DELETE", "/api/v1/session");
    signedOut("Signed out.");
  } catch (e) {
    failed(e);
  }
});

window.addEventListener("hashchange", route);

async function start() {
  // A sign-in through an identity provider that failed comes back here
  // with an error code.
  const oidcError = signInError();
  try {
    signedIn(await request("GET", "/api/v1/whoami"));
    if (oidcError) say(oidcError);
  } catch (e) {
    if (e instanceof APIError && e.status === 401) signedOut(oidcError);
    else say(e.message);
  }
}

start();
