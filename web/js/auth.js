// Signing in to a server that authenticates (--auth jwt|tokens): the page asks /ui/session
// whether this browser holds a valid sign-in; if not, it shows a form that takes a token and
// POSTs it to /ui/sign-in, which answers with an HttpOnly cookie (the page never stores the
// token itself). Every request of the page carries X-Ordo-Request (api.js), without which the
// server lets the cookie read but never write. Signing out clears the cookie.
import { h } from "./dom.js"

/** { auth: "none"|"jwt"|..., signed_in, subject, scopes } */
export async function whoAmI() {
  const res = await fetch("/ui/session", { cache: "no-store" })
  return res.json()
}

async function post(path, body) {
  return fetch(path, {
    method: "POST",
    cache: "no-store",
    headers: { "Content-Type": "application/json", "X-Ordo-Request": "1" },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
}

export async function signOut() {
  await post("/ui/sign-out")
  location.hash = "#/"
  location.reload()
}

/** The sign-in form; `onSignedIn` runs once the server took the token. */
export function signInView(onSignedIn) {
  const input = h("input", { type: "password", id: "sign-in-token", autocomplete: "off", placeholder: "API token or JWT", required: true })
  const error = h("p", { class: "error", id: "sign-in-error", role: "alert" })
  const form = h(
    "form",
    {
      class: "sign-in",
      onsubmit: async (e) => {
        e.preventDefault()
        error.textContent = ""
        const res = await post("/ui/sign-in", { token: input.value.trim() })
        if (res.ok) {
          input.value = ""
          onSignedIn()
          return
        }
        const body = await res.json().catch(() => ({}))
        error.textContent = body?.error?.message ?? `the server answered ${res.status}`
      },
    },
    h("h1", {}, "Sign in"),
    h("p", {}, "This server needs a token: an API token (", h("code", {}, "ordo token create"), ") or a JWT from your identity provider."),
    input,
    h("button", { type: "submit", id: "sign-in-submit" }, "Sign in"),
    error,
  )
  return { el: form, stop() {} }
}
