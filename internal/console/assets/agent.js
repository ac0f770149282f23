// The agent view (#agent/<agent id>): the agent's entrypoints with their
// input schemas and a "try it" form each, its versions (paged on the
// server) with rollback for admins, and its latest builds with their
// logs. Everything from the API is set as text.

import { tryForm } from "/console/tryit.js";
import { Pages, cell, el, timeCell, pager } from "/console/dom.js";

const versionsPage = 10;
const buildsShown = 10;

// current is the agent shown and where the view is in its versions.
let current = { id: "", versions: new Pages(versionsPage) };

function shortVersion(v) {
  return (v || "").replace(/^sha256:/, "").slice(0, 12);
}


function agentPath(id, rest) {
  return `/api/v1/agents/${encodeURIComponent(id)}${rest}`;
}

export async function showAgent(ctx) {
  const id = ctx.arg;
  const root = ctx.root;
  if (current.id !== id) {
    // Another agent: nothing of the last one stays on screen meanwhile.
    current = { id, versions: new Pages(versionsPage) };
    for (const sel of ["#agent-title", "#agent-id", "#agent-version", "#versions-page"]) root.querySelector(sel).textContent = "";
    for (const sel of ["#agent-entrypoints", "#versions-body", "#builds-body"]) root.querySelector(sel).replaceChildren();
    root.querySelector("#build-log").hidden = true;
    root.querySelector("#builds-empty").hidden = true;
  }
  const [arch] = await Promise.all([ctx.request("GET", agentPath(id, "/architecture")), showVersions(ctx), showBuilds(ctx)]);
  // The header last: a test (or a person) that sees the new current
  // version sees the versions that go with it.
  renderEntrypoints(ctx, arch);
  root.querySelector("#agent-title").textContent = arch.agent_name;
  root.querySelector("#agent-id").textContent = arch.agent_id;
  const cur = root.querySelector("#agent-version");
  cur.textContent = shortVersion(arch.current_version);
  cur.title = arch.current_version || "";
  ctx.applyRole(root);
  document.body.dataset.view = "agent";
}

function renderEntrypoints(ctx, arch) {
  const list = [];
  for (const ep of arch.entrypoints || []) {
    const art = el("article", { class: "ep", dataset: { tag: ep.tag } });
    const h = el("h3", { class: "mono", text: ep.tag });
    if (ep.streaming) h.append(" ", el("span", { class: "badge", text: "stream" }));
    art.append(h);
    if (ep.description) art.append(el("p", { class: "ep-desc", text: ep.description }));
    const where = [ep.kind, ep.file && ep.module ? `${ep.file}: ${ep.module}` : ""].filter(Boolean).join(" · ");
    if (where) art.append(el("p", { class: "hint", text: where }));
    if (ep.input_schema) {
      art.append(el("details", { class: "schema" },
        el("summary", { text: "Input schema" }),
        el("pre", { class: "mono", text: JSON.stringify(ep.input_schema, null, 2) })));
    } else {
      art.append(el("p", { class: "hint", text: "No input schema: any input_args and input_kwargs are accepted." }));
    }
    art.append(tryForm(ctx, arch.agent_id, ep));
    list.push(art);
  }
  ctx.root.querySelector("#agent-entrypoints").replaceChildren(...list);
}

async function showVersions(ctx) {
  const root = ctx.root;
  const id = current.id;
  const pages = current.versions;
  const data = await ctx.request("GET", agentPath(id, `/versions${pages.query()}`));
  if (data.versions.length === 0 && pages.back()) return showVersions(ctx);
  const rows = [];
  for (const v of data.versions) {
    const tr = el("tr", { dataset: { version: v.version } });
    if (v.current) tr.classList.add("current");
    // Each cell names its column, which narrow screens show (app.css).
    const ver = cell(shortVersion(v.version), "Version", "mono");
    ver.title = v.version;
    tr.append(
      ver,
      timeCell(v.created_at, "Deployed"),
      cell(`${Math.max(1, Math.round(v.size / 1024))} KiB`, "Size"),
      cell(v.current ? "current" : "", "State"),
    );
    const actions = el("td", { class: "actions", dataset: { needs: "admin" } });
    if (!v.current) {
      const b = el("button", { type: "button", class: "secondary rollback", text: "Roll back",
        "aria-label": `Roll back to version ${shortVersion(v.version)}` });
      b.addEventListener("click", () => rollback(ctx, v.version));
      actions.append(b);
    }
    tr.append(actions);
    rows.push(tr);
  }
  root.querySelector("#versions-body").replaceChildren(...rows);
  pager(root, "versions", pages, data.versions.length, data.next_cursor || "",
    () => showVersions(ctx).then(() => ctx.applyRole(root), (e) => ctx.failed(e)));
}

async function rollback(ctx, version) {
  const name = ctx.root.querySelector("#agent-title").textContent;
  if (!window.confirm(`Roll agent ${name} back to version ${version}? Later runs use it; runs under way finish on the current one.`)) return;
  try {
    const res = await ctx.request("POST", agentPath(current.id, "/rollback"), { version });
    ctx.say(`Rolled ${name} back to ${shortVersion(res.version)} (was ${shortVersion(res.previous_version)}).`);
    await showAgent(ctx);
  } catch (e) {
    ctx.failed(e);
  }
}

async function showBuilds(ctx) {
  const root = ctx.root;
  const data = await ctx.request("GET", agentPath(current.id, `/builds?limit=${buildsShown}`));
  const log = root.querySelector("#build-log");
  log.hidden = true;
  const rows = [];
  for (const b of data.builds) {
    const tr = el("tr", { dataset: { build: b.build_id } });
    const ver = cell(shortVersion(b.version), "Version", "mono");
    ver.title = b.version;
    tr.append(
      cell(b.build_id, "Build", "mono"),
      cell(b.status + (b.cached ? " (cached)" : ""), "Status"),
      timeCell(b.started_at, "Started"),
      ver,
    );
    const show = el("button", { type: "button", class: "secondary", text: "Log", "aria-label": `Show the log of build ${b.build_id}` });
    show.addEventListener("click", async () => {
      try {
        const full = await ctx.request("GET", `/api/v1/builds/${encodeURIComponent(b.build_id)}`);
        root.querySelector("#build-log-title").textContent = `Build ${b.build_id}`;
        root.querySelector("#build-log-text").textContent = (full.error ? full.error + "\n\n" : "") + (full.log || "(no output)");
        log.hidden = false;
        log.focus();
      } catch (e) {
        ctx.failed(e);
      }
    });
    tr.append(el("td", { class: "actions" }, show));
    rows.push(tr);
  }
  root.querySelector("#builds-body").replaceChildren(...rows);
  root.querySelector("#builds-empty").hidden = data.builds.length !== 0;
}
