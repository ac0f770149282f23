// The blocks view (owners): one page of the clients blocked after
// repeated authentication failures or rate-limit violations (GET
// /api/v1/blocks, paged on the server), soonest to end first, and a
// button that lifts a block early.

import { Pages, cell, timeCell, button, pager, refuse, report } from "/console/dom.js";

const pages = new Pages();

async function list(ctx) {
  const root = ctx.root;
  const data = await ctx.request("GET", `/api/v1/blocks${pages.query()}`);
  if (data.blocks.length === 0 && pages.back()) return list(ctx);
  const rows = data.blocks.map((b) => {
    const tr = document.createElement("tr");
    tr.dataset.client = b.client;
    tr.append(cell(b.client, "Client", "mono"), timeCell(b.until, "Until"));
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.dataset.needs = "owner";
    actions.append(button("Lift", () => lift(ctx, b.client), { label: `Lift the block of ${b.client}` }));
    tr.append(actions);
    return tr;
  });
  root.querySelector("#blocks-body").replaceChildren(...rows);
  ctx.applyRole(root);
  root.querySelector("#blocks-empty").hidden = data.blocks.length !== 0;
  pager(root, "blocks", pages, data.blocks.length, data.next_cursor || "", () => list(ctx).catch((e) => report(ctx, e)));
  document.body.dataset.view = "blocks";
}

async function lift(ctx, client) {
  try {
    await ctx.request("DELETE", `/api/v1/blocks/${encodeURIComponent(client)}`);
    ctx.say(`Lifted the block of ${client}.`);
    await list(ctx);
  } catch (e) {
    report(ctx, e);
  }
}

export async function showBlocks(ctx) {
  ctx.say(""); // a message of another view does not belong here
  if (refuse(ctx, "owner", "Blocks")) return;
  await list(ctx);
}
