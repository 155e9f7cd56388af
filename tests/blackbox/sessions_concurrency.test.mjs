// Concurrency and crash safety of a session's transcript (rows) and event stream.
//
// Sixteen clients append and upsert rows in one session at once: their own rows, rows shared by
// all of them, appends carrying an Idempotency-Key that are retried (later, or twice at once),
// and upserts that change nothing. Afterwards:
//   - row sequences are 1..N, unique, gap-free, and in the order of each row's first insert
//     (the order of the session revisions their creating answers carried);
//   - every row keeps the sequence its first insert answered, through every upsert;
//   - a row's revision is the number of effective upserts + 1;
//   - every acknowledged effective operation has exactly one row.appended / row.updated event, at
//     the session revision its answer carried, holding the row its answer returned; replays and
//     no-op upserts have none; event revisions are exactly 1..R (one event per commit here).
//
// Then the same under SIGKILL at random moments (several rounds on one data directory, with
// --sync full): nothing acknowledged is lost; appends whose answer was lost and which carried an
// Idempotency-Key land exactly once when retried (replayed or applied); own-row upserts whose
// answer was lost land exactly once when retried; sequences continue without gap or reuse.
//
// Randomness comes from a seeded PRNG (ORDO_TEST_SEED overrides the seed); the SIGKILL moment is
// drawn from it too, but the assertions hold for any moment.
import { describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { mulberry32 } from "../support/random.mjs"

const CLIENTS = 16
const OPS_PER_CLIENT = 30
const SHARED_ROWS = 4
const ROW_PAGE = 37 // an odd page size, so paging boundaries fall everywhere
const CRASH_ROUNDS = 5
const CRASH_OPS_PER_CLIENT_PER_ROUND = 400 // a bound; the kill normally comes first
const KILL_PROBES = 8
const SEED = Number(process.env.ORDO_TEST_SEED ?? 20261122)

// ---- helpers ---------------------------------------------------------------------------------

const pick = (rnd, list) => list[Math.floor(rnd() * list.length)]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** One JSON request. Throws only when the transport fails (the outcome is then unknown). */
async function api(base, method, path, { body, headers = {} } = {}) {
  const res = await fetch(base + path, {
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
  const etag = res.headers.get("ETag")
  return {
    status: res.status,
    headers: res.headers,
    json,
    text,
    replayed: res.headers.get("Idempotent-Replayed") === "true",
    revision: etag && /^"\d+"$/.test(etag) ? Number(etag.slice(1, -1)) : null,
  }
}

async function createSession(base, project) {
  const p = await api(base, "POST", "/v1/projects", { body: { id: project, name: project } })
  expect(p.status, p.text).toBe(201)
  const s = await api(base, "POST", `/v1/projects/${project}/sessions`, { body: {} })
  expect(s.status, s.text).toBe(201)
  expect(s.json.revision).toBe(1)
  return s.json.id
}

/** Every row, paging forwards by `after` with a small page. */
async function readAllRows(base, sid) {
  const rows = []
  let after = 0
  for (let page = 0; page < 10_000; page++) {
    const r = await api(base, "GET", `/v1/sessions/${sid}/rows?after=${after}&limit=${ROW_PAGE}`)
    expect(r.status, r.text).toBe(200)
    rows.push(...r.json.rows)
    if (r.json.rows.length < ROW_PAGE) break
    expect(r.json.next_after).toBe(r.json.rows[r.json.rows.length - 1].sequence)
    after = r.json.next_after
  }
  return rows
}

/** The event stream from `from` (-1: all of it), by catch-up reads until up to date. */
async function readAllEvents(base, sid, from = "-1") {
  const events = []
  let offset = from
  for (let i = 0; i < 10_000; i++) {
    const res = await fetch(`${base}/v1/sessions/${sid}/events?offset=${encodeURIComponent(offset)}`)
    expect(res.status).toBe(200)
    const batch = await res.json()
    events.push(...batch)
    const next = res.headers.get("Stream-Next-Offset")
    expect(next).toBeTruthy()
    if (res.headers.get("Stream-Up-To-Date") === "true" && (batch.length === 0 || next === offset)) break
    if (res.headers.get("Stream-Up-To-Date") === "true") {
      offset = next
      continue
    }
    offset = next
  }
  return events
}

/** Every row, paging backwards by `before` alone (newest pages first, each page ascending). */
async function readAllRowsBackwards(base, sid) {
  const pages = []
  let before = Number.MAX_SAFE_INTEGER
  for (let page = 0; page < 10_000; page++) {
    const r = await api(base, "GET", `/v1/sessions/${sid}/rows?before=${before}&limit=${ROW_PAGE}`)
    expect(r.status, r.text).toBe(200)
    if (r.json.rows.length === 0) break
    pages.unshift(r.json.rows)
    expect(r.json.next_before).toBe(r.json.rows[0].sequence)
    before = r.json.next_before
    if (r.json.rows.length < ROW_PAGE) break
  }
  return pages.flat()
}

/** Parses text/event-stream frames out of `buffer`; returns the rest. */
function sseFrames(buffer, onFrame) {
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
    if (data.length > 0) onFrame(type, JSON.parse(data.join("\n")))
  }
  return buffer
}

/**
 * A live reader of the session's events from -1, over SSE or long-poll, started while the
 * writers run. `events` grows as they arrive; `stop()` ends it; `done` settles when it has ended
 * (and rejects on anything but that stop).
 */
function startLiveTail(base, sid, mode) {
  const ac = new AbortController()
  const tail = { events: [], stop: () => ac.abort() }
  const run = async () => {
    if (mode === "sse") {
      const res = await fetch(`${base}/v1/sessions/${sid}/events?offset=-1&live=sse`, { signal: ac.signal })
      expect(res.status).toBe(200)
      let buffer = ""
      const decoder = new TextDecoder()
      for await (const chunk of res.body) {
        buffer = sseFrames(buffer + decoder.decode(chunk, { stream: true }), (type, payload) => {
          if (type === "data") tail.events.push(...payload)
        })
      }
      if (!ac.signal.aborted) throw new Error("the SSE response ended while the session is open")
      return
    }
    let offset = "-1"
    for (let i = 0; i < 100_000 && !ac.signal.aborted; i++) {
      const url = `${base}/v1/sessions/${sid}/events?offset=${encodeURIComponent(offset)}&live=long-poll`
      const res = await fetch(url, { signal: ac.signal })
      expect([200, 204]).toContain(res.status)
      if (res.status === 200) tail.events.push(...(await res.json()))
      else await res.arrayBuffer()
      offset = res.headers.get("Stream-Next-Offset")
    }
  }
  tail.done = run().catch((err) => {
    if (!ac.signal.aborted) throw err
  })
  return tail
}

const bodyTag = (row) => (row && row.body && typeof row.body === "object" ? row.body.tag : undefined)

/**
 * Checks the invariants that hold whatever happened, and returns the rows by id.
 *   - the rows list is sequences 1..N, each row equal to its last event;
 *   - events are revisions 1..R, one per commit, only row events after session.created;
 *   - row.appended events come in sequence order 1..N (sequence = order of first insert);
 *   - each row's events have row revisions 1, 2, 3, ... and the same sequence;
 *   - no operation tag appears in two events.
 */
function checkStructure(rows, events) {
  rows.forEach((r, i) => expect(r.sequence, `row at position ${i}`).toBe(i + 1))
  expect(new Set(rows.map((r) => r.row_id)).size, "row ids are unique").toBe(rows.length)

  expect(events.length).toBeGreaterThan(0)
  expect(events[0].type).toBe("session.created")
  events.forEach((e, i) => expect(e.revision, `event ${i} (${e.type}) revision`).toBe(i + 1))

  const byRow = new Map()
  const tags = new Map()
  let appended = 0
  for (const e of events.slice(1)) {
    expect(["row.appended", "row.updated"], `event type at revision ${e.revision}`).toContain(e.type)
    const row = e.data.row
    const history = byRow.get(row.row_id) ?? []
    if (e.type === "row.appended") {
      expect(history.length, `row ${row.row_id} appended twice`).toBe(0)
      appended++
      expect(row.sequence, `row.appended at revision ${e.revision} is in first-insert order`).toBe(appended)
      expect(row.revision).toBe(1)
    } else {
      expect(history.length, `row.updated for ${row.row_id} before it was appended`).toBeGreaterThan(0)
      expect(row.sequence, `upsert of ${row.row_id} kept its sequence`).toBe(history[0].sequence)
      expect(row.revision, `row ${row.row_id} revision after an upsert`).toBe(history.length + 1)
    }
    history.push(row)
    byRow.set(row.row_id, history)
    const tag = bodyTag(row)
    if (tag !== undefined) {
      expect(tags.has(tag), `operation ${tag} has two events (revisions ${tags.get(tag)} and ${e.revision})`).toBe(false)
      tags.set(tag, e.revision)
    }
  }
  expect(rows.length, "one row per row.appended event").toBe(appended)
  const rowsById = new Map(rows.map((r) => [r.row_id, r]))
  for (const [id, history] of byRow) {
    expect(rowsById.get(id), `row ${id} as listed equals its last event`).toEqual(history[history.length - 1])
  }
  return { rowsById, byRow, tags, byRevision: new Map(events.map((e) => [e.revision, e])) }
}

/**
 * Checks acknowledged operations against the state:
 *   - an effective ack (201 created, or 200 not replayed) has its event at the revision its answer
 *     carried, holding exactly the row it answered;
 *   - a replayed ack names a row that exists with the same sequence;
 *   - a row's sequence is the one its first insert answered.
 */
function checkAcks(acks, structure) {
  const { rowsById, byRevision } = structure
  const creates = new Map()
  for (const a of acks) {
    const row = rowsById.get(a.row.row_id)
    expect(row, `acknowledged ${a.what} of ${a.row.row_id} is missing`).toBeDefined()
    expect(row.sequence, `sequence of ${a.row.row_id} (acknowledged by ${a.what})`).toBe(a.row.sequence)
    if (a.effective) {
      const e = byRevision.get(a.revision)
      expect(e, `event at revision ${a.revision} for ${a.what} of ${a.row.row_id}`).toBeDefined()
      expect(e.type).toBe(a.created ? "row.appended" : "row.updated")
      expect(e.data.row, `event at revision ${a.revision} holds the acknowledged row`).toEqual(a.row)
    }
    if (a.created) {
      expect(creates.has(a.row.row_id), `two acknowledged first inserts of ${a.row.row_id}`).toBe(false)
      creates.set(a.row.row_id, a)
    }
  }
  // Sequences follow the order of first insert, as the creating answers' revisions order them.
  const firsts = [...creates.values()].filter((a) => a.effective).sort((x, y) => x.revision - y.revision)
  for (let i = 1; i < firsts.length; i++) {
    expect(firsts[i].row.sequence).toBeGreaterThan(firsts[i - 1].row.sequence)
  }
}

/**
 * One client: a bounded number of mixed operations. `ctx` holds what is shared (base url, session,
 * recorder). Returns when done or, in crash mode, at the first transport failure (recording the
 * operation whose outcome is unknown).
 */
async function runClient(ctx, client, rnd, maxOps) {
  const { sid, acks, unknown } = ctx
  const own = [] // rows only this client writes, with their current content and revision
  const keyed = [] // keyed appends acknowledged, to retry later: { key, request, row }
  for (let n = 0; n < maxOps && !ctx.stop; n++) {
    const base = ctx.base
    const tag = `c${client}-r${ctx.round}-n${n}`
    const body = { tag, client, n, text: "x".repeat(Math.floor(rnd() * 64)) }
    const choice = rnd()
    let op
    if (choice < 0.2) {
      op = { kind: "append", request: { kind: "assistant", body } }
    } else if (choice < 0.4) {
      const key = `k-${tag}`
      const request = { kind: "assistant", body }
      if (rnd() < 0.5) request.row_id = `a-${tag}`
      op = { kind: "append-keyed", key, request, twice: !ctx.crash && rnd() < 0.25 }
    } else if (choice < 0.5 && keyed.length > 0) {
      const k = pick(rnd, keyed)
      op =
        rnd() < 0.25
          ? { kind: "append-key-reuse", key: k.key, request: { kind: "assistant", body } } // a different row
          : { kind: "append-retry", key: k.key, request: k.request }
    } else if (choice < 0.75) {
      const existing = own.length > 0 && rnd() < 0.6 ? pick(rnd, own) : null
      const row_id = existing ? existing.row_id : `o-${tag}`
      const request = { kind: rnd() < 0.8 ? "assistant" : "tool_call", body }
      if (rnd() < 0.3) request.status = pick(rnd, ["in_progress", "complete"])
      op = { kind: "upsert-own", row_id, request, existing }
    } else if (choice < 0.8 && own.length > 0) {
      // An upsert that changes nothing: the row's current content, sent again.
      const existing = pick(rnd, own)
      op = {
        kind: "upsert-noop",
        row_id: existing.row_id,
        request: { kind: existing.kind, status: existing.status, body: existing.body },
        existing,
      }
    } else {
      const row_id = `shared-${Math.floor(rnd() * SHARED_ROWS)}`
      op = { kind: "upsert-shared", row_id, request: { kind: "assistant", body } }
    }

    const send = (o) => {
      if (o.kind.startsWith("append")) {
        const headers = o.key ? { "Idempotency-Key": o.key } : {}
        return api(base, "POST", `/v1/sessions/${sid}/rows`, { body: o.request, headers })
      }
      return api(base, "PUT", `/v1/sessions/${sid}/rows/${o.row_id}`, { body: o.request })
    }

    let answers
    try {
      answers = op.twice ? await Promise.all([send(op), send(op)]) : [await send(op)]
    } catch (err) {
      if (!ctx.crash) throw err
      unknown.push({ client, op })
      return
    }

    if (op.kind === "append-key-reuse") {
      // A reused key with a different body is refused, never applied.
      const [r] = answers
      expect(r.status, `reuse of ${op.key} for another row: ${r.text}`).toBe(409)
      expect(r.json.error.code).toBe("idempotency_key_reused")
      ctx.refusedTags.push(op.request.body.tag)
      ctx.acked++
      continue
    }
    const results = []
    for (const r of answers) {
      const what = `${op.kind} ${op.key ?? op.row_id ?? ""} by client ${client}`
      if (op.kind.startsWith("append")) {
        expect(r.status, `${what}: ${r.text}`).toBe(201)
      } else {
        expect([200, 201], `${what}: ${r.text}`).toContain(r.status)
      }
      const created = r.status === 201 && !r.replayed
      const effective = !r.replayed
      results.push({ what, row: r.json, revision: r.revision, created, effective, replayed: r.replayed, op })
    }
    if (op.twice) {
      // The same keyed append sent twice at once: applied once, replayed once, one row.
      expect(results.filter((x) => x.replayed).length, `${op.key} sent twice at once`).toBe(1)
      expect(results[0].row.sequence).toBe(results[1].row.sequence)
      expect(results[0].row.row_id).toBe(results[1].row.row_id)
    }
    for (const x of results) {
      if (op.kind === "append-retry") expect(x.replayed, `retry of ${op.key}`).toBe(true)
      if (op.kind === "upsert-noop") {
        expect(x.replayed, `no-op upsert of ${op.row_id}`).toBe(true)
        expect(x.row.revision).toBe(op.existing?.revision ?? x.row.revision)
      }
      if (op.kind === "upsert-own" && op.existing) expect(x.created, `upsert of own ${op.row_id}`).toBe(false)
      acks.push(x)
    }
    const row = results[0].row
    if (op.kind === "append-keyed") keyed.push({ key: op.key, request: op.request, row })
    if (op.kind === "append-retry") {
      const first = keyed.find((k) => k.key === op.key)
      expect(row.sequence, `retry of ${op.key} answers the first row`).toBe(first.row.sequence)
      expect(row.row_id).toBe(first.row.row_id)
    }
    if (op.kind === "upsert-own" || op.kind === "upsert-noop" || op.kind === "append" || op.kind === "append-keyed") {
      const entry = { row_id: row.row_id, kind: row.kind, status: row.status, body: row.body, revision: row.revision }
      const i = own.findIndex((o) => o.row_id === row.row_id)
      if (i >= 0) own[i] = entry
      else own.push(entry)
    }
    ctx.acked++
  }
}

/** A keyed append sent right before a SIGKILL: acknowledged, or recorded as of unknown outcome. */
async function killProbe(ctx, i) {
  const tag = `probe-r${ctx.round}-${i}`
  const op = { kind: "append-keyed", key: `k-${tag}`, request: { kind: "assistant", body: { tag } } }
  let r
  try {
    r = await api(ctx.base, "POST", `/v1/sessions/${ctx.sid}/rows`, { body: op.request, headers: { "Idempotency-Key": op.key } })
  } catch {
    ctx.unknown.push({ client: "probe", op })
    return
  }
  expect(r.status, r.text).toBe(201)
  ctx.acks.push({ what: `probe ${tag}`, row: r.json, revision: r.revision, created: !r.replayed, effective: !r.replayed, replayed: r.replayed, op })
}

// ---- tests -----------------------------------------------------------------------------------

describe("session rows under concurrency", () => {
  test(
    "16 concurrent clients appending and upserting rows in one session: sequences unique, gap-free, in order of first insert; every event present once, in order",
    async () => {
      const server = await startOrdo({ args: ["--long-poll-timeout", "1s"] })
      try {
        const sid = await createSession(server.url, "conc")
        const ctx = { base: server.url, sid, acks: [], unknown: [], round: 0, crash: false, stop: false, acked: 0, refusedTags: [] }
        const rnd = mulberry32(SEED)
        const seeds = Array.from({ length: CLIENTS }, () => Math.floor(rnd() * 2 ** 32))
        // Live readers follow the session while the writers run.
        const tails = [startLiveTail(server.url, sid, "sse"), startLiveTail(server.url, sid, "long-poll")]
        await Promise.all(seeds.map((s, c) => runClient(ctx, c, mulberry32(s), OPS_PER_CLIENT)))

        const rows = await readAllRows(server.url, sid)
        const events = await readAllEvents(server.url, sid)
        const structure = checkStructure(rows, events)
        checkAcks(ctx.acks, structure)
        expect(await readAllRowsBackwards(server.url, sid), "paging backwards gives the same rows").toEqual(rows)
        for (const t of ctx.refusedTags) expect(structure.tags.has(t), `refused ${t} landed`).toBe(false)

        // Every live reader got every event exactly once, in order.
        for (const [i, tail] of tails.entries()) {
          const deadline = Date.now() + 10_000
          while (tail.events.length < events.length && Date.now() < deadline) await sleep(10)
          tail.stop()
          await tail.done
          expect(tail.events, `live reader ${i === 0 ? "SSE" : "long-poll"}`).toEqual(events)
        }

        // Exact accounting: one event per effective acknowledged operation, none for the rest.
        const effective = ctx.acks.filter((a) => a.effective)
        expect(events.length, "events = session.created + effective operations").toBe(1 + effective.length)
        expect(new Set(effective.map((a) => a.revision)).size, "each effective answer has its own revision").toBe(effective.length)
        // Row revision = effective upserts + 1.
        for (const row of rows) {
          const updates = effective.filter((a) => a.row.row_id === row.row_id && !a.created).length
          expect(row.revision, `revision of ${row.row_id}`).toBe(updates + 1)
        }
        // Shared rows were created once and updated by many clients.
        for (let i = 0; i < SHARED_ROWS; i++) {
          const id = `shared-${i}`
          if (!structure.rowsById.has(id)) continue
          expect(ctx.acks.filter((a) => a.row.row_id === id && a.created).length, `${id} created once`).toBe(1)
        }
        // The snapshot agrees with the list.
        const snap = await api(server.url, "GET", `/v1/sessions/${sid}/snapshot?rows=500`)
        expect(snap.status).toBe(200)
        expect(snap.json.session.revision).toBe(events.length)
        expect(snap.json.rows).toEqual(rows.slice(-500))
        console.log(
          `concurrency: ${ctx.acks.length} answers, ${effective.length} effective, ${rows.length} rows, ${events.length} events (seed ${SEED})`
        )
        expect(rows.length).toBeGreaterThan(CLIENTS)
        expect(ctx.acks.some((a) => a.replayed && a.op.kind === "upsert-noop")).toBe(true)
        expect(ctx.acks.some((a) => a.replayed && a.op.kind !== "upsert-noop")).toBe(true)
        expect(ctx.refusedTags.length).toBeGreaterThan(0)
        expect(await server.stop()).toBe(0)
      } finally {
        await server.kill().catch(() => {})
        server.cleanup()
      }
    },
    60_000
  )

  test(
    "the same across SIGKILL and restart: nothing acknowledged is lost, sequences continue without gap or reuse",
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "ordo-sessions-crash-"))
      const rnd = mulberry32(SEED ^ 0x5eed)
      const acks = [] // every acknowledged answer, across rounds
      const seqOwner = new Map() // sequence -> row_id, once seen never changes
      let server
      let lostAnswers = 0
      let keyedRetried = 0
      try {
        server = await startOrdo({ dataDir, args: ["--sync", "full"] })
        const sid = await createSession(server.url, "crash")
        let previousRows = 0
        for (let round = 0; round < CRASH_ROUNDS; round++) {
          // A snapshot before the round: its events_offset must still serve the tail after the kill.
          const snapBefore = await api(server.url, "GET", `/v1/sessions/${sid}/snapshot?rows=0`)
          expect(snapBefore.status, snapBefore.text).toBe(200)
          const ctx = { base: server.url, sid, acks, unknown: [], round, crash: true, stop: false, acked: 0, refusedTags: [] }
          const seeds = Array.from({ length: CLIENTS }, () => Math.floor(rnd() * 2 ** 32))
          const loops = seeds.map((s, c) =>
            runClient(ctx, c, mulberry32(s), CRASH_OPS_PER_CLIENT_PER_ROUND).then(() => "done")
          )
          // Let some work be acknowledged, then kill at a random moment.
          const started = Date.now()
          while (ctx.acked < 2 * CLIENTS && Date.now() - started < 5000) await sleep(5)
          await sleep(50 + Math.floor(rnd() * 600))
          // Keyed appends fired just before the kill, so some surely lose their answer; then kill,
          // then tell the clients: requests in flight at the kill lose their answer.
          const probes = Array.from({ length: KILL_PROBES }, (_, i) => killProbe(ctx, i))
          await sleep(Math.floor(rnd() * 4))
          const killing = server.kill()
          ctx.stop = true
          await killing
          await Promise.all([...loops, ...probes])
          lostAnswers += ctx.unknown.length

          server = await startOrdo({ dataDir, args: ["--sync", "full"] })
          ctx.base = server.url
          const before = await readAllRows(server.url, sid)
          expect(before.length, "no acknowledged row lost").toBeGreaterThanOrEqual(previousRows)

          // Retry what can be retried safely: keyed appends and own-row upserts whose answer was
          // lost. Each must land exactly once: replayed if it had committed, applied if not.
          const maybe = [] // tags of operations with unknown outcome that were not retried
          const refusedTags = [] // reused keys with another body: must never land
          for (const { client, op } of ctx.unknown) {
            const tag = op.request.body.tag
            if (op.kind === "append-keyed" || op.kind === "append-retry") {
              keyedRetried++
              const r = await api(server.url, "POST", `/v1/sessions/${sid}/rows`, {
                body: op.request,
                headers: { "Idempotency-Key": op.key },
              })
              expect(r.status, `retry of ${op.key} after restart: ${r.text}`).toBe(201)
              acks.push({ what: `retried ${op.key}`, row: r.json, revision: r.revision, created: !r.replayed, effective: !r.replayed, replayed: r.replayed, op, retryTag: tag })
            } else if (op.kind === "upsert-own" || op.kind === "upsert-noop") {
              const r = await api(server.url, "PUT", `/v1/sessions/${sid}/rows/${op.row_id}`, { body: op.request })
              expect([200, 201], `retry of upsert ${op.row_id} (client ${client}): ${r.text}`).toContain(r.status)
              acks.push({ what: `retried upsert ${op.row_id}`, row: r.json, revision: r.revision, created: r.status === 201 && !r.replayed, effective: !r.replayed, replayed: r.replayed, op, retryTag: tag })
            } else if (op.kind === "append-key-reuse") {
              refusedTags.push(tag)
            } else {
              maybe.push(tag)
            }
          }

          const rows = await readAllRows(server.url, sid)
          const events = await readAllEvents(server.url, sid)
          const structure = checkStructure(rows, events)
          checkAcks(acks, structure)
          // Every acknowledged effective operation (and every retried one) is in exactly one event;
          // operations with an unknown outcome that were not retried are in at most one.
          for (const a of acks) {
            const tag = a.op.kind === "append-retry" || a.op.kind === "upsert-noop" ? null : a.op.request.body.tag
            if (a.retryTag && a.op.kind !== "upsert-noop") {
              expect(structure.tags.has(a.retryTag), `${a.what} landed`).toBe(true)
            } else if (a.effective && tag) {
              expect(structure.tags.get(tag), `event of ${a.what}`).toBe(a.revision)
            }
          }
          // (Operations in `maybe` may or may not have landed; checkStructure already proved that
          // none landed twice.) A reused key with another body never lands.
          for (const t of refusedTags) expect(structure.tags.has(t), `refused ${t} landed`).toBe(false)
          // The pre-kill snapshot's offset resumes exactly after its revision on the restarted server.
          const tail = await readAllEvents(server.url, sid, snapBefore.json.events_offset)
          expect(tail, "events from a pre-kill snapshot's events_offset").toEqual(events.slice(snapBefore.json.session.revision))
          // Sequences are never reused: once a sequence names a row, it names it forever.
          for (const r of rows) {
            if (seqOwner.has(r.sequence)) {
              expect(r.row_id, `sequence ${r.sequence} reused`).toBe(seqOwner.get(r.sequence))
            }
            seqOwner.set(r.sequence, r.row_id)
          }
          // New appends continue right after the last sequence.
          const next = await api(server.url, "POST", `/v1/sessions/${sid}/rows`, {
            body: { kind: "system", body: { tag: `next-${round}` } },
            headers: { "Idempotency-Key": `next-${round}` },
          })
          expect(next.status, next.text).toBe(201)
          expect(next.json.sequence, "the first append after the restart continues the sequence").toBe(rows.length + 1)
          expect(next.revision).toBe(events.length + 1)
          acks.push({ what: `next ${round}`, row: next.json, revision: next.revision, created: true, effective: true, replayed: false, op: { kind: "append", request: { body: { tag: `next-${round}` } } } })
          seqOwner.set(next.json.sequence, next.json.row_id)
          previousRows = rows.length + 1
        }
        const committedBeforeKill = acks.filter((a) => a.retryTag && a.replayed).length
        console.log(
          `sessions crash: ${acks.length} answers over ${CRASH_ROUNDS} kills, ${lostAnswers} lost answers, ` +
            `${keyedRetried} keyed appends retried, ${committedBeforeKill} retries found committed (seed ${SEED})`
        )
        expect(lostAnswers, "kills landed while requests were in flight").toBeGreaterThan(0)
        expect(await server.stop()).toBe(0)
      } finally {
        if (server) await server.kill().catch(() => {})
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
    90_000
  )
})
