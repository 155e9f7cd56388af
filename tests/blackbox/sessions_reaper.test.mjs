// The reaper, with short timeouts (--heartbeat-timeout 300ms --detach-timeout 900ms):
//   - a starting/active session that stops heartbeating becomes detached (cause heartbeat_lost):
//     its execution finishes with reason `lost` and its pending commands become `interrupted`,
//     in one commit, visible in GET and in its events; later it ends with reason `reaped` and its
//     event stream is closed (Stream-Closed: true; live readers, long-poll and SSE, are released);
//   - a session that keeps heartbeating stays active, and heartbeats emit no events;
//   - a detached session that heartbeats again comes back to active (its lost work stays lost);
//   - after a restart (SIGKILL or SIGTERM) on the same data directory, a session that went stale
//     while the server was down is detached or ended by the pass that runs before the server
//     listens, so the first request after startup already sees it.
//
// Timing assertions poll with bounded deadlines; the only fixed sleeps are the ones that make a
// session stale on purpose, and the heartbeat cadence.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const HEARTBEAT_TIMEOUT_MS = 300
const DETACH_TIMEOUT_MS = 900
const SHORT = ["--heartbeat-timeout", `${HEARTBEAT_TIMEOUT_MS}ms`, "--detach-timeout", `${DETACH_TIMEOUT_MS}ms`]
const HEARTBEAT_EVERY_MS = 50 // well inside the heartbeat timeout, even on a busy 2-core machine
const EARLY_TOLERANCE_MS = 60 // client clocks start after the server stamped the heartbeat
const DEADLINE_MS = 4000 // "soon": far beyond timeout + reaper interval, far below a test timeout
const POLL_MS = 15

let server
let base

beforeAll(async () => {
  server = await startOrdo({ args: SHORT })
  base = server.url
  const p = await api(base, "POST", "/v1/projects", { body: { id: "reap", name: "Reaper" } })
  expect(p.status, p.text).toBe(201)
})

afterAll(async () => {
  if (!server) return
  const code = await server.stop()
  const log = server.log()
  server.cleanup()
  expect(code, `ordo exit status; log:\n${log}`).toBe(0)
})

// ---- helpers ---------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function api(url, method, path, { body, headers = {} } = {}) {
  const res = await fetch(url + path, {
    method,
    headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  let json = null
  try {
    json = text ? JSON.parse(text) : null
  } catch {
    json = null
  }
  return { status: res.status, headers: res.headers, json, text }
}

/** Polls `probe` until it returns a truthy value; fails with `what` after the deadline. */
async function waitFor(what, probe, deadlineMs = DEADLINE_MS) {
  const start = Date.now()
  let last
  for (let i = 0; i < 100_000; i++) {
    last = await probe()
    if (last) return { value: last, at: Date.now() }
    if (Date.now() - start > deadlineMs) break
    await sleep(POLL_MS)
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)
}

/** The session's events from -1 by catch-up reads; also whether the stream said it is closed. */
async function readEvents(url, sid) {
  const events = []
  let offset = "-1"
  let closed = false
  let next
  for (let i = 0; i < 1000; i++) {
    const res = await fetch(`${url}/v1/sessions/${sid}/events?offset=${encodeURIComponent(offset)}`)
    expect(res.status).toBe(200)
    const batch = await res.json()
    events.push(...batch)
    next = res.headers.get("Stream-Next-Offset")
    closed = res.headers.get("Stream-Closed") === "true"
    if (res.headers.get("Stream-Up-To-Date") === "true" && (batch.length === 0 || next === offset || closed)) break
    offset = next
  }
  return { events, closed, next }
}

/** A session moved to active with an execution and three commands: two pending, one done. */
async function activeSessionWithWork(url, project = "reap") {
  const s = await api(url, "POST", `/v1/projects/${project}/sessions`, { body: { title: "agent" } })
  expect(s.status, s.text).toBe(201)
  const sid = s.json.id
  for (const to of ["starting", "active"]) {
    const t = await api(url, "POST", `/v1/sessions/${sid}/transition`, { body: { to } })
    expect(t.status, t.text).toBe(200)
  }
  const activatedAt = Date.now()
  const e = await api(url, "POST", `/v1/sessions/${sid}/executions`)
  expect(e.status, e.text).toBe(201)
  const commands = []
  for (const key of ["c-accepted", "c-delivered", "c-done"]) {
    const c = await api(url, "POST", `/v1/sessions/${sid}/commands`, {
      body: { prompt: key },
      headers: { "Idempotency-Key": key },
    })
    expect(c.status, c.text).toBe(202)
    commands.push(c.json)
  }
  const d = await api(url, "POST", `/v1/sessions/${sid}/commands/${commands[1].id}`, { body: { status: "delivered" } })
  expect(d.status, d.text).toBe(200)
  const done = await api(url, "POST", `/v1/sessions/${sid}/commands/${commands[2].id}`, { body: { status: "done" } })
  expect(done.status, done.text).toBe(200)
  return { sid, generation: e.json.generation, commands, activatedAt }
}

const getSession = async (url, sid) => {
  const r = await api(url, "GET", `/v1/sessions/${sid}`)
  expect(r.status, r.text).toBe(200)
  return r.json
}

/**
 * The session lost its agent: detached by `cause`, the execution finished `lost`, the pending
 * commands interrupted (the finished one untouched) — in GET and in the events, in one commit.
 */
async function expectAgentWorkReleased(url, work, cause = "heartbeat_lost") {
  const { sid, generation, commands } = work
  const session = await getSession(url, sid)
  expect(session.active_execution).toBeNull()
  expect(session.client_state).toBe("idle")

  const ex = await api(url, "GET", `/v1/sessions/${sid}/executions`)
  expect(ex.status).toBe(200)
  const execution = ex.json.executions.find((x) => x.generation === generation)
  expect(execution.finish_reason, "the execution of a detached session is lost").toBe("lost")
  expect(execution.finished_at).not.toBeNull()

  const list = await api(url, "GET", `/v1/sessions/${sid}/commands`)
  expect(list.status).toBe(200)
  const status = Object.fromEntries(list.json.commands.map((c) => [c.request_id, c.status]))
  expect(status).toEqual({ "c-accepted": "interrupted", "c-delivered": "interrupted", "c-done": "done" })
  const pending = await api(url, "GET", `/v1/sessions/${sid}/commands?status=pending`)
  expect(pending.json.commands).toEqual([])

  const { events } = await readEvents(url, sid)
  const detach = events.filter((e) => e.type === "session.transitioned" && e.data.to === "detached")
  expect(detach.length, "one detach").toBe(1)
  expect(detach[0].data).toEqual({ from: "active", to: "detached", cause })
  const commit = events.filter((e) => e.revision === detach[0].revision)
  const lost = commit.filter((e) => e.type === "execution.finished")
  expect(lost.map((e) => e.data)).toEqual([{ generation, reason: "lost" }])
  const interrupted = commit.filter((e) => e.type === "command.updated").map((e) => e.data.command)
  expect(interrupted.map((c) => [c.id, c.status]).sort()).toEqual(
    [
      [commands[0].id, "interrupted"],
      [commands[1].id, "interrupted"],
    ].sort()
  )
  expect(commit.length, "the detach commit holds exactly these events").toBe(1 + lost.length + interrupted.length)
  return { events, detachRevision: detach[0].revision }
}

/** Follows the events with long-polls until the stream says it is closed. */
async function longPollUntilClosed(url, sid, deadlineMs) {
  const events = []
  let offset = "-1"
  const stop = Date.now() + deadlineMs
  for (let i = 0; i < 1000 && Date.now() < stop; i++) {
    const res = await fetch(`${url}/v1/sessions/${sid}/events?offset=${encodeURIComponent(offset)}&live=long-poll`, {
      signal: AbortSignal.timeout(Math.max(1, stop - Date.now())),
    })
    expect([200, 204]).toContain(res.status)
    if (res.status === 200) events.push(...(await res.json()))
    else await res.arrayBuffer()
    offset = res.headers.get("Stream-Next-Offset")
    if (res.headers.get("Stream-Closed") === "true") return { events, closed: true, offset }
  }
  return { events, closed: false, offset }
}

/** Follows the events over SSE until a control event says the stream is closed and it ends. */
async function sseUntilClosed(url, sid, deadlineMs) {
  const res = await fetch(`${url}/v1/sessions/${sid}/events?offset=-1&live=sse`, {
    signal: AbortSignal.timeout(deadlineMs),
  })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toMatch(/text\/event-stream/)
  const events = []
  let closedControl = null
  let buffer = ""
  const decoder = new TextDecoder()
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true })
    let cut
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut)
      buffer = buffer.slice(cut + 2)
      let type = "message"
      const data = []
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim()
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""))
      }
      if (data.length === 0) continue
      const payload = JSON.parse(data.join("\n"))
      if (type === "data") events.push(...payload)
      if (type === "control" && payload.streamClosed === true) closedControl = payload
    }
  }
  // The server ended the response itself (an abort by the deadline would have thrown).
  return { events, closedControl }
}

// ---- tests -----------------------------------------------------------------------------------

describe("the session reaper", () => {
  test(
    "a session with an active execution and pending commands and no heartbeats is detached (heartbeat_lost: execution lost, commands interrupted), then ended with reason reaped, and its event stream is closed",
    async () => {
      const work = await activeSessionWithWork(base)
      const { sid } = work
      // Live readers started now must be released by the end of the session.
      const longPoll = longPollUntilClosed(base, sid, DEADLINE_MS + DETACH_TIMEOUT_MS)
      const sse = sseUntilClosed(base, sid, DEADLINE_MS + DETACH_TIMEOUT_MS)

      const detached = await waitFor("the session to leave active", async () => {
        const s = await getSession(base, sid)
        return s.state !== "active" ? s : null
      })
      expect(detached.value.state, "heartbeat lost: detached, not ended yet").toBe("detached")
      expect(detached.at - work.activatedAt, "not detached before the heartbeat timeout").toBeGreaterThanOrEqual(
        HEARTBEAT_TIMEOUT_MS - EARLY_TOLERANCE_MS
      )
      expect(detached.value.end_reason).toBeNull()
      const { detachRevision } = await expectAgentWorkReleased(base, work)

      const ended = await waitFor("the detached session to end", async () => {
        const s = await getSession(base, sid)
        return s.state === "ended" ? s : null
      })
      expect(ended.at - work.activatedAt, "not reaped before the detach timeout").toBeGreaterThanOrEqual(
        DETACH_TIMEOUT_MS - EARLY_TOLERANCE_MS
      )
      expect(ended.value.end_reason).toBe("reaped")
      expect(ended.value.ended_at).not.toBeNull()

      const { events, closed, next } = await readEvents(base, sid)
      expect(closed, "the ended session's event stream is closed").toBe(true)
      const last = events[events.length - 1]
      expect(last.type).toBe("session.ended")
      expect(last.data).toEqual({ from: "detached", reason: "reaped", cause: "detach_timeout" })
      expect(last.revision).toBe(detachRevision + 1)
      expect(last.revision).toBe(ended.value.revision)
      expect(events.filter((e) => e.type === "session.ended").length).toBe(1)

      // Reading at the tail of the closed stream: closed, at once, in every read mode.
      const atTail = await fetch(`${base}/v1/sessions/${sid}/events?offset=${encodeURIComponent(next)}`)
      expect(atTail.status).toBe(200)
      expect(await atTail.json()).toEqual([])
      expect(atTail.headers.get("Stream-Closed")).toBe("true")
      const t0 = Date.now()
      const poll = await fetch(`${base}/v1/sessions/${sid}/events?offset=${encodeURIComponent(next)}&live=long-poll`)
      await poll.arrayBuffer()
      expect(poll.headers.get("Stream-Closed")).toBe("true")
      expect(Date.now() - t0, "a long-poll on a closed stream does not wait").toBeLessThan(1000)

      // The live readers were released with everything.
      const lp = await longPoll
      expect(lp.closed, "the long-poll reader saw Stream-Closed").toBe(true)
      expect(lp.events).toEqual(events)
      const live = await sse
      expect(live.closedControl, "the SSE reader got a control event with streamClosed").not.toBeNull()
      expect(live.events).toEqual(events)

      // An ended session takes no heartbeat (and no other change).
      const hb = await api(base, "POST", `/v1/sessions/${sid}/heartbeat`)
      expect(hb.status, hb.text).toBe(409)
      expect(hb.json.error.code).toBe("session_ended")
    },
    20_000
  )

  test(
    "a session that keeps heartbeating stays active, and heartbeats emit no events",
    async () => {
      const work = await activeSessionWithWork(base)
      const { sid } = work
      const before = await getSession(base, sid)
      const stopAt = Date.now() + DETACH_TIMEOUT_MS + 2 * HEARTBEAT_TIMEOUT_MS
      const states = new Set()
      let beats = 0
      // Heartbeats on a fixed cadence that does not wait for answers, so a slow answer does not
      // delay the next heartbeat.
      const inFlight = []
      while (Date.now() < stopAt && beats < 1000) {
        inFlight.push(
          api(base, "POST", `/v1/sessions/${sid}/heartbeat`).then((r) => {
            expect(r.status, r.text).toBe(200)
            states.add(r.json.state)
          })
        )
        beats++
        await sleep(HEARTBEAT_EVERY_MS)
      }
      await Promise.all(inFlight)
      expect([...states], "every heartbeat answered active").toEqual(["active"])
      const after = await getSession(base, sid)
      expect(after.state).toBe("active")
      expect(after.active_execution?.generation).toBe(work.generation)
      expect(after.client_state).toBe("running")
      expect(after.revision, "heartbeats bump no revision").toBe(before.revision)
      expect(Date.parse(after.last_heartbeat_at)).toBeGreaterThan(Date.parse(before.last_heartbeat_at))
      const { events, closed } = await readEvents(base, sid)
      expect(closed).toBe(false)
      expect(events.filter((e) => e.revision > before.revision), "no events while heartbeating").toEqual([])
      expect(events.some((e) => e.type === "session.transitioned" && e.data.cause === "heartbeat_lost")).toBe(false)
      const pending = await api(base, "GET", `/v1/sessions/${sid}/commands?status=pending`)
      expect(pending.json.commands.map((c) => c.status).sort()).toEqual(["accepted", "delivered"])

      // Silence now detaches it (the cadence above was what kept it active).
      const detached = await waitFor("the silent session to detach", async () => {
        const s = await getSession(base, sid)
        return s.state !== "active" ? s : null
      })
      expect(detached.value.state).toBe("detached")
    },
    20_000
  )

  test(
    "a detached session that heartbeats again comes back to active; its lost work stays lost",
    async () => {
      const work = await activeSessionWithWork(base)
      const { sid } = work
      await waitFor("the session to detach", async () => (await getSession(base, sid)).state === "detached")
      const hb = await api(base, "POST", `/v1/sessions/${sid}/heartbeat`)
      expect(hb.status, hb.text).toBe(200)
      expect(hb.json.state, "a heartbeat brings a detached session back").toBe("active")
      expect(hb.json.end_reason).toBeNull()

      const { events, detachRevision } = await expectAgentWorkReleased(base, work)
      const back = events[events.length - 1]
      expect(back.type).toBe("session.transitioned")
      expect(back.data).toEqual({ from: "detached", to: "active", cause: "heartbeat" })
      expect(back.revision).toBe(detachRevision + 1)
      expect(back.revision).toBe(hb.json.revision)

      // Kept alive past the point where it would have been reaped had it stayed detached.
      const stopAt = Date.now() + DETACH_TIMEOUT_MS + HEARTBEAT_TIMEOUT_MS
      const inFlight = []
      for (let i = 0; i < 1000 && Date.now() < stopAt; i++) {
        inFlight.push(
          api(base, "POST", `/v1/sessions/${sid}/heartbeat`).then((r) => {
            expect(r.status, r.text).toBe(200)
            expect(r.json.state).toBe("active")
          })
        )
        await sleep(HEARTBEAT_EVERY_MS)
      }
      await Promise.all(inFlight)
      const s = await getSession(base, sid)
      expect(s.state).toBe("active")
      expect(s.revision, "no reaper change while it heartbeats").toBe(back.revision)

      // The new agent can start a new execution; the lost one is not revived.
      const e = await api(base, "POST", `/v1/sessions/${sid}/executions`)
      expect(e.status, e.text).toBe(201)
      expect(e.json.generation).toBe(work.generation + 1)
      const stale = await api(base, "POST", `/v1/sessions/${sid}/executions/${work.generation}/finish`, { body: {} })
      expect(stale.status, stale.text).toBe(409)
      expect(stale.json.error.code).toBe("stale_generation")
    },
    20_000
  )
})

describe("what the reaper watches", () => {
  test(
    "only starting and active sessions are watched: a silent starting session is detached and reaped, created and suspended ones are left alone, and entering active again (from suspended, or from detached by the API) starts the heartbeat clock afresh",
    async () => {
      const create = async () => {
        const s = await api(base, "POST", "/v1/projects/reap/sessions", { body: {} })
        expect(s.status, s.text).toBe(201)
        return s.json.id
      }
      const move = async (sid, to) => {
        const t = await api(base, "POST", `/v1/sessions/${sid}/transition`, { body: { to } })
        expect(t.status, `${sid} -> ${to}: ${t.text}`).toBe(200)
        return t.json
      }
      const created = await create()
      const starting = await create()
      await move(starting, "starting")
      const startedAt = Date.now()
      const suspended = await create()
      await move(suspended, "starting")
      await move(suspended, "active")
      const parked = await move(suspended, "suspended")

      const detached = await waitFor("the silent starting session to detach", async () => {
        const s = await getSession(base, starting)
        return s.state !== "starting" ? s : null
      })
      expect(detached.value.state).toBe("detached")
      expect(detached.at - startedAt).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - EARLY_TOLERANCE_MS)
      const reaped = await waitFor("the detached starting session to be reaped", async () => {
        const s = await getSession(base, starting)
        return s.state === "ended" ? s : null
      })
      expect(reaped.value.end_reason).toBe("reaped")
      const { events } = await readEvents(base, starting)
      expect(events.filter((e) => e.type !== "session.created").map((e) => e.data)).toEqual([
        { from: "created", to: "starting", cause: "api" },
        { from: "starting", to: "detached", cause: "heartbeat_lost" },
        { from: "detached", reason: "reaped", cause: "detach_timeout" },
      ])

      // Past both timeouts now (the silent session was reaped): the others are untouched.
      const c = await getSession(base, created)
      expect([c.state, c.revision]).toEqual(["created", 1])
      const p = await getSession(base, suspended)
      expect([p.state, p.revision]).toEqual(["suspended", parked.revision])

      // Resuming restarts the clock: no detach before a full heartbeat timeout.
      await move(suspended, "active")
      const resumedAt = Date.now()
      const lost = await waitFor("the resumed session to detach", async () => {
        const s = await getSession(base, suspended)
        return s.state !== "active" ? s : null
      })
      expect(lost.value.state).toBe("detached")
      expect(lost.at - resumedAt, "resumed from suspended: a full heartbeat timeout").toBeGreaterThanOrEqual(
        HEARTBEAT_TIMEOUT_MS - EARLY_TOLERANCE_MS
      )
      // detached -> active by the API restarts it too: detached again later, not reaped at once.
      await move(suspended, "active")
      const backAt = Date.now()
      const again = await waitFor("the re-activated session to detach again", async () => {
        const s = await getSession(base, suspended)
        return s.state !== "active" ? s : null
      })
      expect(again.value.state, "a fresh clock: detached first, not ended").toBe("detached")
      expect(again.at - backAt, "re-activated from detached: a full heartbeat timeout").toBeGreaterThanOrEqual(
        HEARTBEAT_TIMEOUT_MS - EARLY_TOLERANCE_MS
      )
    },
    20_000
  )
})

describe("the reaper after a restart", () => {
  /** A server of its own on a data directory that outlives it. */
  async function withDataDir(fn) {
    const dataDir = mkdtempSync(join(tmpdir(), "ordo-reaper-"))
    const servers = []
    const start = async (args) => {
      const s = await startOrdo({ dataDir, args })
      servers.push(s)
      return s
    }
    try {
      await fn(start)
    } finally {
      for (const s of servers) await s.kill().catch(() => {})
      rmSync(dataDir, { recursive: true, force: true })
    }
  }

  test(
    "restart after SIGKILL: an active session that went stale while the server was down is detached before the first request is served, and a heartbeat brings it back",
    async () => {
      await withDataDir(async (start) => {
        // Long timeouts first: the reaper must not act before the kill.
        const first = await start(["--heartbeat-timeout", "1h", "--detach-timeout", "2h"])
        const p = await api(first.url, "POST", "/v1/projects", { body: { id: "r1", name: "r1" } })
        expect(p.status).toBe(201)
        const work = await activeSessionWithWork(first.url, "r1")
        const before = await getSession(first.url, work.sid)
        expect(before.state).toBe("active")
        await first.kill()

        // Stale by more than the heartbeat timeout, not yet by the detach timeout.
        const wait = work.activatedAt + HEARTBEAT_TIMEOUT_MS + 200 - Date.now()
        if (wait > 0) await sleep(wait)
        const second = await start(["--heartbeat-timeout", `${HEARTBEAT_TIMEOUT_MS}ms`, "--detach-timeout", "1h"])
        // The first request after "listening": the startup pass has already run.
        const s = await getSession(second.url, work.sid)
        expect(s.state, "detached at startup, before anything was served").toBe("detached")
        await expectAgentWorkReleased(second.url, work)
        expect(second.log()).toMatch(new RegExp(`session detached id=${work.sid} cause=heartbeat_lost`))

        const hb = await api(second.url, "POST", `/v1/sessions/${work.sid}/heartbeat`)
        expect(hb.status, hb.text).toBe(200)
        expect(hb.json.state).toBe("active")
        expect(await second.stop()).toBe(0)
      })
    },
    20_000
  )

  test(
    "restart after SIGTERM: an active session stale beyond both timeouts is detached and ended (reaped) by the startup pass, before anything is served",
    async () => {
      await withDataDir(async (start) => {
        const first = await start(["--heartbeat-timeout", "1h", "--detach-timeout", "2h"])
        const p = await api(first.url, "POST", "/v1/projects", { body: { id: "r2", name: "r2" } })
        expect(p.status).toBe(201)
        const work = await activeSessionWithWork(first.url, "r2")
        expect(await first.stop()).toBe(0)

        const wait = work.activatedAt + DETACH_TIMEOUT_MS + 200 - Date.now()
        if (wait > 0) await sleep(wait)
        const second = await start(SHORT)
        const listening = Date.now()
        const s = await getSession(second.url, work.sid)
        expect(s.state, "ended already at the first request after startup").toBe("ended")
        expect(s.end_reason).toBe("reaped")
        expect(Date.now() - listening).toBeLessThan(DETACH_TIMEOUT_MS)
        await expectAgentWorkReleased(second.url, work)
        const { events, closed } = await readEvents(second.url, work.sid)
        expect(closed, "the event stream of the reaped session is closed").toBe(true)
        expect(events[events.length - 1].type).toBe("session.ended")
        expect(events[events.length - 1].data).toEqual({ from: "detached", reason: "reaped", cause: "detach_timeout" })
        expect(await second.stop()).toBe(0)
      })
    },
    20_000
  )

  test(
    "restart after SIGKILL: a session already detached before the crash and stale beyond the detach timeout is ended at startup",
    async () => {
      await withDataDir(async (start) => {
        // Short heartbeat timeout, long detach timeout: it detaches but is not reaped here.
        const first = await start(["--heartbeat-timeout", `${HEARTBEAT_TIMEOUT_MS}ms`, "--detach-timeout", "1h"])
        const p = await api(first.url, "POST", "/v1/projects", { body: { id: "r3", name: "r3" } })
        expect(p.status).toBe(201)
        const work = await activeSessionWithWork(first.url, "r3")
        await waitFor("the session to detach", async () => (await getSession(first.url, work.sid)).state === "detached")
        await first.kill()

        const wait = work.activatedAt + DETACH_TIMEOUT_MS + 200 - Date.now()
        if (wait > 0) await sleep(wait)
        const second = await start(SHORT)
        const s = await getSession(second.url, work.sid)
        expect(s.state, "ended at startup, before anything was served").toBe("ended")
        expect(s.end_reason).toBe("reaped")
        const { events, closed } = await readEvents(second.url, work.sid)
        expect(closed).toBe(true)
        expect(events.filter((e) => e.type === "session.ended").map((e) => e.data)).toEqual([
          { from: "detached", reason: "reaped", cause: "detach_timeout" },
        ])
        await expectAgentWorkReleased(second.url, work)
        expect(await second.stop()).toBe(0)
      })
    },
    20_000
  )
})
