// Slow clients (docs/OPERATIONS.md, --header-timeout, --body-timeout, --idle-timeout,
// --max-connections): a client that dribbles its headers a byte at a time is cut at the header
// deadline, however steadily the bytes come; one that stalls its body is cut at the body deadline;
// a flood of connections that never send a request fills --max-connections, gets the documented
// 503 too_many_connections beyond it, and is closed at the idle timeout, after which a normal
// client is served again. Other clients are served throughout.
import net from "node:net"
import { describe, expect, test } from "vitest"
import { scaled, startOrdo } from "../support/ordo_server.mjs"

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Opens a connection; resolves once connected. `closedAt` is set when the server closes it. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    const c = { socket, text: "", closedAt: null }
    socket.on("data", (d) => (c.text += d.toString()))
    socket.on("error", () => {})
    socket.on("close", () => (c.closedAt = Date.now()))
    socket.once("connect", () => resolve(c))
    socket.once("error", reject)
  })
}

/** Resolves when `c` is closed, or with false after `ms`. */
async function closedWithin(c, ms) {
  const until = Date.now() + ms
  while (c.closedAt === null && Date.now() < until) await sleep(20)
  return c.closedAt !== null
}

/** A fetch of /health with its own deadline: the server keeps serving others. */
async function healthy(url) {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(scaled(2000)) })
  return res.status
}

describe("slow clients are cut by named deadlines", () => {
  test("headers dribbled a byte per 100 ms are cut at --header-timeout, not served, while others are", async () => {
    const server = await startOrdo({ args: ["--header-timeout", "1s", "--idle-timeout", "30s"] })
    try {
      const head = `GET /health HTTP/1.1\r\nHost: t\r\nX-Padding: ${"a".repeat(200)}\r\n\r\n`
      const c = await connect(server.port)
      const started = Date.now()
      let sent = 0
      // One byte every 100 ms: the whole head would take over 20 s.
      while (c.closedAt === null && sent < head.length && Date.now() - started < scaled(10000)) {
        c.socket.write(head[sent++])
        if (sent % 10 === 0) expect(await healthy(server.url)).toBe(200)
        await sleep(100)
      }
      expect(await closedWithin(c, scaled(2000)), "the dribbling connection was closed").toBe(true)
      const lasted = c.closedAt - started
      expect(lasted).toBeGreaterThanOrEqual(900)
      expect(lasted).toBeLessThan(scaled(3000))
      expect(sent).toBeLessThan(head.length)
      expect(c.text, "nothing was answered").toBe("")
      expect(await healthy(server.url)).toBe(200)
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("a body stalled after its headers is cut at --body-timeout; a prompt one on the same settings is served", async () => {
    const server = await startOrdo({ args: ["--body-timeout", "1s", "--idle-timeout", "30s"] })
    try {
      const put = await fetch(`${server.url}/v1/stream/slow`, { method: "PUT", headers: { "Content-Type": "text/plain" } })
      expect(put.status).toBe(201)
      const c = await connect(server.port)
      const started = Date.now()
      c.socket.write("POST /v1/stream/slow HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
      expect(await healthy(server.url)).toBe(200)
      expect(await closedWithin(c, scaled(5000)), "the stalled connection was closed").toBe(true)
      const lasted = c.closedAt - started
      expect(lasted).toBeGreaterThanOrEqual(900)
      expect(lasted).toBeLessThan(scaled(3000))
      expect(c.text, "nothing was answered").toBe("")
      // Nothing of the stalled append was stored; a whole one is.
      const post = await fetch(`${server.url}/v1/stream/slow`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "whole" })
      expect(post.status).toBe(204)
      const read = await fetch(`${server.url}/v1/stream/slow?offset=-1`)
      expect(await read.text()).toBe("whole")
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("a flood of idle connections beyond --max-connections: the documented 503, /health from the reserve, all closed at their timeouts, then normal service", async () => {
    const limit = 10
    const server = await startOrdo({ args: ["--max-connections", String(limit), "--idle-timeout", "1s"] })
    try {
      const flood = []
      for (let k = 0; k < limit + 20; k++) flood.push(await connect(server.port))
      await sleep(200)
      // The limit is taken by connections that never send a byte: a normal client gets the
      // documented answer at once, and the probes answer from the reserve.
      const refused = await fetch(`${server.url}/v1/stream/x?offset=-1`, { signal: AbortSignal.timeout(scaled(2000)) })
      expect(refused.status).toBe(503)
      expect((await refused.json()).error.code).toBe("too_many_connections")
      expect(await healthy(server.url)).toBe(200)
      // Every idle connection is closed by its deadline: the served ones at --idle-timeout, the
      // ones over the limit at the reserve's 2 s.
      for (const c of flood) expect(await closedWithin(c, scaled(4000)), "an idle connection was closed").toBe(true)
      for (const c of flood.slice(0, limit)) expect(c.text).toBe("")
      // Then a normal client is served.
      const put = await fetch(`${server.url}/v1/stream/after-flood`, { method: "PUT", headers: { "Content-Type": "text/plain" } })
      expect(put.status).toBe(201)
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("a head that arrives whole and promptly on a connection idle for a while is served: the header deadline starts at its first byte", async () => {
    const server = await startOrdo({ args: ["--header-timeout", "500ms", "--idle-timeout", "30s"] })
    try {
      const c = await connect(server.port)
      await sleep(1500)
      c.socket.write("GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
      const until = Date.now() + scaled(2000)
      while (!c.text.includes("\r\n\r\n") && Date.now() < until) await sleep(20)
      expect(c.text).toMatch(/^HTTP\/1\.1 200 /)
      c.socket.destroy()
    } finally {
      await server.stop()
      server.cleanup()
    }
  })
})
