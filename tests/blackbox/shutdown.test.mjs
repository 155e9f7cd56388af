// Stopping `ordo serve` with SIGTERM: readers are told where to resume, waiting long-polls are
// answered, writes in flight are either acknowledged and kept or not acknowledged, the WAL is
// checkpointed, and the process exits 0 within --shutdown-timeout. A second signal exits at once.
import { describe, expect, test } from "vitest"
import http from "node:http"
import net from "node:net"
import { existsSync, mkdtempSync, copyFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startOrdo, waitForLog } from "../support/ordo_server.mjs"
import { openSse } from "../support/sse.mjs"

const JSON_TYPE = { "Content-Type": "application/json" }

async function createStream(url) {
  const r = await fetch(url, { method: "PUT", headers: JSON_TYPE })
  expect(r.status).toBe(201)
  return r.headers.get("Stream-Next-Offset")
}

async function append(url, value) {
  const r = await fetch(url, { method: "POST", headers: JSON_TYPE, body: JSON.stringify(value) })
  expect(r.status).toBe(204)
  return r.headers.get("Stream-Next-Offset")
}

// Every value of a JSON stream from `offset` on, following catch-up chunks to the tail.
async function readAll(url, offset = "-1") {
  const values = []
  for (;;) {
    const r = await fetch(`${url}?offset=${offset}`)
    expect(r.status).toBe(200)
    values.push(...(await r.json()))
    offset = r.headers.get("Stream-Next-Offset")
    if (r.headers.get("Stream-Up-To-Date") === "true") return { values, offset }
  }
}

function exitOf(child) {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode ?? child.signalCode)
    else child.on("exit", (code, signal) => r(code ?? signal))
  })
}


describe("graceful shutdown", () => {
  test("an SSE reader gets a last control event at its next offset, then the stream ends; it resumes there after a restart with no loss and no duplicate", async () => {
    const server = await startOrdo()
    let reader
    try {
      const s = `${server.url}/v1/stream/sse-resume`
      await createStream(s)
      await append(s, "a")
      const tail = await append(s, "b")
      reader = openSse(`${s}?offset=-1&live=sse`)
      const first = await reader.firstControl
      expect(first.streamNextOffset).toBe(tail)

      const exit = server.stop()
      expect(await reader.ended).toBe("end")
      expect(await exit).toBe(0)
      const last = reader.events.at(-1)
      expect(last.event).toBe("control")
      expect(last.data.streamNextOffset).toBe(tail)
      expect(last.data.streamClosed).toBeUndefined()
      // The data before it was exactly a and b, once.
      const data = reader.events.filter((e) => e.event === "data").flatMap((e) => JSON.parse(e.data))
      expect(data).toEqual(["a", "b"])
      expect(server.log()).not.toMatch(/cutting/)
    } finally {
      reader?.destroy()
      await server.kill()
    }

    const again = await startOrdo({ dataDir: server.dataDir })
    try {
      const s = `${again.url}/v1/stream/sse-resume`
      await append(s, "c")
      await append(s, "d")
      const last = reader.events.at(-1).data.streamNextOffset
      expect((await readAll(s, last)).values).toEqual(["c", "d"])
      expect(await again.stop()).toBe(0)
    } finally {
      await again.kill()
      again.cleanup()
    }
  })

  test("a waiting long-poll is answered 204 at once, with the offset and cursor of a timeout", async () => {
    const server = await startOrdo({ args: ["--long-poll-timeout", "60s"] })
    try {
      const s = `${server.url}/v1/stream/long-poll`
      await createStream(s)
      const tail = await append(s, "a")
      const started = performance.now()
      const poll = fetch(`${s}?offset=${tail}&live=long-poll`)
      // Give the request time to reach its wait (it is answered the same way if it has not).
      await new Promise((r) => setTimeout(r, 500))
      const exit = server.stop()
      const r = await poll
      expect(r.status).toBe(204)
      expect(r.headers.get("Stream-Next-Offset")).toBe(tail)
      expect(r.headers.get("Stream-Up-To-Date")).toBe("true")
      expect(r.headers.get("Stream-Cursor")).toMatch(/^\d+$/)
      expect(r.headers.get("Connection")).toBe("close")
      expect(performance.now() - started).toBeLessThan(30000) // not the 60 s timeout
      expect(await exit).toBe(0)
    } finally {
      await server.kill()
      server.cleanup()
    }
  })

  test("1,000 open SSE readers each get their last control event and the server exits 0 well within --shutdown-timeout", { timeout: 120000 }, async () => {
    const readerCount = 1000
    const server = await startOrdo({ args: ["--shutdown-timeout", "60s"] })
    const agent = new http.Agent({ keepAlive: false, maxSockets: readerCount + 10 })
    const readers = []
    try {
      const s = `${server.url}/v1/stream/many`
      await createStream(s)
      const tail = await append(s, "x")
      for (let i = 0; i < readerCount; i++) readers.push(openSse(`${s}?offset=-1&live=sse`, agent))
      await Promise.all(readers.map((r) => r.firstControl))

      const started = performance.now()
      const code = await server.stop()
      const elapsed = performance.now() - started
      expect(code).toBe(0)
      expect(elapsed).toBeLessThan(30000) // half of --shutdown-timeout; nothing was cut
      expect(server.log()).not.toMatch(/cutting/)
      const outcomes = await Promise.all(readers.map((r) => r.ended))
      expect(outcomes.filter((o) => o !== "end")).toEqual([])
      for (const r of readers) {
        const last = r.events.at(-1)
        expect(last.event).toBe("control")
        expect(last.data.streamNextOffset).toBe(tail)
      }
    } finally {
      for (const r of readers) r.destroy()
      agent.destroy()
      await server.kill()
      server.cleanup()
    }
  })

  test("writes in flight at SIGTERM are acknowledged and kept, or not acknowledged; never acknowledged and lost", async () => {
    const server = await startOrdo()
    const s = `${server.url}/v1/stream/in-flight`
    await createStream(s)
    const acknowledged = []
    const sent = new Set()
    let stopping = false
    let signalled
    const enoughAcks = new Promise((r) => (signalled = r))
    const producer = async (p) => {
      for (let i = 0; ; i++) {
        const value = `p${p}-${i}`
        sent.add(value)
        let r
        try {
          r = await fetch(s, { method: "POST", headers: JSON_TYPE, body: JSON.stringify(value) })
        } catch {
          return // connection refused or cut: not acknowledged
        }
        if (r.status !== 204) {
          expect(stopping).toBe(true)
          return
        }
        acknowledged.push(value)
        if (acknowledged.length >= 200) signalled()
      }
    }
    const producers = Array.from({ length: 8 }, (_, p) => producer(p))
    let again
    try {
      await enoughAcks
      stopping = true
      expect(await server.stop()).toBe(0)
      await Promise.all(producers)

      again = await startOrdo({ dataDir: server.dataDir })
      const { values } = await readAll(`${again.url}/v1/stream/in-flight`)
      expect(new Set(values).size).toBe(values.length) // no duplicate
      for (const v of values) expect(sent.has(v)).toBe(true)
      const kept = new Set(values)
      expect(acknowledged.filter((v) => !kept.has(v))).toEqual([]) // nothing acknowledged was lost
      expect(acknowledged.length).toBeGreaterThanOrEqual(200)
      expect(await again.stop()).toBe(0)
    } finally {
      await server.kill()
      if (again) await again.kill()
      server.cleanup()
    }
  })

  test("a second SIGTERM while the shutdown waits for a slow request exits at once with 143", async () => {
    const server = await startOrdo({ args: ["--shutdown-timeout", "1h"] })
    let socket
    try {
      await createStream(`${server.url}/v1/stream/slow`)
      // A request whose body never finishes arriving: the shutdown lets it finish, up to the
      // timeout. "100 Continue" proves the server has its headers (the request is in flight).
      socket = net.connect(server.port, "127.0.0.1")
      await new Promise((r) => socket.once("connect", r))
      const continued = new Promise((r) => socket.once("data", (d) => r(d.toString())))
      socket.write(
        "POST /v1/stream/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
          "Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
      )
      expect(await continued).toMatch(/^HTTP\/1.1 100/)
      socket.write('"only part of')

      const exit = exitOf(server.child)
      server.child.kill("SIGTERM")
      await waitForLog(server, /shutting down: \d+ open connections/)
      expect(server.child.exitCode).toBeNull() // still waiting for the slow request

      const started = performance.now()
      server.child.kill("SIGTERM")
      expect(await exit).toBe(143)
      expect(performance.now() - started).toBeLessThan(10000)
      expect(server.log()).toMatch(/second signal; exiting at once/)
    } finally {
      socket?.destroy()
      await server.kill()
      server.cleanup()
    }
  })

  test("connections still open at --shutdown-timeout are cut, logged with their number, and the exit is 0", async () => {
    const server = await startOrdo({ args: ["--shutdown-timeout", "1s"] })
    const sockets = []
    try {
      await createStream(`${server.url}/v1/stream/stuck`)
      for (let i = 0; i < 2; i++) {
        const socket = net.connect(server.port, "127.0.0.1")
        sockets.push(socket)
        await new Promise((r) => socket.once("connect", r))
        const continued = new Promise((r) => socket.once("data", (d) => r(d.toString())))
        socket.write(
          "POST /v1/stream/stuck HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
            "Content-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        expect(await continued).toMatch(/^HTTP\/1.1 100/)
      }
      const closed = sockets.map((s) => new Promise((r) => s.once("close", r)))
      expect(await server.stop()).toBe(0)
      await Promise.all(closed)
      expect(server.log()).toMatch(/shutdown timeout of 1000 ms passed: cutting 2 connections/)
    } finally {
      for (const s of sockets) s.destroy()
      await server.kill()
      server.cleanup()
    }
  })

  test("after a clean stop the WAL is checkpointed: ordo.db alone holds every write", async () => {
    const server = await startOrdo()
    const copyDir = mkdtempSync(join(tmpdir(), "ordo-test-copy-"))
    try {
      const s = `${server.url}/v1/stream/wal`
      await createStream(s)
      for (let i = 0; i < 50; i++) await append(s, i)
      expect(await server.stop()).toBe(0)
      const wal = join(server.dataDir, "ordo.db-wal")
      expect(!existsSync(wal) || statSync(wal).size === 0).toBe(true)

      copyFileSync(join(server.dataDir, "ordo.db"), join(copyDir, "ordo.db"))
      const copy = await startOrdo({ dataDir: copyDir })
      try {
        const { values } = await readAll(`${copy.url}/v1/stream/wal`)
        expect(values).toEqual(Array.from({ length: 50 }, (_, i) => i))
        expect(await copy.stop()).toBe(0)
      } finally {
        await copy.kill()
      }
    } finally {
      await server.kill()
      server.cleanup()
      rmSync(copyDir, { recursive: true, force: true })
    }
  })
})
