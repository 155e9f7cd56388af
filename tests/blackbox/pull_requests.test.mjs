// Black-box tests of PR observations: PUT /v1/sessions/{id}/prs upserts a PR by URL with its
// checks (a history: one row per check per commit) and comments (reconciled as a set), emitting
// one change event per change in one transaction; GET /v1/sessions/{id}/prs; a merge ends the
// session (unless --end-on-merge false); GET /v1/sessions/{id}/ci-brake over scripted check
// histories.
//
// Events are read from the change feed (/v1/changes) between the offsets taken before and after
// each observation; the tests of a file run one after another, so nothing else writes meanwhile.
// Every refused observation must write nothing: no event, no PR, the same session revision.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectError, expectOk, request } from "../support/api.mjs"

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

const ENUMS = {
  "pr.state": ["open", "merged", "closed"],
  "pr.review_decision": ["approved", "changes_requested", "review_required", "none"],
  "pr.mergeability": ["mergeable", "conflicting", "unknown"],
  "pr.ci_state": ["pending", "passing", "failing", "none"],
  "checks[].status": ["queued", "in_progress", "success", "failure", "cancelled", "skipped", "neutral", "timed_out"],
}

const servers = []
let P // defaults: --end-on-merge true, --ci-brake-commits 3
let Q // --end-on-merge false --ci-brake-commits 2

beforeAll(async () => {
  const common = ["--heartbeat-timeout", "1h", "--detach-timeout", "2h"]
  const [a, b] = await Promise.all([
    startOrdo({ args: common }),
    startOrdo({ args: [...common, "--end-on-merge", "false", "--ci-brake-commits", "2"] }),
  ])
  servers.push(a, b)
  P = client(a.url)
  Q = client(b.url)
})

afterAll(async () => {
  const failures = []
  for (const s of servers) {
    const code = await s.stop()
    if (code !== 0) failures.push(`exit ${code}; log:\n${s.log()}`)
    s.cleanup()
  }
  expect(failures, "ordo exit status on SIGTERM").toEqual([])
})

// ---- helpers ---------------------------------------------------------------------------------

let counter = 0
const fresh = (label) => `${label}-${++counter}`
const prUrl = (label = "pr") => `https://git.example/acme/app/pull/${fresh(label)}`

const facts = (view) => {
  const { checks, comments, ...rest } = view
  return rest
}

function client(base) {
  const call = (method, path, options) => request(base, method, path, options)

  async function tail() {
    const res = await call("HEAD", "/v1/changes")
    expect(res.status, ctx(res)).toBe(200)
    return res.headers.get("stream-next-offset")
  }

  async function changesSince(offset) {
    const events = []
    for (let i = 0; i < 200; i++) {
      const res = await call("GET", `/v1/changes?offset=${encodeURIComponent(offset)}`)
      expect(res.status, ctx(res)).toBe(200)
      events.push(...res.json)
      offset = res.headers.get("stream-next-offset")
      if (res.headers.get("stream-up-to-date") === "true") return events
    }
    throw new Error("the change feed never reached its tail")
  }

  async function session(state = "active") {
    const project = fresh("prj")
    expectOk(await call("POST", "/v1/projects", { body: { id: project, name: project } }), 201)
    const s = expectOk(await call("POST", `/v1/projects/${project}/sessions`, { body: {} }), 201)
    const path = { created: [], active: ["starting", "active"] }[state]
    for (const to of path) expectOk(await call("POST", `/v1/sessions/${s.id}/transition`, { body: { to } }))
    return getSession(s.id)
  }

  async function getSession(id) {
    return expectOk(await call("GET", `/v1/sessions/${id}`))
  }

  const observe = (sid, body, headers = {}) => call("PUT", `/v1/sessions/${sid}/prs`, { body, headers })

  async function prs(sid) {
    const res = await call("GET", `/v1/sessions/${sid}/prs`)
    const body = expectOk(res)
    expect(Object.keys(body)).toEqual(["prs"])
    return body.prs
  }

  async function brake(sid, query = "") {
    return call("GET", `/v1/sessions/${sid}/ci-brake${query}`)
  }

  /**
   * Performs `perform` and returns {res, events}: the change events it appended, which must all
   * be of session `sid`, in one revision (the session's new one) and one commit time.
   */
  async function changes(sid, perform) {
    const before = await tail()
    const sBefore = await getSession(sid)
    const res = await perform()
    const events = await changesSince(before)
    const sAfter = await getSession(sid)
    for (const e of events) {
      expect(e.session, JSON.stringify(e)).toBe(sid)
      expect(e.project).toBe(sAfter.project)
      expect(e.revision).toBe(sAfter.revision)
      expect(e.at).toMatch(RFC3339)
    }
    expect(new Set(events.map((e) => e.at)).size).toBeLessThanOrEqual(1)
    if (events.length) {
      expect(sAfter.revision, "one observation, one revision").toBe(sBefore.revision + 1)
      expect(res.headers.get("etag"), ctx(res)).toBe(`"${sAfter.revision}"`)
    }
    return { res, events, before: sBefore, after: sAfter }
  }

  /** Performs `perform`, which must write nothing: no event, same session, same PRs. */
  async function nothing(sid, perform) {
    const before = await tail()
    const sBefore = await getSession(sid)
    const prsBefore = await prs(sid)
    const res = await perform()
    expect(await changesSince(before), `${ctx(res)}: no change event`).toEqual([])
    expect(await tail()).toBe(before)
    expect(await getSession(sid), `${ctx(res)}: the session is unchanged`).toEqual(sBefore)
    expect(await prs(sid), `${ctx(res)}: the PRs are unchanged`).toEqual(prsBefore)
    return res
  }

  return { base, call, tail, changesSince, session, getSession, observe, prs, brake, changes, nothing }
}

const types = (events) => events.map((e) => e.type)

// ---- observations ----------------------------------------------------------------------------

describe("PR observations", () => {
  test("a first observation creates the PR (201) with defaults for omitted facts; GET /prs lists it with the session's revision as ETag", async () => {
    const s = await P.session()
    const url = prUrl()
    const { res, events, after } = await P.changes(s.id, () => P.observe(s.id, { pr: { url, state: "open" } }))
    const v = expectOk(res, 201)
    expect(res.headers.get("idempotent-replayed")).toBeNull()
    expect(v).toMatchObject({
      url, session: s.id, number: null, title: null, state: "open", review_decision: "none",
      mergeability: "unknown", ci_state: "none", head_commit: null, revision: 1, checks: [], comments: [],
    })
    expect(v.created_at).toMatch(RFC3339)
    expect(v.updated_at).toBe(v.created_at)
    expect(types(events)).toEqual(["pr.created"])
    expect(events[0].data).toEqual({ pr: facts(v) })
    const list = await P.call("GET", `/v1/sessions/${s.id}/prs`)
    expect(expectOk(list)).toEqual({ prs: [v] })
    expect(list.headers.get("etag")).toBe(`"${after.revision}"`)
  })

  test("a session may track several PRs; each is upserted by its URL", async () => {
    const s = await P.session()
    const u1 = prUrl("a")
    const u2 = prUrl("b")
    const r1 = await P.changes(s.id, () => P.observe(s.id, { pr: { url: u1, number: 1, state: "open" } }))
    expectOk(r1.res, 201)
    const r2 = await P.changes(s.id, () => P.observe(s.id, { pr: { url: u2, number: 2, state: "open" } }))
    expectOk(r2.res, 201)
    expect(types(r2.events)).toEqual(["pr.created"])
    const r3 = await P.changes(s.id, () => P.observe(s.id, { pr: { url: u1, number: 1, state: "closed" } }))
    const v = expectOk(r3.res, 200)
    expect(types(r3.events)).toEqual(["pr.updated"])
    expect(r3.events[0].data.pr.url).toBe(u1)
    const list = await P.prs(s.id)
    expect(list.map((p) => [p.url, p.state])).toEqual([[u1, "closed"], [u2, "open"]])
    expect(list[0]).toEqual(v)
  })

  test("a URL tracked by another session is 409 pr_belongs_to_another_session and writes nothing", async () => {
    const a = await P.session()
    const b = await P.session()
    const url = prUrl()
    expectOk(await P.observe(a.id, { pr: { url, state: "open" }, checks: [{ name: "ci", commit: "c1", status: "queued" }] }), 201)
    const ownerPrs = await P.prs(a.id)
    const res = await P.nothing(b.id, () =>
      P.observe(b.id, {
        pr: { url, state: "closed", title: "stolen" },
        checks: [{ name: "ci", commit: "c1", status: "failure" }],
        comments: [{ id: "x", body: "mine" }],
      }),
    )
    const err = expectError(res, 409, "pr_belongs_to_another_session")
    expect(err.message).toContain(a.id)
    expect(await P.prs(b.id)).toEqual([])
    expect(await P.prs(a.id), "the owner's PR is untouched").toEqual(ownerPrs)
  })

  test("changed facts emit one pr.updated with exactly the changes; an identical observation emits nothing and is Idempotent-Replayed", async () => {
    const s = await P.session()
    const url = prUrl()
    const pr = { url, number: 10, title: "T", state: "open", review_decision: "review_required", mergeability: "unknown", ci_state: "pending", head_commit: "c1" }
    const created = expectOk(await P.observe(s.id, { pr }), 201)
    let revision = created.revision
    const steps = [
      { number: 11 },
      { title: "T2" },
      { title: null },
      { state: "closed" },
      { state: "open" },
      { review_decision: "approved" },
      { mergeability: "conflicting" },
      { ci_state: "passing" },
      { head_commit: "c2" },
      { review_decision: "changes_requested", mergeability: "mergeable", ci_state: "failing" },
    ]
    let current = { ...pr }
    for (const change of steps) {
      current = { ...current, ...change }
      const { res, events } = await P.changes(s.id, () => P.observe(s.id, { pr: current }))
      const v = expectOk(res, 200)
      expect(res.headers.get("idempotent-replayed"), ctx(res)).toBeNull()
      expect(types(events), JSON.stringify(change)).toEqual(["pr.updated"])
      expect(events[0].data, JSON.stringify(change)).toEqual({ pr: facts(v), changes: change })
      expect(v.revision, "the PR's revision grows by one per change").toBe(++revision)
      expect(v).toMatchObject(current)

      const again = await P.nothing(s.id, () => P.observe(s.id, { pr: current }))
      expect(expectOk(again, 200)).toEqual(v)
      expect(again.headers.get("idempotent-replayed"), ctx(again)).toBe("true")
      expect(again.headers.get("etag")).toBe(res.headers.get("etag"))
    }
    // Member order and formatting do not matter for an identical observation.
    const reordered = Object.fromEntries(Object.entries(current).reverse())
    expect((await P.nothing(s.id, () => P.observe(s.id, { pr: reordered }))).headers.get("idempotent-replayed")).toBe("true")
  })

  test("If-Match with a stale revision is 412 revision_mismatch and writes nothing; the current revision succeeds", async () => {
    const s = await P.session()
    const url = prUrl()
    const stale = await P.nothing(s.id, () => P.observe(s.id, { pr: { url, state: "open" } }, { "If-Match": `"${s.revision - 1}"` }))
    expectError(stale, 412, "revision_mismatch")
    expectOk(await P.observe(s.id, { pr: { url, state: "open" } }, { "If-Match": `"${s.revision}"` }), 201)
  })

  test("checks are a history: one row per check per commit; a status change on the same commit is check.updated with previous_status; unchanged checks emit nothing", async () => {
    const s = await P.session()
    const url = prUrl()
    const pr = { url, state: "open" }
    const find = (v, name, commit) => v.checks.find((k) => k.name === name && k.commit === commit)

    let r = await P.changes(s.id, () =>
      P.observe(s.id, { pr, checks: [{ name: "ci", commit: "c1", status: "queued", url: "https://ci/1" }, { name: "lint", commit: "c1", status: "success" }] }),
    )
    let v = expectOk(r.res, 201)
    expect(types(r.events)).toEqual(["pr.created", "check.created", "check.created"])
    expect(r.events[1].data).toEqual({ check: find(v, "ci", "c1") })
    expect(r.events[2].data).toEqual({ check: find(v, "lint", "c1") })
    expect(find(v, "ci", "c1")).toMatchObject({ pr: url, name: "ci", commit: "c1", status: "queued", url: "https://ci/1", started_at: null, completed_at: null, first_seen: 1 })
    expect(find(v, "lint", "c1").first_seen).toBe(2)

    r = await P.changes(s.id, () =>
      P.observe(s.id, { pr, checks: [{ name: "ci", commit: "c1", status: "in_progress", url: "https://ci/1", started_at: "2026-03-01T10:00:00Z" }] }),
    )
    v = expectOk(r.res)
    expect(types(r.events)).toEqual(["check.updated"])
    expect(r.events[0].data).toEqual({ check: find(v, "ci", "c1"), previous_status: "queued" })
    expect(find(v, "ci", "c1")).toMatchObject({ status: "in_progress", first_seen: 1 })
    expect(Date.parse(find(v, "ci", "c1").started_at)).toBe(Date.parse("2026-03-01T10:00:00Z"))

    const third = [
      { name: "ci", commit: "c1", status: "failure", url: "https://ci/1", started_at: "2026-03-01T10:00:00Z", completed_at: "2026-03-01T10:05:00.250Z" },
      { name: "ci", commit: "c2", status: "queued" },
    ]
    r = await P.changes(s.id, () => P.observe(s.id, { pr, checks: third }))
    v = expectOk(r.res)
    expect(types(r.events)).toEqual(["check.updated", "check.created"])
    expect(r.events[0].data).toEqual({ check: find(v, "ci", "c1"), previous_status: "in_progress" })
    expect(r.events[1].data).toEqual({ check: find(v, "ci", "c2") })
    expect(Date.parse(find(v, "ci", "c1").completed_at)).toBe(Date.parse("2026-03-01T10:05:00.250Z"))
    expect(find(v, "ci", "c2").first_seen).toBe(3)

    // Re-observing unchanged checks, a subset of them, or none at all emits nothing.
    // The same instants written differently are the same check.
    const sameInstants = [{ ...third[0], started_at: "2026-03-01T11:00:00+01:00", completed_at: "2026-03-01T10:05:00.250+00:00" }, third[1]]
    for (const checks of [third, sameInstants, [third[1]], [{ name: "lint", commit: "c1", status: "success" }], undefined, []]) {
      const res = await P.nothing(s.id, () => P.observe(s.id, checks === undefined ? { pr } : { pr, checks }))
      expectOk(res)
      expect(res.headers.get("idempotent-replayed")).toBe("true")
    }
    const [stored] = await P.prs(s.id)
    expect(stored.checks.map((k) => [k.name, k.commit, k.status, k.first_seen])).toEqual([
      ["ci", "c1", "failure", 1],
      ["lint", "c1", "success", 2],
      ["ci", "c2", "queued", 3],
    ])
    for (const k of stored.checks) expect(k.updated_at).toMatch(RFC3339)
  })

  test("comments are reconciled as a set: created, updated, resolved and removed; omitting comments leaves them alone", async () => {
    const s = await P.session()
    const url = prUrl()
    const pr = { url, state: "open" }
    const byId = (v, id) => v.comments.find((m) => m.id === id)
    const c1 = { id: "c1", author: "ann", body: "please rename", path: "src/a.cpp", line: 12, resolved: false }
    const c2 = { id: "c2", author: "bob", body: "why?" }

    let r = await P.changes(s.id, () => P.observe(s.id, { pr, comments: [c1, c2] }))
    let v = expectOk(r.res, 201)
    expect(types(r.events)).toEqual(["pr.created", "comment.created", "comment.created"])
    expect(r.events[1].data).toEqual({ comment: byId(v, "c1") })
    expect(r.events[2].data).toEqual({ comment: byId(v, "c2") })
    expect(byId(v, "c1")).toMatchObject({ pr: url, ...c1 })
    expect(byId(v, "c2")).toMatchObject({ pr: url, id: "c2", author: "bob", body: "why?", path: null, line: null, resolved: false })

    // An edit, a resolution and an addition in one observation.
    const c1b = { ...c1, body: "please rename (edited)" }
    const c2b = { ...c2, resolved: true }
    const c3 = { id: "c3", author: "cy", body: "LGTM" }
    r = await P.changes(s.id, () => P.observe(s.id, { pr, comments: [c1b, c2b, c3] }))
    v = expectOk(r.res)
    expect(types(r.events)).toEqual(["comment.updated", "comment.resolved", "comment.created"])
    expect(r.events[0].data).toEqual({ comment: byId(v, "c1") })
    expect(r.events[1].data).toEqual({ comment: byId(v, "c2") })
    expect(r.events[2].data).toEqual({ comment: byId(v, "c3") })
    expect(byId(v, "c1").body).toBe("please rename (edited)")
    expect(byId(v, "c2").resolved).toBe(true)
    const c3Stored = byId(v, "c3")

    // Re-observing the same set emits nothing; omitting comments leaves them alone.
    for (const body of [{ pr, comments: [c3, c2b, c1b] }, { pr }]) {
      const res = await P.nothing(s.id, () => P.observe(s.id, body))
      expect(res.headers.get("idempotent-replayed")).toBe("true")
      expect(expectOk(res).comments.map((m) => m.id).sort()).toEqual(["c1", "c2", "c3"])
    }

    // Absent from the observed set: removed, with the comment as it was.
    r = await P.changes(s.id, () => P.observe(s.id, { pr, comments: [c1b, c2b] }))
    v = expectOk(r.res)
    expect(types(r.events)).toEqual(["comment.removed"])
    expect(r.events[0].data).toEqual({ comment: c3Stored })
    expect(v.comments.map((m) => m.id).sort()).toEqual(["c1", "c2"])

    // An empty set removes them all.
    const before = await P.prs(s.id)
    r = await P.changes(s.id, () => P.observe(s.id, { pr, comments: [] }))
    expect(types(r.events)).toEqual(["comment.removed", "comment.removed"])
    expect(r.events.map((e) => e.data.comment).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [...before[0].comments].sort((a, b) => a.id.localeCompare(b.id)),
    )
    expect((await P.prs(s.id))[0].comments).toEqual([])
  })

  test("one observation changing facts, checks and comments emits the exact list of events in one revision", async () => {
    const s = await P.session()
    const url = prUrl()
    expectOk(await P.observe(s.id, {
      pr: { url, state: "open", ci_state: "pending" },
      checks: [{ name: "ci", commit: "c1", status: "in_progress" }],
      comments: [{ id: "a", body: "one" }, { id: "b", body: "two" }, { id: "gone", body: "bye" }],
    }), 201)
    const { res, events } = await P.changes(s.id, () =>
      P.observe(s.id, {
        pr: { url, state: "open", ci_state: "failing" },
        checks: [{ name: "ci", commit: "c1", status: "failure" }, { name: "ci", commit: "c2", status: "queued" }],
        comments: [{ id: "a", body: "one, edited" }, { id: "b", body: "two", resolved: true }, { id: "c", body: "three" }],
      }),
    )
    const v = expectOk(res)
    expect(types(events)).toEqual(["pr.updated", "check.updated", "check.created", "comment.updated", "comment.resolved", "comment.created", "comment.removed"])
    expect(events[0].data.changes).toEqual({ ci_state: "failing" })
    expect(events[1].data.previous_status).toBe("in_progress")
    expect(events[6].data.comment.id).toBe("gone")
    expect(v.checks).toHaveLength(2)
  })
})

// ---- validation ------------------------------------------------------------------------------

describe("refused observations write nothing", () => {
  test("an unknown value of pr.state, review_decision, mergeability, ci_state or checks[].status is 400 invalid_enum naming the field and the allowed values", async () => {
    const s = await P.session()
    const existing = prUrl("existing")
    expectOk(await P.observe(s.id, { pr: { url: existing, state: "open" } }), 201)
    for (const [field, allowed] of Object.entries(ENUMS)) {
      for (const url of [prUrl("new"), existing]) {
        const pr = { url, state: "open", title: "changed" }
        const body = { pr, checks: [{ name: "ci", commit: "c9", status: "success" }] }
        if (field.startsWith("pr.")) pr[field.slice(3)] = "Bogus"
        else body.checks[0].status = "Bogus"
        const res = await P.nothing(s.id, () => P.observe(s.id, body))
        const err = expectError(res, 400, "invalid_enum")
        expect(err.message, ctx(res)).toContain(field)
        expect(err.message, ctx(res)).toContain("Bogus")
        for (const value of allowed) expect(err.message, `${ctx(res)}: names the allowed value ${value}`).toContain(value)
      }
    }
    expect((await P.prs(s.id)).map((p) => p.url)).toEqual([existing])
  })

  test("every allowed enum value is accepted", async () => {
    const s = await Q.session() // --end-on-merge false: merged does not end the session
    const url = prUrl()
    for (const [field, allowed] of Object.entries(ENUMS)) {
      for (const value of allowed) {
        const pr = { url, state: "open" }
        const body = { pr }
        if (field.startsWith("pr.")) pr[field.slice(3)] = value
        else body.checks = [{ name: `chk-${value}`, commit: "c1", status: value }]
        const res = await Q.observe(s.id, body)
        expect(res.status, ctx(res)).toBeLessThan(300)
        if (field.startsWith("pr.")) expect(res.json[field.slice(3)]).toBe(value)
      }
    }
  })

  const BAD = [
    ["no pr", () => ({ checks: [] }), "missing_field"],
    ["pr without url", (url) => ({ pr: { state: "open", title: url } }), "missing_field"],
    ["pr with an empty url", () => ({ pr: { url: "", state: "open" } }), "missing_field"],
    ["pr without state", (url) => ({ pr: { url } }), "missing_field"],
    ["an unknown top-level field", (url) => ({ pr: { url, state: "open" }, labels: [] }), "unknown_field"],
    ["an unknown pr field", (url) => ({ pr: { url, state: "open", draft: true } }), "unknown_field"],
    ["a negative number", (url) => ({ pr: { url, state: "open", number: -1 } }), "invalid_field"],
    ["a string number", (url) => ({ pr: { url, state: "open", number: "7" } }), "invalid_field"],
    // Integers past 2^63-1 must be refused, not stored wrapped around to negative values (sent as
    // raw JSON text: a JavaScript number cannot hold them exactly).
    ["a number of 2^64-1", (url) => `{"pr":{"url":${JSON.stringify(url)},"state":"open","number":18446744073709551615}}`, "invalid_field"],
    ["a comment line of 2^63", (url) => `{"pr":{"url":${JSON.stringify(url)},"state":"open"},"comments":[{"id":"a","body":"x","line":9223372036854775808}]}`, "invalid_field"],
    ["checks that are not an array", (url) => ({ pr: { url, state: "open" }, checks: {} }), "invalid_field"],
    ["a check without a name", (url) => ({ pr: { url, state: "open" }, checks: [{ commit: "c1", status: "success" }] }), "missing_field"],
    ["a check without a commit", (url) => ({ pr: { url, state: "open" }, checks: [{ name: "ci", status: "success" }] }), "missing_field"],
    ["a check without a status", (url) => ({ pr: { url, state: "open" }, checks: [{ name: "ci", commit: "c1" }] }), "missing_field"],
    [
      "a duplicate check (same name and commit)",
      (url) => ({ pr: { url, state: "open" }, checks: [{ name: "ci", commit: "c1", status: "failure" }, { name: "ci", commit: "c1", status: "success" }] }),
      "duplicate_check",
    ],
    ["a malformed started_at", (url) => ({ pr: { url, state: "open" }, checks: [{ name: "ci", commit: "c1", status: "success", started_at: "yesterday" }] }), "invalid_field"],
    ["an impossible completed_at", (url) => ({ pr: { url, state: "open" }, checks: [{ name: "ci", commit: "c1", status: "success", completed_at: "2026-13-45T25:61:00Z" }] }), "invalid_field"],
    ["a numeric started_at", (url) => ({ pr: { url, state: "open" }, checks: [{ name: "ci", commit: "c1", status: "success", started_at: 1700000000 }] }), "invalid_field"],
    ["comments that are not an array", (url) => ({ pr: { url, state: "open" }, comments: "x" }), "invalid_field"],
    ["a comment without an id", (url) => ({ pr: { url, state: "open" }, comments: [{ body: "x" }] }), "missing_field"],
    ["a comment without a body", (url) => ({ pr: { url, state: "open" }, comments: [{ id: "a" }] }), "missing_field"],
    ["a duplicate comment id", (url) => ({ pr: { url, state: "open" }, comments: [{ id: "a", body: "x" }, { id: "a", body: "y" }] }), "duplicate_comment"],
    ["a non-boolean resolved", (url) => ({ pr: { url, state: "open" }, comments: [{ id: "a", body: "x", resolved: "yes" }] }), "invalid_field"],
  ]

  for (const [label, make, code] of BAD) {
    test(`${label}: 400 ${code}, no PR, no event`, async () => {
      const s = await P.session()
      const url = prUrl()
      const res = await P.nothing(s.id, () => P.observe(s.id, make(url)))
      expectError(res, 400, code)
      expect(await P.prs(s.id)).toEqual([])
    })
  }

  test("a bad part of an observation of a known PR rolls back its good parts too", async () => {
    const s = await P.session()
    const url = prUrl()
    expectOk(await P.observe(s.id, { pr: { url, state: "open", title: "t" }, checks: [{ name: "ci", commit: "c1", status: "queued" }], comments: [{ id: "a", body: "x" }] }), 201)
    for (const body of [
      { pr: { url, state: "closed", title: "t2" }, checks: [{ name: "ci", commit: "c1", status: "success" }, { name: "ci", commit: "c1", status: "failure" }] },
      { pr: { url, state: "closed" }, checks: [{ name: "ci", commit: "c2", status: "success" }], comments: [{ id: "a", body: "y" }, { id: "a", body: "z" }] },
      { pr: { url, state: "closed" }, checks: [{ name: "ci", commit: "c1", status: "success", completed_at: "not a time" }] },
    ]) {
      expect((await P.nothing(s.id, () => P.observe(s.id, body))).status).toBe(400)
    }
  })

  test("malformed JSON or a non-object body is 400; an unknown session is 404 session_not_found", async () => {
    const s = await P.session()
    for (const body of ["{", "[]", "null", '"pr"']) {
      const res = await P.nothing(s.id, () => P.observe(s.id, body))
      expect(res.status, ctx(res)).toBe(400)
      expect(["invalid_json", "invalid_body"]).toContain(res.json.error.code)
    }
    expectError(await P.observe("no-such-session", { pr: { url: prUrl(), state: "open" } }), 404, "session_not_found")
    expectError(await P.call("GET", "/v1/sessions/no-such-session/prs"), 404, "session_not_found")
    expectError(await P.brake("no-such-session"), 404, "session_not_found")
  })
})

// ---- merge -----------------------------------------------------------------------------------

describe("merge", () => {
  test("a merge ends the session with reason pr_merged: pr.updated, then the released work, then session.ended, in one revision", async () => {
    const s = await P.session()
    const url = prUrl()
    expectOk(await P.observe(s.id, { pr: { url, state: "open" } }), 201)
    expectOk(await P.call("POST", `/v1/sessions/${s.id}/executions`), 201)
    const cmd = expectOk(await P.call("POST", `/v1/sessions/${s.id}/commands`, { headers: { "Idempotency-Key": "k" }, body: { op: "x" } }), 202)
    const { res, events, after } = await P.changes(s.id, () => P.observe(s.id, { pr: { url, state: "merged" } }))
    const v = expectOk(res)
    expect(v.state).toBe("merged")
    expect(types(events)).toEqual(["pr.updated", "execution.finished", "command.updated", "session.ended"])
    expect(events[0].data).toEqual({ pr: facts(v), changes: { state: "merged" } })
    expect(events[1].data).toEqual({ generation: 1, reason: "session_ended" })
    expect(events[2].data.command).toMatchObject({ id: cmd.id, status: "interrupted" })
    expect(events[3].data).toEqual({ from: "active", reason: "pr_merged", cause: "pr_merged" })
    expect(after).toMatchObject({ state: "ended", end_reason: "pr_merged", active_execution: null, client_state: "idle" })
    // The session's own event stream is closed after the merge.
    const tail = await P.call("GET", `/v1/sessions/${s.id}/events?offset=-1`)
    expect(tail.json.map((e) => e.type).slice(-4)).toEqual(types(events))
    expect(tail.headers.get("stream-closed")).toBe("true")

    // A poller re-sending the observation that merged the PR (its answer lost) gets a replay
    // of the PR as stored; nothing is written.
    const again = await P.nothing(s.id, () => P.observe(s.id, { pr: { url, state: "merged" } }))
    expect(expectOk(again)).toEqual(v)
    expect(again.headers.get("idempotent-replayed")).toBe("true")
    // Any observation that would change something is refused and writes nothing.
    const changed = [
      { pr: { url, state: "merged", ci_state: "passing" } },
      { pr: { url, state: "merged" }, checks: [{ name: "ci", commit: "c9", status: "success" }] },
      { pr: { url: prUrl(), state: "open" } },
    ]
    // The session's state is checked before the PR's owner.
    const other = await P.session()
    const othersUrl = prUrl()
    expectOk(await P.observe(other.id, { pr: { url: othersUrl, state: "open" } }), 201)
    changed.push({ pr: { url: othersUrl, state: "open" } })
    for (const body of changed) {
      const err = expectError(await P.nothing(s.id, () => P.observe(s.id, body)), 409, "session_ended")
      expect(err.end_reason).toBe("pr_merged")
    }
  })

  test("a PR first observed as merged ends the session in the same revision; checks in that observation are kept", async () => {
    const s = await P.session()
    const url = prUrl()
    const { res, events } = await P.changes(s.id, () => P.observe(s.id, { pr: { url, state: "merged" }, checks: [{ name: "ci", commit: "c1", status: "success" }] }))
    expectOk(res, 201)
    expect(types(events)).toEqual(["pr.created", "check.created", "session.ended"])
    expect(events[2].data).toMatchObject({ reason: "pr_merged" })
    expect((await P.prs(s.id))[0].checks).toHaveLength(1)
  })

  test("a closed PR does not end the session", async () => {
    const s = await P.session()
    const url = prUrl()
    expectOk(await P.observe(s.id, { pr: { url, state: "open" } }), 201)
    const { events, after } = await P.changes(s.id, () => P.observe(s.id, { pr: { url, state: "closed" } }))
    expect(types(events)).toEqual(["pr.updated"])
    expect(after.state).toBe("active")
  })

  test("observing on a session ended by /end is 409 session_ended and writes nothing", async () => {
    const s = await P.session()
    expectOk(await P.call("POST", `/v1/sessions/${s.id}/end`, { body: { reason: "completed" } }))
    const err = expectError(await P.nothing(s.id, () => P.observe(s.id, { pr: { url: prUrl(), state: "open" } })), 409, "session_ended")
    expect(err.end_reason).toBe("completed")
  })

  test("with --end-on-merge false a merge is only a pr.updated; the session goes on", async () => {
    const s = await Q.session()
    const url = prUrl()
    expectOk(await Q.observe(s.id, { pr: { url, state: "open" } }), 201)
    const { res, events, after } = await Q.changes(s.id, () => Q.observe(s.id, { pr: { url, state: "merged" } }))
    expectOk(res)
    expect(types(events)).toEqual(["pr.updated"])
    expect(events[0].data.changes).toEqual({ state: "merged" })
    expect(after).toMatchObject({ state: "active", end_reason: null })
    const more = await Q.changes(s.id, () => Q.observe(s.id, { pr: { url, state: "merged", ci_state: "passing" } }))
    expect(types(more.events)).toEqual(["pr.updated"])
    // A PR first observed as merged does not end it either.
    const first = await Q.changes(s.id, () => Q.observe(s.id, { pr: { url: prUrl(), state: "merged" } }))
    expect(types(first.events)).toEqual(["pr.created"])
    expect((await Q.getSession(s.id)).state).toBe("active")
  })
})

// ---- the CI brake ----------------------------------------------------------------------------

describe("the CI brake", () => {
  /** Observes `checks` ({name: status}) on `commit` as the PR's new head. */
  async function push(c, sid, url, commit, checks) {
    const res = await c.observe(sid, {
      pr: { url, state: "open", head_commit: commit },
      checks: Object.entries(checks).map(([name, status]) => ({ name, commit, status })),
    })
    expect(res.status, ctx(res)).toBeLessThan(300)
    return res.json
  }

  async function brakeOf(c, sid, query = "") {
    const res = await c.brake(sid, query)
    const body = expectOk(res)
    expect(Object.keys(body).sort()).toEqual(["brake", "check", "commits", "evidence", "pr"])
    expect(res.headers.get("etag")).toBe(`"${(await c.getSession(sid)).revision}"`)
    return body
  }

  function expectNoBrake(b, commits) {
    expect(b).toEqual({ commits, brake: false, pr: null, check: null, evidence: [] })
  }

  /** The stored check rows of `name` on `commits`, in that order. */
  async function rows(c, sid, url, name, commits) {
    const pr = (await c.prs(sid)).find((p) => p.url === url)
    return commits.map((commit) => {
      const row = pr.checks.find((k) => k.name === name && k.commit === commit)
      expect(row, `${name}@${commit}`).toBeDefined()
      return row
    })
  }

  test("failures of one check on the last 3 distinct commits trip the brake; the evidence lists those rows newest first", async () => {
    const s = await P.session()
    const url = prUrl()
    expectNoBrake(await brakeOf(P, s.id), 3) // no PR at all
    await push(P, s.id, url, "c1", { ci: "failure", lint: "success" })
    expectNoBrake(await brakeOf(P, s.id), 3)
    await push(P, s.id, url, "c2", { ci: "failure", lint: "success" })
    expectNoBrake(await brakeOf(P, s.id), 3) // fewer than 3 commits
    await push(P, s.id, url, "c3", { ci: "failure", lint: "success" })
    const b = await brakeOf(P, s.id)
    expect(b).toEqual({ commits: 3, brake: true, pr: url, check: "ci", evidence: await rows(P, s.id, url, "ci", ["c3", "c2", "c1"]) })
    // A fourth failure: the evidence is the latest three.
    await push(P, s.id, url, "c4", { ci: "failure" })
    expect((await brakeOf(P, s.id)).evidence).toEqual(await rows(P, s.id, url, "ci", ["c4", "c3", "c2"]))
  })

  test("a success in between, a different check failing, or a missing check keeps the brake off", async () => {
    const s = await P.session()
    const url = prUrl()
    await push(P, s.id, url, "c1", { ci: "failure" })
    await push(P, s.id, url, "c2", { ci: "success" })
    await push(P, s.id, url, "c3", { ci: "failure" })
    expectNoBrake(await brakeOf(P, s.id), 3)
    await push(P, s.id, url, "c4", { ci: "failure" })
    expectNoBrake(await brakeOf(P, s.id), 3) // c4, c3 and c2: c2 succeeded
    await push(P, s.id, url, "c5", { ci: "failure" })
    const b = await brakeOf(P, s.id)
    expect(b).toMatchObject({ brake: true, check: "ci", pr: url })
    expect(b.evidence).toEqual(await rows(P, s.id, url, "ci", ["c5", "c4", "c3"]))

    const t = await P.session()
    const u = prUrl()
    await push(P, t.id, u, "d1", { ci: "failure", lint: "success" })
    await push(P, t.id, u, "d2", { ci: "success", lint: "failure" })
    await push(P, t.id, u, "d3", { ci: "failure", lint: "success" })
    expectNoBrake(await brakeOf(P, t.id), 3) // each check failed on only some of them
    await push(P, t.id, u, "d4", { lint: "failure" })
    await push(P, t.id, u, "d5", { ci: "failure" })
    await push(P, t.id, u, "d6", { ci: "failure" })
    expectNoBrake(await brakeOf(P, t.id), 3) // ci has no row on d4
  })

  test("a check that turns green on the same commit releases the brake; failing again trips it again", async () => {
    const s = await P.session()
    const url = prUrl()
    for (const commit of ["c1", "c2", "c3"]) await push(P, s.id, url, commit, { ci: "failure" })
    expect((await brakeOf(P, s.id)).brake).toBe(true)
    await push(P, s.id, url, "c3", { ci: "success" })
    expectNoBrake(await brakeOf(P, s.id), 3)
    await push(P, s.id, url, "c3", { ci: "failure" })
    const b = await brakeOf(P, s.id)
    expect(b.brake).toBe(true)
    expect(b.evidence.map((k) => k.commit)).toEqual(["c3", "c2", "c1"])
    // Re-observing an older commit does not make it the newest.
    await push(P, s.id, url, "c1", { ci: "failure" })
    expect((await brakeOf(P, s.id)).evidence.map((k) => k.commit)).toEqual(["c3", "c2", "c1"])
  })

  test("?commits=N sets how many latest commits must fail", async () => {
    const s = await P.session()
    const url = prUrl()
    await push(P, s.id, url, "c1", { ci: "failure" })
    await push(P, s.id, url, "c2", { ci: "failure" })
    expectNoBrake(await brakeOf(P, s.id), 3)
    expectNoBrake(await brakeOf(P, s.id, "?commits=3"), 3)
    let b = await brakeOf(P, s.id, "?commits=2")
    expect(b).toEqual({ commits: 2, brake: true, pr: url, check: "ci", evidence: await rows(P, s.id, url, "ci", ["c2", "c1"]) })
    b = await brakeOf(P, s.id, "?commits=1")
    expect(b).toEqual({ commits: 1, brake: true, pr: url, check: "ci", evidence: await rows(P, s.id, url, "ci", ["c2"]) })
    expectNoBrake(await brakeOf(P, s.id, "?commits=100"), 100)
    await push(P, s.id, url, "c3", { ci: "success" })
    expectNoBrake(await brakeOf(P, s.id, "?commits=1"), 1)
    expectNoBrake(await brakeOf(P, s.id, "?commits=2"), 2)
  })

  test("an invalid commits parameter is 400", async () => {
    const s = await P.session()
    for (const q of ["0", "101", "-1", "abc", "1.5", "", "1e2", "99999999999999999999"]) {
      const res = await P.brake(s.id, `?commits=${q}`)
      expect(res.status, ctx(res)).toBe(400)
      expect(res.json?.error?.code, ctx(res)).toMatch(/^invalid_/)
    }
    expectError(await P.brake(s.id, "?commits=0"), 400, "invalid_commits")
    expectError(await P.brake(s.id, "?commits=101"), 400, "invalid_commits")
  })

  test("several PRs: the brake names the PR whose check keeps failing", async () => {
    const s = await P.session()
    const good = prUrl("good")
    const bad = prUrl("bad")
    for (const commit of ["g1", "g2", "g3"]) await push(P, s.id, good, commit, { ci: commit === "g2" ? "success" : "failure" })
    expectNoBrake(await brakeOf(P, s.id), 3)
    for (const commit of ["b1", "b2", "b3"]) await push(P, s.id, bad, commit, { e2e: "failure", ci: "success" })
    const b = await brakeOf(P, s.id)
    expect(b).toEqual({ commits: 3, brake: true, pr: bad, check: "e2e", evidence: await rows(P, s.id, bad, "e2e", ["b3", "b2", "b1"]) })
  })

  test("--ci-brake-commits 2 sets the default; ?commits= still overrides it", async () => {
    const s = await Q.session()
    const url = prUrl()
    await push(Q, s.id, url, "c1", { ci: "failure" })
    expectNoBrake(await brakeOf(Q, s.id), 2)
    await push(Q, s.id, url, "c2", { ci: "failure" })
    expect(await brakeOf(Q, s.id)).toEqual({ commits: 2, brake: true, pr: url, check: "ci", evidence: await rows(Q, s.id, url, "ci", ["c2", "c1"]) })
    expectNoBrake(await brakeOf(Q, s.id, "?commits=3"), 3)
  })
})
