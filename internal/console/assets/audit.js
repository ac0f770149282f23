// The audit trail view (owners): a page of records from GET
// /api/v1/audit, filtered by principal, action, resource, outcome and
// time, paged with the server's cursor (?after=); the chain's check
// (GET /api/v1/audit/verify) with its result; and the export of the
// matching records (GET /api/v1/audit/export) as a download.

import { cell, button, definitions, toggleDetail, isoTime, timeCell, ownersOnly } from "/console/dom.js";

const pageSize = 50;
// cursors[i] is the ?after= of page i; the last is the page shown.
let cursors = [0];
let wired = false;

// filters reads the form into query parameters, empty ones left out.
function filters(root) {
  const p = new URLSearchParams();
  const form = root.querySelector("#audit-filter");
  for (const name of ["principal_id", "action", "resource", "outcome"]) {
    const v = form.elements[name].value.trim();
    if (v) p.set(name, v);
  }
  for (const name of ["since", "until"]) {
    const v = isoTime(form.elements[name].value);
    if (v) p.set(name, v);
  }
  return p;
}

function principalOf(r) {
  if (r.subject) return r.subject;
  if (r.key_id) return `key ${r.key_id}`;
  return r.principal_id || "—";
}

function row(r) {
  const tr = document.createElement("tr");
  tr.dataset.seq = String(r.seq);
  const outcome = cell(r.outcome, "Outcome", ["success", "started"].includes(r.outcome) ? "" : "attention");
  // Short tokens (seq, principal, action, IP) stay whole; only the
  // resource, which may be a long id, breaks where it must.
  tr.append(cell(r.seq, "Seq", "mono token"), timeCell(r.time, "Time"), cell(principalOf(r), "Principal", "mono token"),
    cell(r.action, "Action", "mono token"), cell(r.resource, "Resource", "mono"), outcome, cell(r.ip, "IP", "mono token"));
  const td = document.createElement("td");
  const more = button("Details", () => toggleDetail(tr, more, () => detail(r)), { label: `Details of record ${r.seq}` });
  more.className = "plain";
  more.setAttribute("aria-expanded", "false");
  td.append(more);
  tr.append(td);
  return tr;
}

function detail(r) {
  const pairs = [["Principal id", r.principal_id], ["Key", r.key_id], ["Subject", r.subject],
    ["User agent", r.user_agent], ["Request id", r.request_id]];
  for (const [k, v] of Object.entries(r.details || {})) pairs.push([k, v]);
  pairs.push(["Hash", r.hash], ["Previous hash", r.prev_hash]);
  return definitions(pairs);
}

async function load(ctx) {
  const root = ctx.root;
  const p = filters(root);
  const after = cursors[cursors.length - 1];
  root.querySelector("#audit-export").href = `/api/v1/audit/export${p.size ? "?" + p : ""}`;
  p.set("limit", String(pageSize));
  if (after) p.set("after", String(after));
  const data = await ctx.request("GET", `/api/v1/audit?${p}`);
  const recs = data.records || [];
  root.querySelector("#audit-body").replaceChildren(...recs.map(row));
  root.querySelector("#audit-empty").hidden = recs.length !== 0;
  const page = cursors.length;
  root.querySelector("#audit-page").textContent = recs.length
    ? `Page ${page}: records ${recs[0].seq}–${recs[recs.length - 1].seq}` : "";
  root.querySelector("#audit-prev").disabled = cursors.length === 1;
  const next = root.querySelector("#audit-next");
  next.disabled = data.next_after === undefined || data.next_after === null;
  next.dataset.after = next.disabled ? "" : String(data.next_after);
  document.body.dataset.view = "audit";
}

function showVerify(root, v) {
  const out = root.querySelector("#audit-verify-result");
  out.hidden = false;
  out.replaceChildren();
  const head = document.createElement("strong");
  if (v.ok) {
    out.className = "verdict ok";
    head.textContent = "OK";
    out.append(head, document.createTextNode(
      `: the chain verifies — ${v.checked} records checked (seq ${v.first_seq}–${v.last_seq}), ` +
      `${v.checkpoints} checkpoints; head seq ${v.head_seq}${v.head_hash ? ", hash " + v.head_hash.slice(0, 16) + "…" : ""}. ` +
      "Keep the head elsewhere to notice records cut from the end."));
    return;
  }
  out.className = "verdict bad";
  const p = v.problem || {};
  head.textContent = `BROKEN at seq ${p.seq}`;
  out.append(head, document.createTextNode(`: ${p.kind || "unknown"} — ${p.detail || ""}`));
  out.dataset.brokenSeq = String(p.seq);
}

function wire(ctx) {
  const root = ctx.root;
  const again = () => load(ctx).catch((e) => ctx.say(e.message));
  root.querySelector("#audit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    cursors = [0];
    again();
  });
  root.querySelector("#audit-filter").addEventListener("reset", () => {
    cursors = [0];
    setTimeout(again); // after the form has been cleared
  });
  root.querySelector("#audit-prev").addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    again();
  });
  root.querySelector("#audit-next").addEventListener("click", (ev) => {
    const after = Number(ev.currentTarget.dataset.after);
    if (after) cursors.push(after);
    again();
  });
  const verify = root.querySelector("#audit-verify");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    const out = root.querySelector("#audit-verify-result");
    out.hidden = false;
    out.className = "verdict";
    out.textContent = "Verifying the whole chain…";
    try {
      showVerify(root, await ctx.request("GET", "/api/v1/audit/verify"));
    } catch (e) {
      out.className = "verdict bad";
      out.textContent = `The check could not run: ${e.message}`;
    } finally {
      verify.disabled = false;
    }
  });
}

export async function showAudit(ctx) {
  if (!ownersOnly(ctx, "The audit trail")) return;
  if (!wired) {
    wire(ctx);
    wired = true;
  }
  await load(ctx);
}
