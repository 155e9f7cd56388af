// The dashboard: a hash router and its views. Each view renders from one read of the API and
// then follows a stream live (live.js); leaving a view stops its streams.
//
//   #/                     projects and sessions (the change feed keeps them current)
//   #/session/{id}         one session: transcript, timeline, commands, PRs and CI
//   #/changes              the change feed, filterable
//   #/streams[/{path}]     the streams clients created; one stream's metadata and tail
//   #/server               the server's own metrics (GET /metrics), charted live
import { h, clear } from "./dom.js"
import { overviewView } from "./overview.js"
import { sessionView } from "./session.js"
import { changesView } from "./changes.js"
import { streamsView, streamView } from "./streams.js"
import { serverView } from "./server.js"
import { signInView, signOut, whoAmI } from "./auth.js"

const routes = [
  [/^\/?$/, () => overviewView(), "overview"],
  [/^\/session\/(.+)$/, (m) => sessionView(decodeURIComponent(m[1])), "overview"],
  [/^\/changes$/, () => changesView(), "changes"],
  [/^\/streams$/, () => streamsView(), "streams"],
  [/^\/streams\/(.+)$/, (m) => streamView(decodeURIComponent(m[1])), "streams"],
  [/^\/server$/, () => serverView(), "server"],
]

let current = null

function route() {
  current?.stop?.()
  current = null
  const root = clear(document.getElementById("view"))
  const path = location.hash.replace(/^#/, "") || "/"
  for (const [re, make, nav] of routes) {
    const m = path.match(re)
    if (!m) continue
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav)
    }
    current = make(m)
    root.append(current.el)
    return
  }
  root.append(h("p", { class: "empty" }, `Nothing at ${path}. `, h("a", { href: "#/" }, "Back to the sessions.")))
}

// With authentication on, nothing is shown until this browser is signed in; a sign-out link
// joins the header.
async function start() {
  let me = { auth: "none", signed_in: true }
  try {
    me = await whoAmI()
  } catch {
    // An older or unreachable server: show the views, whose reads report what is wrong.
  }
  if (me.auth !== "none" && !me.signed_in) {
    current?.stop?.()
    const root = clear(document.getElementById("view"))
    current = signInView(() => start())
    root.append(current.el)
    return
  }
  const header = document.querySelector("header.top")
  if (me.auth !== "none" && !document.getElementById("sign-out")) {
    header.append(
      h("span", { class: "who", id: "who", title: me.scopes ?? "" }, me.subject ?? ""),
      h("button", { class: "sign-out", id: "sign-out", onclick: () => signOut() }, "Sign out"),
    )
  }
  if (!listening) window.addEventListener("hashchange", route)
  listening = true
  route()
}

let listening = false

start()
