// Delivery under stress (DESIGN.md, "Delivery"; seed 000's replay storms): bounded,
// self-stopping tests on loopback against the real server.
//   - one SSE reader that never reads beside 500 that do, while a writer appends: the 500 get
//     every message promptly and in order, the server's memory stays bounded, the stalled one
//     is cut off and resumes exactly where its last control event said;
//   - 2,000 SSE readers reconnecting at once from old offsets after a restart: /health keeps
//     answering promptly, a live reader keeps getting new messages promptly, and every reader
//     catches up to the end exactly once, in order;
//   - --max-connections: refused promptly with 503 too_many_connections, /health still answers;
//   - --max-catch-up-reads / --catch-up-wait-timeout: catch-up beyond the bound waits, then gets
//     503 catch_up_busy, never a broken answer.
import http from "node:http"
import net from "node:net"
import { readFileSync } from "node:fs"
import { Worker } from "node:worker_threads"
import { describe, expect, test } from "vitest"
import { ctx, expectError, request } from "../support/api.mjs"
import { parseEvent } from "../support/sse.mjs"
import { offsetAt, positionOf, followSse } from "../support/sse_follow.mjs"
import { sanitized, scaled, startOrdo, waitForLog } from "../support/ordo_server.mjs"

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** The resident set size of a process, in bytes. */
function rssBytes(pid) {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)
  return Number(m[1]) * 1024
}

/** Samples a process's RSS every 100 ms until stop(); returns the highest seen. */
function sampleRss(pid) {
  let most = rssBytes(pid)
  const timer = setInterval(() => {
    try {
      most = Math.max(most, rssBytes(pid))
    } catch {}
  }, 100)
  return {
    stop() {
      clearInterval(timer)
      return most
    },
  }
}

async function createJsonStream(base, path) {
  const res = await request(base, "PUT", `/v1/stream/${path}`, {
    headers: { "Content-Type": "application/json" },
  })
  expect(res.status, ctx(res)).toBe(201)
  return res.headers.get("Stream-Next-Offset")
}

/**
 * Raw connections to the server (no pooled connection takes a slot under --max-connections):
 * `open(request)` connects, sends `request` (if any) and collects what comes back in `text()`.
 * Every socket opened is pushed to `sockets`, for the test to destroy.
 */
function rawConnections(port, sockets) {
  return (request) => {
    const s = net.connect(port, "127.0.0.1")
    sockets.push(s)
    const received = []
    s.on("data", (d) => received.push(d))
    s.on("error", () => {})
    if (request) s.on("connect", () => s.write(request))
    return { s, text: () => Buffer.concat(received).toString("latin1") }
  }
}

async function until(what, ok) {
  const deadline = Date.now() + 10000
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Reads `path` on new connections until one is answered 200 (a slot is free) or 5 s pass. */
async function statusOnceASlotIsFree(open, path) {
  let status
  const deadline = Date.now() + 5000
  for (;;) {
    const next = open(`GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`)
    await until("an answer", () => /^HTTP\/1.1 \d+/.test(next.text()))
    status = Number(next.text().slice(9, 12))
    next.s.destroy()
    if (status === 200 || Date.now() > deadline) return status
    await sleep(100)
  }
}

/** Appends messages {"i": first .. first+count-1, "p": pad} in POSTs of `perPost`. */
async function appendHistory(base, path, first, count, perPost, pad) {
  let tail
  for (let at = first; at < first + count; at += perPost) {
    const n = Math.min(perPost, first + count - at)
    const body = JSON.stringify(Array.from({ length: n }, (_, k) => ({ i: at + k, p: pad })))
    const res = await request(base, "POST", `/v1/stream/${path}`, { body })
    expect(res.status, ctx(res)).toBe(204)
    tail = res.headers.get("Stream-Next-Offset")
  }
  return tail
}

/** Asserts that `indices` is exactly first, first+1, ..., end-1. */
function expectExactly(indices, first, end, who) {
  expect(indices.length, `${who}: ${indices.length} messages for [${first}, ${end})`).toBe(end - first)
  for (let k = 0; k < indices.length; k++) {
    if (indices[k] !== first + k) {
      throw new Error(`${who}: message ${k} is ${indices[k]}, expected ${first + k} (a gap, a duplicate or a reordering)`)
    }
  }
}

/** Decodes a chunked HTTP body that may stop anywhere (a cut connection). */
function dechunk(buf) {
  const parts = []
  let i = 0
  while (i < buf.length) {
    const eol = buf.indexOf("\r\n", i)
    if (eol < 0) break
    const size = parseInt(buf.toString("latin1", i, eol), 16)
    if (!(size > 0)) break
    const start = eol + 2
    parts.push(buf.subarray(start, Math.min(start + size, buf.length)))
    i = start + size + 2
  }
  return Buffer.concat(parts).toString("utf8")
}

/** The complete events of an SSE body; a block cut off at the end is dropped. */
function sseEvents(text) {
  const blocks = text.split("\n\n")
  blocks.pop()
  return blocks.map(parseEvent).filter(Boolean)
}

function runProbe(workerData) {
  const worker = new Worker(new URL("../support/probe_worker.mjs", import.meta.url), { workerData })
  const messages = []
  const waiters = []
  worker.on("message", (m) => {
    messages.push(m)
    for (const w of waiters.splice(0)) w()
  })
  worker.on("error", (e) => messages.push({ type: "error", error: String(e) }))
  const next = async (type, ms) => {
    const until = Date.now() + ms
    for (;;) {
      const found = messages.find((m) => m.type === type)
      if (found) return found
      const failed = messages.find((m) => m.type === "error")
      if (failed) throw new Error(`probe worker: ${failed.error}`)
      if (Date.now() > until) throw new Error(`probe worker sent no ${type} within ${ms} ms`)
      await Promise.race([new Promise((r) => waiters.push(r)), sleep(200)])
    }
  }
  return {
    next,
    async stop() {
      worker.postMessage("stop")
      const result = await next("result", 30000)
      await worker.terminate()
      return result
    },
    terminate: () => worker.terminate(),
  }
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]
}

describe("delivery under stress", () => {
  test("a reader that never reads is cut off and resumes exactly; 500 beside it get everything promptly; memory stays bounded", async () => {
    const readers = 500
    const liveAppends = 300
    // History the stalled reader is sent from offset -1: far more than the kernel's socket
    // buffers hold, so its socket fills and stops taking bytes.
    const historyMessages = 48 * 1024
    const pad = "x".repeat(1000)
    const server = await startOrdo({
      args: ["--sse-write-timeout", "2s", "--read-chunk-bytes", "65536", "--sse-max-duration", "10m"],
    })
    const agent = new http.Agent({ keepAlive: false, maxSockets: readers + 16 })
    const followers = []
    let stalled
    try {
      const base = server.url
      await createJsonStream(base, "fanout")
      // 32 messages per append: a JSON append is stored as one row, and a chunk holds whole rows.
      let started = performance.now()
      const historyTail = await appendHistory(base, "fanout", 0, historyMessages, 32, pad)
      console.log(`history written in ${(performance.now() - started).toFixed(0)} ms`)
      // Offsets count appends (rows); "i" counts messages.
      const liveFrom = historyMessages

      // 500 readers, live from the tail.
      let connected = 0
      let allConnected
      const ready = new Promise((r) => (allConnected = r))
      const arrivals = Array.from({ length: readers }, () => [])
      for (let k = 0; k < readers; k++) {
        let first = true
        followers.push(
          followSse(base, "fanout", historyTail, {
            agent,
            map: (m) => m.i,
            onControl: () => {
              if (!first) return
              first = false
              if (++connected === readers) allConnected()
            },
            onMessages: (ms, at) => {
              for (const i of ms) arrivals[k].push([i, at])
            },
          }),
        )
      }
      await ready
      const baselineRss = rssBytes(server.child.pid)
      const rss = sampleRss(server.child.pid)

      // The reader that never reads: its socket is paused before the request goes out.
      const received = []
      let stalledClosed
      const stalledEnded = new Promise((r) => (stalledClosed = r))
      stalled = net.connect(server.port, "127.0.0.1")
      stalled.pause()
      stalled.on("data", (c) => received.push(c))
      stalled.on("error", () => {})
      stalled.on("close", () => stalledClosed())
      stalled.write(`GET /v1/stream/fanout?offset=-1&live=sse HTTP/1.1\r\nHost: test\r\n\r\n`)

      // The writer: one message every 20 ms, each timed from just before it is sent.
      const sentAt = new Map()
      for (let k = 0; k < liveAppends; k++) {
        const i = liveFrom + k
        sentAt.set(i, Date.now())
        const res = await request(base, "POST", "/v1/stream/fanout", {
          body: JSON.stringify([{ i, p: "live" }]),
        })
        expect(res.status, ctx(res)).toBe(204)
        await sleep(20)
      }
      const closeRes = await request(base, "POST", "/v1/stream/fanout", { headers: { "Stream-Closed": "true" } })
      expect(closeRes.status, ctx(closeRes)).toBe(204)
      const end = liveFrom + liveAppends

      // The 500 got every message, in order, exactly once, promptly.
      const results = await Promise.race([
        Promise.all(followers.map((f) => f.done)),
        sleep(30000).then(() => {
          throw new Error("the 500 readers did not all reach the end of the stream within 30 s")
        }),
      ])
      const latencies = []
      results.forEach((r, k) => {
        expectExactly(r.messages, liveFrom, end, `reader ${k}`)
        for (const [i, at] of arrivals[k]) latencies.push(at - sentAt.get(i))
      })
      const reconnects = results.reduce((n, r) => n + r.connects - 1, 0)
      const peakRss = rss.stop()

      // The stalled reader was cut off (the log says so, with its resume offset), while the
      // others were served.
      await waitForLog(server, /sse reader stalled: .* it resumes from its last control event, offset (\S+)/, 20000)
      const loggedOffset = server.log().match(/it resumes from its last control event, offset (\S+) /)[1]
      stalled.resume()
      await Promise.race([stalledEnded, sleep(10000)])

      // What it did receive ends with a control event whose offset is exactly where it resumes.
      const raw = Buffer.concat(received)
      const headerEnd = raw.indexOf("\r\n\r\n")
      expect(raw.toString("latin1", 0, 12)).toBe("HTTP/1.1 200")
      const events = sseEvents(dechunk(raw.subarray(headerEnd + 4)))
      const got = []
      let pending = []
      let resumeAt = null
      for (const ev of events) {
        if (ev.event === "data") pending.push(...JSON.parse(ev.data).map((m) => m.i))
        if (ev.event === "control") {
          got.push(...pending)
          pending = []
          resumeAt = ev.data.streamNextOffset
        }
      }
      expect(resumeAt, "the stalled reader received at least one whole control event").not.toBeNull()
      expect(positionOf(resumeAt)).toBeLessThan(end)
      // The server's note of where it cut the reader is never before what the reader got whole.
      expect(positionOf(loggedOffset)).toBeGreaterThanOrEqual(positionOf(resumeAt))
      const rest = followSse(base, "fanout", resumeAt, { agent, map: (m) => m.i })
      const resumed = await rest.done
      expectExactly([...got, ...resumed.messages], 0, end, "the stalled reader, resumed")

      const p50 = percentile(latencies, 50)
      const p99 = percentile(latencies, 99)
      const max = latencies.reduce((a, b) => Math.max(a, b), 0)
      console.log(
        `fan-out: ${readers} readers x ${liveAppends} messages; append-to-arrival p50 ${p50} ms, p99 ${p99} ms, max ${max} ms; ` +
          `reconnects ${reconnects}; server RSS ${(baselineRss / 2 ** 20).toFixed(1)} MiB with the readers connected, ` +
          `peak ${(peakRss / 2 ** 20).toFixed(1)} MiB; stalled reader got ${got.length} of ${historyMessages} history messages ` +
          `(~${((got.length * 1030) / 2 ** 20).toFixed(1)} MiB) before the cut`,
      )
      expect(reconnects, "no reader beside the stalled one was disconnected").toBe(0)
      expect(max, "every message reached all 500 readers within 2 s of its append").toBeLessThan(scaled(2000))
      // The stalled reader was owed ~48 MiB; holding it, or any large part of it, would show here.
      // Not under AddressSanitizer: its quarantine keeps freed memory resident, so the bound
      // would measure the sanitizer; the release build's run checks it.
      if (!sanitized) {
        expect(peakRss - baselineRss, "server memory stayed bounded while a reader stalled").toBeLessThan(24 * 2 ** 20)
      }
    } finally {
      stalled?.destroy()
      for (const f of followers) f.stop()
      agent.destroy()
      await server.stop()
      server.cleanup()
    }
  }, scaled(120000))

  test("a caught-up reader whose socket fills while it pauses, then reads on, gets every message once, in order, in whole chunks; a reader beside it too", async () => {
    // A caught-up SSE reader is written to by the task that wakes the stream's readers, without
    // blocking; when its socket takes only part of a chunk, its own coroutine sends the rest.
    // This reader pauses until far more than the kernel's socket buffers hold was appended, so
    // those writes fill its socket, end partway through chunks and find it full.
    const appends = 1000
    const perAppend = 8
    const pad = "y".repeat(2000) // 16 KB per append, 16 MB in all
    const server = await startOrdo({ args: ["--sse-write-timeout", "60s"] })
    let paused
    try {
      const base = server.url
      const tail0 = await createJsonStream(base, "pause")
      const beside = followSse(base, "pause", tail0, { map: (m) => m.i })

      const received = []
      let gotHeaders
      const headers = new Promise((r) => (gotHeaders = r))
      paused = net.connect(server.port, "127.0.0.1")
      paused.on("data", (c) => {
        received.push(c)
        if (Buffer.concat(received).includes("upToDate")) gotHeaders()
      })
      paused.on("error", () => {})
      paused.write(`GET /v1/stream/pause?offset=${encodeURIComponent(tail0)}&live=sse HTTP/1.1\r\nHost: test\r\n\r\n`)
      await headers // caught up: its first control event arrived
      paused.pause()

      const tail = await appendHistory(base, "pause", 0, appends * perAppend, perAppend, pad)
      await sleep(500)
      paused.resume()
      const deadline = Date.now() + 30000
      for (;;) {
        const text = Buffer.concat(received).toString("latin1")
        if (text.includes(`"streamNextOffset":"${tail}"`)) break
        if (Date.now() > deadline) throw new Error(`the paused reader never reached ${tail}`)
        await sleep(50)
      }

      // Strictly framed: every chunk's size line, data and CRLF whole.
      const raw = Buffer.concat(received)
      let i = raw.indexOf("\r\n\r\n") + 4
      const body = []
      while (i < raw.length) {
        const eol = raw.indexOf("\r\n", i)
        expect(eol, `a chunk size line at byte ${i}`).toBeGreaterThan(i)
        const sizeLine = raw.toString("latin1", i, eol)
        expect(sizeLine, `chunk size at byte ${i}`).toMatch(/^[0-9a-f]+$/)
        const size = parseInt(sizeLine, 16)
        expect(size, "no last chunk while the stream is open").toBeGreaterThan(0)
        const start = eol + 2
        expect(raw.length, "only whole chunks").toBeGreaterThanOrEqual(start + size + 2)
        body.push(raw.subarray(start, start + size))
        expect(raw.toString("latin1", start + size, start + size + 2), `the CRLF after the chunk at byte ${i}`).toBe("\r\n")
        i = start + size + 2
      }
      // Events: a control event after every data event; every message once, in order.
      const events = sseEvents(Buffer.concat(body).toString("utf8"))
      const indices = []
      let last = null
      for (const ev of events) {
        if (ev.event === "data") {
          expect(last, "a data event follows a control event").not.toBe("data")
          for (const m of JSON.parse(ev.data)) indices.push(m.i)
        } else {
          expect(ev.event).toBe("control")
        }
        last = ev.event
      }
      expect(last).toBe("control")
      expectExactly(indices, 0, appends * perAppend, "the paused reader")

      // The reader beside it, never paused, got the same.
      const closed = await request(base, "POST", "/v1/stream/pause", { headers: { "Stream-Closed": "true" } })
      expect(closed.status, ctx(closed)).toBe(204)
      const followed = await beside.done
      expectExactly(followed.messages, 0, appends * perAppend, "the reader beside it")
    } finally {
      paused?.destroy()
      await server.stop()
    }
  }, scaled(120000))

  test("a parked reader whose client went away frees its connection at the next appends, long before its heartbeat", async () => {
    // Two connections in all: the reader that leaves, and one keep-alive writer. The parked
    // reader's socket wait sees the close (or the wake task's write to it fails), its coroutine
    // ends, and a new reader fits under --max-connections again, long before the 10 min
    // heartbeat.
    const server = await startOrdo({ args: ["--max-connections", "2", "--sse-heartbeat", "10m", "--sse-max-duration", "10m"] })
    const sockets = []
    try {
      const open = rawConnections(server.port, sockets)
      const writer = open("PUT /v1/stream/gone HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n")
      await until("the stream", () => /\r\n\r\n/.test(writer.text()))
      expect(writer.text()).toMatch(/^HTTP\/1.1 201/)
      const tail = writer.text().match(/stream-next-offset: (\S+)/i)[1]
      const reader = open(`GET /v1/stream/gone?offset=${encodeURIComponent(tail)}&live=sse HTTP/1.1\r\nHost: t\r\n\r\n`)
      await until("the reader to catch up", () => reader.text().includes("upToDate"))
      reader.s.destroy() // parked, and gone
      const body = JSON.stringify({ i: 1 })
      for (let k = 1; k <= 3; k++) {
        writer.s.write(`POST /v1/stream/gone HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
        await until(`append ${k}`, () => (writer.text().match(/HTTP\/1.1 204/g) ?? []).length === k)
        await sleep(50)
      }
      // The departed reader's slot is free again: a new reader is served, not refused with 503.
      const status = await statusOnceASlotIsFree(open, "/v1/stream/gone?offset=-1")
      expect(status, "a reader after the departed one").toBe(200)
    } finally {
      for (const s of sockets) s.destroy()
      await server.stop()
    }
  }, scaled(60000))

  test("a parked reader whose client went away frees its connection at once, with no append at all", async () => {
    // A parked reader waits on its socket: the client's close wakes it, so the slot is free
    // without a write to fail and long before the 10 min heartbeat.
    const server = await startOrdo({ args: ["--max-connections", "1", "--sse-heartbeat", "10m", "--sse-max-duration", "10m"] })
    const sockets = []
    try {
      const open = rawConnections(server.port, sockets)
      const create = open("PUT /v1/stream/quiet-gone HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
      await until("the stream", () => /^HTTP\/1.1 201/.test(create.text()) && create.s.readableEnded)
      const reader = open("GET /v1/stream/quiet-gone?offset=-1&live=sse HTTP/1.1\r\nHost: t\r\n\r\n")
      await until("the reader to catch up", () => reader.text().includes("upToDate"))
      reader.s.destroy()
      // The one connection slot is free again: a read is served, not refused with 503.
      const status = await statusOnceASlotIsFree(open, "/v1/stream/quiet-gone?offset=-1")
      expect(status, "a read after the reader left").toBe(200)
    } finally {
      for (const s of sockets) s.destroy()
      await server.stop()
    }
  }, scaled(30000))

  test("parked readers get their heartbeats from one shared timer, each on time, while a stray byte from a client is dropped", async () => {
    const server = await startOrdo({ args: ["--sse-heartbeat", "300ms", "--sse-max-duration", "10m"] })
    const sockets = []
    try {
      await createJsonStream(server.url, "beats")
      const open = rawConnections(server.port, sockets)
      const readers = []
      for (let k = 0; k < 20; k++) readers.push(open("GET /v1/stream/beats?offset=-1&live=sse HTTP/1.1\r\nHost: t\r\n\r\n"))
      const beats = (r) => (r.text().match(/: keep-alive/g) ?? []).length
      const deadline = Date.now() + 10000
      while (readers.some((r) => beats(r) < 1) && Date.now() < deadline) await sleep(50)
      // A client that sends bytes after its request stays a reader: they are read and dropped.
      readers[0].s.write("stray")
      const before = readers.map(beats)
      await sleep(1500)
      readers.forEach((r, k) => {
        // About five in 1.5 s; at least three whatever the machine's load.
        expect(beats(r) - before[k], `reader ${k}'s heartbeats`).toBeGreaterThanOrEqual(3)
        expect(r.s.destroyed, `reader ${k} still connected`).toBe(false)
      })
      // And each still gets data.
      const appended = await request(server.url, "POST", "/v1/stream/beats", {
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ i: 1 }) })
      expect(appended.status, ctx(appended)).toBe(204)
      const until = Date.now() + 5000
      while (readers.some((r) => !r.text().includes('"i":1')) && Date.now() < until) await sleep(20)
      readers.forEach((r, k) => expect(r.text(), `reader ${k}'s data`).toContain('"i":1'))
    } finally {
      for (const s of sockets) s.destroy()
      await server.stop()
    }
  }, scaled(30000))

  test("a long-poll sent right after an append waits its whole timeout, though that append's wake-up comes after it began", async () => {
    // The wake-up of an append's readers runs after its writer was answered, on one wake thread.
    // Behind the rounds of a stream with 3,000 SSE readers it comes after the client's next
    // long-poll has begun waiting; with nothing new for that poll, it must wait on, not answer
    // an early 204 that only sends the client straight back.
    const server = await startOrdo({ args: ["--long-poll-timeout", "1s"] })
    const sockets = []
    let writing = true
    try {
      const busyTail = await createJsonStream(server.url, "busy")
      await createJsonStream(server.url, "quiet")
      const readers = 3000
      let upToDate = 0
      for (let k = 0; k < readers; k++) {
        const s = net.connect(server.port, "127.0.0.1")
        sockets.push(s)
        let seen = false
        s.on("data", (d) => {
          if (!seen && d.toString("latin1").includes("upToDate")) {
            seen = true
            upToDate++
          }
        })
        s.on("error", () => {})
        s.write(`GET /v1/stream/busy?offset=${encodeURIComponent(busyTail)}&live=sse HTTP/1.1\r\nHost: t\r\n\r\n`)
      }
      const deadline = Date.now() + 30000
      while (upToDate < readers && Date.now() < deadline) await sleep(50)
      expect(upToDate).toBe(readers)
      const writer = (async () => {
        while (writing) {
          const res = await request(server.url, "POST", "/v1/stream/busy", { body: JSON.stringify({ i: 1 }) })
          expect(res.status, ctx(res)).toBe(204)
        }
      })()
      for (let k = 0; k < 5; k++) {
        const appended = await request(server.url, "POST", "/v1/stream/quiet", { body: JSON.stringify({ k }) })
        expect(appended.status, ctx(appended)).toBe(204)
        const tail = appended.headers.get("Stream-Next-Offset")
        const started = performance.now()
        const poll = await request(server.url, "GET", `/v1/stream/quiet?offset=${encodeURIComponent(tail)}&live=long-poll`)
        const elapsed = performance.now() - started
        expect(poll.status, ctx(poll)).toBe(204)
        expect(poll.headers.get("Stream-Next-Offset")).toBe(tail)
        expect(elapsed, `poll ${k} answered after ${Math.round(elapsed)} ms`).toBeGreaterThanOrEqual(900)
      }
      writing = false
      await writer
    } finally {
      writing = false
      for (const s of sockets) s.destroy()
      await server.stop()
    }
  }, scaled(90000))

  test("a catch-up answer larger than the socket takes at once reaches a reader that pauses, whole", async () => {
    // Answers are written at once while the socket takes them; the rest waits for the socket.
    const server = await startOrdo({ args: ["--read-chunk-bytes", "16777216", "--max-body-bytes", "2000000"] })
    let s
    try {
      const base = server.url
      let res = await request(base, "PUT", "/v1/stream/big", { headers: { "Content-Type": "text/plain" } })
      expect(res.status, ctx(res)).toBe(201)
      const part = (i) => String.fromCharCode(97 + i).repeat(1_000_000)
      for (let i = 0; i < 12; i++) {
        res = await request(base, "POST", "/v1/stream/big", { headers: { "Content-Type": "text/plain" }, body: part(i) })
        expect(res.status, ctx(res)).toBe(204)
      }
      const chunks = []
      s = net.connect(server.port, "127.0.0.1")
      s.on("data", (d) => chunks.push(d))
      s.on("error", () => {})
      await new Promise((r) => s.on("connect", r))
      s.pause()
      s.write("GET /v1/stream/big?offset=-1 HTTP/1.1\r\nHost: test\r\n\r\n")
      await sleep(1000)
      s.resume()
      const deadline = Date.now() + 20000
      let body
      for (;;) {
        const buf = Buffer.concat(chunks)
        const end = buf.indexOf("\r\n\r\n")
        if (end > 0) {
          const length = Number(buf.toString("latin1", 0, end).match(/content-length: (\d+)/i)[1])
          if (buf.length - end - 4 >= length) {
            expect(buf.toString("latin1", 0, 12)).toBe("HTTP/1.1 200")
            body = buf.subarray(end + 4).toString("latin1")
            break
          }
        }
        if (Date.now() > deadline) throw new Error(`got ${buf.length} bytes`)
        await sleep(50)
      }
      expect(body.length).toBe(12_000_000)
      for (let i = 0; i < 12; i++) expect(body.slice(i * 1_000_000, (i + 1) * 1_000_000) === part(i), `part ${i}`).toBe(true)
    } finally {
      s?.destroy()
      await server.stop()
    }
  }, scaled(60000))

  test("2,000 readers reconnecting at once from old offsets after a restart: /health stays prompt, live delivery goes on, each catches up exactly once", async () => {
    const clients = 2000
    const rows = 2000
    const perRow = 4
    const historyMessages = rows * perRow
    const liveAppends = 60
    const args = ["--read-chunk-bytes", "16384", "--tail-cache-bytes", "65536", "--sse-max-duration", "10m"]
    let server = await startOrdo({ args })
    const dataDir = server.dataDir
    const agent = new http.Agent({ keepAlive: false, maxSockets: clients + 16 })
    const followers = []
    let probe
    try {
      await createJsonStream(server.url, "storm")
      let started = performance.now()
      const historyTail = await appendHistory(server.url, "storm", 0, historyMessages, perRow, "abcdefghij")
      console.log(`history: ${rows} appends of ${perRow} messages written in ${(performance.now() - started).toFixed(0)} ms`)
      // A restart empties every tail cache: the storm is served from disk, as after a crash.
      expect(await server.stop()).toBe(0)
      server = await startOrdo({ args, dataDir })
      const base = server.url

      probe = runProbe({
        base,
        healthEveryMs: 50,
        live: { path: "storm", firstIndex: historyMessages, appends: liveAppends, everyMs: 100 },
      })
      await probe.next("following", 10000)

      // Every client at once, each from its own old offset (a row in the first 80 % of history).
      started = performance.now()
      const starts = []
      for (let k = 0; k < clients; k++) {
        const row = Math.floor(Math.random() * rows * 0.8)
        starts.push(row)
        followers.push(followSse(base, "storm", offsetAt(historyTail, row), { agent, map: (m) => m.i }))
      }
      const written = await probe.next("written", 60000)
      const results = await Promise.race([
        Promise.all(followers.map((f) => f.done)),
        sleep(150000).then(() => {
          throw new Error("the 2,000 readers did not all reach the end of the stream within 150 s")
        }),
      ])
      const stormMs = performance.now() - started
      const probed = await probe.stop()
      probe = null

      const end = historyMessages + liveAppends
      expect(positionOf(written.tail)).toBe(rows + liveAppends)
      results.forEach((r, k) => expectExactly(r.messages, starts[k] * perRow, end, `reader ${k} (from row ${starts[k]})`))
      const reconnects = results.reduce((n, r) => n + r.connects - 1, 0)
      const refusals = results.reduce((n, r) => n + r.refusals, 0)
      const delivered = results.reduce((n, r) => n + r.messages.length, 0)

      const healthMs = probed.health.map((h) => h.ms)
      const healthBad = probed.health.filter((h) => h.status !== 200)
      const live = probed.live
      expect(probed.liveError).toBeNull()
      expectExactly(live.received, historyMessages, end, "the live reader")
      console.log(
        `storm: ${clients} readers caught up ${delivered} messages in ${stormMs.toFixed(0)} ms ` +
          `(reconnects ${reconnects}, 503s ${refusals}); /health x${healthMs.length}: p50 ${percentile(healthMs, 50).toFixed(1)} ms, ` +
          `max ${healthMs.reduce((a, b) => Math.max(a, b), 0).toFixed(1)} ms; live reader append-to-arrival p50 ` +
          `${percentile(live.latencies, 50)} ms, max ${live.latencies.reduce((a, b) => Math.max(a, b), 0)} ms`,
      )
      expect(healthBad, "every /health answered 200").toEqual([])
      expect(healthMs.length, "/health was probed throughout").toBeGreaterThan(10)
      for (const ms of healthMs) expect(ms, "every /health answered within 1 s").toBeLessThan(scaled(1000))
      for (const ms of live.latencies) expect(ms, "every live message arrived within 2 s of its append").toBeLessThan(scaled(2000))
    } finally {
      if (probe) await probe.terminate()
      for (const f of followers) f.stop()
      agent.destroy()
      await server.stop()
      server.cleanup()
    }
  }, scaled(240000))

  test("--max-connections: a connection over the limit gets 503 too_many_connections at once and is closed; /health and /ready still answer", async () => {
    const limit = 20
    const server = await startOrdo({ args: ["--max-connections", String(limit)] })
    const held = []
    const silent = []
    try {
      // `limit` keep-alive connections, each with one request answered, so the server has them.
      for (let k = 0; k < limit; k++) {
        const c = await exchange(server.port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n", { keepOpen: true })
        expect(c.text).toMatch(/^HTTP\/1\.1 200/)
        held.push(c.socket)
      }

      // One more: answered at once with 503, Retry-After and a JSON error, then closed.
      const refused = await exchange(server.port, "GET /v1/stream/x?offset=-1 HTTP/1.1\r\nHost: t\r\n\r\n")
      expect(refused.text).toMatch(/^HTTP\/1\.1 503 /)
      expect(refused.text).toMatch(/\r\nRetry-After: 1\r\n/i)
      expect(refused.text).toMatch(/\r\nConnection: close\r\n/i)
      expect(refused.text).toMatch(/\r\nContent-Type: application\/json\r\n/i)
      const body = JSON.parse(refused.text.slice(refused.text.indexOf("\r\n\r\n") + 4))
      expect(body.error.code).toBe("too_many_connections")
      expect(body.error.message).toContain("--max-connections")
      expect(refused.closed, "the server closed the refused connection").toBe(true)
      expect(refused.ms).toBeLessThan(scaled(1000))
      // The same through fetch, as any client sees it.
      expectError(await request(server.url, "GET", "/v1/stream/x?offset=-1"), 503, "too_many_connections")

      // Probes still answer, from the reserve.
      for (const path of ["/health", "/ready"]) {
        const probe = await exchange(server.port, `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`)
        expect(probe.text, path).toMatch(/^HTTP\/1\.1 200 /)
        expect(probe.ms).toBeLessThan(scaled(1000))
      }
      // A request with a body is answered too (its body is drained, not reset under the answer).
      const post = await exchange(
        server.port,
        `POST /v1/stream/x HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 65536\r\n\r\n${"y".repeat(65536)}`,
      )
      expect(post.text).toMatch(/^HTTP\/1\.1 503 /)
      await waitForLog(server, /connection limit reached \(--max-connections=20\)/)

      // The reserve is bounded: with 64 connections in it that send nothing, the next is closed
      // at once without an answer; the silent ones get their 503 when their 2 s are up.
      for (let k = 0; k < 64; k++) silent.push(exchange(server.port, null))
      // Once the server has taken all 64 (on a loaded machine that can take longer than the
      // 300 ms waited first), a probe is answered by nothing; before, the reserve answers it.
      await sleep(300)
      let dropped
      for (const until = Date.now() + 1000; ; await sleep(50)) {
        dropped = await exchange(server.port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        if (dropped.text === "" || Date.now() > until) break
      }
      expect(dropped.text).toBe("")
      expect(dropped.closed).toBe(true)
      expect(dropped.ms).toBeLessThan(scaled(1000))
      const late = await Promise.all(silent)
      for (const r of late) {
        expect(r.text).toMatch(/^HTTP\/1\.1 503 /)
        expect(r.ms).toBeLessThan(scaled(4000))
      }
      const again = await exchange(server.port, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
      expect(again.text).toMatch(/^HTTP\/1\.1 200 /)

      // Below the limit again, requests are served normally.
      for (const s of held.splice(0, 5)) s.destroy()
      const until = Date.now() + 5000
      let served
      do {
        served = await request(server.url, "GET", "/v1/stream/x?offset=-1")
      } while (served.status === 503 && Date.now() < until && (await sleep(50), true))
      expectError(served, 404, "stream_not_found")
    } finally {
      for (const s of held) s.destroy()
      await server.stop()
      server.cleanup()
    }
  }, scaled(60000))

  test("a catch-up read that waits longer than --catch-up-wait-timeout for one of --max-catch-up-reads gets 503 catch_up_busy with Retry-After; clients that retry get everything", async () => {
    const server = await startOrdo({
      args: ["--max-catch-up-reads", "1", "--catch-up-wait-timeout", "0ms", "--read-chunk-bytes", "262144", "--tail-cache-bytes", "1024"],
    })
    const agent = new http.Agent({ keepAlive: false, maxSockets: 256 })
    try {
      const base = server.url
      await createJsonStream(base, "busy")
      // 400 appends of 16 messages of ~1 KiB: 6.4 MiB, read from disk 256 KiB at a time.
      const tail = await appendHistory(base, "busy", 0, 400 * 16, 16, "z".repeat(1000))
      // 100 catch-up reads and 100 SSE readers at once, against one slot that nobody may wait for.
      const reads = Array.from({ length: 100 }, () => request(base, "GET", "/v1/stream/busy?offset=-1"))
      const sse = Array.from({ length: 100 }, () => firstAnswer(`${base}/v1/stream/busy?offset=-1&live=sse`, agent))
      const answers = await Promise.all([...reads, ...sse])
      let busy = 0
      for (const a of answers) {
        if (a.status === 503) {
          busy++
          expectError(a, 503, "catch_up_busy")
          expect(a.headers.get("retry-after")).toBe("1")
        } else {
          expect(a.status, ctx(a)).toBe(200)
        }
      }
      console.log(`catch-up admission: ${busy} of ${answers.length} concurrent reads refused with 503 catch_up_busy`)
      expect(busy, "some reads found the one slot taken").toBeGreaterThan(0)
      expect(busy, "some reads were served").toBeLessThan(answers.length)

      // Clients that honour Retry-After all read the whole stream, once.
      const followers = Array.from({ length: 20 }, () => followSse(base, "busy", "-1", { agent, map: (m) => m.i }))
      const closed = await request(base, "POST", "/v1/stream/busy", { headers: { "Stream-Closed": "true" } })
      expect(closed.status, ctx(closed)).toBe(204)
      const results = await Promise.all(followers.map((f) => f.done))
      results.forEach((r, k) => expectExactly(r.messages, 0, 400 * 16, `reader ${k}`))
      expect(positionOf(tail)).toBe(400)
    } finally {
      agent.destroy()
      await server.stop()
      server.cleanup()
    }
  }, scaled(60000))
})

/**
 * Sends `text` (nothing if null) on a new connection and collects the answer until the server
 * closes it, or with keepOpen until one response has arrived.
 * @returns {Promise<{ text: string, ms: number, closed: boolean, socket: net.Socket }>}
 */
function exchange(port, text, { keepOpen = false, timeoutMs = 8000 } = {}) {
  return new Promise((resolve) => {
    const started = performance.now()
    const socket = net.connect(port, "127.0.0.1")
    let received = ""
    let done = false
    const finish = (closed) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ text: received, ms: performance.now() - started, closed, socket })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.setEncoding("latin1")
    socket.on("data", (c) => {
      received += c
      const end = received.indexOf("\r\n\r\n")
      const length = /\r\ncontent-length: (\d+)/i.exec(received)
      if (keepOpen && end >= 0 && length && received.length >= end + 4 + Number(length[1])) finish(false)
    })
    socket.on("error", () => {})
    socket.on("close", () => finish(true))
    socket.on("connect", () => {
      if (text !== null) socket.write(text)
    })
  })
}

/** The status, headers and (for errors) body of a GET, without waiting for an event stream to end. */
function firstAnswer(url, agent) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const headers = new Headers()
      for (const [k, v] of Object.entries(res.headers)) headers.set(k, String(v))
      if (res.statusCode === 200) {
        res.destroy()
        resolve({ status: 200, headers, text: "", json: undefined, what: `GET ${url}` })
        return
      }
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (c) => (text += c))
      res.on("end", () => {
        let json
        try {
          json = JSON.parse(text)
        } catch {}
        resolve({ status: res.statusCode, headers, text, json, what: `GET ${url}` })
      })
    })
    req.on("error", reject)
  })
}
