// "Try it": a form per entrypoint, generated from its input_schema (the
// subset of JSON Schema a form can show: strings, numbers, integers,
// booleans and enums as fields; arrays, objects and anything else as
// JSON text), checked before it is sent, and the run's output shown as
// it comes (a streaming entrypoint's chunks one by one). The server
// checks the input against the schema again; its violations are shown
// too. Everything from the schema and the run is set as text.

import { postStream, requestEnvelope } from "/console/api.js";
import { el } from "/console/dom.js";

let formSeq = 0;

// shown is how a result or chunk (a "structured string": the JSON text
// of {"type", "payload"} with the value's JSON in payload) is shown: a
// string as itself, another value as indented JSON, anything else as it
// came.
export function shown(s) {
  if (typeof s !== "string") return JSON.stringify(s);
  try {
    const m = JSON.parse(s);
    if (m && typeof m === "object" && typeof m.type === "string" && typeof m.payload === "string") {
      const v = JSON.parse(m.payload);
      return typeof v === "string" ? v : JSON.stringify(v, null, 2);
    }
  } catch {
    // Not a structured string: shown as it is.
  }
  return s;
}

// typeOf is the one type a form field is made for: the schema's type
// (the first that is not "null" when it lists several), "enum" for a
// list of values, "" for anything a field cannot hold.
function typeOf(s) {
  if (!s || typeof s !== "object") return "";
  if (Array.isArray(s.enum) && s.enum.length > 0) return "enum";
  let t = s.type;
  if (Array.isArray(t)) t = t.find((x) => x !== "null");
  return ["string", "number", "integer", "boolean", "array", "object"].includes(t) ? t : "";
}

// objectSchema reports whether s describes an object by its properties,
// which the form shows one field each.
function objectSchema(s) {
  return s && typeof s === "object" && s.properties && typeof s.properties === "object" && !Array.isArray(s.properties) &&
    (s.type === undefined || s.type === "object");
}

// A field reads its input: {value} to send, {omit} when left empty, or
// {error} to show beside it.
function makeField(id, name, schema, required, kind) {
  const type = kind || typeOf(schema);
  const wrap = el("div", { class: "field", dataset: { field: name } });
  const label = el("label", { for: id });
  label.textContent = (schema && typeof schema.title === "string" && schema.title) || name;
  if (required) label.append(el("span", { class: "req", text: " (required)" }));
  wrap.append(label);
  const hintId = id + "-hint";
  const errId = id + "-error";
  const hints = [];
  if (schema && typeof schema.description === "string") hints.push(schema.description);
  let input;
  let read;
  switch (type) {
    case "enum": {
      input = el("select", { id, name });
      if (!required) input.append(el("option", { value: "", text: "—" }));
      schema.enum.forEach((v, i) => input.append(el("option", { value: String(i), text: typeof v === "string" ? v : JSON.stringify(v) })));
      if (schema.default !== undefined) {
        const i = schema.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(schema.default));
        if (i >= 0) input.value = String(i);
      }
      read = () => (input.value === "" ? { omit: true } : { value: schema.enum[Number(input.value)] });
      break;
    }
    case "boolean":
      input = el("input", { id, name, type: "checkbox", class: "check" });
      input.checked = schema.default === true;
      read = () => ({ value: input.checked });
      break;
    case "number":
    case "integer": {
      input = el("input", { id, name, type: "text", inputmode: type === "integer" ? "numeric" : "decimal", autocomplete: "off" });
      if (typeof schema.default === "number") input.value = String(schema.default);
      const rules = [];
      if (typeof schema.minimum === "number") rules.push(`at least ${schema.minimum}`);
      if (typeof schema.maximum === "number") rules.push(`at most ${schema.maximum}`);
      hints.push(`${type === "integer" ? "A whole number" : "A number"}${rules.length ? ", " + rules.join(" and ") : ""}.`);
      read = () => {
        const s = input.value.trim();
        if (s === "") return required ? { error: "Enter a number." } : { omit: true };
        const n = Number(s);
        if (!Number.isFinite(n)) return { error: "Enter a number, such as 3 or 2.5." };
        if (type === "integer" && !Number.isInteger(n)) return { error: "Enter a whole number." };
        if (typeof schema.minimum === "number" && n < schema.minimum) return { error: `Enter ${schema.minimum} or more.` };
        if (typeof schema.maximum === "number" && n > schema.maximum) return { error: `Enter ${schema.maximum} or less.` };
        if (typeof schema.exclusiveMinimum === "number" && n <= schema.exclusiveMinimum) return { error: `Enter more than ${schema.exclusiveMinimum}.` };
        if (typeof schema.exclusiveMaximum === "number" && n >= schema.exclusiveMaximum) return { error: `Enter less than ${schema.exclusiveMaximum}.` };
        return { value: n };
      };
      break;
    }
    case "string": {
      const long = typeof schema.maxLength !== "number" || schema.maxLength > 200;
      input = long ? el("textarea", { id, name, rows: 2, spellcheck: "false" }) : el("input", { id, name, type: "text", autocomplete: "off" });
      if (typeof schema.default === "string") input.value = schema.default;
      read = () => {
        const s = input.value;
        if (s === "") return required ? { error: "Enter a value." } : { omit: true };
        const len = [...s].length;
        if (typeof schema.minLength === "number" && len < schema.minLength) return { error: `Enter at least ${schema.minLength} characters.` };
        if (typeof schema.maxLength === "number" && len > schema.maxLength) return { error: `Enter at most ${schema.maxLength} characters.` };
        if (typeof schema.pattern === "string") {
          let re = null;
          try {
            re = new RegExp(schema.pattern, "u");
          } catch {
            // A pattern this browser cannot read is left to the server.
          }
          if (re && !re.test(s)) return { error: `Enter text that matches ${schema.pattern}.` };
        }
        return { value: s };
      };
      break;
    }
    default: {
      // Arrays, objects and anything a field cannot show: JSON text.
      const want = kind === "args" ? "array" : kind === "kwargs" ? "object" : type;
      input = el("textarea", { id, name, rows: 3, spellcheck: "false", class: "mono" });
      if (kind === "args") input.value = "[]";
      else if (kind === "kwargs") input.value = "{}";
      else if (schema && schema.default !== undefined) input.value = JSON.stringify(schema.default);
      hints.push(want === "array" ? "JSON: an array, such as [1, \"two\"]." : want === "object" ? "JSON: an object, such as {\"key\": \"value\"}." : "JSON: any value.");
      read = () => {
        const s = input.value.trim();
        if (s === "") return required ? { error: "Enter JSON." } : { omit: true };
        let v;
        try {
          v = JSON.parse(s);
        } catch {
          return { error: "This is not valid JSON." };
        }
        if (want === "array" && !Array.isArray(v)) return { error: "Enter a JSON array ([…])." };
        if (want === "object" && (v === null || typeof v !== "object" || Array.isArray(v))) return { error: "Enter a JSON object ({…})." };
        return { value: v };
      };
    }
  }
  const describedBy = [];
  if (hints.length) {
    wrap.append(el("p", { class: "hint", id: hintId, text: hints.join(" ") }));
    describedBy.push(hintId);
  }
  const err = el("p", { class: "field-error", id: errId, hidden: true });
  describedBy.push(errId);
  input.setAttribute("aria-describedby", describedBy.join(" "));
  if (required) input.setAttribute("aria-required", "true");
  if (type === "boolean") {
    // The box before its label reads better; the label stays its name.
    wrap.classList.add("field-check");
    wrap.prepend(input);
  } else {
    wrap.append(input);
  }
  wrap.append(err);
  return {
    name,
    input,
    wrap,
    check() {
      const r = read();
      err.hidden = !r.error;
      err.textContent = r.error || "";
      if (r.error) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
      return r;
    },
  };
}

// tryForm builds the "try it" form of entrypoint ep of agent agentID.
// ctx is the view's context (request errors go to ctx.failed).
export function tryForm(ctx, agentID, ep) {
  const n = ++formSeq;
  const prefix = `try${n}`;
  const schema = ep.input_schema && typeof ep.input_schema === "object" ? ep.input_schema : {};
  const form = el("form", { class: "try", novalidate: true, "aria-label": `Try ${ep.tag}`, dataset: { tag: ep.tag, needs: ep.streaming ? "stream" : "write" } });
  form.append(el("h4", { text: "Try it" }));
  const fields = [];
  const kw = schema.kwargs;
  if (objectSchema(kw)) {
    const required = new Set(Array.isArray(kw.required) ? kw.required : []);
    for (const [name, ps] of Object.entries(kw.properties)) {
      fields.push({ to: "kwargs", f: makeField(`${prefix}-kw-${fields.length}`, name, ps, required.has(name)) });
    }
  } else {
    fields.push({ to: "allkwargs", f: makeField(`${prefix}-kwargs`, "Keyword arguments (input_kwargs)", kw, false, "kwargs") });
  }
  const args = schema.args;
  if (!(args && args.maxItems === 0)) {
    fields.push({ to: "args", f: makeField(`${prefix}-args`, "Positional arguments (input_args)", args, false, "args") });
  }
  for (const { f } of fields) form.append(f.wrap);

  const run = el("button", { type: "submit", text: ep.streaming ? "Run and stream" : "Run" });
  const stop = el("button", { type: "button", class: "secondary", text: "Stop", hidden: true });
  form.append(el("div", { class: "actions" }, run, stop));
  const problem = el("p", { class: "field-error run-error", role: "alert", hidden: true });
  const result = el("div", { class: "result", hidden: true, "aria-live": "polite" });
  const state = el("p", { class: "run-state" });
  const link = el("p", { class: "run-link" });
  const output = ep.streaming ? el("ol", { class: "chunks mono" }) : el("pre", { class: "output mono" });
  result.append(state, link, output);
  form.append(problem, result);

  function fail(message, details) {
    problem.hidden = false;
    problem.textContent = message;
    if (details) {
      const ul = el("ul");
      for (const v of details) ul.append(el("li", { text: `${v.field}: ${v.rule}` }));
      problem.append(ul);
    }
  }

  function showInvocation(id) {
    if (!id) return;
    const a = el("a", { href: `#invocations/${encodeURIComponent(id)}`, class: "mono", text: id });
    link.replaceChildren("Invocation ", a);
  }

  let controller = null;
  stop.addEventListener("click", () => controller && controller.abort());

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    problem.hidden = true;
    problem.replaceChildren();
    const body = { entrypoint_tag: ep.tag, input_args: [], input_kwargs: {} };
    let firstBad = null;
    for (const { to, f } of fields) {
      const r = f.check();
      if (r.error) {
        firstBad = firstBad || f.input;
        continue;
      }
      if (r.omit) continue;
      if (to === "kwargs") body.input_kwargs[f.name] = r.value;
      else if (to === "allkwargs") body.input_kwargs = r.value;
      else body.input_args = r.value;
    }
    if (firstBad) {
      fail("Correct the fields marked below.");
      firstBad.focus();
      return;
    }
    result.hidden = false;
    link.replaceChildren();
    output.replaceChildren();
    run.disabled = true;
    try {
      if (!ep.streaming) {
        state.textContent = "Running…";
        const env = await requestEnvelope("POST", `/api/v1/agents/${encodeURIComponent(agentID)}/run`, body);
        showInvocation(env.invocation_id);
        if (env.success === false) {
          // The agent failed (RunAgent answers that with 200).
          const e = env.error || {};
          state.textContent = "Failed.";
          fail(`${e.code ? e.code + ": " : ""}${e.message || "the run failed"}`);
          const tb = e.details && typeof e.details.traceback === "string" ? e.details.traceback : "";
          if (tb) output.textContent = tb;
          return;
        }
        output.textContent = shown(env.data);
        state.textContent = "Completed.";
        return;
      }
      state.textContent = "Starting…";
      controller = new AbortController();
      stop.hidden = false;
      let chunks = 0;
      let ended = false;
      await postStream(`/api/v1/agents/${encodeURIComponent(agentID)}/run-stream`, body, (e) => {
        let m;
        try {
          m = JSON.parse(e.data);
        } catch {
          return;
        }
        if (!m || typeof m !== "object") return;
        if (e.event === "data") {
          chunks++;
          output.append(el("li", { text: shown(m.content) }));
          state.textContent = `Streaming… ${chunks} ${chunks === 1 ? "chunk" : "chunks"}`;
        } else if (e.event === "status") {
          showInvocation(m.invocation_id);
          if (m.status === "stream_started") state.textContent = "Streaming…";
          if (m.status === "stream_completed") {
            ended = true;
            const secs = typeof m.execution_time === "number" ? ` in ${m.execution_time.toFixed(2)} s` : "";
            state.textContent = `Completed: ${chunks} ${chunks === 1 ? "chunk" : "chunks"}${secs}.`;
          }
        } else if (e.event === "error") {
          ended = true;
          showInvocation(m.invocation_id);
          state.textContent = "Failed.";
          fail(`${m.code ? m.code + ": " : ""}${typeof m.error === "string" ? m.error : "the run failed"}`);
          const tb = m.details && typeof m.details.traceback === "string" ? m.details.traceback : "";
          if (tb) result.append(el("pre", { class: "output mono", text: tb }));
        }
      }, controller.signal);
      if (!ended) state.textContent = "The stream ended before the run did; the invocation's record has its outcome.";
    } catch (e) {
      if (e.name === "AbortError") {
        state.textContent = "Stopped; the run is cancelled.";
        return;
      }
      if (e.status === 401) {
        ctx.failed(e);
        return;
      }
      state.textContent = "Failed.";
      const violations = e.details && Array.isArray(e.details.violations) ? e.details.violations : null;
      fail(e.message, violations);
    } finally {
      run.disabled = false;
      stop.hidden = true;
      controller = null;
    }
  });
  return form;
}
