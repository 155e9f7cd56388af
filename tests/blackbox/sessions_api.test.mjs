// Black-box tests of the session API: projects, sessions and their lifecycle, executions,
// duplicate-safe commands, transcript rows and the per-session event stream. One `ordo serve`
// (127.0.0.1, fresh data directory) serves the whole file; every test works in its own project
// so tests stay independent of each other and of their order.
//
// Every error must be a JSON body {"error":{"code","message"}} with the documented status and
// code and a non-empty message. A refused mutation must change nothing: the session (revision,
// timestamps, fields) is the same and its event stream has no new event.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectError, expectOk, request } from "../support/api.mjs"

const LONG_POLL_TIMEOUT_MS = 2000
const STREAM_TIMEOUT_MS = 10000

let server
let base

beforeAll(async () => {
  server = await startOrdo({
    args: [
      "--long-poll-timeout", `${LONG_POLL_TIMEOUT_MS}ms`,
      "--sse-heartbeat", "1s",
      // The reaper must never detach or end a session while a test is looking at it.
      "--heartbeat-timeout", "1h",
      "--detach-timeout", "2h",
    ],
  })
  base = server.url
})

afterAll(async () => {
  if (!server) return
  const code = await server.stop()
  const log = server.log()
  server.cleanup()
  expect(code, `ordo exit status on SIGTERM; log:\n${log}`).toBe(0)
})

// ---- the lifecycle table (src/sessions/lifecycle.cpp) ---------------------------------------

const TRANSITIONS = {
  created: ["starting", "closing", "ended"],
  starting: ["active", "detached", "closing", "ended"],
  active: ["suspended", "detached", "closing", "ended"],
  suspended: ["active", "closing", "ended"],
  detached: ["active", "closing", "ended"],
  closing: ["ended"],
  ended: [],
}
const STATES = Object.keys(TRANSITIONS)
const NON_ENDED = STATES.filter((s) => s !== "ended")
const END_REASONS = ["completed", "killed", "failed", "pr_merged", "reaped", "cancelled"]
/** The transitions that bring a new session (created) into each state through /transition. */
const PATH_TO = {
  created: [],
  starting: ["starting"],
  active: ["starting", "active"],
  suspended: ["starting", "active", "suspended"],
  detached: ["starting", "detached"],
  closing: ["closing"],
}

// ---- helpers ---------------------------------------------------------------------------------

let counter = 0
/** A fresh project slug: the data directory is fresh, so a counter makes it unique. */
const fresh = (label) => `${label.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")}-${++counter}`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

const call = (method, path, options) => request(base, method, path, options)


/** The ETag of a session answer must carry its revision. */
function expectRevisionETag(res, revision) {
  expect(res.headers.get("etag"), ctx(res)).toBe(`"${revision}"`)
}

async function createProject(label = "proj", extra = {}) {
  const id = fresh(label)
  const body = expectOk(await call("POST", "/v1/projects", { body: { id, name: `Project ${id}`, ...extra } }), 201)
  expect(body.id).toBe(id)
  return id
}

async function createSession(project, fields = {}) {
  const res = await call("POST", `/v1/projects/${project}/sessions`, { body: fields })
  return expectOk(res, 201)
}

/** A new project with one new session in `state` (reached through the API); returns the session. */
async function sessionIn(state = "created", label = "s") {
  const project = await createProject(label)
  const s = await createSession(project)
  if (state === "ended") {
    return expectOk(await call("POST", `/v1/sessions/${s.id}/end`, { body: { reason: "completed" } }))
  }
  let current = s
  for (const to of PATH_TO[state]) current = expectOk(await call("POST", `/v1/sessions/${s.id}/transition`, { body: { to } }))
  expect(current.state).toBe(state)
  return current
}

async function getSession(id) {
  const res = await call("GET", `/v1/sessions/${id}`)
  const body = expectOk(res)
  expectRevisionETag(res, body.revision)
  return body
}

/** The whole event stream of a session by catch-up reads from -1. */
async function readEvents(id) {
  let offset = "-1"
  const events = []
  for (let i = 0; i < 100; i++) {
    const res = await call("GET", `/v1/sessions/${id}/events?offset=${encodeURIComponent(offset)}`)
    expect(res.status, ctx(res)).toBe(200)
    expect(res.headers.get("content-type"), ctx(res)).toBe("application/json")
    expect(Array.isArray(res.json), ctx(res)).toBe(true)
    events.push(...res.json)
    offset = res.headers.get("stream-next-offset")
    expect(offset, ctx(res)).toBeTruthy()
    if (res.headers.get("stream-up-to-date") === "true") {
      return { events, next: offset, closed: res.headers.get("stream-closed") === "true" }
    }
  }
  throw new Error(`the event stream of ${id} never reached its tail`)
}

/** What a refused mutation must leave unchanged: the session and its event stream. */
async function observe(id) {
  const session = await getSession(id)
  const { events, next, closed } = await readEvents(id)
  return { session, eventCount: events.length, next, closed }
}

async function expectUnchanged(id, before, what = "") {
  const after = await observe(id)
  expect(after.session, `session changed after a refused request ${what}`).toEqual(before.session)
  expect(after.eventCount, `new events after a refused request ${what}`).toBe(before.eventCount)
  expect(after.next, `event stream tail moved after a refused request ${what}`).toBe(before.next)
}

/** Events appended after `before` (an observe() result). */
async function newEvents(id, before) {
  const { events } = await readEvents(id)
  return events.slice(before.eventCount)
}

function expectEventShape(e, sessionId) {
  expect(Object.keys(e).sort()).toEqual(["at", "data", "revision", "session", "type"])
  expect(typeof e.type).toBe("string")
  expect(e.session).toBe(sessionId)
  expect(Number.isInteger(e.revision)).toBe(true)
  expect(e.at).toMatch(RFC3339)
  expect(typeof e.data).toBe("object")
  expect(e.data).not.toBeNull()
}

const transition = (id, to, headers = {}) => call("POST", `/v1/sessions/${id}/transition`, { body: { to }, headers })
const end = (id, reason = "completed", headers = {}) => call("POST", `/v1/sessions/${id}/end`, { body: { reason }, headers })
const sendCommand = (id, key, body) =>
  call("POST", `/v1/sessions/${id}/commands`, { headers: key === undefined ? {} : { "Idempotency-Key": key }, body })
const ack = (id, commandId, body) => call("POST", `/v1/sessions/${id}/commands/${commandId}`, { body })
const appendRow = (id, body, key) =>
  call("POST", `/v1/sessions/${id}/rows`, { headers: key === undefined ? {} : { "Idempotency-Key": key }, body })
const upsertRow = (id, rowId, body, headers = {}) => call("PUT", `/v1/sessions/${id}/rows/${rowId}`, { body, headers })

/** A Server-Sent Events reader with a deadline; next() returns {event, data} or null at the end. */
async function openSse(path, timeoutMs = STREAM_TIMEOUT_MS) {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), timeoutMs)
  const res = await fetch(base + path, { signal: ac.signal })
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let buf = ""
  let ended = false
  const parse = (raw) => {
    let event = "message"
    const data = []
    for (const line of raw.split("\n")) {
      if (line === "" || line.startsWith(":")) continue
      const i = line.indexOf(":")
      const field = i < 0 ? line : line.slice(0, i)
      let value = i < 0 ? "" : line.slice(i + 1)
      if (value.startsWith(" ")) value = value.slice(1)
      if (field === "event") event = value
      else if (field === "data") data.push(value)
    }
    return data.length ? { event, data: data.join("\n") } : null
  }
  return {
    res,
    /** The next event, or null when the server ended the response. */
    async next() {
      for (;;) {
        const sep = buf.indexOf("\n\n")
        if (sep >= 0) {
          const raw = buf.slice(0, sep)
          buf = buf.slice(sep + 2)
          const ev = parse(raw)
          if (ev) return ev
          continue
        }
        if (ended) return null
        const { value, done } = await reader.read()
        if (done) ended = true
        else buf += decoder.decode(value, { stream: true })
      }
    },
    close() {
      clearTimeout(timer)
      ac.abort()
    },
  }
}

// ---- projects --------------------------------------------------------------------------------

describe("projects", () => {
  test("POST /v1/projects without an id derives the id from the name as a slug and answers 201 with the project", async () => {
    const n = ++counter
    const res = await call("POST", "/v1/projects", { body: { name: `  My Project: Alpha ${n}!! ` } })
    const p = expectOk(res, 201)
    expect(p.id).toBe(`my-project-alpha-${n}`)
    expect(p.name).toBe(`  My Project: Alpha ${n}!! `)
    expect(p.archived).toBe(false)
    expect(p.archived_at).toBeNull()
    expect(p.repo_path).toBeNull()
    expect(p.origin_url).toBeNull()
    expect(p.description).toBeNull()
    expect(p.created_at).toMatch(RFC3339)
    expect(p.updated_at).toMatch(RFC3339)
    expect(Number.isInteger(p.revision)).toBe(true)
    expect(expectOk(await call("GET", `/v1/projects/${p.id}`))).toEqual(p)
  })

  test("POST /v1/projects with an explicit id keeps the id and stores repo_path, origin_url and description", async () => {
    const id = fresh("explicit")
    const body = { id, name: "Anything At All", repo_path: "/src/x", origin_url: "https://example.invalid/x.git", description: "d" }
    const p = expectOk(await call("POST", "/v1/projects", { body }), 201)
    expect(p).toMatchObject(body)
    expect(expectOk(await call("GET", `/v1/projects/${id}`))).toEqual(p)
  })

  test("a duplicate project id (explicit or derived from the name) is refused with 409 project_exists and the stored project is unchanged", async () => {
    const id = fresh("dup")
    const original = expectOk(await call("POST", "/v1/projects", { body: { id, name: "first", description: "orig" } }), 201)
    const again = await call("POST", "/v1/projects", { body: { id, name: "second", description: "other" } })
    const err = expectError(again, 409, "project_exists")
    expect(err.message).toContain(id)
    // The same slug reached through the name.
    const derived = await call("POST", "/v1/projects", { body: { name: id.toUpperCase() } })
    expectError(derived, 409, "project_exists")
    expect(expectOk(await call("GET", `/v1/projects/${id}`))).toEqual(original)
  })

  test("POST /v1/projects refuses bad bodies with 400 and a code saying what to fix, creating nothing", async () => {
    const before = expectOk(await call("GET", "/v1/projects?archived=true")).projects
    const id = fresh("bad")
    const cases = [
      [{ id }, "missing_field", "name"],
      [{ id, name: "" }, "missing_field", "name"],
      [{ id, name: "x", colour: "red" }, "unknown_field", "colour"],
      [{ id, name: 42 }, "invalid_field", "name"],
      [{ id, name: "x", repo_path: 7 }, "invalid_field", "repo_path"],
      [{ id: 5, name: "x" }, "invalid_field", "id"],
      [{ id: "Not A Slug", name: "x" }, "invalid_project_id", "Not A Slug"],
      [{ id: "-leading", name: "x" }, "invalid_project_id", "-leading"],
      [{ name: "!!!" }, "invalid_project_id", "id"],
    ]
    for (const [body, code, mention] of cases) {
      const err = expectError(await call("POST", "/v1/projects", { body }), 400, code)
      expect(err.message, `${JSON.stringify(body)} -> ${err.message}`).toContain(mention)
    }
    expectError(await call("POST", "/v1/projects", { body: `{"name": "x", ` }), 400, "invalid_json")
    for (const body of ["[]", '"a name"', "42", "null", ""]) {
      expectError(await call("POST", "/v1/projects", { body }), 400, "invalid_body")
    }
    expectError(await call("GET", `/v1/projects/${id}`), 404, "project_not_found")
    expect(expectOk(await call("GET", "/v1/projects?archived=true")).projects).toEqual(before)
  })

  test("GET /v1/projects/{id} of an unknown project is 404 project_not_found", async () => {
    const err = expectError(await call("GET", `/v1/projects/${fresh("ghost")}`), 404, "project_not_found")
    expect(err.message).toMatch(/ghost/)
  })

  test("DELETE /v1/projects/{id} archives: the project still resolves via GET, is listed only with archived=true, and a second DELETE changes nothing", async () => {
    const id = await createProject("arch")
    const keep = await createProject("keep")
    const listed = (projects) => projects.map((p) => p.id)
    let all = expectOk(await call("GET", "/v1/projects")).projects
    expect(listed(all)).toContain(id)
    expect(listed(all)).toContain(keep)

    const archived = expectOk(await call("DELETE", `/v1/projects/${id}`))
    expect(archived.id).toBe(id)
    expect(archived.archived).toBe(true)
    expect(archived.archived_at).toMatch(RFC3339)

    const got = expectOk(await call("GET", `/v1/projects/${id}`))
    expect(got).toEqual(archived)

    all = expectOk(await call("GET", "/v1/projects")).projects
    expect(listed(all)).not.toContain(id)
    expect(listed(all)).toContain(keep)
    for (const p of all) expect(p.archived).toBe(false)
    const withArchived = expectOk(await call("GET", "/v1/projects?archived=true")).projects
    expect(withArchived.find((p) => p.id === id)).toEqual(archived)
    expect(listed(withArchived)).toContain(keep)
    expect(listed(expectOk(await call("GET", "/v1/projects?archived=false")).projects)).not.toContain(id)

    const again = expectOk(await call("DELETE", `/v1/projects/${id}`))
    expect(again).toEqual(archived)
  })

  test("GET /v1/projects?archived=maybe is 400 invalid_archived", async () => {
    expectError(await call("GET", "/v1/projects?archived=maybe"), 400, "invalid_archived")
  })

  test("DELETE /v1/projects/{id} of an unknown project is 404 project_not_found", async () => {
    expectError(await call("DELETE", `/v1/projects/${fresh("ghost")}`), 404, "project_not_found")
  })

  test("creating a session in an archived project is 409 project_archived and creates nothing; its existing sessions still resolve", async () => {
    const project = await createProject("archs")
    const s = await createSession(project)
    expectOk(await call("DELETE", `/v1/projects/${project}`))
    const err = expectError(await call("POST", `/v1/projects/${project}/sessions`, { body: {} }), 409, "project_archived")
    expect(err.message).toContain(project)
    expectError(await call("GET", `/v1/sessions/${project}-2`), 404, "session_not_found")
    const listed = expectOk(await call("GET", `/v1/projects/${project}/sessions`)).sessions
    expect(listed.map((x) => x.id)).toEqual([s.id])
    const got = await getSession(s.id)
    expect(got.project).toBe(project)
  })

  test("creating a session in an unknown project is 404 project_not_found", async () => {
    const ghost = fresh("ghost")
    expectError(await call("POST", `/v1/projects/${ghost}/sessions`, { body: {} }), 404, "project_not_found")
    expectError(await call("GET", `/v1/sessions/${ghost}-1`), 404, "session_not_found")
  })

  test("listing the sessions of an unknown project (GET /v1/projects/{id}/sessions) is 404 project_not_found", async () => {
    expectError(await call("GET", `/v1/projects/${fresh("ghost")}/sessions`), 404, "project_not_found")
  })
})

// ---- sessions: create, get, list ------------------------------------------------------------

describe("sessions: create, get, list", () => {
  test("sessions are created (201) as {project}-1, -2, ... in state created at revision 1 with ETag \"1\" and one session.created event", async () => {
    const project = await createProject("create")
    const fields = { agent_kind: "claude", model: "m-1", title: "first", branch: "feat/x", workspace_path: "/w/1", tags: ["a", "b"] }
    const res1 = await call("POST", `/v1/projects/${project}/sessions`, { body: fields })
    const s1 = expectOk(res1, 201)
    expectRevisionETag(res1, 1)
    expect(s1).toMatchObject({
      id: `${project}-1`, project, number: 1, state: "created", client_state: "idle", end_reason: null,
      revision: 1, active_execution: null, ended_at: null, last_heartbeat_at: null,
      events_url: `/v1/sessions/${project}-1/events`, ...fields,
    })
    expect(s1.created_at).toMatch(RFC3339)
    // The body is optional.
    const res2 = await call("POST", `/v1/projects/${project}/sessions`)
    const s2 = expectOk(res2, 201)
    expect(s2).toMatchObject({ id: `${project}-2`, number: 2, revision: 1, title: null, tags: [] })
    const s3 = await createSession(project, {})
    expect(s3.id).toBe(`${project}-3`)

    expect(await getSession(s1.id)).toEqual(s1)
    const { events } = await readEvents(s1.id)
    expect(events.length).toBe(1)
    expectEventShape(events[0], s1.id)
    expect(events[0].type).toBe("session.created")
    expect(events[0].revision).toBe(1)
    expect(events[0].data.session).toMatchObject({ id: s1.id, state: "created", revision: 1, title: "first" })
  })

  test("session creation refuses unknown fields (400 unknown_field), wrong types (400 invalid_field), non-objects and malformed JSON, creating nothing", async () => {
    const project = await createProject("create-bad")
    const cases = [
      [{ titel: "typo" }, "unknown_field", "titel"],
      [{ title: 5 }, "invalid_field", "title"],
      [{ model: true }, "invalid_field", "model"],
      [{ tags: "a,b" }, "invalid_field", "tags"],
      [{ tags: ["ok", 3] }, "invalid_field", "tag"],
      [{ tags: [""] }, "invalid_field", "tag"],
      [{ title: "x".repeat(4097) }, "invalid_field", "title"],
    ]
    for (const [body, code, mention] of cases) {
      const err = expectError(await call("POST", `/v1/projects/${project}/sessions`, { body }), 400, code)
      expect(err.message, JSON.stringify(body).slice(0, 80)).toContain(mention)
    }
    expectError(await call("POST", `/v1/projects/${project}/sessions`, { body: "{" }), 400, "invalid_json")
    for (const body of ["[]", "3", '"s"']) {
      expectError(await call("POST", `/v1/projects/${project}/sessions`, { body }), 400, "invalid_body")
    }
    expect(expectOk(await call("GET", `/v1/projects/${project}/sessions`)).sessions).toEqual([])
    // Numbering was not consumed by the refused requests.
    expect((await createSession(project)).id).toBe(`${project}-1`)
  })

  test("GET /v1/sessions/{id} returns the session with ETag = revision; an unknown session is 404 session_not_found", async () => {
    const s = await sessionIn("active", "get")
    const res = await call("GET", `/v1/sessions/${s.id}`)
    expect(expectOk(res)).toEqual(s)
    expectRevisionETag(res, s.revision)
    const err = expectError(await call("GET", `/v1/sessions/${s.project}-99`), 404, "session_not_found")
    expect(err.message).toContain(`${s.project}-99`)
  })

  test("GET /v1/projects/{id}/sessions lists only that project's sessions, newest first", async () => {
    const project = await createProject("plist")
    const other = await createProject("plist-other")
    const ids = []
    for (let i = 0; i < 4; i++) ids.push((await createSession(project)).id)
    await createSession(other)
    const body = expectOk(await call("GET", `/v1/projects/${project}/sessions`))
    expect(body.sessions.map((s) => s.id)).toEqual([...ids].reverse())
    expect(body.next_cursor).toBeNull()
  })

  test("GET /v1/sessions pages with limit and next_cursor until null: every session is seen exactly once, newest first", async () => {
    const project = await createProject("page")
    const ids = []
    for (let i = 0; i < 7; i++) ids.push((await createSession(project)).id)

    const pageThrough = async (query, limit) => {
      const seen = []
      let cursor = null
      for (let pages = 0; ; pages++) {
        expect(pages, "paging did not end").toBeLessThan(1000)
        const q = `${query}${query ? "&" : ""}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`
        const body = expectOk(await call("GET", `/v1/sessions?${q}`))
        expect(body.sessions.length).toBeLessThanOrEqual(limit)
        seen.push(...body.sessions)
        if (body.next_cursor === null) break
        expect(typeof body.next_cursor).toBe("string")
        cursor = body.next_cursor
      }
      return seen
    }

    for (const limit of [1, 3, 7, 50]) {
      const seen = await pageThrough(`project=${project}`, limit)
      expect(seen.map((s) => s.id), `limit=${limit}`).toEqual([...ids].reverse())
    }
    // The same over every session of the server: no duplicates, and newest first within each
    // project (numbers go down), our project's sessions all present.
    const everything = await pageThrough("", 4)
    const everyId = everything.map((s) => s.id)
    expect(new Set(everyId).size).toBe(everyId.length)
    for (const id of ids) expect(everyId).toContain(id)
    const lastNumber = new Map()
    for (const s of everything) {
      if (lastNumber.has(s.project)) expect(s.number).toBeLessThan(lastNumber.get(s.project))
      lastNumber.set(s.project, s.number)
    }
    const unpaged = expectOk(await call("GET", "/v1/sessions?limit=200"))
    if (unpaged.next_cursor === null) expect(unpaged.sessions.map((s) => s.id)).toEqual(everyId)
  })

  test("GET /v1/sessions filters by project, state and client_state (idle, running, requires_action)", async () => {
    const project = await createProject("filter")
    const idle = await createSession(project)
    const running = await createSession(project)
    const waiting = await createSession(project)
    const ended = await createSession(project)
    expectOk(await transition(idle.id, "starting"))
    expectOk(await call("POST", `/v1/sessions/${running.id}/executions`), 201)
    expectOk(await appendRow(waiting.id, { kind: "approval_request", status: "pending", body: { tool: "rm" } }), 201)
    expectOk(await end(ended.id, "killed"))

    const ids = async (q) => expectOk(await call("GET", `/v1/sessions?project=${project}&${q}`)).sessions.map((s) => s.id)
    expect(await ids("client_state=running")).toEqual([running.id])
    expect(await ids("client_state=requires_action")).toEqual([waiting.id])
    expect(await ids("client_state=idle")).toEqual([ended.id, idle.id])
    expect(await ids("state=starting")).toEqual([idle.id])
    expect(await ids("state=ended")).toEqual([ended.id])
    expect(await ids("state=created")).toEqual([waiting.id, running.id])
    expect(await ids("state=created&client_state=running")).toEqual([running.id])
    expect(await ids("state=active")).toEqual([])
    expect((await getSession(running.id)).client_state).toBe("running")
    expect((await getSession(waiting.id)).client_state).toBe("requires_action")
    // Approving the request clears requires_action.
    expectOk(await upsertRow(waiting.id, "seq-1", { status: "approved" }))
    expect((await getSession(waiting.id)).client_state).toBe("idle")
    // The project filter of the path route agrees.
    const viaPath = expectOk(await call("GET", `/v1/projects/${project}/sessions?client_state=running`)).sessions
    expect(viaPath.map((s) => s.id)).toEqual([running.id])
  })

  test("GET /v1/sessions refuses a bad state, client_state, cursor or limit with 400 and the matching code", async () => {
    const project = await createProject("list-bad")
    const cases = [
      ["state=sleeping", "invalid_state"],
      ["client_state=busy", "invalid_client_state"],
      ["cursor=abc", "invalid_cursor"],
      ["cursor=0", "invalid_cursor"],
      ["limit=0", "invalid_limit"],
      ["limit=201", "invalid_limit"],
      ["limit=-1", "invalid_limit"],
      ["limit=ten", "invalid_limit"],
    ]
    for (const [q, code] of cases) {
      expectError(await call("GET", `/v1/sessions?${q}`), 400, code)
      expectError(await call("GET", `/v1/projects/${project}/sessions?${q}`), 400, code)
    }
    expectOk(await call("GET", "/v1/sessions?limit=200"))
  })
})

// ---- PATCH -----------------------------------------------------------------------------------

describe("PATCH /v1/sessions/{id}", () => {
  test("a partial update changes only the fields sent, bumps the revision by one, answers the new ETag and emits one session.updated event", async () => {
    const project = await createProject("patch")
    const s = await createSession(project, { title: "t0", model: "m0", branch: "b0", tags: ["x"] })
    const before = await observe(s.id)
    const res = await call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "t1", tags: ["y", "z"] } })
    const updated = expectOk(res)
    expectRevisionETag(res, s.revision + 1)
    expect(updated).toMatchObject({ title: "t1", tags: ["y", "z"], model: "m0", branch: "b0", revision: s.revision + 1 })
    expect(updated.agent_kind).toBeNull()
    expect(await getSession(s.id)).toEqual(updated)
    const added = await newEvents(s.id, before)
    expect(added.length).toBe(1)
    expectEventShape(added[0], s.id)
    expect(added[0]).toMatchObject({ type: "session.updated", revision: updated.revision, data: { changes: { title: "t1", tags: ["y", "z"] } } })
    expect(Object.keys(added[0].data.changes).sort()).toEqual(["tags", "title"])
  })

  test("null clears a field; each further change bumps the revision again", async () => {
    const project = await createProject("patch-null")
    const s = await createSession(project, { title: "t0", model: "m0" })
    const cleared = expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { body: { title: null } }))
    expect(cleared.title).toBeNull()
    expect(cleared.model).toBe("m0")
    expect(cleared.revision).toBe(s.revision + 1)
    const again = expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { body: { model: null, agent_kind: "codex" } }))
    expect(again).toMatchObject({ title: null, model: null, agent_kind: "codex", revision: s.revision + 2 })
    const { events } = await readEvents(s.id)
    expect(events.map((e) => e.type)).toEqual(["session.created", "session.updated", "session.updated"])
    expect(events[1].data.changes).toEqual({ title: null })
    expect(events[2].data.changes).toEqual({ model: null, agent_kind: "codex" })
  })

  test("a PATCH that changes nothing is not a mutation: same revision, no event", async () => {
    const project = await createProject("patch-noop")
    const s = await createSession(project, { title: "same" })
    const before = await observe(s.id)
    for (const body of [{}, { title: "same" }]) {
      const res = await call("PATCH", `/v1/sessions/${s.id}`, { body })
      expect(expectOk(res)).toEqual(before.session)
      expectRevisionETag(res, s.revision)
    }
    await expectUnchanged(s.id, before)
  })

  test("an unknown field is 400 unknown_field and a wrong type 400 invalid_field; nothing of the request is applied", async () => {
    const s = await sessionIn("active", "patch-bad")
    const before = await observe(s.id)
    const cases = [
      [{ title: "new", colour: "red" }, "unknown_field", "colour"],
      [{ state: "ended" }, "unknown_field", "state"],
      [{ revision: 99 }, "unknown_field", "revision"],
      [{ title: "new", model: 5 }, "invalid_field", "model"],
      [{ tags: [1] }, "invalid_field", "tag"],
      [{ branch: { name: "x" } }, "invalid_field", "branch"],
    ]
    for (const [body, code, mention] of cases) {
      const err = expectError(await call("PATCH", `/v1/sessions/${s.id}`, { body }), 400, code)
      expect(err.message).toContain(mention)
    }
    expectError(await call("PATCH", `/v1/sessions/${s.id}`, { body: '{"title": ' }), 400, "invalid_json")
    for (const body of ["[]", '"t"', "", "null"]) {
      expectError(await call("PATCH", `/v1/sessions/${s.id}`, { body }), 400, "invalid_body")
    }
    await expectUnchanged(s.id, before)
  })

  test("If-Match with a stale revision is 412 revision_mismatch with current_revision in the body and the ETag, and changes nothing; the current revision (bare, quoted or weak) succeeds", async () => {
    const s = await sessionIn("active", "patch-cas")
    const before = await observe(s.id)
    for (const stale of [`"${s.revision - 1}"`, `${s.revision + 5}`, `W/"0"`]) {
      const res = await call("PATCH", `/v1/sessions/${s.id}`, { headers: { "If-Match": stale }, body: { title: "lost update" } })
      const err = expectError(res, 412, "revision_mismatch")
      expect(err.current_revision).toBe(s.revision)
      expectRevisionETag(res, s.revision)
    }
    await expectUnchanged(s.id, before)
    const r1 = expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { headers: { "If-Match": `"${s.revision}"` }, body: { title: "a" } }))
    expect(r1.revision).toBe(s.revision + 1)
    const r2 = expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { headers: { "If-Match": `${r1.revision}` }, body: { title: "b" } }))
    const r3 = expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { headers: { "If-Match": `W/"${r2.revision}"` }, body: { title: "c" } }))
    expect(r3).toMatchObject({ title: "c", revision: s.revision + 3 })
  })

  test("a malformed If-Match is 400 invalid_if_match and changes nothing", async () => {
    const s = await sessionIn("created", "patch-ifm")
    const before = await observe(s.id)
    for (const value of ["abc", `"1.5"`, "-1", "*"]) {
      expectError(await call("PATCH", `/v1/sessions/${s.id}`, { headers: { "If-Match": value }, body: { title: "x" } }), 400, "invalid_if_match")
    }
    await expectUnchanged(s.id, before)
  })

  test("PATCH of an unknown session is 404 session_not_found", async () => {
    const project = await createProject("patch-404")
    expectError(await call("PATCH", `/v1/sessions/${project}-1`, { body: { title: "x" } }), 404, "session_not_found")
  })
})

// ---- lifecycle: transitions ------------------------------------------------------------------

describe("POST /v1/sessions/{id}/transition", () => {
  for (const from of NON_ENDED) {
    for (const to of TRANSITIONS[from].filter((t) => t !== "ended")) {
      test(`${from} -> ${to} is allowed: 200, state ${to}, revision + 1 in body and ETag, one session.transitioned event`, async () => {
        const s = await sessionIn(from, `tr-${from}-${to}`)
        const before = await observe(s.id)
        const res = await transition(s.id, to, { "If-Match": `"${s.revision}"` })
        const after = expectOk(res)
        expect(after.state).toBe(to)
        expect(after.revision).toBe(s.revision + 1)
        expectRevisionETag(res, after.revision)
        expect(await getSession(s.id)).toEqual(after)
        const added = await newEvents(s.id, before)
        expect(added.length).toBe(1)
        expectEventShape(added[0], s.id)
        expect(added[0]).toMatchObject({ type: "session.transitioned", revision: after.revision, data: { from, to, cause: "api" } })
      })
    }
  }

  const illegal = [
    ["created", "active"],
    ["created", "suspended"],
    ["created", "detached"],
    ["created", "created"],
    ["starting", "suspended"],
    ["starting", "created"],
    ["active", "active"],
    ["active", "starting"],
    ["active", "created"],
    ["suspended", "detached"],
    ["suspended", "starting"],
    ["detached", "suspended"],
    ["detached", "starting"],
    ["closing", "active"],
    ["closing", "starting"],
    ["closing", "closing"],
  ]
  for (const [from, to] of illegal) {
    test(`${from} -> ${to} is refused with 409 illegal_transition naming from, to and the allowed targets, changing nothing`, async () => {
      const s = await sessionIn(from, `bad-${from}-${to}`)
      const before = await observe(s.id)
      const err = expectError(await transition(s.id, to), 409, "illegal_transition")
      expect(err.from).toBe(from)
      expect(err.to).toBe(to)
      expect(err.allowed).toEqual(TRANSITIONS[from])
      for (const t of TRANSITIONS[from]) expect(err.message).toContain(t)
      await expectUnchanged(s.id, before)
    })
  }

  test("a transition to ended is 400 use_end (ending needs /end and a reason), changing nothing", async () => {
    const s = await sessionIn("active", "tr-ended")
    const before = await observe(s.id)
    const err = expectError(await transition(s.id, "ended"), 400, "use_end")
    expect(err.message).toContain("/end")
    await expectUnchanged(s.id, before)
  })

  test("bad transition bodies are 400 (unknown state, missing or mistyped 'to', unknown field, malformed JSON, non-object) and change nothing", async () => {
    const s = await sessionIn("starting", "tr-body")
    const before = await observe(s.id)
    const cases = [
      [{ to: "running" }, "invalid_state", "to"],
      [{ to: "ACTIVE" }, "invalid_state", "to"],
      [{}, "missing_field", "to"],
      [{ to: "" }, "missing_field", "to"],
      [{ to: 3 }, "invalid_field", "to"],
      [{ to: "active", reason: "x" }, "unknown_field", "reason"],
    ]
    for (const [body, code, mention] of cases) {
      const err = expectError(await call("POST", `/v1/sessions/${s.id}/transition`, { body }), 400, code)
      expect(err.message).toContain(mention)
    }
    expectError(await call("POST", `/v1/sessions/${s.id}/transition`, { body: '{"to":' }), 400, "invalid_json")
    for (const body of ['"active"', "[]", ""]) {
      expectError(await call("POST", `/v1/sessions/${s.id}/transition`, { body }), 400, "invalid_body")
    }
    await expectUnchanged(s.id, before)
  })

  test("a transition with a stale If-Match is 412 revision_mismatch with current_revision and ETag, changing nothing", async () => {
    const s = await sessionIn("starting", "tr-cas")
    const before = await observe(s.id)
    const res = await transition(s.id, "active", { "If-Match": `"${s.revision - 1}"` })
    const err = expectError(res, 412, "revision_mismatch")
    expect(err.current_revision).toBe(s.revision)
    expectRevisionETag(res, s.revision)
    await expectUnchanged(s.id, before)
  })

  test("a transition of an unknown session is 404 session_not_found", async () => {
    const project = await createProject("tr-404")
    expectError(await transition(`${project}-1`, "starting"), 404, "session_not_found")
  })

  test("a transition to detached finishes the active execution as lost and interrupts pending commands, in one revision", async () => {
    const s = await sessionIn("active", "tr-detach")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const c = expectOk(await sendCommand(s.id, "k1", { text: "go" }), 202)
    const mid = await getSession(s.id)
    const before = await observe(s.id)
    const detached = expectOk(await transition(s.id, "detached"))
    expect(detached).toMatchObject({ state: "detached", active_execution: null, client_state: "idle", revision: mid.revision + 1 })
    const added = await newEvents(s.id, before)
    expect(added.map((e) => e.type)).toEqual(["execution.finished", "command.updated", "session.transitioned"])
    for (const e of added) expect(e.revision).toBe(detached.revision)
    expect(added[0].data).toEqual({ generation: 1, reason: "lost" })
    expect(added[1].data.command).toMatchObject({ id: c.id, status: "interrupted" })
    const execs = expectOk(await call("GET", `/v1/sessions/${s.id}/executions`)).executions
    expect(execs).toMatchObject([{ generation: 1, finish_reason: "lost" }])
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands/${c.id}`)).status).toBe("interrupted")
  })
})

// ---- lifecycle: end --------------------------------------------------------------------------

describe("POST /v1/sessions/{id}/end", () => {
  for (const reason of END_REASONS) {
    test(`end with reason ${reason}: 200, state ended, end_reason ${reason}, ended_at set, revision + 1, one session.ended event, stream closed`, async () => {
      const s = await sessionIn("active", `end-${reason}`)
      const before = await observe(s.id)
      const res = await end(s.id, reason)
      const ended = expectOk(res)
      expect(ended).toMatchObject({ state: "ended", end_reason: reason, revision: s.revision + 1 })
      expect(ended.ended_at).toMatch(RFC3339)
      expectRevisionETag(res, ended.revision)
      expect(res.headers.get("idempotent-replayed")).toBeNull()
      expect(await getSession(s.id)).toEqual(ended)
      const added = await newEvents(s.id, before)
      expect(added.length).toBe(1)
      expectEventShape(added[0], s.id)
      expect(added[0]).toMatchObject({ type: "session.ended", revision: ended.revision, data: { from: "active", reason, cause: "api" } })
      expect((await readEvents(s.id)).closed).toBe(true)
    })
  }

  for (const from of NON_ENDED) {
    test(`end works from ${from}`, async () => {
      const s = await sessionIn(from, `end-from-${from}`)
      const ended = expectOk(await end(s.id, "cancelled", { "If-Match": `"${s.revision}"` }))
      expect(ended).toMatchObject({ state: "ended", end_reason: "cancelled", revision: s.revision + 1 })
      const { events } = await readEvents(s.id)
      expect(events.at(-1)).toMatchObject({ type: "session.ended", data: { from, reason: "cancelled" } })
    })
  }

  test("ending an ended session again with the same reason is answered 200 with Idempotent-Replayed: true and no new event; another reason is 409 session_ended", async () => {
    const s = await sessionIn("active", "end-twice")
    const first = expectOk(await end(s.id, "completed"))
    const before = await observe(s.id)
    const res = await end(s.id, "completed")
    expect(expectOk(res)).toEqual(first)
    expect(res.headers.get("idempotent-replayed")).toBe("true")
    expectRevisionETag(res, first.revision)
    // The retry carries the revision the first attempt changed: If-Match must not refuse it.
    const stale = await call("POST", `/v1/sessions/${s.id}/end`, {
      body: { reason: "completed" },
      headers: { "If-Match": String(first.revision - 1) },
    })
    expect(expectOk(stale)).toEqual(first)
    const other = expectError(await end(s.id, "killed"), 409, "session_ended")
    expect(other.message).toContain("completed")
    await expectUnchanged(s.id, before)
  })

  test("end with a missing, unknown or mistyped reason is 400 and changes nothing", async () => {
    const s = await sessionIn("active", "end-bad")
    const before = await observe(s.id)
    const cases = [
      [{}, "missing_field", "reason"],
      [{ reason: "" }, "missing_field", "reason"],
      [{ reason: "done" }, "invalid_end_reason", "completed"],
      [{ reason: "Completed" }, "invalid_end_reason", "reason"],
      [{ reason: 1 }, "invalid_field", "reason"],
      [{ reason: "completed", note: "x" }, "unknown_field", "note"],
    ]
    for (const [body, code, mention] of cases) {
      const err = expectError(await call("POST", `/v1/sessions/${s.id}/end`, { body }), 400, code)
      expect(err.message).toContain(mention)
    }
    expectError(await call("POST", `/v1/sessions/${s.id}/end`, { body: "{reason: completed}" }), 400, "invalid_json")
    for (const body of ["", '"completed"', "[]"]) {
      expectError(await call("POST", `/v1/sessions/${s.id}/end`, { body }), 400, "invalid_body")
    }
    await expectUnchanged(s.id, before)
  })

  test("end with a stale If-Match is 412 revision_mismatch and leaves the session running", async () => {
    const s = await sessionIn("active", "end-cas")
    const before = await observe(s.id)
    const res = await end(s.id, "killed", { "If-Match": `"${s.revision + 1}"` })
    expect(expectError(res, 412, "revision_mismatch").current_revision).toBe(s.revision)
    expectRevisionETag(res, s.revision)
    await expectUnchanged(s.id, before)
  })

  test("end of an unknown session is 404 session_not_found", async () => {
    const project = await createProject("end-404")
    expectError(await end(`${project}-1`), 404, "session_not_found")
  })

  test("end finishes the active execution (session_ended) and interrupts accepted and delivered commands, in one revision", async () => {
    const s = await sessionIn("active", "end-work")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const c1 = expectOk(await sendCommand(s.id, "a", { n: 1 }), 202)
    const c2 = expectOk(await sendCommand(s.id, "b", { n: 2 }), 202)
    const c3 = expectOk(await sendCommand(s.id, "c", { n: 3 }), 202)
    expectOk(await ack(s.id, c2.id, { status: "delivered" }))
    expectOk(await ack(s.id, c3.id, { status: "done" }))
    const before = await observe(s.id)
    const ended = expectOk(await end(s.id, "killed"))
    expect(ended).toMatchObject({ state: "ended", active_execution: null, revision: before.session.revision + 1 })
    const added = await newEvents(s.id, before)
    expect(added.map((e) => e.type)).toEqual(["execution.finished", "command.updated", "command.updated", "session.ended"])
    for (const e of added) expect(e.revision).toBe(ended.revision)
    expect(added[0].data).toEqual({ generation: 1, reason: "session_ended" })
    const commands = expectOk(await call("GET", `/v1/sessions/${s.id}/commands`)).commands
    expect(commands.map((c) => [c.id, c.status])).toEqual([[c1.id, "interrupted"], [c2.id, "interrupted"], [c3.id, "done"]])
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands?status=pending`)).commands).toEqual([])
  })
})

// ---- heartbeat -------------------------------------------------------------------------------

describe("POST /v1/sessions/{id}/heartbeat", () => {
  test("a heartbeat on an active session records last_heartbeat_at without a revision bump or an event", async () => {
    const s = await sessionIn("active", "hb")
    const before = await observe(s.id)
    await sleep(5)
    const res = await call("POST", `/v1/sessions/${s.id}/heartbeat`)
    const after = expectOk(res)
    expectRevisionETag(res, s.revision)
    expect(after.revision).toBe(s.revision)
    expect(after.state).toBe("active")
    expect(after.last_heartbeat_at).toMatch(RFC3339)
    expect(Date.parse(after.last_heartbeat_at)).toBeGreaterThanOrEqual(Date.parse(s.last_heartbeat_at))
    const added = await newEvents(s.id, before)
    expect(added).toEqual([])
  })

  test("a heartbeat brings a detached session back to active: revision + 1 and a session.transitioned event with cause heartbeat", async () => {
    const s = await sessionIn("detached", "hb-back")
    const before = await observe(s.id)
    const res = await call("POST", `/v1/sessions/${s.id}/heartbeat`)
    const after = expectOk(res)
    expect(after).toMatchObject({ state: "active", revision: s.revision + 1 })
    expectRevisionETag(res, after.revision)
    const added = await newEvents(s.id, before)
    expect(added.length).toBe(1)
    expect(added[0]).toMatchObject({ type: "session.transitioned", revision: after.revision, data: { from: "detached", to: "active", cause: "heartbeat" } })
  })

  test("a heartbeat on an unknown session is 404 session_not_found; on an ended session 409 session_ended", async () => {
    const project = await createProject("hb-404")
    expectError(await call("POST", `/v1/sessions/${project}-1/heartbeat`), 404, "session_not_found")
    const s = await sessionIn("ended", "hb-ended")
    const before = await observe(s.id)
    const err = expectError(await call("POST", `/v1/sessions/${s.id}/heartbeat`), 409, "session_ended")
    expect(err.end_reason).toBe("completed")
    await expectUnchanged(s.id, before)
  })
})

// ---- snapshot --------------------------------------------------------------------------------

describe("GET /v1/sessions/{id}/snapshot", () => {
  test("the snapshot holds the session, the newest rows, the pending commands and the event offset they are consistent at", async () => {
    const s = await sessionIn("active", "snap")
    for (let i = 1; i <= 5; i++) expectOk(await appendRow(s.id, { kind: "assistant", body: { i } }), 201)
    const c1 = expectOk(await sendCommand(s.id, "one", { x: 1 }), 202)
    const c2 = expectOk(await sendCommand(s.id, "two", { x: 2 }), 202)
    expectOk(await ack(s.id, c2.id, { status: "done" }))
    const current = await getSession(s.id)
    const { next } = await readEvents(s.id)

    const res = await call("GET", `/v1/sessions/${s.id}/snapshot`)
    const snap = expectOk(res)
    expectRevisionETag(res, current.revision)
    expect(snap.session).toEqual(current)
    expect(snap.rows.map((r) => r.sequence)).toEqual([1, 2, 3, 4, 5])
    expect(snap.rows_before).toBeNull()
    expect(snap.pending_commands.map((c) => c.id)).toEqual([c1.id])
    expect(snap.events_offset).toBe(next)
    // Reading the events from that offset gives nothing new: the snapshot is at the tail.
    const tail = await call("GET", `/v1/sessions/${s.id}/events?offset=${encodeURIComponent(snap.events_offset)}`)
    expect(tail.status).toBe(200)
    expect(tail.json).toEqual([])
    expect(tail.headers.get("stream-up-to-date")).toBe("true")

    const limited = expectOk(await call("GET", `/v1/sessions/${s.id}/snapshot?rows=2`))
    expect(limited.rows.map((r) => r.sequence)).toEqual([4, 5])
    expect(limited.rows_before).toBe(4)
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/snapshot?rows=0`)).rows).toEqual([])
    expectOk(await call("GET", `/v1/sessions/${s.id}/snapshot?rows=500`))
  })

  test("a snapshot with rows over 500 or not a number is 400 invalid_rows; an unknown session is 404 session_not_found", async () => {
    const s = await sessionIn("created", "snap-bad")
    expectError(await call("GET", `/v1/sessions/${s.id}/snapshot?rows=501`), 400, "invalid_rows")
    expectError(await call("GET", `/v1/sessions/${s.id}/snapshot?rows=x`), 400, "invalid_rows")
    expectError(await call("GET", `/v1/sessions/${s.project}-9/snapshot`), 404, "session_not_found")
  })
})

// ---- executions ------------------------------------------------------------------------------

describe("executions", () => {
  test("starting executions answers 201 with generation 1, 2, 3 ... each after the previous one finished; the session shows it running", async () => {
    const s = await sessionIn("active", "exec")
    let revision = s.revision
    for (let g = 1; g <= 3; g++) {
      const before = await observe(s.id)
      const res = await call("POST", `/v1/sessions/${s.id}/executions`)
      const e = expectOk(res, 201)
      revision += 1
      expectRevisionETag(res, revision)
      expect(e).toMatchObject({ generation: g, finished_at: null, finish_reason: null })
      expect(e.started_at).toMatch(RFC3339)
      const running = await getSession(s.id)
      expect(running).toMatchObject({ client_state: "running", revision, active_execution: { generation: g } })
      expect((await newEvents(s.id, before)).map((x) => [x.type, x.data])).toEqual([["execution.started", { generation: g }]])
      const fin = await call("POST", `/v1/sessions/${s.id}/executions/${g}/finish`)
      expect(expectOk(fin)).toMatchObject({ generation: g, finish_reason: "completed" })
      revision += 1
      expectRevisionETag(fin, revision)
      expect(await getSession(s.id)).toMatchObject({ client_state: "idle", active_execution: null })
    }
  })

  test("a second start while an execution is active is 409 execution_active naming it, and changes nothing", async () => {
    const s = await sessionIn("active", "exec-busy")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const before = await observe(s.id)
    const err = expectError(await call("POST", `/v1/sessions/${s.id}/executions`), 409, "execution_active")
    expect(err.active_generation).toBe(1)
    await expectUnchanged(s.id, before)
  })

  test("finish or abort with a stale or unknown generation is 409 stale_generation and changes nothing", async () => {
    const s = await sessionIn("active", "exec-stale")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions/1/finish`))
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const before = await observe(s.id)
    for (const [g, action] of [[1, "finish"], [1, "abort"], [3, "finish"], [99, "abort"], [0, "finish"]]) {
      const err = expectError(await call("POST", `/v1/sessions/${s.id}/executions/${g}/${action}`), 409, "stale_generation")
      expect(err.active_generation).toBe(2)
    }
    await expectUnchanged(s.id, before)
    expect((await getSession(s.id)).active_execution.generation).toBe(2)
  })

  test("finish with outcome failed records failed; abort records aborted; GET executions lists every run in order", async () => {
    const s = await sessionIn("active", "exec-outcome")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    expect(expectOk(await call("POST", `/v1/sessions/${s.id}/executions/1/finish`, { body: { outcome: "failed" } })).finish_reason).toBe("failed")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    expect(expectOk(await call("POST", `/v1/sessions/${s.id}/executions/2/abort`)).finish_reason).toBe("aborted")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    expect(expectOk(await call("POST", `/v1/sessions/${s.id}/executions/3/finish`, { body: { outcome: "completed" } })).finish_reason).toBe("completed")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const res = await call("GET", `/v1/sessions/${s.id}/executions`)
    const list = expectOk(res).executions
    expect(list.map((e) => [e.generation, e.finish_reason])).toEqual([[1, "failed"], [2, "aborted"], [3, "completed"], [4, null]])
    for (const e of list.slice(0, 3)) expect(e.finished_at).toMatch(RFC3339)
    expect(list[3].finished_at).toBeNull()
    const { events } = await readEvents(s.id)
    const finished = events.filter((e) => e.type === "execution.finished").map((e) => e.data)
    expect(finished).toEqual([{ generation: 1, reason: "failed" }, { generation: 2, reason: "aborted" }, { generation: 3, reason: "completed" }])
  })

  test("bad finish requests are 400 (invalid_outcome, unknown field, non-numeric generation, malformed JSON) and change nothing", async () => {
    const s = await sessionIn("active", "exec-bad")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const before = await observe(s.id)
    const fin = (body, g = 1) => call("POST", `/v1/sessions/${s.id}/executions/${g}/finish`, { body })
    expect(expectError(await fin({ outcome: "aborted" }), 400, "invalid_outcome").message).toContain("outcome")
    expectError(await fin({ outcome: 1 }), 400, "invalid_field")
    expect(expectError(await fin({ reason: "completed" }), 400, "unknown_field").message).toContain("reason")
    expectError(await fin("{"), 400, "invalid_json")
    expectError(await fin("[1]"), 400, "invalid_body")
    expectError(await fin({}, "one"), 400, "invalid_generation")
    expectError(await call("POST", `/v1/sessions/${s.id}/executions/-1/abort`), 400, "invalid_generation")
    expectError(await call("POST", `/v1/sessions/${s.id}/executions/1/abort`, { body: "{" }), 400, "invalid_json")
    await expectUnchanged(s.id, before)
  })

  test("start with a stale If-Match is 412 revision_mismatch; in a closing session 409 session_closing; both change nothing", async () => {
    const s = await sessionIn("active", "exec-cas")
    const before = await observe(s.id)
    const res = await call("POST", `/v1/sessions/${s.id}/executions`, { headers: { "If-Match": `"${s.revision - 1}"` } })
    expect(expectError(res, 412, "revision_mismatch").current_revision).toBe(s.revision)
    await expectUnchanged(s.id, before)
    const closing = await sessionIn("closing", "exec-closing")
    const beforeClosing = await observe(closing.id)
    expectError(await call("POST", `/v1/sessions/${closing.id}/executions`), 409, "session_closing")
    await expectUnchanged(closing.id, beforeClosing)
  })

  test("executions of an unknown session are 404 session_not_found", async () => {
    const project = await createProject("exec-404")
    const id = `${project}-1`
    expectError(await call("POST", `/v1/sessions/${id}/executions`), 404, "session_not_found")
    expectError(await call("GET", `/v1/sessions/${id}/executions`), 404, "session_not_found")
    expectError(await call("POST", `/v1/sessions/${id}/executions/1/finish`), 404, "session_not_found")
    expectError(await call("POST", `/v1/sessions/${id}/executions/1/abort`), 404, "session_not_found")
  })
})

// ---- commands --------------------------------------------------------------------------------

describe("commands", () => {
  test("a command without an Idempotency-Key is 400 missing_idempotency_key, with an empty or 129-character one 400 invalid_idempotency_key, and nothing is created", async () => {
    const s = await sessionIn("active", "cmd-key")
    const before = await observe(s.id)
    for (const [key, code] of [
      [undefined, "missing_idempotency_key"],
      ["", "invalid_idempotency_key"],
      ["k".repeat(129), "invalid_idempotency_key"],
    ]) {
      const err = expectError(await sendCommand(s.id, key, { text: "hi" }), 400, code)
      expect(err.message).toContain("Idempotency-Key")
    }
    await expectUnchanged(s.id, before)
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands`)).commands).toEqual([])
    expectOk(await sendCommand(s.id, "k".repeat(128), { text: "hi" }), 202)
  })

  test("a command is accepted with 202 and a receipt; the same key and body is answered with the same receipt, Idempotent-Replayed: true and no new event", async () => {
    const s = await sessionIn("active", "cmd")
    const before = await observe(s.id)
    const body = { text: "run the tests", opts: { fast: true } }
    const res = await sendCommand(s.id, "req-1", body)
    const receipt = expectOk(res, 202)
    expectRevisionETag(res, s.revision + 1)
    expect(res.headers.get("idempotent-replayed")).toBeNull()
    expect(receipt).toMatchObject({ id: `${s.id}-c1`, session: s.id, sequence: 1, status: "accepted", request_id: "req-1", body, result: null })
    const added = await newEvents(s.id, before)
    expect(added.length).toBe(1)
    expectEventShape(added[0], s.id)
    expect(added[0]).toMatchObject({ type: "command.accepted", revision: s.revision + 1, data: { command: receipt } })

    const afterFirst = await observe(s.id)
    // The same body, also with different whitespace, is a retry.
    for (const retry of [body, '{ "text" : "run the tests",\n "opts" : { "fast" : true } }']) {
      const again = await sendCommand(s.id, "req-1", retry)
      expect(expectOk(again, 202)).toEqual(receipt)
      expect(again.headers.get("idempotent-replayed")).toBe("true")
    }
    await expectUnchanged(s.id, afterFirst)
    // A new key is a new command.
    expect(expectOk(await sendCommand(s.id, "req-2", body), 202)).toMatchObject({ id: `${s.id}-c2`, sequence: 2 })
  })

  test("a retry whose JSON body only orders the object members differently is still the same command (replayed, not 409)", async () => {
    const s = await sessionIn("active", "cmd-order")
    const receipt = expectOk(await sendCommand(s.id, "k", '{"a":1,"b":2}'), 202)
    const before = await observe(s.id)
    const again = await sendCommand(s.id, "k", '{"b":2,"a":1}')
    expect(expectOk(again, 202)).toEqual(receipt)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    await expectUnchanged(s.id, before)
  })

  test("the same Idempotency-Key with a different body is 409 idempotency_key_reused and changes nothing", async () => {
    const s = await sessionIn("active", "cmd-reuse")
    const receipt = expectOk(await sendCommand(s.id, "k", { text: "one" }), 202)
    const before = await observe(s.id)
    const err = expectError(await sendCommand(s.id, "k", { text: "two" }), 409, "idempotency_key_reused")
    expect(err.message).toContain("k")
    await expectUnchanged(s.id, before)
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands/${receipt.id}`))).toEqual(receipt)
    // The key is scoped to the session: another session may use it.
    const other = await sessionIn("active", "cmd-reuse-other")
    expectOk(await sendCommand(other.id, "k", { text: "two" }), 202)
  })

  test("the agent acks accepted -> delivered -> done (with a result), each 200 with a command.updated event and a revision bump", async () => {
    const s = await sessionIn("active", "cmd-ack")
    const c = expectOk(await sendCommand(s.id, "k", { text: "x" }), 202)
    let revision = (await getSession(s.id)).revision
    for (const [status, extra] of [["delivered", {}], ["done", { result: { exit: 0, out: "ok" } }]]) {
      const before = await observe(s.id)
      const res = await ack(s.id, c.id, { status, ...extra })
      const updated = expectOk(res)
      revision += 1
      expectRevisionETag(res, revision)
      expect(updated).toMatchObject({ id: c.id, status })
      const added = await newEvents(s.id, before)
      expect(added.length).toBe(1)
      expect(added[0]).toMatchObject({ type: "command.updated", revision, data: { command: { id: c.id, status } } })
    }
    const got = expectOk(await call("GET", `/v1/sessions/${s.id}/commands/${c.id}`))
    expect(got).toMatchObject({ status: "done", result: { exit: 0, out: "ok" }, body: { text: "x" } })
  })

  test("accepted may go straight to done or failed", async () => {
    const s = await sessionIn("active", "cmd-direct")
    const a = expectOk(await sendCommand(s.id, "a", { n: 1 }), 202)
    const b = expectOk(await sendCommand(s.id, "b", { n: 2 }), 202)
    expect(expectOk(await ack(s.id, a.id, { status: "done" })).status).toBe("done")
    expect(expectOk(await ack(s.id, b.id, { status: "failed", result: { error: "boom" } }))).toMatchObject({ status: "failed", result: { error: "boom" } })
  })

  test("illegal acks (out of done or failed, back to delivered) are 409 illegal_command_transition with from and to, changing nothing", async () => {
    const s = await sessionIn("active", "cmd-illegal")
    const done = expectOk(await sendCommand(s.id, "d", { n: 1 }), 202)
    const failed = expectOk(await sendCommand(s.id, "f", { n: 2 }), 202)
    expectOk(await ack(s.id, done.id, { status: "done" }))
    expectOk(await ack(s.id, failed.id, { status: "failed" }))
    const before = await observe(s.id)
    for (const [c, from, to] of [[done, "done", "delivered"], [done, "done", "failed"], [failed, "failed", "done"], [failed, "failed", "delivered"]]) {
      const err = expectError(await ack(s.id, c.id, { status: to }), 409, "illegal_command_transition")
      expect(err.from).toBe(from)
      expect(err.to).toBe(to)
    }
    await expectUnchanged(s.id, before)
  })

  test("repeating the ack a command already has is a replay: 200, Idempotent-Replayed, no event", async () => {
    const s = await sessionIn("active", "cmd-ack-replay")
    const c = expectOk(await sendCommand(s.id, "k", { n: 1 }), 202)
    const delivered = expectOk(await ack(s.id, c.id, { status: "delivered" }))
    const before = await observe(s.id)
    const res = await ack(s.id, c.id, { status: "delivered" })
    expect(expectOk(res)).toEqual(delivered)
    expect(res.headers.get("idempotent-replayed")).toBe("true")
    await expectUnchanged(s.id, before)
  })

  test("bad ack bodies are 400 (invalid_command_status, missing status, unknown field, malformed JSON) and change nothing", async () => {
    const s = await sessionIn("active", "cmd-ack-bad")
    const c = expectOk(await sendCommand(s.id, "k", { n: 1 }), 202)
    const before = await observe(s.id)
    for (const status of ["accepted", "interrupted", "DONE", "finished"]) {
      expect(expectError(await ack(s.id, c.id, { status }), 400, "invalid_command_status").message).toContain("delivered")
    }
    expectError(await ack(s.id, c.id, {}), 400, "missing_field")
    expectError(await ack(s.id, c.id, { status: 1 }), 400, "invalid_field")
    expect(expectError(await ack(s.id, c.id, { status: "done", output: 1 }), 400, "unknown_field").message).toContain("output")
    expectError(await ack(s.id, c.id, "{"), 400, "invalid_json")
    expectError(await ack(s.id, c.id, "[]"), 400, "invalid_body")
    await expectUnchanged(s.id, before)
  })

  test("a new command or an ack with a stale If-Match is 412 revision_mismatch with current_revision and ETag, and changes nothing", async () => {
    const s = await sessionIn("active", "cmd-cas")
    const c = expectOk(await sendCommand(s.id, "k1", { n: 1 }), 202)
    const current = await getSession(s.id)
    const before = await observe(s.id)
    const stale = { "If-Match": `"${current.revision - 1}"` }
    const send = await call("POST", `/v1/sessions/${s.id}/commands`, { headers: { ...stale, "Idempotency-Key": "k2" }, body: { n: 2 } })
    expect(expectError(send, 412, "revision_mismatch").current_revision).toBe(current.revision)
    expectRevisionETag(send, current.revision)
    const acked = await call("POST", `/v1/sessions/${s.id}/commands/${c.id}`, { headers: stale, body: { status: "delivered" } })
    expect(expectError(acked, 412, "revision_mismatch").current_revision).toBe(current.revision)
    expectRevisionETag(acked, current.revision)
    await expectUnchanged(s.id, before)
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands`)).commands.map((x) => [x.id, x.status])).toEqual([[c.id, "accepted"]])
  })

  test("a command body that is not a JSON object is 400 invalid_body, malformed JSON 400 invalid_json; nothing is created", async () => {
    const s = await sessionIn("active", "cmd-body")
    const before = await observe(s.id)
    for (const body of ["[1]", '"text"', "7", "", "null"]) expectError(await sendCommand(s.id, `k-${body.length}-${body}`, body), 400, "invalid_body")
    expectError(await sendCommand(s.id, "k-json", '{"text": '), 400, "invalid_json")
    await expectUnchanged(s.id, before)
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands`)).commands).toEqual([])
  })

  test("GET one command, GET the list in order, and GET ?status=pending (accepted and delivered only)", async () => {
    const s = await sessionIn("active", "cmd-list")
    const ids = []
    for (let i = 1; i <= 4; i++) ids.push(expectOk(await sendCommand(s.id, `k${i}`, { i }), 202).id)
    expectOk(await ack(s.id, ids[1], { status: "delivered" }))
    expectOk(await ack(s.id, ids[2], { status: "done" }))
    expectOk(await ack(s.id, ids[3], { status: "failed" }))
    const all = expectOk(await call("GET", `/v1/sessions/${s.id}/commands`)).commands
    expect(all.map((c) => [c.id, c.sequence, c.status])).toEqual([
      [ids[0], 1, "accepted"], [ids[1], 2, "delivered"], [ids[2], 3, "done"], [ids[3], 4, "failed"],
    ])
    const pending = expectOk(await call("GET", `/v1/sessions/${s.id}/commands?status=pending`)).commands
    expect(pending.map((c) => c.id)).toEqual([ids[0], ids[1]])
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands?after=2`)).commands.map((c) => c.sequence)).toEqual([3, 4])
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands?limit=1`)).commands.map((c) => c.sequence)).toEqual([1])
    expect(expectOk(await call("GET", `/v1/sessions/${s.id}/commands/${ids[2]}`))).toEqual(all[2])
  })

  test("command lists refuse bad filters with 400; unknown commands and sessions are 404 with the matching code", async () => {
    const s = await sessionIn("active", "cmd-404")
    expectOk(await sendCommand(s.id, "k", { n: 1 }), 202)
    expectError(await call("GET", `/v1/sessions/${s.id}/commands?status=done`), 400, "invalid_status_filter")
    expectError(await call("GET", `/v1/sessions/${s.id}/commands?limit=0`), 400, "invalid_limit")
    expectError(await call("GET", `/v1/sessions/${s.id}/commands?limit=501`), 400, "invalid_limit")
    expectError(await call("GET", `/v1/sessions/${s.id}/commands?after=x`), 400, "invalid_after")
    for (const id of [`${s.id}-c2`, `${s.id}-c0`, "nope", `${s.id}-cx`]) {
      expectError(await call("GET", `/v1/sessions/${s.id}/commands/${id}`), 404, "command_not_found")
    }
    const before = await observe(s.id)
    expectError(await ack(s.id, `${s.id}-c9`, { status: "done" }), 404, "command_not_found")
    await expectUnchanged(s.id, before)
    const ghost = `${s.project}-9`
    expectError(await sendCommand(ghost, "k", { n: 1 }), 404, "session_not_found")
    expectError(await call("GET", `/v1/sessions/${ghost}/commands`), 404, "session_not_found")
    expectError(await ack(ghost, `${ghost}-c1`, { status: "done" }), 404, "session_not_found")
  })

  test("GET /v1/sessions/{unknown}/commands/{id} is 404 session_not_found, not command_not_found", async () => {
    const project = await createProject("cmd-ghost")
    const ghost = `${project}-1`
    expectError(await call("GET", `/v1/sessions/${ghost}/commands/${ghost}-c1`), 404, "session_not_found")
  })
})

// ---- rows ------------------------------------------------------------------------------------

describe("rows", () => {
  test("appending rows answers 201 and assigns sequence 1, 2, 3 ... (row ids seq-1, seq-2 ... unless given), each with a row.appended event", async () => {
    const s = await sessionIn("active", "rows")
    let revision = s.revision
    const kinds = ["user", "assistant", "tool_call", "tool_result", "approval_request", "approval_response", "system"]
    for (let i = 0; i < kinds.length; i++) {
      const before = await observe(s.id)
      const body = { kind: kinds[i], body: { text: `m${i}` }, ...(i === 2 ? { row_id: "call-42", status: "in_progress" } : {}) }
      const res = await appendRow(s.id, body)
      const row = expectOk(res, 201)
      revision += 1
      expectRevisionETag(res, revision)
      expect(row).toMatchObject({
        row_id: i === 2 ? "call-42" : `seq-${i + 1}`, session: s.id, sequence: i + 1, kind: kinds[i],
        status: i === 2 ? "in_progress" : "complete", body: { text: `m${i}` },
      })
      expect(Number.isInteger(row.revision)).toBe(true)
      const added = await newEvents(s.id, before)
      expect(added.length).toBe(1)
      expect(added[0]).toMatchObject({ type: "row.appended", revision, data: { row } })
      expect(expectOk(await call("GET", `/v1/sessions/${s.id}/rows/${row.row_id}`))).toEqual(row)
    }
  })

  test("append with an Idempotency-Key: the same body is a replay (same row, Idempotent-Replayed, no event); a different body is 409 idempotency_key_reused", async () => {
    const s = await sessionIn("active", "rows-key")
    const body = { kind: "user", body: { text: "hello" } }
    const res = await appendRow(s.id, body, "msg-1")
    const row = expectOk(res, 201)
    expect(res.headers.get("idempotent-replayed")).toBeNull()
    const before = await observe(s.id)
    const again = await appendRow(s.id, body, "msg-1")
    expect(again.status).toBe(res.status)
    expect(expectOk(again, res.status)).toEqual(row)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    await expectUnchanged(s.id, before)
    const err = expectError(await appendRow(s.id, { kind: "user", body: { text: "other" } }, "msg-1"), 409, "idempotency_key_reused")
    expect(err.message).toContain("msg-1")
    await expectUnchanged(s.id, before)
    expectError(await appendRow(s.id, body, ""), 400, "invalid_idempotency_key")
    expectError(await appendRow(s.id, body, "x".repeat(129)), 400, "invalid_idempotency_key")
    await expectUnchanged(s.id, before)
    // Without a key the same body is a new row.
    expect(expectOk(await appendRow(s.id, body), 201).sequence).toBe(2)
  })

  test("PUT /rows/{row_id} creates a row (201), updates keep the sequence of the first insert and bump the row revision; an upsert changing nothing is a replay", async () => {
    const s = await sessionIn("active", "rows-upsert")
    expectOk(await appendRow(s.id, { kind: "user", body: { text: "q" } }), 201)
    const createdRes = await upsertRow(s.id, "tool-1", { kind: "tool_call", status: "pending", body: { cmd: "ls" } })
    const created = expectOk(createdRes, 201)
    expect(created).toMatchObject({ row_id: "tool-1", sequence: 2, kind: "tool_call", status: "pending" })
    expectOk(await appendRow(s.id, { kind: "assistant", body: { text: "a" } }), 201)

    let sessionRevision = (await getSession(s.id)).revision
    let rowRevision = created.revision
    for (const change of [{ status: "in_progress" }, { status: "complete", body: { cmd: "ls", out: "a b" } }, { kind: "tool_result" }]) {
      const before = await observe(s.id)
      const res = await upsertRow(s.id, "tool-1", change)
      const updated = expectOk(res)
      sessionRevision += 1
      rowRevision += 1
      expectRevisionETag(res, sessionRevision)
      expect(updated).toMatchObject({ row_id: "tool-1", sequence: 2, revision: rowRevision, ...change })
      const added = await newEvents(s.id, before)
      expect(added.length).toBe(1)
      expect(added[0]).toMatchObject({ type: "row.updated", revision: sessionRevision, data: { row: updated } })
    }
    const current = expectOk(await call("GET", `/v1/sessions/${s.id}/rows/tool-1`))
    expect(current).toMatchObject({ sequence: 2, kind: "tool_result", status: "complete", body: { cmd: "ls", out: "a b" }, revision: rowRevision })

    const before = await observe(s.id)
    for (const same of [{}, { status: "complete" }, { kind: "tool_result", status: "complete", body: { cmd: "ls", out: "a b" } }]) {
      const res = await upsertRow(s.id, "tool-1", same)
      expect(expectOk(res)).toEqual(current)
      expect(res.headers.get("idempotent-replayed")).toBe("true")
    }
    await expectUnchanged(s.id, before)
    // The sequence order is the order of first insert.
    const rows = expectOk(await call("GET", `/v1/sessions/${s.id}/rows`)).rows
    expect(rows.map((r) => [r.sequence, r.row_id])).toEqual([[1, "seq-1"], [2, "tool-1"], [3, "seq-3"]])
  })

  test("GET /rows pages by sequence with after, before and limit; limit 500 is accepted and 501 is 400 invalid_limit", async () => {
    const s = await sessionIn("active", "rows-page")
    for (let i = 1; i <= 10; i++) expectOk(await appendRow(s.id, { kind: "assistant", body: { i } }), 201)
    const seqs = async (q) => {
      const body = expectOk(await call("GET", `/v1/sessions/${s.id}/rows${q}`))
      return { seqs: body.rows.map((r) => r.sequence), next_after: body.next_after, next_before: body.next_before }
    }
    expect(await seqs("")).toEqual({ seqs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], next_after: 10, next_before: 1 })
    // Forwards, page by page, every row exactly once.
    const seen = []
    let after = 0
    for (let pages = 0; pages < 20; pages++) {
      const page = await seqs(`?after=${after}&limit=3`)
      if (page.seqs.length === 0) {
        expect(page.next_after).toBeNull()
        break
      }
      seen.push(...page.seqs)
      after = page.next_after
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    // Backwards from `before`: the newest rows below it, oldest first in the page.
    expect((await seqs("?before=6&limit=2")).seqs).toEqual([4, 5])
    expect((await seqs("?before=6&limit=2")).next_before).toBe(4)
    expect((await seqs("?after=2&before=6")).seqs).toEqual([3, 4, 5])
    expect((await seqs("?after=10")).seqs).toEqual([])
    expect((await seqs("?limit=500")).seqs.length).toBe(10)
    for (const q of ["?limit=501", "?limit=0", "?limit=1000001", "?limit=x"]) {
      expectError(await call("GET", `/v1/sessions/${s.id}/rows${q}`), 400, "invalid_limit")
    }
    expectError(await call("GET", `/v1/sessions/${s.id}/rows?after=-1`), 400, "invalid_after")
    expectError(await call("GET", `/v1/sessions/${s.id}/rows?before=b`), 400, "invalid_before")
  })

  test("bad rows are 400 with the matching code (kind, status, missing fields, unknown field, row_id) and change nothing; a taken row_id is 409 row_exists", async () => {
    const s = await sessionIn("active", "rows-bad")
    expectOk(await appendRow(s.id, { kind: "user", body: "hi", row_id: "taken" }), 201)
    const before = await observe(s.id)
    const cases = [
      [{ kind: "robot", body: {} }, "invalid_row_kind", "assistant"],
      [{ kind: "user", status: "done", body: {} }, "invalid_row_status", "complete"],
      [{ body: {} }, "missing_field", "kind"],
      [{ kind: "user" }, "missing_field", "body"],
      [{ kind: "user", body: {}, sequence: 9 }, "unknown_field", "sequence"],
      [{ kind: 1, body: {} }, "invalid_field", "kind"],
      [{ kind: "user", body: {}, row_id: "a/b" }, "invalid_row_id", "row_id"],
      [{ kind: "user", body: {}, row_id: "has space" }, "invalid_row_id", "row_id"],
      [{ kind: "user", body: {}, row_id: "" }, "invalid_row_id", "row_id"],
    ]
    for (const [body, code, mention] of cases) {
      const err = expectError(await appendRow(s.id, body), 400, code)
      expect(err.message, JSON.stringify(body)).toContain(mention)
    }
    expectError(await appendRow(s.id, '{"kind":'), 400, "invalid_json")
    for (const body of ["[]", '"row"', ""]) expectError(await appendRow(s.id, body), 400, "invalid_body")
    for (const [body, code] of [
      [{ kind: "robot" }, "invalid_row_kind"],
      [{ status: "nope" }, "invalid_row_status"],
      [{ row_id: "x" }, "unknown_field"],
      [{ status: 3 }, "invalid_field"],
    ]) {
      expectError(await upsertRow(s.id, "taken", body), 400, code)
    }
    expectError(await upsertRow(s.id, "new-row", { kind: "user" }), 400, "missing_field")
    expectError(await upsertRow(s.id, "new-row", { body: {} }), 400, "missing_field")
    expectError(await upsertRow(s.id, "taken", "{"), 400, "invalid_json")
    expectError(await upsertRow(s.id, "taken", "[]"), 400, "invalid_body")
    const err = expectError(await appendRow(s.id, { kind: "user", body: "again", row_id: "taken" }), 409, "row_exists")
    expect(err.message).toContain("PUT")
    await expectUnchanged(s.id, before)
    expectError(await call("GET", `/v1/sessions/${s.id}/rows/new-row`), 404, "row_not_found")
  })

  test("row writes with a stale If-Match are 412 revision_mismatch and change nothing", async () => {
    const s = await sessionIn("active", "rows-cas")
    expectOk(await appendRow(s.id, { kind: "user", body: 1 }), 201)
    const current = await getSession(s.id)
    const before = await observe(s.id)
    const stale = { "If-Match": `"${current.revision - 1}"` }
    const a = await call("POST", `/v1/sessions/${s.id}/rows`, { headers: stale, body: { kind: "user", body: 2 } })
    expect(expectError(a, 412, "revision_mismatch").current_revision).toBe(current.revision)
    const u = await upsertRow(s.id, "seq-1", { status: "failed" }, stale)
    expect(expectError(u, 412, "revision_mismatch").current_revision).toBe(current.revision)
    await expectUnchanged(s.id, before)
  })

  test("unknown rows are 404 row_not_found; rows of an unknown session are 404 session_not_found", async () => {
    const s = await sessionIn("active", "rows-404")
    expectError(await call("GET", `/v1/sessions/${s.id}/rows/r1`), 404, "row_not_found")
    const ghost = `${s.project}-9`
    expectError(await call("GET", `/v1/sessions/${ghost}/rows`), 404, "session_not_found")
    expectError(await appendRow(ghost, { kind: "user", body: 1 }), 404, "session_not_found")
    expectError(await upsertRow(ghost, "r1", { kind: "user", body: 1 }), 404, "session_not_found")
  })

  test("GET /v1/sessions/{unknown}/rows/{row_id} is 404 session_not_found, not row_not_found", async () => {
    const project = await createProject("rows-ghost")
    expectError(await call("GET", `/v1/sessions/${project}-1/rows/r1`), 404, "session_not_found")
  })
})

// ---- the event stream ------------------------------------------------------------------------

describe("GET /v1/sessions/{id}/events", () => {
  test("every mutation appears as one typed event {type, session, revision, at, data}, in order, with the revision it produced", async () => {
    const project = await createProject("ev")
    const steps = []
    const record = (type, res) => {
      const rev = Number(JSON.parse(res.headers.get("etag")))
      steps.push([type, rev])
      return res
    }
    const s = expectOk(record("session.created", await call("POST", `/v1/projects/${project}/sessions`, { body: { title: "t" } })), 201)
    expectOk(record("session.updated", await call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "u" } })))
    expectOk(record("session.transitioned", await transition(s.id, "starting")))
    expectOk(record("session.transitioned", await transition(s.id, "active")))
    expectOk(record("execution.started", await call("POST", `/v1/sessions/${s.id}/executions`)), 201)
    const c = expectOk(record("command.accepted", await sendCommand(s.id, "k", { t: 1 })), 202)
    expectOk(record("command.updated", await ack(s.id, c.id, { status: "delivered" })))
    expectOk(record("command.updated", await ack(s.id, c.id, { status: "done" })))
    expectOk(record("row.appended", await appendRow(s.id, { kind: "user", body: "x" })), 201)
    expectOk(record("row.updated", await upsertRow(s.id, "seq-1", { status: "failed" })))
    expectOk(record("row.appended", await upsertRow(s.id, "r2", { kind: "system", body: "y" })), 201)
    expectOk(record("execution.finished", await call("POST", `/v1/sessions/${s.id}/executions/1/finish`)))
    expectOk(await call("POST", `/v1/sessions/${s.id}/heartbeat`)) // not a change: no event
    expectOk(record("session.transitioned", await transition(s.id, "suspended")))
    expectOk(record("session.ended", await end(s.id, "completed")))

    const { events, closed } = await readEvents(s.id)
    expect(closed).toBe(true)
    expect(events.map((e) => [e.type, e.revision])).toEqual(steps)
    for (const e of events) expectEventShape(e, s.id)
    for (let i = 1; i < events.length; i++) expect(events[i].revision).toBeGreaterThan(events[i - 1].revision)
    for (let i = 1; i < events.length; i++) expect(Date.parse(events[i].at)).toBeGreaterThanOrEqual(Date.parse(events[i - 1].at))
    expect((await getSession(s.id)).revision).toBe(steps.at(-1)[1])
  })

  test("a long-poll at the tail of the events stream wakes with the next event", async () => {
    const s = await sessionIn("active", "ev-lp")
    const { next } = await readEvents(s.id)
    const started = performance.now()
    const poll = call("GET", `/v1/sessions/${s.id}/events?offset=${encodeURIComponent(next)}&live=long-poll`)
    await sleep(200)
    expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "woken" } }))
    const res = await poll
    expect(res.status, ctx(res)).toBe(200)
    expect(performance.now() - started).toBeLessThan(LONG_POLL_TIMEOUT_MS + 5000)
    expect(res.json.length).toBe(1)
    expect(res.json[0]).toMatchObject({ type: "session.updated", data: { changes: { title: "woken" } } })
    expect(res.headers.get("stream-next-offset")).not.toBe(next)
    expect(res.headers.get("stream-cursor")).toMatch(/^\d+$/)
  })

  test("a long-poll at the tail with no change answers 204 with Stream-Up-To-Date after the timeout", async () => {
    const s = await sessionIn("active", "ev-lp-idle")
    const { next } = await readEvents(s.id)
    const started = performance.now()
    const res = await call("GET", `/v1/sessions/${s.id}/events?offset=${encodeURIComponent(next)}&live=long-poll`)
    const elapsed = performance.now() - started
    expect(res.status).toBe(204)
    expect(elapsed).toBeGreaterThanOrEqual(LONG_POLL_TIMEOUT_MS - 100)
    expect(elapsed).toBeLessThan(LONG_POLL_TIMEOUT_MS + 5000)
    expect(res.headers.get("stream-up-to-date")).toBe("true")
    expect(res.headers.get("stream-next-offset")).toBe(next)
  })

  test("an SSE reader gets the history and live events, and after /end a final control event with streamClosed: true, then the response ends", async () => {
    const s = await sessionIn("active", "ev-sse")
    const sse = await openSse(`/v1/sessions/${s.id}/events?offset=-1&live=sse`)
    try {
      expect(sse.res.status).toBe(200)
      expect(sse.res.headers.get("content-type")).toMatch(/^text\/event-stream/)
      const received = []
      let control = null
      // The history (created, starting, active), up to date.
      while (!(control && control.upToDate && received.length >= 3)) {
        const ev = await sse.next()
        expect(ev, "the SSE response ended early").not.toBeNull()
        if (ev.event === "data") received.push(...JSON.parse(ev.data))
        else if (ev.event === "control") control = JSON.parse(ev.data)
      }
      expect(received.map((e) => e.type)).toEqual(["session.created", "session.transitioned", "session.transitioned"])
      expect(control.streamClosed ?? false).toBe(false)

      expectOk(await call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "live" } }))
      expectOk(await end(s.id, "pr_merged"))
      let closedControl = null
      for (;;) {
        const ev = await sse.next()
        if (ev === null) break
        if (ev.event === "data") received.push(...JSON.parse(ev.data))
        else if (ev.event === "control") {
          const c = JSON.parse(ev.data)
          if (c.streamClosed) closedControl = c
        }
      }
      expect(received.map((e) => e.type).slice(3)).toEqual(["session.updated", "session.ended"])
      expect(received.at(-1).data.reason).toBe("pr_merged")
      expect(closedControl, "no control event with streamClosed: true").not.toBeNull()
      expect(closedControl.streamNextOffset).toBe((await readEvents(s.id)).next)
    } finally {
      sse.close()
    }
  })

  test("after /end a catch-up read at the tail carries Stream-Closed: true, and a long-poll there answers at once", async () => {
    const s = await sessionIn("active", "ev-closed")
    expectOk(await end(s.id, "failed"))
    const { next, closed } = await readEvents(s.id)
    expect(closed).toBe(true)
    const tail = await call("GET", `/v1/sessions/${s.id}/events?offset=${encodeURIComponent(next)}`)
    expect(tail.status).toBe(200)
    expect(tail.json).toEqual([])
    expect(tail.headers.get("stream-closed")).toBe("true")
    expect(tail.headers.get("stream-up-to-date")).toBe("true")
    const started = performance.now()
    const lp = await call("GET", `/v1/sessions/${s.id}/events?offset=${encodeURIComponent(next)}&live=long-poll`)
    expect(lp.status).toBe(204)
    expect(lp.headers.get("stream-closed")).toBe("true")
    expect(performance.now() - started).toBeLessThan(LONG_POLL_TIMEOUT_MS - 500)
    const head = await call("HEAD", `/v1/sessions/${s.id}/events`)
    expect(head.status).toBe(200)
    expect(head.headers.get("stream-closed")).toBe("true")
    expect(head.headers.get("stream-next-offset")).toBe(next)
  })

  test("PUT, POST, DELETE and PATCH on the events stream are 403 managed_stream and add nothing", async () => {
    const s = await sessionIn("active", "ev-managed")
    const before = await observe(s.id)
    for (const method of ["PUT", "POST", "DELETE", "PATCH"]) {
      const res = await call(method, `/v1/sessions/${s.id}/events`, {
        headers: { "Content-Type": "application/json" },
        body: method === "DELETE" ? undefined : '[{"type":"session.ended","forged":true}]',
      })
      const err = expectError(res, 403, "managed_stream")
      expect(err.message).toContain("GET")
    }
    await expectUnchanged(s.id, before)
  })

  test("the events stream of an unknown session is 404 session_not_found", async () => {
    const project = await createProject("ev-404")
    expectError(await call("GET", `/v1/sessions/${project}-1/events?offset=-1`), 404, "session_not_found")
  })
})

// ---- ended sessions --------------------------------------------------------------------------

describe("mutations on an ended session", () => {
  /** An ended session that had an execution, a command and a row before it ended. */
  async function endedSession(label) {
    const s = await sessionIn("active", label)
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const c = expectOk(await sendCommand(s.id, "before-end", { n: 1 }), 202)
    expectOk(await appendRow(s.id, { kind: "user", body: "x" }), 201)
    expectOk(await end(s.id, "completed"))
    return { id: s.id, commandId: c.id }
  }
  const mutations = [
    ["PATCH", (x) => call("PATCH", `/v1/sessions/${x.id}`, { body: { title: "late" } })],
    ["transition", (x) => transition(x.id, "active")],
    ["heartbeat", (x) => call("POST", `/v1/sessions/${x.id}/heartbeat`)],
    ["execution start", (x) => call("POST", `/v1/sessions/${x.id}/executions`)],
    ["execution finish", (x) => call("POST", `/v1/sessions/${x.id}/executions/1/finish`)],
    ["execution abort", (x) => call("POST", `/v1/sessions/${x.id}/executions/1/abort`)],
    ["new command", (x) => sendCommand(x.id, "after-end", { n: 2 })],
    ["command ack", (x) => ack(x.id, x.commandId, { status: "done" })],
    ["row append", (x) => appendRow(x.id, { kind: "user", body: "late" })],
    ["row upsert (update)", (x) => upsertRow(x.id, "seq-1", { status: "failed" })],
    ["row upsert (insert)", (x) => upsertRow(x.id, "late", { kind: "user", body: "late" })],
  ]
  for (const [label, send] of mutations) {
    test(`${label} on an ended session is 409 session_ended with its end_reason, and changes nothing`, async () => {
      const x = await endedSession(`ended-${label.replace(/\W+/g, "-")}`)
      const before = await observe(x.id)
      expect(before.closed).toBe(true)
      const err = expectError(await send(x), 409, "session_ended")
      expect(err.end_reason).toBe("completed")
      expect(err.message).toContain(x.id)
      await expectUnchanged(x.id, before)
    })
  }

  test("retries of writes made before the end are still answered from what was stored (command and row keys)", async () => {
    const s = await sessionIn("active", "ended-retry")
    const c = expectOk(await sendCommand(s.id, "k", { n: 1 }), 202)
    const row = expectOk(await appendRow(s.id, { kind: "user", body: "x" }, "rk"), 201)
    expectOk(await end(s.id, "killed"))
    const before = await observe(s.id)
    const again = await sendCommand(s.id, "k", { n: 1 })
    expect(expectOk(again, 202)).toMatchObject({ id: c.id, status: "interrupted" })
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    const rowAgain = await appendRow(s.id, { kind: "user", body: "x" }, "rk")
    expect(expectOk(rowAgain, 201)).toEqual(row)
    expect(rowAgain.headers.get("idempotent-replayed")).toBe("true")
    await expectUnchanged(s.id, before)
  })
})

// ---- routes ----------------------------------------------------------------------------------

describe("routes", () => {
  test("a wrong method on a known route is 405 method_not_allowed with an Allow header listing the route's methods", async () => {
    const s = await sessionIn("active", "routes")
    const id = s.id
    const cases = [
      ["PUT", "/v1/projects", ["POST", "GET"]],
      ["PATCH", `/v1/projects/${s.project}`, ["GET", "DELETE"]],
      ["DELETE", `/v1/projects/${s.project}/sessions`, ["POST", "GET"]],
      ["POST", "/v1/sessions", ["GET"]],
      ["DELETE", `/v1/sessions/${id}`, ["GET", "PATCH"]],
      ["PUT", `/v1/sessions/${id}`, ["GET", "PATCH"]],
      ["GET", `/v1/sessions/${id}/transition`, ["POST"]],
      ["GET", `/v1/sessions/${id}/end`, ["POST"]],
      ["GET", `/v1/sessions/${id}/heartbeat`, ["POST"]],
      ["POST", `/v1/sessions/${id}/snapshot`, ["GET"]],
      ["DELETE", `/v1/sessions/${id}/executions`, ["POST", "GET"]],
      ["GET", `/v1/sessions/${id}/executions/1/finish`, ["POST"]],
      ["PUT", `/v1/sessions/${id}/executions/1/abort`, ["POST"]],
      ["PUT", `/v1/sessions/${id}/commands`, ["POST", "GET"]],
      ["DELETE", `/v1/sessions/${id}/commands/${id}-c1`, ["GET", "POST"]],
      ["DELETE", `/v1/sessions/${id}/rows`, ["POST", "GET"]],
      ["POST", `/v1/sessions/${id}/rows/r1`, ["GET", "PUT"]],
    ]
    const before = await observe(id)
    for (const [method, path, allowed] of cases) {
      const res = await call(method, path, method === "GET" || method === "DELETE" ? {} : { body: {} })
      const err = expectError(res, 405, "method_not_allowed")
      const allow = res.headers.get("allow")
      expect(allow, `${method} ${path}`).not.toBeNull()
      expect(allow.split(",").map((m) => m.trim()).sort(), `${method} ${path}`).toEqual([...allowed].sort())
      for (const m of allowed) expect(err.message).toContain(m)
    }
    await expectUnchanged(id, before)
  })

  test("an unknown path under /v1/sessions or /v1/projects is 404 route_not_found", async () => {
    const s = await sessionIn("created", "routes-404")
    for (const path of [`/v1/sessions/${s.id}/bogus`, `/v1/sessions/${s.id}/rows/r1/extra`, `/v1/projects/${s.project}/bogus`, "/v1/sessions/"]) {
      expectError(await call("GET", path), 404, "route_not_found")
    }
  })
})

// ---- generated ids, ended sessions, snapshots and paging edge cases --------------------------

describe("edge cases found in review", () => {
  test("row ids of the form seq-{n} are reserved for generated ids, so an append without row_id never collides", async () => {
    const s = await sessionIn("active", "gen-ids")
    expectError(await appendRow(s.id, { kind: "user", body: 1, row_id: "seq-2" }), 400, "invalid_row_id")
    expectError(await upsertRow(s.id, "seq-7", { kind: "user", body: 1 }), 400, "invalid_row_id")
    expectOk(await upsertRow(s.id, "r2", { kind: "user", body: 1 }), 201)
    const first = expectOk(await appendRow(s.id, { kind: "user", body: 2 }), 201)
    expect(first.row_id).toBe("seq-2")
    // A generated row can be updated in place like any other.
    const updated = expectOk(await upsertRow(s.id, "seq-2", { body: 3 }))
    expect(updated.sequence).toBe(first.sequence)
    expect(updated.revision).toBe(2)
  })

  test("an ended session is idle even with a pending approval request", async () => {
    const s = await sessionIn("active", "ended-idle")
    expectOk(await appendRow(s.id, { kind: "approval_request", status: "pending", body: {} }), 201)
    expect((await getSession(s.id)).client_state).toBe("requires_action")
    expectOk(await end(s.id, "completed"))
    expect((await getSession(s.id)).client_state).toBe("idle")
    const listed = expectOk(await call("GET", `/v1/sessions?project=${s.project}&client_state=idle`))
    expect(listed.sessions.map((x) => x.id)).toContain(s.id)
  })

  test("a snapshot with rows=0 still points at the rows before it", async () => {
    const s = await sessionIn("active", "snap-zero")
    for (let i = 0; i < 3; i++) expectOk(await appendRow(s.id, { kind: "user", body: i }), 201)
    const snap = expectOk(await call("GET", `/v1/sessions/${s.id}/snapshot?rows=0`))
    expect(snap.rows).toEqual([])
    expect(snap.rows_before).toBe(4)
    const older = expectOk(await call("GET", `/v1/sessions/${s.id}/rows?before=${snap.rows_before}`))
    expect(older.rows.map((r) => r.sequence)).toEqual([1, 2, 3])
    const empty = await sessionIn("active", "snap-empty")
    expect(expectOk(await call("GET", `/v1/sessions/${empty.id}/snapshot?rows=0`)).rows_before).toBe(null)
  })

  test("listing pending commands honours after and limit", async () => {
    const s = await sessionIn("active", "pending-page")
    const ids = []
    for (let i = 0; i < 4; i++) ids.push(expectOk(await sendCommand(s.id, `k${i}`, { i }), 202).id)
    expectOk(await ack(s.id, ids[1], { status: "done" }))
    const page = expectOk(await call("GET", `/v1/sessions/${s.id}/commands?status=pending&after=1&limit=1`))
    expect(page.commands.map((c) => c.id)).toEqual([ids[2]])
  })

  test("abort refuses unknown fields like every other request body", async () => {
    const s = await sessionIn("active", "abort-body")
    const g = expectOk(await call("POST", `/v1/sessions/${s.id}/executions`), 201).generation
    expectError(await call("POST", `/v1/sessions/${s.id}/executions/${g}/abort`, { body: { outcome: "failed" } }), 400, "unknown_field")
    expectOk(await call("POST", `/v1/sessions/${s.id}/executions/${g}/abort`))
  })

  test("a repeated command acknowledgement after the session ended is a replay, a new one is 409", async () => {
    const s = await sessionIn("active", "ack-after-end")
    const c = expectOk(await sendCommand(s.id, "k", { t: 1 }), 202)
    expectOk(await ack(s.id, c.id, { status: "done" }))
    expectOk(await end(s.id, "completed"))
    const again = await ack(s.id, c.id, { status: "done" })
    expectOk(again)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    expectError(await ack(s.id, c.id, { status: "failed" }), 409, "session_ended")
  })
})
