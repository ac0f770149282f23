// The console's sign-in through OpenID Connect issuers: one link per
// issuer the server lists (GET /api/v1/session/oidc) beside the API-key
// form, and the message of a sign-in the callback sent back with an
// error code. The links are plain navigations: the server redirects to
// the issuer and, after the callback, back to the console.

import { request } from "/console/api.js";

const $ = (id) => document.getElementById(id);

// The callback's error codes (signin_error=...), and what they mean.
const messages = {
  denied: "The identity provider did not sign you in (cancelled, or not allowed).",
  failed: "Sign-in through the identity provider failed; try again.",
  unavailable: "The identity provider or the server cannot be reached; try again shortly.",
};

// signInError returns the message of the sign-in error the URL carries,
// or "", and removes it from the URL so a reload does not repeat it.
// The code is only looked up, never shown.
export function signInError() {
  const params = new URLSearchParams(location.search);
  if (!params.has("signin_error")) return "";
  const code = params.get("signin_error");
  history.replaceState(null, "", location.pathname + location.hash);
  return Object.hasOwn(messages, code) ? messages[code] : messages.failed;
}

// showProviders lists the issuers to sign in through; with none (or
// when the list cannot be read) the box stays hidden.
export async function showProviders() {
  let providers = [];
  try {
    providers = (await request("GET", "/api/v1/session/oidc")).providers || [];
  } catch {
    providers = [];
  }
  const list = $("sign-in-providers");
  list.replaceChildren();
  for (const p of providers) {
    const a = document.createElement("a");
    a.className = "button";
    a.href = `/api/v1/session/oidc/${encodeURIComponent(p.id)}/start`;
    a.textContent = `Sign in with ${p.name}`;
    const li = document.createElement("li");
    li.append(a);
    list.append(li);
  }
  $("sign-in-oidc").hidden = providers.length === 0;
}
