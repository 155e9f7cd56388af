// Projects and sessions. The lists come from the API; the change feed, followed from the
// position read just before them, keeps them current: a project event carries the project, a
// session event makes the view re-read that session (so derived fields such as client_state
// stay the server's). Applying an event twice re-reads the same thing, so the overlap between
// the lists and the feed is harmless.
import { call, get, enc, ApiError } from "./api.js"
import { LiveStream, reportConnection } from "./live.js"
import { h, clear, badge, ago, debounce } from "./dom.js"

// The later of the last change and the last heartbeat (RFC 3339 UTC strings sort as times).
function lastActivity(s) {
  const changed = s.updated_at ?? ""
  const beat = s.last_heartbeat_at ?? ""
  return beat > changed ? beat : changed
}

export function overviewView() {
  const projects = new Map()
  const sessions = new Map()
  let selected = null
  let feeds = []
  let stopped = false
  const pendingSessions = new Set()

  const projectList = h("ul", { class: "projects", id: "projects" })
  const sessionBody = h("tbody", { id: "sessions" })
  const notice = h("p", { class: "notice", hidden: true })
  const el = h(
    "div",
    { class: "overview" },
    h("section", { class: "panel" }, h("h2", {}, "Projects"), projectList),
    h(
      "section",
      { class: "panel grow" },
      h("h2", {}, "Sessions"),
      notice,
      h(
        "table",
        { class: "sessions" },
        h(
          "thead",
          {},
          h("tr", {}, ["Session", "Project", "State", "Derived", "Agent", "Branch", "Title", "Last activity"].map((t) => h("th", {}, t))),
        ),
        sessionBody,
      ),
    ),
  )

  function renderProjects() {
    clear(projectList)
    const all = h("li", { class: selected === null ? "selected" : "" }, h("a", { href: "#/", onclick: (e) => select(e, null) }, "All projects"))
    projectList.append(all)
    for (const p of [...projects.values()].sort((a, b) => a.id.localeCompare(b.id))) {
      const count = [...sessions.values()].filter((s) => s.project === p.id).length
      projectList.append(
        h(
          "li",
          { class: selected === p.id ? "selected" : "", dataset: { project: p.id } },
          h("a", { href: "#/", onclick: (e) => select(e, p.id) }, p.name),
          " ",
          h("span", { class: "muted" }, `${p.id} · ${count} session${count === 1 ? "" : "s"}`),
          p.archived ? badge("archived") : null,
        ),
      )
    }
  }

  function select(e, id) {
    e.preventDefault()
    selected = id
    renderProjects()
    renderSessions()
  }

  function renderSessions() {
    clear(sessionBody)
    const shown = [...sessions.values()]
      .filter((s) => selected === null || s.project === selected)
      .sort((a, b) => lastActivity(b).localeCompare(lastActivity(a)) || b.id.localeCompare(a.id))
    for (const s of shown) {
      sessionBody.append(
        h(
          "tr",
          { dataset: { session: s.id } },
          h("td", {}, h("a", { href: `#/session/${enc(s.id)}` }, s.id)),
          h("td", {}, s.project),
          h("td", {}, badge(s.state)),
          h("td", {}, badge(s.client_state)),
          h("td", {}, s.agent_kind ?? "—"),
          h("td", {}, s.branch ?? "—"),
          h("td", {}, s.title ?? ""),
          h("td", { title: lastActivity(s) }, ago(lastActivity(s))),
        ),
      )
    }
    if (!shown.length) sessionBody.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No sessions yet. Run `ordo demo` to start one.")))
  }

  // Re-reads can overlap and answer out of order: an older revision never replaces a newer one.
  function keep(session) {
    const known = sessions.get(session.id)
    if (!known || known.revision <= session.revision) sessions.set(session.id, session)
  }

  const refetch = debounce(async () => {
    const ids = [...pendingSessions]
    pendingSessions.clear()
    for (const id of ids) {
      try {
        keep(await get(`/v1/sessions/${enc(id)}`))
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) pendingSessions.add(id)
      }
    }
    renderSessions()
    renderProjects()
    // What could not be read (the server away) is tried again, unhurried.
    if (pendingSessions.size && !stopped) setTimeout(refetch, 1000)
  }, 50)

  function apply(events) {
    for (const ev of events) {
      if (ev.type === "project.created" || ev.type === "project.archived") {
        projects.set(ev.data.project.id, ev.data.project)
      } else if (ev.session) {
        if (ev.type === "session.created") keep(ev.data.session)
        pendingSessions.add(ev.session)
      }
    }
    renderProjects()
    renderSessions()
    if (pendingSessions.size) refetch()
  }

  // The feeds to follow and where each starts, taken before the lists are loaded so that
  // everything committed after the lists is in them. A token that reads only some projects
  // reads each project's own feed (the server answers 403 project_required to the whole one).
  async function feedHeads() {
    try {
      const head = await call("HEAD", "/v1/changes")
      return [{ params: {}, offset: head.headers.get("Stream-Next-Offset") }]
    } catch (e) {
      // A HEAD answer has no body to name its code: its 403 is project_required.
      if (!(e instanceof ApiError) || e.status !== 403) throw e
    }
    const visible = await get("/v1/projects")
    return Promise.all(visible.projects.map(async (p) => {
      const head = await call("HEAD", `/v1/changes?project=${enc(p.id)}`)
      return { params: { project: p.id }, offset: head.headers.get("Stream-Next-Offset") }
    }))
  }

  async function load() {
    if (stopped) return
    for (const f of feeds) f.stop()
    feeds = []
    try {
      const heads = await feedHeads()
      const [p, s] = await Promise.all([get("/v1/projects?archived=true"), get("/v1/sessions?limit=200")])
      projects.clear()
      sessions.clear()
      for (const x of p.projects) projects.set(x.id, x)
      for (const x of s.sessions) sessions.set(x.id, x)
      notice.hidden = true
      renderProjects()
      renderSessions()
      feeds = heads.map(({ params, offset }) => new LiveStream("/v1/changes", {
        offset,
        params,
        onData: apply,
        onReset: () => load(),
        onStatus: (st) => reportConnection("overview", st),
      }).start())
    } catch (e) {
      notice.hidden = false
      notice.textContent = `Could not load: ${e.message}; retrying.`
      setTimeout(load, 1000)
    }
  }

  // "Last activity" ages while the page stays open.
  const ticker = setInterval(renderSessions, 10000)
  load()
  return {
    el,
    stop() {
      stopped = true
      clearInterval(ticker)
      for (const f of feeds) f.stop()
      reportConnection("overview", "stopped")
    },
  }
}
