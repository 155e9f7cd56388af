// One session, live. Its event stream is followed from the start (offset -1): every event
// carries what it changed, so the transcript (rows by row_id, placed by their sequence and
// updated in place), the commands and the state and execution timeline are all built from it,
// and a reconnect resumes at the last applied event. The session itself, its PRs with their
// checks and the CI brake are re-read when an event says they changed.
import { call, get, enc, ApiError } from "./api.js"
import { LiveStream, reportConnection } from "./live.js"
import { h, clear, badge, time, randomKey, debounce } from "./dom.js"

export function sessionView(id) {
  const base = `/v1/sessions/${enc(id)}`
  const rows = new Map() // row_id -> {row, el}
  const commands = new Map() // id -> command
  let stream = null
  let stopped = false

  const header = h("div", { class: "session-header", id: "session-header" }, h("h2", {}, id))
  const transcript = h("ol", { class: "transcript", id: "transcript" })
  const timeline = h("ol", { class: "timeline", id: "timeline" })
  const pending = h("ul", { class: "commands", id: "pending-commands" })
  const prs = h("div", { class: "prs", id: "prs" })
  const notice = h("p", { class: "notice", hidden: true })
  const form = commandForm()

  const el = h(
    "div",
    { class: "session-view" },
    h("p", {}, h("a", { href: "#/" }, "← Sessions")),
    header,
    notice,
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel grow" }, h("h3", {}, "Transcript"), transcript),
      h(
        "aside",
        { class: "side" },
        h("section", { class: "panel" }, h("h3", {}, "Send a command"), form.el),
        h("section", { class: "panel" }, h("h3", {}, "Pending commands"), pending),
        h("section", { class: "panel" }, h("h3", {}, "Pull requests and CI"), prs),
        h("section", { class: "panel" }, h("h3", {}, "State and executions"), timeline),
      ),
    ),
  )

  // ---- the session header ----
  // Re-reads can overlap and answer out of order: an older revision never replaces a newer one.
  let shownRevision = 0
  function renderHeader(s) {
    if (s.revision < shownRevision) return
    shownRevision = s.revision
    clear(header)
    header.append(
      h("h2", {}, s.title ? `${s.title} ` : "", h("span", { class: "muted" }, s.id)),
      h(
        "dl",
        { class: "facts" },
        fact("State", badge(s.state), "state"),
        fact("Derived", badge(s.client_state), "client-state"),
        s.end_reason ? fact("Ended", s.end_reason, "end-reason") : null,
        fact("Agent", [s.agent_kind ?? "—", s.model ? ` (${s.model})` : ""], "agent"),
        fact("Branch", s.branch ?? "—", "branch"),
        fact("Project", h("a", { href: "#/" }, s.project), "project"),
        fact("Execution", s.active_execution ? `#${s.active_execution.generation} running` : "none", "execution"),
        fact("Revision", String(s.revision), "revision"),
        fact("Heartbeat", time(s.last_heartbeat_at), "heartbeat"),
      ),
    )
  }
  const fact = (label, value, key) => h("div", { class: "fact" }, h("dt", {}, label), h("dd", { dataset: { fact: key } }, value))

  const refreshSession = debounce(async () => {
    try {
      renderHeader(await get(base))
    } catch (e) {
      showError(e)
    }
  }, 50)

  // ---- the transcript ----
  function rowBody(row) {
    const b = row.body
    if (b && typeof b === "object" && !Array.isArray(b)) {
      if (typeof b.text === "string" && Object.keys(b).length === 1) return h("div", { class: "text" }, b.text)
      const parts = []
      if (typeof b.text === "string") parts.push(h("div", { class: "text" }, b.text))
      if (b.tool) parts.push(h("div", { class: "tool" }, h("strong", {}, b.tool), b.input ? ` ${typeof b.input === "string" ? b.input : JSON.stringify(b.input)}` : ""))
      const rest = Object.fromEntries(Object.entries(b).filter(([k]) => !["text", "tool", "input"].includes(k)))
      if (Object.keys(rest).length) parts.push(h("pre", {}, JSON.stringify(rest, null, 2)))
      return parts
    }
    return h("pre", {}, JSON.stringify(b, null, 2))
  }

  function renderRow(row) {
    return h(
      "li",
      { class: `row kind-${row.kind} status-${row.status}`, dataset: { rowId: row.row_id, sequence: row.sequence, revision: row.revision } },
      h(
        "div",
        { class: "row-head" },
        h("span", { class: "seq" }, `#${row.sequence}`),
        " ",
        badge(row.kind.replaceAll("_", " "), row.kind),
        " ",
        badge(row.status),
        " ",
        h("span", { class: "muted" }, time(row.updated_at), row.revision > 1 ? ` · rev ${row.revision}` : ""),
      ),
      h("div", { class: "row-body" }, rowBody(row)),
      row.kind === "approval_request" && row.status === "pending" ? approvalButtons(row) : null,
    )
  }

  // The answer to an approval request goes to the agent as a command. Its Idempotency-Key names
  // the row, so a double click sends once and a second, different answer is refused
  // (idempotency_key_reused): the request was answered already.
  function approvalButtons(row) {
    const status = h("span", { class: "muted" })
    const buttons = ["approved", "denied"].map((decision) =>
      h("button", { type: "button", dataset: { decision }, onclick: () => answer(decision) }, decision === "approved" ? "Approve" : "Deny"),
    )
    async function answer(decision) {
      if (buttons.some((b) => b.disabled)) return
      for (const b of buttons) b.disabled = true
      status.textContent = " Sending…"
      try {
        const r = await call("POST", `${base}/commands`, {
          body: { type: "approval", row_id: row.row_id, decision },
          headers: { "Idempotency-Key": `approval-${row.row_id}` },
        })
        status.textContent = ` Sent as ${r.json.id}; waiting for the agent.`
      } catch (err) {
        status.textContent = err.code === "idempotency_key_reused" ? " Already answered." : ` Not sent: ${err.message}`
        for (const b of buttons) b.disabled = false
      }
    }
    return h("div", { class: "approval" }, buttons, status)
  }

  // A row keeps its place (its sequence) whatever happens to it later.
  function upsertRow(row) {
    transcript.querySelector(".empty")?.remove()
    const known = rows.get(row.row_id)
    if (known && known.row.revision > row.revision) return
    const el = renderRow(row)
    if (known) {
      known.el.replaceWith(el)
    } else {
      const after = [...transcript.children].find((li) => Number(li.dataset.sequence) > row.sequence)
      transcript.insertBefore(el, after ?? null)
    }
    rows.set(row.row_id, { row, el })
  }

  // ---- commands and the timeline ----
  function renderPending() {
    clear(pending)
    const open = [...commands.values()].filter((c) => c.status === "accepted" || c.status === "delivered")
    for (const c of open.sort((a, b) => a.sequence - b.sequence)) {
      pending.append(h("li", { dataset: { command: c.id } }, badge(c.status), " ", c.body?.text ?? JSON.stringify(c.body), " ", h("span", { class: "muted" }, c.id)))
    }
    if (!open.length) pending.append(h("li", { class: "empty" }, "None"))
  }

  function addTimeline(ev, text, kind) {
    timeline.append(h("li", { class: `tl-${kind}` }, h("span", { class: "muted" }, time(ev.at)), " ", text))
  }

  function apply(events) {
    let sessionChanged = false
    let prsChanged = false
    for (const ev of events) {
      const d = ev.data ?? {}
      switch (ev.type) {
        case "session.created":
          renderHeader(d.session)
          addTimeline(ev, ["created", " → ", badge(d.session.state)], "state")
          break
        case "session.transitioned":
          addTimeline(ev, [badge(d.from), " → ", badge(d.to), d.cause !== "api" ? ` (${d.cause})` : ""], "state")
          break
        case "session.ended":
          addTimeline(ev, [badge(d.from), " → ", badge("ended"), ` ${d.reason}`, d.cause !== "api" ? ` (${d.cause})` : ""], "state")
          break
        case "execution.started":
          addTimeline(ev, `execution #${d.generation} started`, "execution")
          break
        case "execution.finished":
          addTimeline(ev, `execution #${d.generation} finished: ${d.reason}`, "execution")
          break
        case "row.appended":
        case "row.updated":
          upsertRow(d.row)
          break
        case "command.accepted":
        case "command.updated":
          commands.set(d.command.id, d.command)
          break
        default:
          if (/^(pr|check|comment)\./.test(ev.type)) prsChanged = true
      }
      sessionChanged = true
    }
    renderPending()
    if (sessionChanged) refreshSession()
    if (prsChanged) refreshPrs()
  }

  // ---- PRs, checks and the CI brake ----
  // The answer to the latest re-read wins, whatever order the answers come in.
  let prsRead = 0
  const refreshPrs = debounce(async () => {
    const mine = ++prsRead
    try {
      const [list, brake] = await Promise.all([get(`${base}/prs`), get(`${base}/ci-brake`)])
      if (mine === prsRead) renderPrs(list.prs, brake)
    } catch (e) {
      showError(e)
    }
  }, 50)

  function renderPrs(list, brake) {
    clear(prs)
    if (!list.length) {
      prs.append(h("p", { class: "empty" }, "No pull request observed."))
      return
    }
    prs.append(
      h(
        "p",
        { class: brake.brake ? "brake on" : "brake off", id: "ci-brake" },
        brake.brake
          ? `CI brake ON: '${brake.check}' failed on the last ${brake.commits} commits — look before the agent pushes again.`
          : `CI brake off (no check failed on each of the last ${brake.commits} commits).`,
      ),
    )
    for (const pr of list) {
      const commits = [...new Set(pr.checks.map((c) => c.commit))]
      prs.append(
        h(
          "div",
          { class: "pr", dataset: { pr: pr.url } },
          h("div", {}, h("a", { href: pr.url, target: "_blank", rel: "noreferrer" }, `#${pr.number ?? "?"} ${pr.title ?? pr.url}`)),
          h("div", {}, badge(pr.state), " ", badge(pr.ci_state, `ci-${pr.ci_state}`), " ", badge(pr.review_decision), " ", badge(pr.mergeability)),
          commits.reverse().map((commit) =>
            h(
              "div",
              { class: "commit" },
              h("code", {}, commit),
              commit === pr.head_commit ? h("span", { class: "muted" }, " head") : null,
              h(
                "ul",
                { class: "checks" },
                pr.checks
                  .filter((c) => c.commit === commit)
                  .map((c) => h("li", { dataset: { check: c.name, commit: c.commit, status: c.status } }, badge(c.status), " ", c.url ? h("a", { href: c.url, target: "_blank", rel: "noreferrer" }, c.name) : c.name)),
              ),
            ),
          ),
          pr.comments.length ? h("p", { class: "muted" }, `${pr.comments.filter((c) => !c.resolved).length} open review comment(s)`) : null,
        ),
      )
    }
  }

  // ---- sending a command ----
  // One Idempotency-Key per message: a double click, or a retry after an error, sends the same
  // key with the same body, so the session gets the command once. A new text gets a new key.
  function commandForm() {
    const text = h("textarea", { name: "text", rows: 3, placeholder: "Message the agent…", required: true })
    const button = h("button", { type: "submit" }, "Send")
    const status = h("p", { class: "muted", id: "command-status" })
    let draft = null // {key, text}
    let sending = false
    const el = h("form", { class: "command-form", id: "command-form" }, text, button, status)
    el.addEventListener("submit", async (e) => {
      e.preventDefault()
      const value = text.value.trim()
      if (!value || sending) return
      if (!draft || draft.text !== value) draft = { key: randomKey("dash-"), text: value }
      sending = true
      button.disabled = true
      status.textContent = "Sending…"
      try {
        const r = await call("POST", `${base}/commands`, {
          body: { type: "user_message", text: value },
          headers: { "Idempotency-Key": draft.key },
        })
        status.textContent = `Sent as ${r.json.id}${r.headers.get("Idempotent-Replayed") ? " (already sent)" : ""}.`
        draft = null
        text.value = ""
      } catch (err) {
        status.textContent = `Not sent: ${err.message}`
      } finally {
        sending = false
        button.disabled = false
      }
    })
    return { el }
  }

  function showError(e) {
    notice.hidden = false
    notice.textContent = e instanceof ApiError && e.status === 404 ? `No session '${id}'.` : `Error: ${e.message}`
  }

  function start() {
    if (stopped) return
    shownRevision = 0
    rows.clear()
    commands.clear()
    clear(transcript)
    clear(timeline)
    transcript.append(h("li", { class: "empty" }, "No rows yet."))
    stream = new LiveStream(`${base}/events`, {
      offset: "-1",
      onData: apply,
      // Another or a restored database: build everything again from its stream.
      onReset: () => start(),
      onGone: (err) => showError(new ApiError(404, err.code ?? "session_not_found", err.message ?? "")),
      onClosed: () => refreshSession(),
      onStatus: (st) => reportConnection("session", st),
    }).start()
  }

  refreshPrs()
  start()
  return {
    el,
    stop() {
      stopped = true
      stream?.stop()
      reportConnection("session", "stopped")
    },
  }
}
