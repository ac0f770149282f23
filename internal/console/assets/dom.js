// Small DOM helpers shared by the audit, events and metrics views.
// Everything from the API goes in as text.

// cell is a table cell holding text; label names its column on narrow
// screens, where the table's head is hidden (app.css).
export function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (label) td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

// button is a real button with text (and an accessible name).
export function button(text, onClick, { className, label } = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (className) b.className = className;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

// definitions is a <dl> of [term, text] pairs, empty texts left out.
export function definitions(pairs) {
  const dl = document.createElement("dl");
  dl.className = "fields";
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = String(v);
    dl.append(dt, dd);
  }
  return dl;
}

// toggleDetail shows or hides, below row, a row spanning the table that
// holds make()'s content; btn says which.
export function toggleDetail(row, btn, make) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("detail")) {
    next.remove();
    btn.setAttribute("aria-expanded", "false");
    return;
  }
  const tr = document.createElement("tr");
  tr.className = "detail";
  const td = document.createElement("td");
  td.colSpan = row.children.length;
  td.append(make());
  tr.append(td);
  row.after(tr);
  btn.setAttribute("aria-expanded", "true");
}

// isoTime turns a datetime-local input's value (local time) into RFC
// 3339, or "" for an empty one.
export function isoTime(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

// when shows an RFC 3339 time in the reader's local time.
export function when(t) {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t || "") : d.toLocaleString();
}

// ownersOnly keeps a view owners may use from anyone else: the view stays
// hidden and the status says why (the server refuses anyway).
export function ownersOnly(ctx, what) {
  if (ctx.can("owner")) return true;
  ctx.root.hidden = true;
  ctx.say(`${what} is for the instance's owners.`);
  return false;
}
