// The API as the console calls it: the ordinary /api/v1 routes, with the
// session cookie (sent by the browser) and, on every change, the
// session's CSRF token.

import { SSEParser } from "/console/sse.js";

let csrf = "";

// setCSRF keeps the session's CSRF token (from the sign-in or whoami).
export function setCSRF(token) {
  csrf = token || "";
}

// APIError is an error answer of the API.
export class APIError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || null;
  }
}

// request calls the API and returns the data of its envelope. headers
// are added to the request (the sign-in sends its key this way); signal,
// if given, aborts it.
export async function request(method, path, body, headers = {}, signal = undefined) {
  const env = await requestEnvelope(method, path, body, headers, signal);
  return env ? env.data : null;
}

// requestEnvelope is request returning the whole envelope (a run's
// invocation_id is beside its data).
export async function requestEnvelope(method, path, body, headers = {}, signal = undefined) {
  const h = { Accept: "application/json", ...headers };
  if (method !== "GET" && method !== "HEAD" && csrf) {
    h["X-CSRF-Token"] = csrf;
  }
  const init = { method, headers: h, credentials: "same-origin", cache: "no-store", signal };
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let env = null;
  try {
    env = await res.json();
  } catch {
    // Not JSON: fall through with the status.
  }
  if (!res.ok) {
    const e = (env && env.error) || {};
    throw new APIError(res.status, e.code || "", e.message || `${method} ${path}: HTTP ${res.status}`, e.details);
  }
  return env;
}

// postStream POSTs body to an SSE route (run-stream) and calls onEvent
// with each event ({event, data, id}) as it arrives; it returns when the
// stream ends. An error before the stream starts is an APIError; signal
// (an AbortSignal) stops it.
export async function postStream(path, body, onEvent, signal) {
  const h = { Accept: "text/event-stream", "Content-Type": "application/json" };
  if (csrf) h["X-CSRF-Token"] = csrf;
  const res = await fetch(path, { method: "POST", headers: h, body: JSON.stringify(body), credentials: "same-origin", cache: "no-store", signal });
  const type = res.headers.get("Content-Type") || "";
  if (!res.ok || !type.startsWith("text/event-stream")) {
    let env = null;
    try {
      env = await res.json();
    } catch {
      // Not JSON: fall through with the status.
    }
    const e = (env && env.error) || {};
    throw new APIError(res.status, e.code || "", e.message || `POST ${path}: HTTP ${res.status}`, e.details);
  }
  const parser = new SSEParser();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const ev of parser.push(value)) onEvent(ev);
  }
}
