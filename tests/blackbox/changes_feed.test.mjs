// Black-box tests of the change feed (/v1/changes): one typed event per committed change, in the
// same transaction, with a global offset; every Durable Streams read mode with the project,
// session and types filters; snapshot plus tail under concurrent writes; the feed refuses writes;
// retention prunes in batches while appends go on, and offsets are never reused.
//
// The mutation table is keyed by the mutating operations documented in docs/openapi.yaml (a C++
// test keeps that file equal to the server's route table): a documented mutating route without a
// row in MUTATIONS fails the table test by name. Each row performs its mutation(s) and asserts the
// exact list of change events (type, project, session, revision, at, data) between the feed
// offsets taken before and after, and performs a no-op (or refused) variant that must emit
// nothing.
//
// Every server runs on 127.0.0.1 with a fresh data directory. Times are bounded; the workload of
// the concurrency test is seeded (ORDO_TEST_SEED overrides).
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectError, expectOk, request } from "../support/api.mjs"
import { mulberry32 } from "../support/random.mjs"

const LONG_POLL_TIMEOUT_MS = 1500
const SEED = Number(process.env.ORDO_TEST_SEED ?? 20261122)
const OFFSET_RE = /^[0-9a-f]{16}_\d{16}$/
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
const CHANGE_TYPES = [
  "project.created", "project.archived", "session.created", "session.updated",
  "session.transitioned", "session.ended", "execution.started", "execution.finished",
  "command.accepted", "command.updated", "row.appended", "row.updated",
  "pr.created", "pr.updated", "check.created", "check.updated",
  "comment.created", "comment.updated", "comment.resolved", "comment.removed",
]

const servers = []
let main // the server of the table, filter and read-mode tests

async function launch(args, dataDir) {
  const s = await startOrdo({ args, dataDir })
  servers.push(s)
  return s
}

async function shutdown(s) {
  const i = servers.indexOf(s)
  if (i >= 0) servers.splice(i, 1)
  const code = await s.stop()
  return code
}

beforeAll(async () => {
  main = client(
    (
      await launch([
        "--long-poll-timeout", `${LONG_POLL_TIMEOUT_MS}ms`,
        "--sse-heartbeat", "1s",
        // The reaper must never act on a session of these tests.
        "--heartbeat-timeout", "1h",
        "--detach-timeout", "2h",
      ])
    ).url,
  )
})

afterAll(async () => {
  const failures = []
  for (const s of [...servers]) {
    const code = await shutdown(s)
    if (code !== 0) failures.push(`exit ${code}; log:\n${s.log()}`)
    s.cleanup()
  }
  expect(failures, "ordo exit status on SIGTERM").toEqual([])
})

// ---- helpers ---------------------------------------------------------------------------------

let counter = 0
const fresh = (label) => `${label}-${++counter}`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const clone = (v) => structuredClone(v)

function parseOffset(o) {
  expect(o, "an offset").toMatch(OFFSET_RE)
  const [prefix, position] = o.split("_")
  return { prefix, position: Number(position) }
}

/** An HTTP client for one server, with the feed helpers. */
function client(base) {
  const call = (method, path, options) => request(base, method, path, options)

  /** The feed's tail offset (HEAD). */
  async function tail() {
    const res = await call("HEAD", "/v1/changes")
    expect(res.status, ctx(res)).toBe(200)
    const next = res.headers.get("stream-next-offset")
    expect(next, ctx(res)).toMatch(OFFSET_RE)
    return next
  }

  /** Catch-up reads from `from` until up to date; `query` is extra query text (filters). */
  async function read(from = "-1", query = "") {
    let offset = from
    const events = []
    for (let i = 0; i < 2000; i++) {
      const res = await call("GET", `/v1/changes?offset=${encodeURIComponent(offset)}${query ? "&" + query : ""}`)
      expect(res.status, ctx(res)).toBe(200)
      expect(Array.isArray(res.json), ctx(res)).toBe(true)
      events.push(...res.json)
      const next = res.headers.get("stream-next-offset")
      expect(next, ctx(res)).toMatch(OFFSET_RE)
      if (res.headers.get("stream-up-to-date") === "true") return { events, next }
      expect(next, `${ctx(res)}: a read that is not up to date must move on`).not.toBe(offset)
      offset = next
    }
    throw new Error(`the change feed never reached its tail from ${from}`)
  }

  async function snapshot() {
    return expectOk(await call("GET", "/v1/changes/snapshot"))
  }

  async function getSession(id) {
    return expectOk(await call("GET", `/v1/sessions/${id}`))
  }

  async function sessionEventsTail(id) {
    const res = await call("HEAD", `/v1/sessions/${id}/events`)
    expect(res.status, ctx(res)).toBe(200)
    return res.headers.get("stream-next-offset")
  }

  async function sessionEvents(id, from) {
    const events = []
    let offset = from
    for (let i = 0; i < 200; i++) {
      const res = await call("GET", `/v1/sessions/${id}/events?offset=${encodeURIComponent(offset)}`)
      expect(res.status, ctx(res)).toBe(200)
      events.push(...res.json)
      offset = res.headers.get("stream-next-offset")
      if (res.headers.get("stream-up-to-date") === "true") return events
    }
    throw new Error(`the event stream of ${id} never reached its tail`)
  }

  async function project(label = "p") {
    const id = fresh(label)
    expectOk(await call("POST", "/v1/projects", { body: { id, name: `Project ${id}` } }), 201)
    return id
  }

  async function session(projectId, fields = {}) {
    return expectOk(await call("POST", `/v1/projects/${projectId}/sessions`, { body: fields }), 201)
  }

  async function transition(id, to) {
    return expectOk(await call("POST", `/v1/sessions/${id}/transition`, { body: { to } }))
  }

  /** A fresh project with a session brought to `state` through the API. */
  async function sessionIn(state = "created", label = "s") {
    const p = await project(label)
    const s = await session(p)
    const path = {
      created: [],
      starting: ["starting"],
      active: ["starting", "active"],
      detached: ["starting", "detached"],
    }[state]
    for (const to of path) await transition(s.id, to)
    return getSession(s.id)
  }

  return { base, call, tail, read, snapshot, getSession, sessionEventsTail, sessionEvents, project, session, transition, sessionIn }
}

/** The exact shape of one feed event. */
function expectChangeShape(e, what = "") {
  expect(Object.keys(e).sort(), what).toEqual(["at", "data", "offset", "project", "revision", "session", "type"])
  expect(e.offset, what).toMatch(OFFSET_RE)
  expect(CHANGE_TYPES, what).toContain(e.type)
  expect(typeof e.project, what).toBe("string")
  expect(e.session === null || typeof e.session === "string", what).toBe(true)
  expect(e.revision === null || Number.isInteger(e.revision), what).toBe(true)
  expect(e.at, what).toMatch(RFC3339)
  expect(typeof e.data === "object" && e.data !== null && !Array.isArray(e.data), what).toBe(true)
  if (e.type.startsWith("project.")) {
    expect(e.session, `${what}: project events have no session`).toBeNull()
    expect(e.revision, `${what}: project events have no session revision`).toBeNull()
  } else {
    expect(typeof e.session, `${what}: session events name their session`).toBe("string")
    expect(Number.isInteger(e.revision), what).toBe(true)
  }
}

/** Offsets: consecutive positions after `before`, each the position just after its event. */
function expectOffsetsFollow(events, before, next, what) {
  const b = parseOffset(before)
  events.forEach((e, i) => {
    const o = parseOffset(e.offset)
    expect(o.prefix, `${what}: offsets share the feed's prefix`).toBe(b.prefix)
    expect(o.position, `${what}: event ${i} (${e.type}) is at the position just after it`).toBe(b.position + i + 1)
  })
  if (events.length) expect(events.at(-1).offset, `${what}: the last event's offset is the tail`).toBe(next)
  else expect(next, `${what}: no event, the tail did not move`).toBe(before)
}

// ---- the OpenAPI file --------------------------------------------------------------------------

/** "METHOD /path" of every operation under `paths:` (the parser of src/http/session_api_test.cpp). */
function openapiOperations(text) {
  const ops = []
  let inPaths = false
  let current = null
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith("paths:")) {
      inPaths = true
      continue
    }
    if (inPaths && line.length && line[0] !== " " && line[0] !== "#") inPaths = false
    if (!inPaths) continue
    let m
    if ((m = /^ {2}(\/[^:\s]+):\s*$/.exec(line))) current = m[1]
    else if ((m = /^ {4}(get|put|post|patch|delete|head|options):\s*$/.exec(line)) && current) {
      ops.push(`${m[1].toUpperCase()} ${current}`)
    }
  }
  return ops
}

const OPENAPI_TEXT = readFileSync(new URL("../../docs/openapi.yaml", import.meta.url), "utf8")
const DOCUMENTED_MUTATIONS = openapiOperations(OPENAPI_TEXT).filter((op) =>
  /^(POST|PUT|PATCH|DELETE) \/v1\/(projects|sessions|changes)(\/|$)/.test(op),
)

// ---- the mutation table ---------------------------------------------------------------------

/**
 * Performs a mutation and asserts that exactly `expected` change events were appended, in order.
 * `expected` is a list (or a function of the answer giving one) of
 *   {type, project, session?, data?, match?}
 * `session` null/absent means a project event. Session events must all carry the session's new
 * revision (one more than before) and the same `at`; the session's own event stream must get the
 * same events. Returns {res, events}.
 */
// How many mutations and no-ops the running table row performed.
const performed = { mutations: 0, noops: 0 }

async function expectEvents(c, what, perform, expected, { sid } = {}) {
  performed.mutations++
  const before = await c.tail()
  const sessionBefore = sid ? await c.getSession(sid) : null
  const streamBefore = sid ? await c.sessionEventsTail(sid) : null
  const t0 = Date.now()
  const res = await perform()
  const t1 = Date.now()
  expect(res.status, ctx(res)).toBeLessThan(300)
  const list = typeof expected === "function" ? await expected(res) : expected
  const { events, next } = await c.read(before)
  expect(events.map((e) => e.type), `${what}: the change events`).toEqual(list.map((x) => x.type))
  expectOffsetsFollow(events, before, next, what)
  const sessionAfter = sid ? await c.getSession(sid) : null
  events.forEach((e, i) => {
    const x = list[i]
    const label = `${what}: event ${i} (${e.type})`
    expectChangeShape(e, label)
    expect(e.project, label).toBe(x.project)
    expect(e.session, label).toBe(x.session ?? null)
    const at = Date.parse(e.at)
    expect(at, `${label}: at is the commit time`).toBeGreaterThanOrEqual(t0 - 1000)
    expect(at, `${label}: at is the commit time`).toBeLessThanOrEqual(t1 + 1000)
    if (x.session && sid === x.session) expect(e.revision, `${label}: the session's new revision`).toBe(sessionAfter.revision)
    if (x.revision !== undefined) expect(e.revision, label).toBe(x.revision)
    if (x.data !== undefined) expect(e.data, `${label}: payload`).toEqual(x.data)
    if (x.match !== undefined) expect(e.data, `${label}: payload`).toMatchObject(x.match)
  })
  // One transaction: one revision and one time for every event of the mutation.
  expect(new Set(events.map((e) => e.revision)).size, `${what}: one revision`).toBeLessThanOrEqual(1)
  expect(new Set(events.map((e) => e.at)).size, `${what}: one commit time`).toBeLessThanOrEqual(1)
  if (sid && sessionBefore && events.some((e) => e.session === sid)) {
    expect(sessionAfter.revision, `${what}: one mutation, one revision`).toBe(sessionBefore.revision + 1)
  }
  // Reading from an event's own offset never returns it again: it resumes right after it.
  for (let i = 0; i < events.length; i++) {
    const again = await c.read(events[i].offset)
    expect(again.events, `${what}: reading from the offset of event ${i}`).toEqual(events.slice(i + 1))
    expect(again.next).toBe(next)
  }
  // The session's own event stream got the same events.
  if (sid) {
    const own = await c.sessionEvents(sid, streamBefore)
    expect(own, `${what}: the session's event stream`).toEqual(
      events.filter((e) => e.session === sid).map((e) => ({ type: e.type, session: e.session, revision: e.revision, at: e.at, data: e.data })),
    )
  }
  return { res, events }
}

/** Performs a no-op (or refused) variant: no change event, the session's revision unchanged. */
async function expectNoEvents(c, what, perform, { sid } = {}) {
  performed.noops++
  const before = await c.tail()
  const sessionBefore = sid ? await c.getSession(sid) : null
  const res = await perform()
  const { events, next } = await c.read(before)
  expect(events, `${what}: a no-op emits no change event`).toEqual([])
  expect(next, `${what}: the feed's tail did not move`).toBe(before)
  if (sid) {
    const after = await c.getSession(sid)
    expect(after.revision, `${what}: no new revision`).toBe(sessionBefore.revision)
    expect(after.updated_at, `${what}: not updated`).toBe(sessionBefore.updated_at)
  }
  return res
}

const sessionEvent = (s, type, extra = {}) => ({ type, project: s.project, session: s.id, ...extra })
const prFacts = (view) => {
  const { checks, comments, ...facts } = view
  return facts
}

async function command(c, sid, key, body = { op: key }) {
  return expectOk(await c.call("POST", `/v1/sessions/${sid}/commands`, { headers: { "Idempotency-Key": key }, body }), 202)
}

/** An active session with execution 1 running and two pending commands (one delivered). */
async function busySession(c, label) {
  const s = await c.sessionIn("active", label)
  expectOk(await c.call("POST", `/v1/sessions/${s.id}/executions`), 201)
  const c1 = await command(c, s.id, "k1")
  const c2 = await command(c, s.id, "k2")
  expectOk(await c.call("POST", `/v1/sessions/${s.id}/commands/${c1.id}`, { body: { status: "delivered" } }))
  return { s: await c.getSession(s.id), commands: [c1.id, c2.id] }
}

/** What releasing a busy session's agent work emits: the execution, then each pending command. */
async function releasedWork(c, s, commands, reason) {
  const out = [sessionEvent(s, "execution.finished", { data: { generation: 1, reason } })]
  for (const id of commands) {
    const cmd = expectOk(await c.call("GET", `/v1/sessions/${s.id}/commands/${id}`))
    expect(cmd.status).toBe("interrupted")
    out.push(sessionEvent(s, "command.updated", { data: { command: cmd } }))
  }
  return out
}

/**
 * One row per mutating operation. `run(c)` performs the mutation(s) through expectEvents and at
 * least one no-op or refused variant through expectNoEvents. Rows for writes to /v1/changes are
 * refusals only (the feed is written by ordo).
 */
const MUTATIONS = {
  "POST /v1/projects": async (c) => {
    const id = fresh("tp")
    const { res } = await expectEvents(
      c, "create a project",
      () => c.call("POST", "/v1/projects", { body: { id, name: "Table", repo_path: "/r", description: "d" } }),
      (res) => [{ type: "project.created", project: id, revision: null, data: { project: expectOk(res, 201) } }],
    )
    expect(res.json.revision).toBe(1)
    const dup = await expectNoEvents(c, "create it again", () => c.call("POST", "/v1/projects", { body: { id, name: "Again" } }))
    expectError(dup, 409, "project_exists")
    const bad = await expectNoEvents(c, "an invalid project", () => c.call("POST", "/v1/projects", { body: { id: "Bad Id", name: "x" } }))
    expect(bad.status).toBe(400)
  },

  "DELETE /v1/projects/{project}": async (c) => {
    const id = await c.project("tarch")
    const { res } = await expectEvents(
      c, "archive a project",
      () => c.call("DELETE", `/v1/projects/${id}`),
      (res) => [{ type: "project.archived", project: id, revision: null, data: { project: expectOk(res) } }],
    )
    expect(res.json).toMatchObject({ archived: true, revision: 2 })
    const again = await expectNoEvents(c, "re-archive", () => c.call("DELETE", `/v1/projects/${id}`))
    expect(expectOk(again)).toEqual(res.json)
  },

  "POST /v1/projects/{project}/sessions": async (c) => {
    const p = await c.project("tsess")
    const { res } = await expectEvents(
      c, "create a session",
      () => c.call("POST", `/v1/projects/${p}/sessions`, { body: { title: "t", tags: ["a"] } }),
      (res) => {
        const s = expectOk(res, 201)
        return [{ type: "session.created", project: p, session: s.id, revision: 1, data: { session: s } }]
      },
    )
    expect(res.json.revision).toBe(1)
    expectError(await expectNoEvents(c, "a session in an unknown project", () => c.call("POST", `/v1/projects/${fresh("nope")}/sessions`, { body: {} })), 404, "project_not_found")
    expectOk(await c.call("DELETE", `/v1/projects/${p}`))
    expectError(await expectNoEvents(c, "a session in an archived project", () => c.call("POST", `/v1/projects/${p}/sessions`, { body: {} })), 409, "project_archived")
  },

  "PATCH /v1/sessions/{session}": async (c) => {
    const p = await c.project("tpatch")
    const s = await c.session(p, { title: "t1" })
    await expectEvents(
      c, "update title and branch",
      () => c.call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "t2", branch: "b", model: null } }),
      [sessionEvent(s, "session.updated", { data: { changes: { title: "t2", branch: "b" } } })],
      { sid: s.id },
    )
    const same = await expectNoEvents(c, "PATCH with unchanged fields", () => c.call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "t2", branch: "b", tags: [] } }), { sid: s.id })
    expectOk(same)
    expectOk(await expectNoEvents(c, "PATCH {}", () => c.call("PATCH", `/v1/sessions/${s.id}`, { body: {} }), { sid: s.id }))
  },

  "POST /v1/sessions/{session}/transition": async (c) => {
    const s = await c.sessionIn("created", "ttrans")
    await expectEvents(
      c, "created -> starting",
      () => c.call("POST", `/v1/sessions/${s.id}/transition`, { body: { to: "starting" } }),
      [sessionEvent(s, "session.transitioned", { data: { from: "created", to: "starting", cause: "api" } })],
      { sid: s.id },
    )
    expectError(await expectNoEvents(c, "starting -> starting", () => c.call("POST", `/v1/sessions/${s.id}/transition`, { body: { to: "starting" } }), { sid: s.id }), 409, "illegal_transition")
    // Detaching releases the agent's work in the same transaction.
    const busy = await busySession(c, "ttrans-busy")
    await expectEvents(
      c, "active -> detached with an execution and pending commands",
      () => c.call("POST", `/v1/sessions/${busy.s.id}/transition`, { body: { to: "detached" } }),
      async () => [
        ...(await releasedWork(c, busy.s, busy.commands, "lost")),
        sessionEvent(busy.s, "session.transitioned", { data: { from: "active", to: "detached", cause: "api" } }),
      ],
      { sid: busy.s.id },
    )
  },

  "POST /v1/sessions/{session}/end": async (c) => {
    const s = await c.sessionIn("created", "tend")
    await expectEvents(
      c, "end a created session",
      () => c.call("POST", `/v1/sessions/${s.id}/end`, { body: { reason: "completed" } }),
      [sessionEvent(s, "session.ended", { data: { from: "created", reason: "completed", cause: "api" } })],
      { sid: s.id },
    )
    const retry = await expectNoEvents(c, "end again with the same reason", () => c.call("POST", `/v1/sessions/${s.id}/end`, { body: { reason: "completed" } }), { sid: s.id })
    expectOk(retry)
    expect(retry.headers.get("idempotent-replayed")).toBe("true")
    expectError(await expectNoEvents(c, "end again with another reason", () => c.call("POST", `/v1/sessions/${s.id}/end`, { body: { reason: "killed" } }), { sid: s.id }), 409, "session_ended")
    const busy = await busySession(c, "tend-busy")
    await expectEvents(
      c, "end with an execution and pending commands",
      () => c.call("POST", `/v1/sessions/${busy.s.id}/end`, { body: { reason: "killed" } }),
      async () => [
        ...(await releasedWork(c, busy.s, busy.commands, "session_ended")),
        sessionEvent(busy.s, "session.ended", { data: { from: "active", reason: "killed", cause: "api" } }),
      ],
      { sid: busy.s.id },
    )
  },

  "POST /v1/sessions/{session}/heartbeat": async (c) => {
    const s = await c.sessionIn("detached", "thb")
    await expectEvents(
      c, "a heartbeat brings a detached session back",
      () => c.call("POST", `/v1/sessions/${s.id}/heartbeat`),
      [sessionEvent(s, "session.transitioned", { data: { from: "detached", to: "active", cause: "heartbeat" } })],
      { sid: s.id },
    )
    expectOk(await expectNoEvents(c, "a heartbeat of an active session", () => c.call("POST", `/v1/sessions/${s.id}/heartbeat`), { sid: s.id }))
  },

  "POST /v1/sessions/{session}/executions": async (c) => {
    const s = await c.sessionIn("active", "texec")
    await expectEvents(
      c, "start an execution",
      () => c.call("POST", `/v1/sessions/${s.id}/executions`),
      [sessionEvent(s, "execution.started", { data: { generation: 1 } })],
      { sid: s.id },
    )
    expectError(await expectNoEvents(c, "start while one is active", () => c.call("POST", `/v1/sessions/${s.id}/executions`), { sid: s.id }), 409, "execution_active")
  },

  "POST /v1/sessions/{session}/executions/{generation}/finish": async (c) => {
    const s = await c.sessionIn("active", "tfin")
    expectOk(await c.call("POST", `/v1/sessions/${s.id}/executions`), 201)
    await expectEvents(
      c, "finish (failed)",
      () => c.call("POST", `/v1/sessions/${s.id}/executions/1/finish`, { body: { outcome: "failed" } }),
      [sessionEvent(s, "execution.finished", { data: { generation: 1, reason: "failed" } })],
      { sid: s.id },
    )
    expectOk(await c.call("POST", `/v1/sessions/${s.id}/executions`), 201)
    await expectEvents(
      c, "finish (no body: completed)",
      () => c.call("POST", `/v1/sessions/${s.id}/executions/2/finish`),
      [sessionEvent(s, "execution.finished", { data: { generation: 2, reason: "completed" } })],
      { sid: s.id },
    )
    expectError(await expectNoEvents(c, "finish it again", () => c.call("POST", `/v1/sessions/${s.id}/executions/2/finish`), { sid: s.id }), 409, "stale_generation")
  },

  "POST /v1/sessions/{session}/executions/{generation}/abort": async (c) => {
    const s = await c.sessionIn("active", "tabort")
    expectOk(await c.call("POST", `/v1/sessions/${s.id}/executions`), 201)
    await expectEvents(
      c, "abort",
      () => c.call("POST", `/v1/sessions/${s.id}/executions/1/abort`),
      [sessionEvent(s, "execution.finished", { data: { generation: 1, reason: "aborted" } })],
      { sid: s.id },
    )
    expectError(await expectNoEvents(c, "abort it again", () => c.call("POST", `/v1/sessions/${s.id}/executions/1/abort`), { sid: s.id }), 409, "stale_generation")
  },

  "POST /v1/sessions/{session}/commands": async (c) => {
    const s = await c.sessionIn("active", "tcmd")
    const send = () => c.call("POST", `/v1/sessions/${s.id}/commands`, { headers: { "Idempotency-Key": "once" }, body: { op: "run", n: 1 } })
    await expectEvents(c, "send a command", send, (res) => [sessionEvent(s, "command.accepted", { data: { command: expectOk(res, 202) } })], { sid: s.id })
    const retry = await expectNoEvents(c, "the same command again (same key, same body)", send, { sid: s.id })
    expectOk(retry, 202)
    expect(retry.headers.get("idempotent-replayed")).toBe("true")
  },

  "POST /v1/sessions/{session}/commands/{command}": async (c) => {
    const s = await c.sessionIn("active", "tack")
    const cmd = await command(c, s.id, "a1")
    const ack = (body) => () => c.call("POST", `/v1/sessions/${s.id}/commands/${cmd.id}`, { body })
    await expectEvents(c, "ack delivered", ack({ status: "delivered" }), (res) => [sessionEvent(s, "command.updated", { data: { command: expectOk(res) } })], { sid: s.id })
    const { res } = await expectEvents(c, "ack done with a result", ack({ status: "done", result: { ok: true } }), (res) => [sessionEvent(s, "command.updated", { data: { command: expectOk(res) } })], { sid: s.id })
    expect(res.json).toMatchObject({ status: "done", result: { ok: true } })
    const repeated = await expectNoEvents(c, "a repeated ack", ack({ status: "done" }), { sid: s.id })
    expectOk(repeated)
    expect(repeated.headers.get("idempotent-replayed")).toBe("true")
  },

  "POST /v1/sessions/{session}/rows": async (c) => {
    const s = await c.sessionIn("active", "trow")
    const append = () => c.call("POST", `/v1/sessions/${s.id}/rows`, { headers: { "Idempotency-Key": "r1" }, body: { kind: "user", body: { text: "hi" } } })
    await expectEvents(c, "append a row", append, (res) => [sessionEvent(s, "row.appended", { data: { row: expectOk(res, 201) } })], { sid: s.id })
    const retry = await expectNoEvents(c, "the same append again (same key)", append, { sid: s.id })
    expectOk(retry, 201)
    expect(retry.headers.get("idempotent-replayed")).toBe("true")
  },

  "PUT /v1/sessions/{session}/rows/{row}": async (c) => {
    const s = await c.sessionIn("active", "tups")
    const put = (body) => () => c.call("PUT", `/v1/sessions/${s.id}/rows/msg-1`, { body })
    await expectEvents(c, "upsert a new row", put({ kind: "assistant", status: "in_progress", body: { t: "par" } }), (res) => [sessionEvent(s, "row.appended", { data: { row: expectOk(res, 201) } })], { sid: s.id })
    const { res } = await expectEvents(c, "upsert changed content", put({ status: "complete", body: { t: "partial answer" } }), (res) => [sessionEvent(s, "row.updated", { data: { row: expectOk(res) } })], { sid: s.id })
    expect(res.json).toMatchObject({ row_id: "msg-1", revision: 2, status: "complete" })
    const same = await expectNoEvents(c, "upsert identical content", put({ kind: "assistant", status: "complete", body: { t: "partial answer" } }), { sid: s.id })
    expectOk(same)
    expect(same.headers.get("idempotent-replayed")).toBe("true")
  },

  "PUT /v1/sessions/{session}/prs": async (c) => {
    const s = await c.sessionIn("active", "tpr")
    const url = `https://git.example/o/r/pull/${++counter}`
    const first = {
      pr: { url, number: 7, title: "Fix", state: "open", review_decision: "review_required", mergeability: "mergeable", ci_state: "pending", head_commit: "c1" },
      checks: [
        { name: "ci", commit: "c1", status: "in_progress", url: "https://ci/1", started_at: "2026-01-01T00:00:00Z", completed_at: null },
        { name: "lint", commit: "c1", status: "success" },
      ],
      comments: [
        { id: "m1", author: "ann", body: "nit", path: "a.c", line: 3, resolved: false },
        { id: "m2", author: "bob", body: "why?" },
      ],
    }
    const observe = (body) => () => c.call("PUT", `/v1/sessions/${s.id}/prs`, { body })
    await expectEvents(c, "a new PR with checks and comments", observe(first), (res) => {
      const v = expectOk(res, 201)
      return [
        sessionEvent(s, "pr.created", { data: { pr: prFacts(v) } }),
        sessionEvent(s, "check.created", { data: { check: v.checks[0] } }),
        sessionEvent(s, "check.created", { data: { check: v.checks[1] } }),
        sessionEvent(s, "comment.created", { data: { comment: v.comments.find((m) => m.id === "m1") } }),
        sessionEvent(s, "comment.created", { data: { comment: v.comments.find((m) => m.id === "m2") } }),
      ]
    }, { sid: s.id })
    const replay = await expectNoEvents(c, "the same observation again", observe(first), { sid: s.id })
    expectOk(replay)
    expect(replay.headers.get("idempotent-replayed")).toBe("true")

    const second = {
      pr: { ...first.pr, ci_state: "failing", head_commit: "c2", title: "Fix it" },
      checks: [
        { name: "ci", commit: "c1", status: "failure", url: "https://ci/1", started_at: "2026-01-01T00:00:00Z", completed_at: "2026-01-01T00:05:00Z" },
        { name: "ci", commit: "c2", status: "queued" },
      ],
      comments: [
        { id: "m1", author: "ann", body: "nit (edited)", path: "a.c", line: 3, resolved: false },
        { id: "m2", author: "bob", body: "why?", resolved: true },
        { id: "m3", author: "cy", body: "new" },
      ],
    }
    await expectEvents(c, "facts, a check status, a new commit and the comment set change", observe(second), (res) => {
      const v = expectOk(res)
      const check = (name, commit) => v.checks.find((k) => k.name === name && k.commit === commit)
      const comment = (id) => v.comments.find((m) => m.id === id)
      expect(v.comments.map((m) => m.id).sort()).toEqual(["m1", "m2", "m3"])
      return [
        sessionEvent(s, "pr.updated", { data: { pr: prFacts(v), changes: { title: "Fix it", ci_state: "failing", head_commit: "c2" } } }),
        sessionEvent(s, "check.updated", { data: { check: check("ci", "c1"), previous_status: "in_progress" } }),
        sessionEvent(s, "check.created", { data: { check: check("ci", "c2") } }),
        sessionEvent(s, "comment.updated", { data: { comment: comment("m1") } }),
        sessionEvent(s, "comment.resolved", { data: { comment: comment("m2") } }),
        sessionEvent(s, "comment.created", { data: { comment: comment("m3") } }),
      ]
    }, { sid: s.id })
    const before = expectOk(await c.call("GET", `/v1/sessions/${s.id}/prs`)).prs[0]
    const m3 = before.comments.find((m) => m.id === "m3")
    const { res: third } = await expectEvents(
      c, "a comment absent from the observed set is removed",
      observe({ pr: second.pr, comments: second.comments.filter((m) => m.id !== "m3") }),
      [sessionEvent(s, "comment.removed", { data: { comment: m3 } })],
      { sid: s.id },
    )
    expect(third.json.comments.map((m) => m.id).sort()).toEqual(["m1", "m2"])
    expectOk(await expectNoEvents(c, "omitting comments leaves them alone", observe({ pr: second.pr }), { sid: s.id }))
    // A merge ends the session in the same transaction (revision) as the pr.updated.
    await expectEvents(c, "the PR merges", observe({ pr: { ...second.pr, state: "merged" } }), (res) => {
      const v = expectOk(res)
      return [
        sessionEvent(s, "pr.updated", { data: { pr: prFacts(v), changes: { state: "merged" } } }),
        sessionEvent(s, "session.ended", { data: { from: "active", reason: "pr_merged", cause: "pr_merged" } }),
      ]
    }, { sid: s.id })
    expectError(await expectNoEvents(c, "observing on the ended session", observe(first), { sid: s.id }), 409, "session_ended")
  },

  // The feed is written by ordo only: documented writes to it are refusals.
  "PUT /v1/changes": async (c) => {
    expectError(await expectNoEvents(c, "PUT /v1/changes", () => c.call("PUT", "/v1/changes", { body: {} })), 403, "managed_stream")
  },
  "POST /v1/changes": async (c) => {
    expectError(await expectNoEvents(c, "POST /v1/changes", () => c.call("POST", "/v1/changes", { body: [{ type: "project.created" }] })), 403, "managed_stream")
  },
  "DELETE /v1/changes": async (c) => {
    expectError(await expectNoEvents(c, "DELETE /v1/changes", () => c.call("DELETE", "/v1/changes")), 403, "managed_stream")
  },
}

describe("the mutation table", () => {
  test("docs/openapi.yaml is parsed: its mutating operations include the core session API", () => {
    expect(DOCUMENTED_MUTATIONS.length).toBeGreaterThanOrEqual(14)
    for (const op of ["POST /v1/projects", "DELETE /v1/projects/{project}", "PATCH /v1/sessions/{session}", "PUT /v1/sessions/{session}/rows/{row}"]) {
      expect(DOCUMENTED_MUTATIONS).toContain(op)
    }
    expect(DOCUMENTED_MUTATIONS.every((op) => !op.startsWith("GET") && !op.startsWith("HEAD"))).toBe(true)
  })

  test("every documented mutating route has a row in the table", () => {
    const missing = DOCUMENTED_MUTATIONS.filter((op) => !(op in MUTATIONS))
    expect(
      missing,
      `documented mutating routes without a row in MUTATIONS (changes_feed.test.mjs): ${missing.join(", ")}; ` +
        "add a row asserting the exact change events of the new mutation and none for its no-op",
    ).toEqual([])
  })

  for (const [op, run] of Object.entries(MUTATIONS)) {
    test(`${op}: exactly the change events of each mutation, in one transaction, and none for its no-op`, async () => {
      performed.mutations = performed.noops = 0
      await run(main)
      // A row must assert a mutation (writes to the feed itself are refusals only) and a no-op.
      if (!op.endsWith(" /v1/changes")) expect(performed.mutations, `${op}: the row performs no mutation`).toBeGreaterThan(0)
      expect(performed.noops, `${op}: the row performs no no-op variant`).toBeGreaterThan(0)
    })
  }
})

// ---- reading the feed ----------------------------------------------------------------------------

/** Reads the feed with an SSE connection; `until(state)` says when to stop. */
async function readSse(c, query, until, { timeoutMs = 8000, onOpen } = {}) {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), timeoutMs)
  const state = { events: [], controls: [], res: null }
  try {
    const res = await fetch(`${c.base}/v1/changes?${query}`, { signal: ac.signal })
    state.res = res
    expect(res.status, `SSE ${query}`).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/)
    if (onOpen) await onOpen()
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let buf = ""
    while (!until(state)) {
      const sep = buf.indexOf("\n\n")
      if (sep >= 0) {
        const raw = buf.slice(0, sep)
        buf = buf.slice(sep + 2)
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
        if (!data.length) continue
        if (event === "data") state.events.push(...JSON.parse(data.join("\n")))
        else if (event === "control") state.controls.push(JSON.parse(data.join("\n")))
        continue
      }
      const { value, done } = await reader.read()
      if (done) throw new Error(`the SSE response ended early (${query})`)
      buf += decoder.decode(value, { stream: true })
    }
    return state
  } catch (e) {
    if (ac.signal.aborted) throw new Error(`SSE ${query} timed out; got ${JSON.stringify(state.events.map((x) => x.type))}`)
    throw e
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
}

function matcher({ project, session, types } = {}) {
  const list = types ? types.split(",") : null
  return (e) => (!project || e.project === project) && (!session || e.session === session) && (!list || list.includes(e.type))
}

function filterQuery(f) {
  return Object.entries(f)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join("&")
}

describe("the feed", () => {
  test("every event has the documented shape and its offset is the position just after it; the last is the tail", async () => {
    const s = await main.sessionIn("active", "shape")
    expectOk(await main.call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "x" } }))
    const { events, next } = await main.read("-1")
    expect(events.length).toBeGreaterThan(3)
    events.forEach((e, i) => {
      expectChangeShape(e, `event ${i}`)
      expect(parseOffset(e.offset).position, `event ${i}`).toBe(i + 1)
    })
    expect(events.at(-1).offset).toBe(next)
    expect(await main.tail()).toBe(next)
    // Every read mode resumes from an event's offset just after it.
    const k = events.length - 2
    expect((await main.read(events[k].offset)).events).toEqual(events.slice(k + 1))
    const nowRes = await main.call("GET", "/v1/changes?offset=now")
    expect(nowRes.status).toBe(200)
    expect(nowRes.json).toEqual([])
    expect(nowRes.headers.get("stream-next-offset")).toBe(next)
    expect(nowRes.headers.get("stream-up-to-date")).toBe("true")
  })

  test("PUT, POST and DELETE on /v1/changes are 403 managed_stream and change nothing; the stream API cannot write the feed either", async () => {
    const before = await main.tail()
    for (const method of ["PUT", "POST", "DELETE"]) {
      expectError(await main.call(method, "/v1/changes", { body: method === "DELETE" ? undefined : "[]" }), 403, "managed_stream")
      expectError(await main.call(method, "/v1/changes?offset=-1", { body: method === "DELETE" ? undefined : '{"type":"x"}' }), 403, "managed_stream")
    }
    for (const method of ["PUT", "POST", "DELETE"]) {
      const res = await main.call(method, "/v1/stream/__ordo/changes", { body: method === "DELETE" ? undefined : "[]" })
      expect([400, 403, 404], ctx(res)).toContain(res.status)
    }
    const { events, next } = await main.read(before)
    expect(events).toEqual([])
    expect(next).toBe(before)
  })

  test("catch-up with project, session and types filters returns exactly the matching events; offsets stay global", async () => {
    const pa = await main.project("fa")
    const pb = await main.project("fb")
    const a1 = await main.session(pa)
    const a2 = await main.session(pa)
    const b1 = await main.session(pb)
    for (const s of [a1, a2, b1]) {
      await main.transition(s.id, "starting")
      expectOk(await main.call("POST", `/v1/sessions/${s.id}/rows`, { body: { kind: "user", body: { s: s.id } } }), 201)
      expectOk(await main.call("PATCH", `/v1/sessions/${s.id}`, { body: { title: s.id } }))
    }
    expectOk(await main.call("POST", `/v1/sessions/${a2.id}/end`, { body: { reason: "completed" } }))
    const full = await main.read("-1")
    const filters = [
      { project: pa },
      { session: a1.id },
      { types: "row.appended" },
      { types: "session.created,session.ended,project.created" },
      { project: pa, types: "row.appended,session.updated" },
      { project: pb, session: a1.id }, // nothing matches both
      { session: b1.id, types: "session.transitioned" },
    ]
    const mid = full.events.findIndex((e) => e.session === a1.id && e.type === "row.appended")
    expect(mid).toBeGreaterThan(0)
    for (const f of filters) {
      const q = filterQuery(f)
      const got = await main.read("-1", q)
      expect(got.events, q).toEqual(full.events.filter(matcher(f)))
      expect(got.next, `${q}: Stream-Next-Offset is the global tail`).toBe(full.next)
      // From an offset in the middle: the filtered reader resumes exactly after it.
      const fromMid = await main.read(full.events[mid].offset, q)
      expect(fromMid.events, `${q} from the middle`).toEqual(full.events.slice(mid + 1).filter(matcher(f)))
      expect(fromMid.next).toBe(full.next)
    }
    expect((await main.read("-1", filterQuery({ project: pa }))).events.length).toBeGreaterThan(5)
  })

  test("unknown types are 400 invalid_types naming the type, in every read mode", async () => {
    for (const q of ["types=bogus", "types=row.appended,bogus", "types=Row.Appended", "types=row.appended,,session.updated"]) {
      for (const mode of ["", "&live=long-poll", "&live=sse"]) {
        const res = await main.call("GET", `/v1/changes?offset=-1&${q}${mode}`)
        const err = expectError(res, 400, "invalid_types")
        const bad = decodeURIComponent(q.slice(6)).split(",").find((t) => !CHANGE_TYPES.includes(t))
        if (bad) expect(err.message, ctx(res)).toContain(`'${bad}'`)
      }
    }
  })

  test("an unfiltered long-poll at the tail returns the next event; its Stream-Next-Offset resumes without gap", async () => {
    const p = await main.project("lp")
    const s = await main.session(p)
    const tail = await main.tail()
    const poll = main.call("GET", `/v1/changes?offset=${tail}&live=long-poll`)
    await sleep(150)
    expectOk(await main.call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "lp" } }))
    const res = await poll
    expect(res.status, ctx(res)).toBe(200)
    expect(res.json.map((e) => e.type)).toEqual(["session.updated"])
    expect(res.headers.get("stream-next-offset")).toBe(res.json[0].offset)
    expect(res.headers.get("stream-cursor")).toBeTruthy()
  })

  test("a filtered long-poll waits past non-matching events, then returns the match with a global offset; resuming misses and repeats nothing", async () => {
    const pa = await main.project("flp-a")
    const pb = await main.project("flp-b")
    const a = await main.session(pa)
    const b = await main.session(pb)
    const start = await main.tail()
    const q = `session=${a.id}`
    const collected = []

    let settled = false
    const poll = main.call("GET", `/v1/changes?offset=${start}&live=long-poll&${q}`).finally(() => (settled = true))
    await sleep(100)
    for (let i = 0; i < 3; i++) expectOk(await main.call("PATCH", `/v1/sessions/${b.id}`, { body: { title: `b${i}` } }))
    await sleep(300)
    expect(settled, "the filtered long-poll answered on a non-matching event").toBe(false)
    expectOk(await main.call("PATCH", `/v1/sessions/${a.id}`, { body: { title: "a0" } }))
    let res = await poll
    expect(res.status, ctx(res)).toBe(200)
    expect(res.json.map((e) => [e.type, e.session])).toEqual([["session.updated", a.id]])
    const next = res.headers.get("stream-next-offset")
    expect(next, "Stream-Next-Offset is global: it counts the skipped events").toBe(res.json[0].offset)
    expect(parseOffset(next).position).toBe(parseOffset(start).position + 4)
    collected.push(...res.json)

    // Resume: a mix of matching and non-matching events.
    const poll2 = main.call("GET", `/v1/changes?offset=${next}&live=long-poll&${q}`)
    await sleep(100)
    expectOk(await main.call("PATCH", `/v1/sessions/${b.id}`, { body: { title: "b9" } }))
    expectOk(await main.call("PATCH", `/v1/sessions/${a.id}`, { body: { title: "a1" } }))
    expectOk(await main.call("POST", `/v1/sessions/${a.id}/transition`, { body: { to: "starting" } }))
    res = await poll2
    expect(res.status, ctx(res)).toBe(200)
    expect(res.json.length).toBeGreaterThanOrEqual(1)
    expect(res.json.every((e) => e.session === a.id)).toBe(true)
    collected.push(...res.json)
    let offset = res.headers.get("stream-next-offset")
    // Drain with catch-up using the same filter.
    const rest = await main.read(offset, q)
    collected.push(...rest.events)
    offset = rest.next

    // Only non-matching events happen: the poll times out with 204 and a global offset.
    const t0 = Date.now()
    const poll3 = main.call("GET", `/v1/changes?offset=${offset}&live=long-poll&${q}`)
    await sleep(100)
    expectOk(await main.call("PATCH", `/v1/sessions/${b.id}`, { body: { title: "b10" } }))
    res = await poll3
    expect(res.status, ctx(res)).toBe(204)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LONG_POLL_TIMEOUT_MS - 200)
    expect(res.headers.get("stream-next-offset"), "the 204 covers the skipped event").toBe(await main.tail())
    expect(res.headers.get("stream-up-to-date")).toBe("true")

    const everything = await main.read(start)
    expect(collected, "the filtered long-poll readers saw each matching event exactly once").toEqual(everything.events.filter((e) => e.session === a.id))
    expect(collected.map((e) => e.data.changes?.title ?? e.type)).toEqual(["a0", "a1", "session.transitioned"])
  })

  test("SSE with filters: history and live events of the filter only, control offsets global", async () => {
    const pa = await main.project("sse-a")
    const pb = await main.project("sse-b")
    const a = await main.session(pa)
    const b = await main.session(pb)
    const start = await main.tail()
    const f = { project: pa, types: "session.updated,row.appended" }
    const q = `offset=${start}&live=sse&${filterQuery(f)}`
    let finalTail = null
    const state = await readSse(
      main, q,
      (st) => finalTail !== null && st.controls.some((x) => x.streamNextOffset === finalTail && x.upToDate) && st.events.length >= 2,
      {
        onOpen: async () => {
          expectOk(await main.call("PATCH", `/v1/sessions/${b.id}`, { body: { title: "other" } }))
          expectOk(await main.call("POST", `/v1/sessions/${a.id}/rows`, { body: { kind: "user", body: {} } }), 201)
          await main.transition(a.id, "starting")
          expectOk(await main.call("PATCH", `/v1/sessions/${a.id}`, { body: { title: "mine" } }))
          expectOk(await main.call("POST", `/v1/sessions/${b.id}/rows`, { body: { kind: "user", body: {} } }), 201)
          finalTail = await main.tail()
        },
      },
    )
    const everything = await main.read(start)
    expect(everything.next).toBe(finalTail)
    expect(state.events, "SSE delivered exactly the matching events").toEqual(everything.events.filter(matcher(f)))
    expect(state.events.map((e) => e.type)).toEqual(["row.appended", "session.updated"])
    for (const ctl of state.controls) {
      const pos = parseOffset(ctl.streamNextOffset).position
      expect(pos).toBeGreaterThanOrEqual(parseOffset(start).position)
      expect(pos).toBeLessThanOrEqual(parseOffset(finalTail).position)
    }

    // From -1 with a session filter: that session's whole history.
    const hist = await readSse(main, `offset=-1&live=sse&session=${a.id}`, (st) => st.controls.some((x) => x.upToDate && x.streamNextOffset === finalTail))
    expect(hist.events).toEqual((await main.read("-1")).events.filter((e) => e.session === a.id))
    expect(hist.events.map((e) => e.type)).toEqual(["session.created", "row.appended", "session.transitioned", "session.updated"])
  })

  test("an upsert whose body differs only in the order of object members changes nothing (JSON objects are unordered)", async () => {
    const s = await main.sessionIn("active", "reorder")
    expectOk(await main.call("PUT", `/v1/sessions/${s.id}/rows/r1`, { body: '{"kind":"user","body":{"a":1,"b":{"c":2,"d":3}}}' }), 201)
    const res = await expectNoEvents(main, "the same body with its members reordered", () => main.call("PUT", `/v1/sessions/${s.id}/rows/r1`, { body: '{"body":{"b":{"d":3,"c":2},"a":1},"kind":"user"}' }), { sid: s.id })
    expectOk(res)
    expect(res.headers.get("idempotent-replayed")).toBe("true")
    expect(res.json.revision).toBe(1)
  })

  test("HEAD and an unfiltered SSE reader agree with catch-up", async () => {
    const full = await main.read("-1")
    expect(await main.tail()).toBe(full.next)
    const sse = await readSse(main, "offset=-1&live=sse", (st) => st.controls.some((x) => x.upToDate && x.streamNextOffset === full.next))
    expect(sse.events).toEqual(full.events)
  })
})

describe("changes made by the reaper", () => {
  test("detaching a silent session and reaping it append their events like API mutations do", async () => {
    const srv = await launch(["--heartbeat-timeout", "500ms", "--detach-timeout", "1s"])
    const c = client(srv.url)
    const start = await c.tail()
    const s = await c.sessionIn("active", "reap")
    expectOk(await c.call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const cmd = await command(c, s.id, "k")
    const deadline = Date.now() + 10000
    while ((await c.getSession(s.id)).state !== "ended") {
      expect(Date.now(), "the reaper never ended the silent session").toBeLessThan(deadline)
      await sleep(100)
    }
    const { events, next } = await c.read(start)
    expectOffsetsFollow(events, start, next, "the reaper's feed")
    const mine = events.filter((e) => e.session === s.id)
    expect(mine.map((e) => e.type)).toEqual([
      "session.created", "session.transitioned", "session.transitioned", "execution.started", "command.accepted",
      "execution.finished", "command.updated", "session.transitioned",
      "session.ended",
    ])
    mine.forEach((e, i) => expectChangeShape(e, `reaper event ${i}`))
    const [detach1, detach2, detach3, ended] = mine.slice(5)
    expect(detach1.data).toEqual({ generation: 1, reason: "lost" })
    expect(detach2.data.command).toMatchObject({ id: cmd.id, status: "interrupted" })
    expect(detach3.data).toEqual({ from: "active", to: "detached", cause: "heartbeat_lost" })
    expect(new Set([detach1, detach2, detach3].map((e) => e.revision)).size, "one transaction, one revision").toBe(1)
    expect(ended.data).toEqual({ from: "detached", reason: "reaped", cause: "detach_timeout" })
    expect(ended.revision).toBe(detach3.revision + 1)
    expect(ended.revision).toBe((await c.getSession(s.id)).revision)
  }, 20000)
})

// ---- replaying the feed -----------------------------------------------------------------------

/**
 * The state the feed describes, as the snapshot shows it: live (unarchived) projects, live
 * (unended) sessions and, when the snapshot lists them, the PRs of live sessions.
 */
function emptyState() {
  return { projects: new Map(), sessions: new Map(), prs: new Map() }
}

function stateOf(snap) {
  const st = emptyState()
  for (const p of snap.projects) st.projects.set(p.id, clone(p))
  for (const s of snap.sessions) st.sessions.set(s.id, clone(s))
  for (const pr of snap.prs ?? []) st.prs.set(pr.url, clone(pr))
  return st
}

function apply(st, e) {
  const d = e.data
  switch (e.type) {
    case "project.created":
      st.projects.set(d.project.id, clone(d.project))
      return
    case "project.archived":
      st.projects.delete(d.project.id)
      return
  }
  let s = st.sessions.get(e.session)
  if (e.type === "session.created") {
    s = clone(d.session)
    st.sessions.set(s.id, s)
  }
  if (!s) throw new Error(`event ${e.offset} ${e.type} for session ${e.session}, which the state does not have`)
  switch (e.type) {
    case "session.updated":
      Object.assign(s, clone(d.changes))
      break
    case "session.transitioned":
      s.state = d.to
      break
    case "session.ended":
      s.state = "ended"
      s.end_reason = d.reason
      s.ended_at = e.at
      break
    case "execution.started":
      s.active_execution = { generation: d.generation, started_at: e.at }
      break
    case "execution.finished":
      s.active_execution = null
      break
    case "row.appended":
    case "row.updated":
      if (d.row.kind === "approval_request") throw new Error("the replay model assumes no approval rows")
      break
    case "pr.created":
      st.prs.set(d.pr.url, { ...clone(d.pr), checks: [], comments: [] })
      break
    case "pr.updated": {
      const old = st.prs.get(d.pr.url)
      st.prs.set(d.pr.url, { ...clone(d.pr), checks: old?.checks ?? [], comments: old?.comments ?? [] })
      break
    }
    case "check.created":
    case "check.updated": {
      const pr = st.prs.get(d.check.pr)
      if (!pr) break // a snapshot without PRs: PRs are not compared
      pr.checks = pr.checks.filter((k) => !(k.name === d.check.name && k.commit === d.check.commit))
      pr.checks.push(clone(d.check))
      break
    }
    case "comment.created":
    case "comment.updated":
    case "comment.resolved": {
      const pr = st.prs.get(d.comment.pr)
      if (!pr) break
      pr.comments = pr.comments.filter((m) => m.id !== d.comment.id)
      pr.comments.push(clone(d.comment))
      break
    }
    case "comment.removed": {
      const pr = st.prs.get(d.comment.pr)
      if (!pr) break
      pr.comments = pr.comments.filter((m) => m.id !== d.comment.id)
      break
    }
  }
  s.revision = e.revision
  s.updated_at = e.at
  s.client_state = s.state !== "ended" && s.active_execution ? "running" : "idle"
  if (s.state === "ended") {
    st.sessions.delete(s.id)
    for (const [url, pr] of st.prs) if (pr.session === s.id) st.prs.delete(url)
  }
}

/** Comparable form: sorted lists; last_heartbeat_at left out (heartbeats are not changes). */
function normalize(st, withPrs) {
  const byKey = (k) => (a, b) => (a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : 0)
  const out = {
    projects: [...st.projects.values()].map(clone).sort(byKey("id")),
    sessions: [...st.sessions.values()].map(({ last_heartbeat_at, ...rest }) => clone(rest)).sort(byKey("id")),
  }
  if (withPrs) {
    out.prs = [...st.prs.values()]
      .map((pr) => ({ ...clone(pr), checks: [...pr.checks].sort((a, b) => a.first_seen - b.first_seen), comments: [...pr.comments].sort(byKey("id")) }))
      .sort(byKey("url"))
  }
  return out
}

describe("snapshot plus tail", () => {
  test("under concurrent writes, every snapshot equals the replay up to its offset, and snapshot + tail equals the full replay and a fresh snapshot", async () => {
    const srv = await launch(["--heartbeat-timeout", "1h", "--detach-timeout", "2h", "--long-poll-timeout", "1s"])
    const c = client(srv.url)
    const rand = mulberry32(SEED)
    const projects = []
    const sessions = []
    for (let i = 0; i < 3; i++) {
      const p = await c.project("cc")
      projects.push(p)
      sessions.push((await c.session(p)).id)
    }
    const pick = (r, list) => list[Math.floor(r() * list.length)]
    const STATES = ["starting", "active", "suspended", "detached", "closing"]
    let keys = 0

    async function op(r) {
      const sid = pick(r, sessions)
      const x = r()
      let res
      if (x < 0.06) {
        res = await c.call("POST", `/v1/projects/${pick(r, projects)}/sessions`, { body: { title: `t${Math.floor(r() * 3)}` } })
        if (res.status === 201) sessions.push(res.json.id)
      } else if (x < 0.16) {
        res = await c.call("PATCH", `/v1/sessions/${sid}`, { body: { title: `t${Math.floor(r() * 3)}`, tags: r() < 0.5 ? [] : ["x"] } })
      } else if (x < 0.28) {
        res = await c.call("POST", `/v1/sessions/${sid}/transition`, { body: { to: pick(r, STATES) } })
      } else if (x < 0.36) {
        res = await c.call("POST", `/v1/sessions/${sid}/executions`)
      } else if (x < 0.43) {
        const s = await c.call("GET", `/v1/sessions/${sid}`)
        const gen = s.json?.active_execution?.generation ?? 1
        res = await c.call("POST", `/v1/sessions/${sid}/executions/${gen}/${r() < 0.5 ? "finish" : "abort"}`)
      } else if (x < 0.51) {
        res = await c.call("POST", `/v1/sessions/${sid}/commands`, { headers: { "Idempotency-Key": `k${++keys}` }, body: { n: keys } })
      } else if (x < 0.56) {
        const list = await c.call("GET", `/v1/sessions/${sid}/commands?status=pending`)
        const cmd = list.json?.commands?.[0]
        if (!cmd) return
        res = await c.call("POST", `/v1/sessions/${sid}/commands/${cmd.id}`, { body: { status: pick(r, ["delivered", "done", "failed"]) } })
      } else if (x < 0.66) {
        res = await c.call("POST", `/v1/sessions/${sid}/rows`, { body: { kind: pick(r, ["user", "assistant", "tool_call"]), body: { x: r() } } })
      } else if (x < 0.74) {
        res = await c.call("PUT", `/v1/sessions/${sid}/rows/r${Math.floor(r() * 3)}`, { body: { kind: "assistant", status: pick(r, ["in_progress", "complete"]), body: { v: Math.floor(r() * 2) } } })
      } else if (x < 0.78) {
        res = await c.call("POST", `/v1/sessions/${sid}/heartbeat`)
      } else if (x < 0.9) {
        const n = Math.floor(r() * 2)
        res = await c.call("PUT", `/v1/sessions/${sid}/prs`, {
          body: {
            pr: { url: `https://git.example/${sid}/pull/${n}`, state: r() < 0.04 ? "merged" : "open", ci_state: pick(r, ["pending", "failing", "passing"]), head_commit: `h${Math.floor(r() * 3)}` },
            checks: [{ name: pick(r, ["ci", "lint"]), commit: `h${Math.floor(r() * 3)}`, status: pick(r, ["queued", "success", "failure"]) }],
            ...(r() < 0.6 ? { comments: [{ id: `m${Math.floor(r() * 2)}`, body: `b${Math.floor(r() * 2)}`, resolved: r() < 0.3 }] } : {}),
          },
        })
      } else if (x < 0.93) {
        res = await c.call("POST", `/v1/sessions/${sid}/end`, { body: { reason: pick(r, ["completed", "killed"]) } })
      } else if (x < 0.97) {
        res = await c.call("POST", "/v1/projects", { body: { id: fresh("ccn"), name: "n" } })
        if (res.status === 201) projects.push(res.json.id)
      } else {
        res = await c.call("DELETE", `/v1/projects/${pick(r, projects)}`)
      }
      expect(res.status, `${ctx(res)}: only 2xx and 4xx answers`).toBeLessThan(500)
    }

    const WORKERS = 4
    const OPS = 45
    let done = 0
    const workers = Array.from({ length: WORKERS }, async (_, w) => {
      const r = mulberry32(SEED * 31 + w)
      for (let i = 0; i < OPS; i++) await op(r)
      done++
    })
    const snaps = []
    const snapper = (async () => {
      const r = mulberry32(SEED + 7)
      while (done < WORKERS && snaps.length < 15) {
        await sleep(Math.floor(r() * 60))
        snaps.push(await c.snapshot())
      }
    })()
    await Promise.all([...workers, snapper])
    expect(snaps.length, "snapshots taken while the clients wrote").toBeGreaterThanOrEqual(3)

    const full = await c.read("-1")
    const final = await c.snapshot()
    expect(final.offset, "a fresh snapshot's offset is the feed's tail").toBe(full.next)
    const withPrs = Array.isArray(final.prs)
    expect(new Set(full.events.map((e) => e.type)).size, "the workload produced a variety of events").toBeGreaterThanOrEqual(12)

    const replayed = emptyState()
    for (const e of full.events) apply(replayed, e)
    expect(normalize(replayed, withPrs), "the replay of the whole feed equals a fresh snapshot").toEqual(normalize(stateOf(final), withPrs))

    for (const [i, snap] of snaps.entries()) {
      const pos = parseOffset(snap.offset).position
      // The snapshot is the state the feed describes up to its offset.
      const prefix = emptyState()
      for (const e of full.events.slice(0, pos)) apply(prefix, e)
      expect(normalize(stateOf(snap), withPrs), `snapshot ${i} at ${snap.offset} equals the replay of the feed up to it`).toEqual(normalize(prefix, withPrs))
      // Its tail, read from its offset, is exactly the rest of the feed.
      const tail = await c.read(snap.offset)
      expect(tail.events, `the tail after snapshot ${i}`).toEqual(full.events.slice(pos))
      const st = stateOf(snap)
      for (const e of tail.events) apply(st, e)
      expect(normalize(st, withPrs), `snapshot ${i} + its tail equals the full replay`).toEqual(normalize(replayed, withPrs))
    }
  }, 60000)
})

// ---- retention ------------------------------------------------------------------------------

describe("retention", () => {
  // A cheap probe of the oldest retained offset: a filter that matches nothing keeps the 200
  // answers small; a reader behind the pruning point gets the 410 before any filtering.
  const PROBE = "types=comment.removed"

  test("the janitor prunes in steps while appends continue; readers behind get 410 offset_pruned; snapshot + tail still works; offsets are never reused, also after a restart", async () => {
    const args = ["--changes-retention", "2s", "--heartbeat-timeout", "400ms", "--detach-timeout", "1s", "--long-poll-timeout", "1s"]
    let srv = await launch(args)
    const dataDir = srv.dataDir
    let c = client(srv.url)
    const p = await c.project("ret")
    const s = await c.session(p) // created: the reaper leaves it alone
    const early = await c.read("-1")
    const oldOffset = early.events[0].offset
    const prefix = parseOffset(oldOffset).prefix

    // Appenders run until told to stop; every append must succeed.
    let stop = false
    let appended = 0
    let maxLatency = 0
    const failures = []
    const appenders = Array.from({ length: 6 }, async () => {
      while (!stop) {
        const t = Date.now()
        const res = await c.call("POST", `/v1/sessions/${s.id}/rows`, { body: { kind: "user", body: { n: appended } } })
        maxLatency = Math.max(maxLatency, Date.now() - t)
        if (res.status !== 201) failures.push(ctx(res))
        else appended++
      }
    })

    // Observe the oldest retained offset (reported by the 410 of a reader at -1) over time.
    const observed = []
    const deadline = Date.now() + 20000
    while (Date.now() < deadline) {
      await sleep(100)
      const res = await c.call("GET", `/v1/changes?offset=-1&${PROBE}`)
      if (res.status === 200) continue
      const err = expectError(res, 410, "offset_pruned")
      const pos = parseOffset(err.oldest_offset).position
      if (!observed.length || observed.at(-1) !== pos) observed.push(pos)
      if (pos > 1200 && observed.length >= 4) break
    }
    // Appends go on while pruning: check a reader behind and the snapshot now.
    const behind = await c.call("GET", `/v1/changes?offset=${oldOffset}`)
    const behindErr = expectError(behind, 410, "offset_pruned")
    expect(behindErr.snapshot).toBe("/v1/changes/snapshot")
    expect(behindErr.oldest_offset).toMatch(OFFSET_RE)
    for (const mode of ["long-poll", "sse"]) {
      const res = await c.call("GET", `/v1/changes?offset=${oldOffset}&live=${mode}`)
      expect(expectError(res, 410, "offset_pruned").snapshot).toBe("/v1/changes/snapshot")
    }
    const fromStart = expectError(await c.call("GET", "/v1/changes?offset=-1"), 410, "offset_pruned")
    expect(fromStart.snapshot).toBe("/v1/changes/snapshot")
    const snap = await c.snapshot()
    const snapTail = await c.read(snap.offset)
    stop = true
    await Promise.all(appenders)

    expect(failures, "appends during pruning").toEqual([])
    expect(observed.length, `the oldest retained offset advanced in steps: ${observed.join(", ")}`).toBeGreaterThanOrEqual(3)
    for (let i = 1; i < observed.length; i++) expect(observed[i]).toBeGreaterThan(observed[i - 1])
    expect(observed.at(-1), `more than 1000 events were pruned (appended ${appended})`).toBeGreaterThan(1000)
    expect(maxLatency, "an append never waited long behind the janitor").toBeLessThan(5000)

    // Snapshot + tail after pruning equals a fresh snapshot.
    const tail1 = await c.read(snapTail.next)
    const st = stateOf(snap)
    for (const e of [...snapTail.events, ...tail1.events]) apply(st, e)
    const fresh1 = await c.snapshot()
    expect(fresh1.offset).toBe(tail1.next)
    expect(normalize(st, Array.isArray(fresh1.prs))).toEqual(normalize(stateOf(fresh1), Array.isArray(fresh1.prs)))

    // The retained events start right after the oldest offset (the janitor may move it on
    // between the two reads: then try again).
    for (let attempt = 0; ; attempt++) {
      const oldest = expectError(await c.call("GET", `/v1/changes?offset=-1&${PROBE}`), 410, "offset_pruned").oldest_offset
      const retained = await c.call("GET", `/v1/changes?offset=${oldest}`)
      if (retained.status === 410 && attempt < 10) continue
      expect(retained.status, ctx(retained)).toBe(200)
      if (retained.json.length) expect(parseOffset(retained.json[0].offset).position).toBe(parseOffset(oldest).position + 1)
      break
    }

    // Wait until everything has aged out: the oldest retained offset is the tail.
    const lastTail = await c.tail()
    const maxPos = parseOffset(lastTail).position
    const untilEmpty = Date.now() + 10000
    for (;;) {
      const res = await c.call("GET", `/v1/changes?offset=-1&${PROBE}`)
      if (res.status === 410 && res.json.error.oldest_offset === lastTail) break
      expect(Date.now(), `the feed was never pruned to its tail ${lastTail}`).toBeLessThan(untilEmpty)
      await sleep(150)
    }
    expect((await c.read(lastTail)).events).toEqual([])

    // Restart with every event pruned: the tail survives, offsets continue after it.
    expect(await shutdown(srv)).toBe(0)
    srv = await launch(args, dataDir)
    c = client(srv.url)
    const tailAfterRestart = await c.tail()
    expect(parseOffset(tailAfterRestart), "the tail after a restart").toEqual({ prefix, position: maxPos })
    expectError(await c.call("GET", "/v1/changes?offset=-1"), 410, "offset_pruned")
    expectError(await c.call("GET", `/v1/changes?offset=${oldOffset}`), 410, "offset_pruned")
    expectOk(await c.call("PATCH", `/v1/sessions/${s.id}`, { body: { title: "after restart" } }))
    const after = await c.read(tailAfterRestart)
    expect(after.events.map((e) => e.type)).toEqual(["session.updated"])
    expect(parseOffset(after.events[0].offset), "a new event's offset follows every pruned one").toEqual({ prefix, position: maxPos + 1 })
  }, 60000)

  test("a project's own feed ages out too: a reader behind gets 410 with its project's snapshot, which resumes it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-feed-retention-"))
    const tokensFile = join(dir, "tokens.jsonl")
    const mint = (scope) => {
      const r = spawnSync(ordoBinary(), ["token", "create", "--tokens-file", tokensFile, "--scope", scope, "--expires", "1h"])
      expect(r.status, r.stderr.toString()).toBe(0)
      return r.stdout.toString().trim()
    }
    const admin = mint("admin")
    const reader = mint("sessions:read:kept")
    const srv = await launch(["--changes-retention", "1s", "--auth", "tokens", "--auth-tokens-file", tokensFile])
    try {
      const as = (token) => (method, path, options = {}) =>
        request(srv.url, method, path, { ...options, headers: { ...(options.headers ?? {}), Authorization: `Bearer ${token}` } })
      const asAdmin = as(admin)
      const asReader = as(reader)
      expect((await asAdmin("POST", "/v1/projects", { body: { id: "kept", name: "kept" } })).status).toBe(201)
      const made = await asAdmin("POST", "/v1/projects/kept/sessions", { body: {} })
      expect(made.status, ctx(made)).toBe(201)
      const s = made.json
      const first = await asReader("GET", "/v1/changes?offset=-1&project=kept")
      expect(first.status, ctx(first)).toBe(200)
      expect(first.json.map((e) => e.type)).toEqual(["project.created", "session.created"])
      // Everything ages out of the project's feed as it does out of the server's.
      const deadline = Date.now() + 10000
      let err
      for (;;) {
        const res = await asReader("GET", "/v1/changes?offset=-1&project=kept")
        if (res.status === 410) {
          err = expectError(res, 410, "offset_pruned")
          if (err.oldest_offset === first.headers.get("stream-next-offset")) break
        }
        expect(Date.now(), "the project's feed was never pruned to its tail").toBeLessThan(deadline)
        await sleep(150)
      }
      expect(err.snapshot).toBe("/v1/changes/snapshot?project=kept")
      // The snapshot says where to go on, and the next change is there.
      const snap = await asReader("GET", err.snapshot)
      expect(snap.status, ctx(snap)).toBe(200)
      expect(snap.json.offset).toBe(first.headers.get("stream-next-offset"))
      expectOk(await asAdmin("PATCH", `/v1/sessions/${s.id}`, { body: { title: "later" } }))
      const later = await asReader("GET", `/v1/changes?offset=${snap.json.offset}&project=kept`)
      expect(later.status, ctx(later)).toBe(200)
      expect(later.json.map((e) => e.type)).toEqual(["session.updated"])
    } finally {
      await shutdown(srv)
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30000)
})
