// Regression tests for the defects a hostile-input probe found (issue 16), one per defect, each
// named for what broke: request smuggling through an unsupported Transfer-Encoding, a request
// without Host, a Host echoed unchecked into Location, bytes that are not UTF-8 in names and in
// what errors echo, and a Stream-Forked-From that was not percent-decoded.
import net from "node:net"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectError, request } from "../support/api.mjs"

let server
let base
beforeAll(async () => {
  server = await startOrdo()
  base = server.url
})
afterAll(async () => {
  await server?.stop()
  server?.cleanup()
})

/** Sends raw bytes on a new connection; resolves with everything received once the server closes it (or after 5 s). */
function exchange(bytes) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port: server.port })
    const chunks = []
    let closed = false
    const done = () => resolve({ text: Buffer.concat(chunks).toString("latin1"), bytes: Buffer.concat(chunks), closed })
    const timer = setTimeout(() => {
      socket.destroy()
      done()
    }, 5000)
    socket.on("connect", () => socket.write(bytes))
    socket.on("data", (c) => chunks.push(c))
    socket.on("error", () => {})
    socket.on("close", () => {
      closed = true
      clearTimeout(timer)
      done()
    })
  })
}

const statusLines = (text) => text.match(/^HTTP\/1\.1 \d{3}/gm) ?? []
const bodyOf = (text) => JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4))
/** Decodes as UTF-8 and throws on any invalid byte. */
const strictUtf8 = (bytes) => new TextDecoder("utf-8", { fatal: true }).decode(bytes)

describe("request smuggling", () => {
  test("an unsupported Transfer-Encoding gets 501 and a closed connection: its body never runs as the next request", async () => {
    const put = await request(base, "PUT", "/v1/stream/canary", { headers: { "Content-Type": "text/plain" } })
    expect(put.status).toBe(201)
    await request(base, "POST", "/v1/stream/canary", { headers: { "Content-Type": "text/plain" }, body: "secret" })
    for (const te of ["gzip", "xchunked", "chunked, identity", "identity", "gzip, chunked"]) {
      for (const method of ["POST", "GET"]) {
        const smuggled = "GET /v1/stream/canary?offset=-1 HTTP/1.1\r\nHost: x\r\n\r\n"
        const r = await exchange(
          `${method} /v1/stream/canary HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: ${te}\r\n\r\n${smuggled}`,
        )
        const what = `${method} with Transfer-Encoding: ${te}`
        expect(statusLines(r.text), `${what}: ${r.text}`).toEqual(["HTTP/1.1 501"])
        expect(r.text, what).not.toContain("secret")
        expect(r.closed, what).toBe(true)
        expect(bodyOf(r.text).error.code, what).toBe("unsupported_transfer_encoding")
      }
    }
  })

  test("chunked twice is refused (the parser's 400 or our 501) and closed; chunked alone still works", async () => {
    const r = await exchange("POST /v1/stream/canary HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(statusLines(r.text).length, r.text).toBe(1)
    expect(["HTTP/1.1 400", "HTTP/1.1 501"]).toContain(statusLines(r.text)[0])
    expect(r.closed).toBe(true)
    const ok = await exchange("POST /v1/stream/canary HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    expect(statusLines(ok.text)).toEqual(["HTTP/1.1 204"])
  })

  test("an HTTP/1.0 request with Transfer-Encoding is faulty framing: 400 and closed", async () => {
    const r = await exchange("POST /v1/stream/canary HTTP/1.0\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    expect(statusLines(r.text.replace(/^HTTP\/1\.0/gm, "HTTP/1.1"))).toEqual(["HTTP/1.1 400"])
    expect(bodyOf(r.text).error.code).toBe("invalid_transfer_encoding")
    expect(r.closed).toBe(true)
  })
})

describe("Host", () => {
  test("an HTTP/1.1 request without Host gets 400 missing_host (RFC 9112 §3.2)", async () => {
    const r = await exchange("GET /health HTTP/1.1\r\n\r\n")
    expect(statusLines(r.text)).toEqual(["HTTP/1.1 400"])
    expect(bodyOf(r.text).error.code).toBe("missing_host")
    expect(r.closed).toBe(true)
    // HTTP/1.0 may omit it.
    const old = await exchange("GET /health HTTP/1.0\r\n\r\n")
    expect(old.text.startsWith("HTTP/1.0 200") || old.text.startsWith("HTTP/1.1 200"), old.text).toBe(true)
  })

  test("a Host that is not host[:port] is refused and never copied into Location", async () => {
    for (const host of ['evil.example:99/"<>', "user@evil.example", "a b", "x:99999999"]) {
      const r = await exchange(`PUT /v1/stream/host-check HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n`)
      expect(statusLines(r.text), host).toEqual(["HTTP/1.1 400"])
      expect(bodyOf(r.text).error.code, host).toBe("invalid_host")
      expect(r.text, host).not.toMatch(/^Location:/im)
    }
    const twice = await exchange("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    expect(bodyOf(twice.text).error.code).toBe("invalid_host")
    // A valid Host is what Location is built from.
    const ok = await exchange("PUT /v1/stream/host-ok HTTP/1.1\r\nHost: ordo.example:8080\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    expect(statusLines(ok.text)).toEqual(["HTTP/1.1 201"])
    expect(ok.text).toMatch(/^Location: http:\/\/ordo\.example:8080\/v1\/stream\/host-ok\r$/im)
  })
})

describe("names and echoed bytes are UTF-8", () => {
  test("stream paths that are not UTF-8 once decoded are refused with 400 invalid_stream_path", async () => {
    for (const bad of ["a%ffb", "%c0%ae", "x%ed%a0%80", "ok/%80"]) {
      const res = await request(base, "PUT", `/v1/stream/${bad}`, { headers: { "Content-Type": "text/plain" } })
      expectError(res, 400, "invalid_stream_path")
      strictUtf8(Buffer.from(res.text, "utf8"))
    }
    const list = await fetch(`${base}/v1/streams`)
    strictUtf8(Buffer.from(await list.arrayBuffer()))
    // UTF-8 names are fine.
    const good = await request(base, "PUT", "/v1/stream/caf%C3%A9", { headers: { "Content-Type": "text/plain" } })
    expect(good.status, ctx(good)).toBe(201)
  })

  test("errors that quote what was sent stay valid UTF-8", async () => {
    for (const path of ["/nope%ff", "/v1/stream/x?offset=%ff", "/v1/sessions/%ff", "/v1/stream/caf%C3%A9?offset=%c0%ae"]) {
      const res = await fetch(base + path)
      const bytes = Buffer.from(await res.arrayBuffer())
      expect(res.status, path).toBeGreaterThanOrEqual(400)
      const text = strictUtf8(bytes)
      expect(JSON.parse(text).error.code, path).toBeTruthy()
    }
  })

  test("row ids and Idempotency-Keys that are not UTF-8 are refused", async () => {
    expect((await request(base, "POST", "/v1/projects", { body: { name: "Hostile" } })).status).toBe(201)
    const s = await request(base, "POST", "/v1/projects/hostile/sessions", { body: {} })
    expect(s.status, ctx(s)).toBe(201)
    const id = s.json.id
    for (const bad of ["%ff", "a%c0%ae", "%ed%a0%80"]) {
      const res = await request(base, "PUT", `/v1/sessions/${id}/rows/${bad}`, { body: { kind: "assistant", body: {} } })
      expectError(res, 400, "invalid_row_id")
    }
    const key = await new Promise((resolve) => {
      const body = '{"text":"x"}'
      exchange(Buffer.concat([
        Buffer.from(`POST /v1/sessions/${id}/commands HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k`, "latin1"),
        Buffer.from([0xff]),
        Buffer.from(`\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`, "latin1"),
      ])).then(resolve)
    })
    expect(statusLines(key.text)).toEqual(["HTTP/1.1 400"])
    expect(bodyOf(key.text).error.code).toBe("invalid_idempotency_key")
    const events = await fetch(`${base}/v1/sessions/${id}/events?offset=-1`)
    strictUtf8(Buffer.from(await events.arrayBuffer()))
  })
})

describe("Stream-Forked-From", () => {
  test("is percent-decoded like the request path: the Location a create answered names its stream", async () => {
    const created = await request(base, "PUT", "/v1/stream/sp%20ace", { headers: { "Content-Type": "text/plain" } })
    expect(created.status, ctx(created)).toBe(201)
    const location = new URL(created.headers.get("location"))
    expect(location.pathname).toBe("/v1/stream/sp%20ace")
    const fork = await request(base, "PUT", "/v1/stream/sp-fork", { headers: { "Stream-Forked-From": location.pathname } })
    expect(fork.status, ctx(fork)).toBe(201)
    const bad = await request(base, "PUT", "/v1/stream/sp-fork-2", { headers: { "Stream-Forked-From": "/v1/stream/sp%20ace?x=1" } })
    expectError(bad, 400, "invalid_fork_source")
  })
})
