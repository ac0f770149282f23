// The API as the console calls it: the ordinary /api/v1 routes, with the
// session cookie (sent by the browser) and, on every change, the
// session's CSRF token.

let csrf = "";

// setCSRF keeps the session's CSRF token (from the sign-in or whoami).
export function setCSRF(token) {
  csrf = token || "";
}

// APIError is an error answer of the API.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// request calls the API and returns the data of its envelope. headers
// are added to the request (the sign-in sends its key this way); signal,
// if given, aborts it.
export async function request(method, path, body, headers = {}, signal = undefined) {
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
    throw new APIError(res.status, e.code || "", e.message || `${method} ${path}: HTTP ${res.status}`);
  }
  return env ? env.data : null;
}
