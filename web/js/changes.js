// The change feed, live, newest first, with the feed's own filters (project, session, types):
// changing a filter reconnects with it from the position reached, so nothing that matches is
// missed or shown twice.
import { ApiError, call, enc, get } from "./api.js"
import { LiveStream, reportConnection } from "./live.js"
import { h, clear, time } from "./dom.js"

const k_max_shown = 500
const k_types = [
  "project.created", "project.archived", "session.created", "session.updated", "session.transitioned",
  "session.ended", "execution.started", "execution.finished", "command.accepted", "command.updated",
  "row.appended", "row.updated", "pr.created", "pr.updated", "check.created", "check.updated",
  "comment.created", "comment.updated", "comment.resolved", "comment.removed",
]

export function changesView() {
  let feed = null
  let offset = "-1"
  const list = h("ol", { class: "feed", id: "feed" })
  const notice = h("p", { class: "notice", hidden: true })
  const project = h("input", { name: "project", placeholder: "project id" })
  const session = h("input", { name: "session", placeholder: "session id" })
  const types = h("select", { name: "types", multiple: true, size: 6 }, k_types.map((t) => h("option", { value: t }, t)))
  const form = h(
    "form",
    { class: "filters", id: "feed-filters" },
    h("label", {}, "Project ", project),
    h("label", {}, "Session ", session),
    h("label", {}, "Types ", types),
    h("button", { type: "submit" }, "Apply"),
    h("button", { type: "button", onclick: () => { form.reset(); follow(true) } }, "Clear"),
  )
  form.addEventListener("submit", (e) => {
    e.preventDefault()
    follow(true)
  })

  function summary(ev) {
    const d = ev.data ?? {}
    switch (ev.type) {
      case "session.transitioned": return `${d.from} → ${d.to}`
      case "session.ended": return `ended: ${d.reason}`
      case "execution.started": return `execution #${d.generation}`
      case "execution.finished": return `execution #${d.generation}: ${d.reason}`
      case "row.appended":
      case "row.updated": return `${d.row.row_id} ${d.row.kind} ${d.row.status}`
      case "command.accepted":
      case "command.updated": return `${d.command.id} ${d.command.status}`
      case "check.created":
      case "check.updated": return `${d.check.name}@${d.check.commit} ${d.check.status}`
      case "pr.created":
      case "pr.updated": return `${d.pr.url} ${d.pr.state} ci ${d.pr.ci_state}`
      case "session.updated": return Object.keys(d.changes ?? {}).join(", ")
      default: return ""
    }
  }

  function apply(events) {
    for (const ev of events) {
      const link = ev.session ? h("a", { href: `#/session/${enc(ev.session)}` }, ev.session) : ev.project
      list.prepend(
        h(
          "li",
          { dataset: { offset: ev.offset, type: ev.type } },
          h("span", { class: "muted" }, time(ev.at)),
          " ",
          h("code", {}, ev.type),
          " ",
          link,
          " ",
          h("span", { class: "muted" }, summary(ev)),
        ),
      )
    }
    while (list.children.length > k_max_shown) list.lastElementChild.remove()
  }

  // restart: a filter changed; the list starts over from the beginning of the feed.
  function follow(restart) {
    feed?.stop()
    if (restart) {
      clear(list)
      offset = "-1"
    }
    const params = {}
    if (project.value.trim()) params.project = project.value.trim()
    if (session.value.trim()) params.session = session.value.trim()
    const chosen = [...types.selectedOptions].map((o) => o.value)
    if (chosen.length) params.types = chosen.join(",")
    feed = new LiveStream("/v1/changes", {
      offset,
      params,
      onData: (events, next) => {
        offset = next
        apply(events)
      },
      onReset: (err) => {
        // Retention removed the start: follow from the oldest event still kept.
        notice.hidden = false
        notice.textContent = `Older events were removed by retention (${err.code ?? "410"}); showing from the oldest kept.`
        offset = err.oldest_offset ?? "now"
        follow(false)
      },
      onStatus: (st) => reportConnection("changes", st),
    }).start()
  }

  // A token that reads only some projects reads one project's own feed: the server answers 403
  // to the whole one (a HEAD carries no body to name its code). Start with the first project it
  // may read, and say so.
  async function start() {
    try {
      await call("HEAD", "/v1/changes")
    } catch (e) {
      if (e instanceof ApiError && e.status === 403 && !project.value.trim()) {
        const visible = await get("/v1/projects").catch(() => ({ projects: [] }))
        if (visible.projects.length) project.value = visible.projects[0].id
        notice.hidden = false
        notice.textContent =
          "This token reads only some projects: the feed shown is one project's own; name another above."
      }
    }
    follow(true)
  }

  start()
  return {
    el: h("div", { class: "changes-view" }, h("h2", {}, "Change feed"), form, notice, list),
    stop() {
      feed?.stop()
      reportConnection("changes", "stopped")
    },
  }
}
