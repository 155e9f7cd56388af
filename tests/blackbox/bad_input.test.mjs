// Black-box tests of how ordo answers bad input: malformed paths, offsets, headers and bodies,
// oversized requests and malformed HTTP. One `ordo serve` with a 1 MiB body limit and a 1 s
// long-poll timeout serves the whole file; every request goes to 127.0.0.1.
//
// Every error must be a JSON body {"error":{"code","message"}} with the documented code, and a
// refused write must leave the stream exactly as it was (same bytes, same Stream-Next-Offset).
import http from "node:http"
import net from "node:net"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"

const MAX_BODY = 1048576
const RAW_TIMEOUT_MS = 5000

let server
let base
let port

beforeAll(async () => {
  server = await startOrdo({ args: ["--max-body-bytes", String(MAX_BODY), "--long-poll-timeout", "1s"] })
  base = server.url
  port = server.port
})

afterAll(async () => {
  if (!server) return
  const code = await server.stop()
  const log = server.log()
  server.cleanup()
  expect(code, `ordo exit status; log:\n${log}`).toBe(0)
})

// ---- helpers ---------------------------------------------------------------------------------

let counter = 0
/** A fresh stream name (the data directory is fresh, so a counter is unique). */
const fresh = (label) => `bad-input/${label}-${++counter}`
const S = (name) => `/v1/stream/${name}`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function expectCommonHeaders(res, what = "") {
  expect(res.headers.get("x-content-type-options"), `X-Content-Type-Options ${what}`).toBe("nosniff")
  expect(res.headers.get("access-control-allow-origin"), `Access-Control-Allow-Origin ${what}`).toBe("*")
}

/**
 * One request with Node's fetch. String bodies are sent as bytes so that fetch adds no
 * Content-Type of its own. Every response is checked for the common security/CORS headers.
 */
async function call(method, path, { headers = {}, body } = {}) {
  const init = { method, headers, redirect: "manual" }
  if (body !== undefined) init.body = typeof body === "string" ? Buffer.from(body) : body
  const res = await fetch(base + path, init)
  const bytes = Buffer.from(await res.arrayBuffer())
  expectCommonHeaders(res, `on ${method} ${path.slice(0, 80)} -> ${res.status}`)
  return { status: res.status, headers: res.headers, bytes, text: bytes.toString("utf8") }
}

/** Asserts the exact error shape: status, JSON content type, {"error":{"code","message"}}. */
function expectError(res, status, code) {
  const ctx = `response ${res.status} ${res.text?.slice(0, 300)}`
  expect(res.status, ctx).toBe(status)
  expect(res.headers.get("content-type"), ctx).toBe("application/json")
  let body
  expect(() => (body = JSON.parse(res.text)), ctx).not.toThrow()
  expect(Object.keys(body), ctx).toEqual(["error"])
  expect(typeof body.error, ctx).toBe("object")
  expect(typeof body.error.code, ctx).toBe("string")
  expect(body.error.code, ctx).toBe(code)
  expect(typeof body.error.message, ctx).toBe("string")
  expect(body.error.message.length, ctx).toBeGreaterThan(0)
  return body.error
}

/** A HEAD error has no body, but still the status and common headers. */
function expectHeadError(res, status) {
  expect(res.status).toBe(status)
  expect(res.bytes.length).toBe(0)
}

async function create(name, { contentType = "text/plain", body, headers = {} } = {}) {
  const res = await call("PUT", S(name), { headers: { "Content-Type": contentType, ...headers }, body })
  expect(res.status, res.text).toBe(201)
  return res.headers.get("stream-next-offset")
}

async function append(name, body, contentType = "text/plain", headers = {}) {
  const res = await call("POST", S(name), { headers: { "Content-Type": contentType, ...headers }, body })
  expect([200, 204], res.text).toContain(res.status)
  return res.headers.get("stream-next-offset")
}

/** The stream's whole content and tail, by a catch-up read from -1 and by HEAD. */
async function snapshot(name) {
  const read = await call("GET", `${S(name)}?offset=-1`)
  expect(read.status, read.text).toBe(200)
  const head = await call("HEAD", S(name))
  expect(head.status).toBe(200)
  return {
    body: read.bytes.toString("base64"),
    next: read.headers.get("stream-next-offset"),
    headNext: head.headers.get("stream-next-offset"),
    closed: head.headers.get("stream-closed"),
  }
}

async function expectMissing(name) {
  const head = await call("HEAD", S(name))
  expect(head.status, `HEAD ${S(name)} should be 404: no stream may have been created`).toBe(404)
}

function parseResponse(buf) {
  const sep = buf.indexOf("\r\n\r\n")
  if (sep < 0) return null
  const head = buf.subarray(0, sep).toString("latin1")
  const [statusLine, ...lines] = head.split("\r\n")
  const m = statusLine.match(/^HTTP\/1\.[01] (\d{3})/)
  if (!m) return null
  const map = new Map()
  for (const line of lines) {
    const i = line.indexOf(":")
    map.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim())
  }
  const length = Number(map.get("content-length") ?? 0)
  const bytes = buf.subarray(sep + 4, sep + 4 + length)
  return {
    status: Number(m[1]),
    headers: { get: (n) => map.get(n.toLowerCase()) ?? null },
    bytes,
    text: bytes.toString("utf8"),
  }
}

/** A raw TCP connection to the server that records everything it receives. */
async function rawConnect() {
  const socket = net.connect({ host: "127.0.0.1", port })
  const state = { chunks: [], ended: false, closed: false, error: null }
  socket.on("data", (c) => state.chunks.push(c))
  socket.on("end", () => (state.ended = true))
  socket.on("error", (e) => (state.error = e))
  const closed = new Promise((r) => socket.on("close", () => ((state.closed = true), r(true))))
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve)
    socket.once("error", reject)
  })
  const received = () => Buffer.concat(state.chunks)
  return {
    socket,
    state,
    received,
    response: () => parseResponse(received()),
    /** Resolves true when the server closed the connection, false after ms. */
    waitClose: (ms = RAW_TIMEOUT_MS) => Promise.race([closed, sleep(ms).then(() => false)]),
    write: (data) =>
      new Promise((resolve) => {
        if (socket.destroyed) return resolve(false)
        socket.write(data, (err) => resolve(!err))
      }),
    destroy: () => socket.destroy(),
  }
}

/** Sends bytes on a new connection and waits (bounded) for the server to close it. */
async function rawExchange(data) {
  const c = await rawConnect()
  await c.write(data)
  const closed = await c.waitClose()
  c.destroy()
  return { response: c.response(), closed, raw: c.received(), error: c.state.error }
}

/** A complete request with Connection: close, sent byte for byte (no URL normalisation). */
function rawRequest(method, target, { headers = {}, body } = {}) {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body)
  let text = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`
  for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`
  if (body !== undefined || method === "POST" || method === "PUT") text += `Content-Length: ${payload.length}\r\n`
  text += "\r\n"
  return rawExchange(Buffer.concat([Buffer.from(text, "latin1"), payload])).then((r) => {
    expect(r.response, `no HTTP response to ${method} ${target.slice(0, 80)}: ${r.raw.toString("latin1").slice(0, 200)}`).not.toBeNull()
    expectCommonHeaders(r.response, `on raw ${method} ${target.slice(0, 80)}`)
    return r.response
  })
}

/** Whether a fresh connection is served normally (one failing connection affects no other). */
async function expectServerHealthy() {
  const res = await call("GET", "/health")
  expect(res.status).toBe(200)
  const name = fresh("healthy")
  await create(name)
  await append(name, "still-serving")
  const read = await call("GET", `${S(name)}?offset=-1`)
  expect(read.status).toBe(200)
  expect(read.text).toBe("still-serving")
}

// ---- paths and routes ------------------------------------------------------------------------

describe("stream paths", () => {
  const longName = "p".repeat(1025)
  const badPaths = [
    ["the empty stream path", "/v1/stream/", []],
    ["a '..' segment", "/v1/stream/a/../b", ["b", "a/b"]],
    ["a percent-encoded '..' segment", "/v1/stream/a/%2E%2E/b", ["b", "a/b"]],
    ["a '.' segment", "/v1/stream/./b", ["b"]],
    ["a trailing '.' segment", "/v1/stream/a/.", ["a"]],
    ["an empty segment (a//b)", "/v1/stream/a//b", ["a/b", "a"]],
    ["a leading empty segment", "/v1/stream//a", ["a"]],
    ["a trailing slash", "/v1/stream/a/", ["a"]],
    ["a path over 1024 bytes", `/v1/stream/${longName}`, []],
    ["the reserved __ds prefix", "/v1/stream/__ds/subscriptions", []],
    ["the bare reserved __ds segment", "/v1/stream/__ds", []],
    ["a percent-encoded NUL byte", "/v1/stream/a%00b", []],
    ["a percent-encoded newline", "/v1/stream/a%0Ab", []],
  ]

  for (const [label, target, namesThatMustNotExist] of badPaths) {
    test(`${label} is refused with 400 invalid_stream_path for every method and creates nothing`, async () => {
      for (const method of ["PUT", "POST", "GET", "DELETE"]) {
        const res = await rawRequest(method, target, {
          headers: method === "PUT" || method === "POST" ? { "Content-Type": "text/plain" } : {},
          body: method === "PUT" || method === "POST" ? "payload" : undefined,
        })
        expectError(res, 400, "invalid_stream_path")
      }
      const head = await rawRequest("HEAD", target)
      expectHeadError(head, 400)
      for (const name of namesThatMustNotExist) await expectMissing(name)
    })
  }

  test("a stream path of exactly 1024 bytes is accepted (the limit is inclusive)", async () => {
    const name = "q".repeat(1024)
    const res = await call("PUT", S(name), { headers: { "Content-Type": "text/plain" } })
    expect(res.status).toBe(201)
    const head = await call("HEAD", S(name))
    expect(head.status).toBe(200)
  })

  test("__ds is reserved only as the first segment: a/__ds is an ordinary stream", async () => {
    const res = await call("PUT", S(`${fresh("nested")}/__ds`), { headers: { "Content-Type": "text/plain" } })
    expect(res.status).toBe(201)
  })

  // "/" is the dashboard and "/v1/streams" the stream list (dashboard_assets.test.mjs).
  for (const target of ["/ui", "/index.html", "/v1/stream", "/v1/streams/x", "/v2/stream/x", "/foo", "/v1/x/stream/y"]) {
    test(`unknown route ${target} answers 404 route_not_found for GET, PUT, POST and DELETE`, async () => {
      for (const method of ["GET", "PUT", "POST", "DELETE"]) {
        const res = await rawRequest(method, target, {
          headers: method === "PUT" || method === "POST" ? { "Content-Type": "text/plain" } : {},
          body: method === "PUT" || method === "POST" ? "x" : undefined,
        })
        expectError(res, 404, "route_not_found")
      }
    })
  }

  test("PATCH on a stream is refused with 405 method_not_allowed and an Allow header, writing nothing", async () => {
    const name = fresh("patch")
    await create(name, { body: "before" })
    const before = await snapshot(name)
    const res = await call("PATCH", S(name), { headers: { "Content-Type": "text/plain" }, body: "patched" })
    expectError(res, 405, "method_not_allowed")
    const allow = res.headers.get("allow")
    expect(allow).not.toBeNull()
    const methods = allow.split(",").map((m) => m.trim())
    for (const m of ["GET", "POST", "PUT", "DELETE", "HEAD"]) expect(methods).toContain(m)
    expect(methods).not.toContain("PATCH")
    expect(await snapshot(name)).toEqual(before)
    // Also on a path with no stream: the method is refused before the stream is looked up.
    const missing = await call("PATCH", S(fresh("patch-missing")), { headers: { "Content-Type": "text/plain" }, body: "x" })
    expectError(missing, 405, "method_not_allowed")
    expect(missing.headers.get("allow")).toBe(allow)
  })

  test("methods unknown to streams (TRACE, an invented verb) get 405 with an Allow header", async () => {
    const name = fresh("verbs")
    await create(name, { body: "v" })
    for (const method of ["TRACE", "FROB"]) {
      const res = await rawRequest(method, S(name))
      expectError(res, 405, "method_not_allowed")
      expect(res.headers.get("allow")).toMatch(/GET/)
    }
    expect((await snapshot(name)).body).toBe(Buffer.from("v").toString("base64"))
  })

  test("a request target that is not an origin-form path is refused with 400 invalid_target", async () => {
    for (const target of ["foo", "/v1/stream/a%zz"]) {
      const res = await rawRequest("GET", target)
      expectError(res, 400, "invalid_target")
    }
  })

  test("reading, appending to or deleting a missing stream answers 404 stream_not_found", async () => {
    const name = fresh("missing")
    expectError(await call("GET", `${S(name)}?offset=-1`), 404, "stream_not_found")
    expectError(await call("GET", `${S(name)}?offset=-1&live=long-poll`), 404, "stream_not_found")
    expectError(await call("DELETE", S(name)), 404, "stream_not_found")
    expectHeadError(await call("HEAD", S(name)), 404)
    await expectMissing(name)
  })
})

// ---- offsets on GET --------------------------------------------------------------------------

describe("read offsets", () => {
  const name = "bad-input/reads"
  let afterFirst
  let tail

  beforeAll(async () => {
    await create(name)
    afterFirst = await append(name, "first;")
    tail = await append(name, "second;")
  })

  test("an empty offset parameter is refused with 400 invalid_offset", async () => {
    expectError(await call("GET", `${S(name)}?offset=`), 400, "invalid_offset")
    expectError(await call("GET", `${S(name)}?offset`), 400, "invalid_offset")
  })

  test("two offset parameters are refused with 400 invalid_offset, even when equal", async () => {
    expectError(await call("GET", `${S(name)}?offset=-1&offset=-1`), 400, "invalid_offset")
    expectError(await call("GET", `${S(name)}?offset=-1&offset=${tail}`), 400, "invalid_offset")
    expectError(await call("GET", `${S(name)}?offset=${tail}&offset=now&live=long-poll`), 400, "invalid_offset")
  })

  const malformed = [
    ["abc", "abc"],
    ["a comma list", "0,1"],
    ["uppercase hex", "00000000ABCDEF00_0000000000000001"],
    ["one character short", "0000000000000001_000000000000001"],
    ["one character long", "0000000000000001_00000000000000001"],
    ["no underscore", "0000000000000001-0000000000000001"],
    ["letters in the position", "0000000000000001_000000000000000a"],
    ["-2", "-2"],
    ["NOW in capitals", "NOW"],
    ["+1", "+1"],
    ["a space", "%20"],
  ]
  for (const [label, value] of malformed) {
    test(`a malformed offset (${label}) is refused with 400 invalid_offset`, async () => {
      expectError(await call("GET", `${S(name)}?offset=${value}`), 400, "invalid_offset")
      expectError(await call("GET", `${S(name)}?offset=${value}&live=long-poll`), 400, "invalid_offset")
    })
  }

  test("a real offset with its hex digits uppercased is refused with 400 invalid_offset", async () => {
    const upper = tail.toUpperCase()
    // A prefix without letters cannot be uppercased; fall back to a token that surely has some.
    const value = upper !== tail ? upper : `ABCDEF${tail.slice(6)}`
    expectError(await call("GET", `${S(name)}?offset=${value}`), 400, "invalid_offset")
  })

  test("live=bogus (and an empty live) is refused with 400 invalid_live_mode", async () => {
    expectError(await call("GET", `${S(name)}?offset=-1&live=bogus`), 400, "invalid_live_mode")
    expectError(await call("GET", `${S(name)}?offset=-1&live=`), 400, "invalid_live_mode")
  })

  test("a live read without an offset is refused with 400 missing_offset", async () => {
    expectError(await call("GET", `${S(name)}?live=long-poll`), 400, "missing_offset")
    expectError(await call("GET", `${S(name)}?live=sse`), 400, "missing_offset")
  })

  test("an offset minted for a different stream is refused with 410 offset_not_for_stream and no data", async () => {
    const a = fresh("stream-a")
    const b = fresh("stream-b")
    await create(a)
    const aTail = await append(a, "data-of-a")
    const bStart = await create(b)
    await append(b, "data-of-b")
    for (const [stream, offset] of [
      [b, aTail],
      [a, bStart],
    ]) {
      for (const q of [`offset=${offset}`, `offset=${offset}&live=long-poll`, `offset=${offset}&live=sse`]) {
        const res = await call("GET", `${S(stream)}?${q}`)
        expectError(res, 410, "offset_not_for_stream")
        expect(res.text).not.toContain("data-of-")
      }
    }
  })

  test("an offset from a deleted stream re-created at the same path is refused with 410 offset_not_for_stream, never the new data", async () => {
    const p = fresh("recreated")
    await create(p, { body: "old-0;" })
    const oldMid = await append(p, "old-1;")
    const oldTail = await append(p, "old-2;")
    const del = await call("DELETE", S(p))
    expect(del.status).toBe(204)
    await create(p)
    await append(p, "new-data;")
    for (const offset of [oldMid, oldTail]) {
      for (const q of [`offset=${offset}`, `offset=${offset}&live=long-poll`, `offset=${offset}&live=sse`]) {
        const res = await call("GET", `${S(p)}?${q}`)
        expectError(res, 410, "offset_not_for_stream")
        expect(res.text).not.toContain("new-data")
        expect(res.text).not.toContain("old-")
      }
    }
    const fromStart = await call("GET", `${S(p)}?offset=-1`)
    expect(fromStart.text).toBe("new-data;")
  })

  test("an offset past the stream's tail is refused with 410 offset_beyond_tail", async () => {
    // Same prefix, position one past the tail (offsets are prefix_position, 16 decimal digits).
    const [prefix, position] = tail.split("_")
    const beyond = `${prefix}_${String(Number(position) + 1).padStart(16, "0")}`
    const res = await call("GET", `${S(name)}?offset=${beyond}`)
    expectError(res, 410, "offset_beyond_tail")
    expect(res.text).not.toContain("first;")
  })

  test("valid offsets still read correctly after all the refused ones", async () => {
    const res = await call("GET", `${S(name)}?offset=${afterFirst}`)
    expect(res.status).toBe(200)
    expect(res.text).toBe("second;")
    expect(res.headers.get("stream-next-offset")).toBe(tail)
  })
})

// ---- PUT: create -----------------------------------------------------------------------------

describe("create (PUT) header validation", () => {
  const source = "bad-input/fork-source"
  let sourceTail
  let sourceBefore

  beforeAll(async () => {
    await create(source, { body: "src-0;" })
    sourceTail = await append(source, "src-1;")
    sourceBefore = await snapshot(source)
  })

  async function expectRefusedCreate(headers, status, code, body) {
    const name = fresh("create")
    const res = await call("PUT", S(name), { headers, body })
    const error = expectError(res, status, code)
    await expectMissing(name)
    return error
  }

  for (const ttl of ["-1", "01", "1.5", "abc", "1e3", "+5", "", "0x10", "315360001", "99999999999999999999999"]) {
    test(`Stream-TTL '${ttl}' is refused with 400 invalid_ttl and no stream is created`, async () => {
      await expectRefusedCreate({ "Content-Type": "text/plain", "Stream-TTL": ttl }, 400, "invalid_ttl")
    })
  }

  for (const at of [
    "tomorrow",
    "2030-01-01",
    "2030-01-01T00:00:00",
    "2030-13-01T00:00:00Z",
    "2030-02-30T00:00:00Z",
    "2030-01-01T24:00:00Z",
    "2030-01-01T00:00:00+0100",
    "2030-01-01T00:00:00.Z",
    "1893456000",
    "",
  ]) {
    test(`Stream-Expires-At '${at}' is refused with 400 invalid_expires_at and no stream is created`, async () => {
      await expectRefusedCreate({ "Content-Type": "text/plain", "Stream-Expires-At": at }, 400, "invalid_expires_at")
    })
  }

  test("Stream-TTL together with Stream-Expires-At is refused with 400 conflicting_expiry", async () => {
    await expectRefusedCreate(
      { "Content-Type": "text/plain", "Stream-TTL": "60", "Stream-Expires-At": "2030-01-01T00:00:00Z" },
      400,
      "conflicting_expiry",
    )
  })

  for (const ct of ["text", "a b/c", "/json", "text/", "text/plain; charset", "text/plain;=x"]) {
    test(`Content-Type '${ct}' on create is refused with 400 invalid_content_type`, async () => {
      await expectRefusedCreate({ "Content-Type": ct }, 400, "invalid_content_type", "initial")
    })
  }

  test("Stream-Fork-Offset or Stream-Fork-Sub-Offset without Stream-Forked-From is refused with 400 missing_fork_source", async () => {
    await expectRefusedCreate({ "Content-Type": "text/plain", "Stream-Fork-Offset": sourceTail }, 400, "missing_fork_source")
    await expectRefusedCreate({ "Content-Type": "text/plain", "Stream-Fork-Sub-Offset": "0" }, 400, "missing_fork_source")
    expect(await snapshot(source)).toEqual(sourceBefore)
  })

  for (const from of ["fork-source", "bad-input/fork-source", "/other/bad-input/fork-source", `http://127.0.0.1/v1/stream/bad-input/fork-source`, "/v1/stream"]) {
    test(`Stream-Forked-From '${from}' (not under /v1/stream/) is refused with 400 invalid_fork_source`, async () => {
      await expectRefusedCreate({ "Stream-Forked-From": from }, 400, "invalid_fork_source")
    })
  }

  test("Stream-Forked-From naming an invalid stream path is refused with 400 invalid_stream_path", async () => {
    await expectRefusedCreate({ "Stream-Forked-From": "/v1/stream/bad-input/../fork-source" }, 400, "invalid_stream_path")
    await expectRefusedCreate({ "Stream-Forked-From": "/v1/stream/" }, 400, "invalid_stream_path")
  })

  for (const offset of ["abc", "now", "", "0,1", "00000000ABCDEF00_0000000000000001"]) {
    test(`a malformed Stream-Fork-Offset '${offset}' is refused with 400 invalid_fork_offset`, async () => {
      await expectRefusedCreate({ "Stream-Forked-From": S(source), "Stream-Fork-Offset": offset }, 400, "invalid_fork_offset")
    })
  }

  test("a Stream-Fork-Offset from another stream or beyond the source's tail is refused with 400 invalid_fork_offset", async () => {
    const other = fresh("other")
    await create(other)
    const otherTail = await append(other, "x")
    await expectRefusedCreate({ "Stream-Forked-From": S(source), "Stream-Fork-Offset": otherTail }, 400, "invalid_fork_offset")
    const [prefix, position] = sourceTail.split("_")
    const beyond = `${prefix}_${String(Number(position) + 1).padStart(16, "0")}`
    await expectRefusedCreate({ "Stream-Forked-From": S(source), "Stream-Fork-Offset": beyond }, 400, "invalid_fork_offset")
    expect(await snapshot(source)).toEqual(sourceBefore)
  })

  for (const sub of ["-1", "01", "abc", "1.5", "", "+1", "9007199254740992"]) {
    test(`a malformed Stream-Fork-Sub-Offset '${sub}' is refused with 400 invalid_fork_sub_offset`, async () => {
      await expectRefusedCreate(
        { "Stream-Forked-From": S(source), "Stream-Fork-Offset": sourceTail, "Stream-Fork-Sub-Offset": sub },
        400,
        "invalid_fork_sub_offset",
      )
    })
  }

  test("a positive Stream-Fork-Sub-Offset without Stream-Fork-Offset, or past the source's data, is refused with 400 invalid_fork_sub_offset", async () => {
    await expectRefusedCreate({ "Stream-Forked-From": S(source), "Stream-Fork-Sub-Offset": "1" }, 400, "invalid_fork_sub_offset")
    await expectRefusedCreate(
      { "Stream-Forked-From": S(source), "Stream-Fork-Offset": sourceTail, "Stream-Fork-Sub-Offset": "1" },
      400,
      "invalid_fork_sub_offset",
    )
    expect(await snapshot(source)).toEqual(sourceBefore)
  })

  test("forking from a missing stream is refused with 404 fork_source_not_found", async () => {
    await expectRefusedCreate({ "Stream-Forked-From": S(fresh("no-such-source")) }, 404, "fork_source_not_found")
  })

  test("forking with a Content-Type different from the source's is refused with 409 content_type_mismatch", async () => {
    await expectRefusedCreate({ "Stream-Forked-From": S(source), "Content-Type": "application/json" }, 409, "content_type_mismatch")
    expect(await snapshot(source)).toEqual(sourceBefore)
  })

  const badJsonBodies = [
    ["a truncated object", "{"],
    ["a trailing comma", "[1,]"],
    ["two top-level values", '{"a":1}{"b":2}'],
    ["a bare word", "hello"],
    ["a comment", "/* c */ 1"],
    ["nesting 1000 deep", "[".repeat(1000) + "]".repeat(1000)],
    ["invalid UTF-8 in a string", Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])],
  ]
  for (const [label, body] of badJsonBodies) {
    test(`a JSON stream created with invalid JSON (${label}) is refused with 400 invalid_json and does not exist afterwards`, async () => {
      await expectRefusedCreate({ "Content-Type": "application/json" }, 400, "invalid_json", body)
    })
  }

  test("a JSON stream created with an empty array is valid and empty", async () => {
    const name = fresh("json-empty")
    await create(name, { contentType: "application/json", body: "[]" })
    const read = await call("GET", `${S(name)}?offset=-1`)
    expect(read.text).toBe("[]")
  })
})

// ---- POST: append ----------------------------------------------------------------------------

describe("append (POST) validation", () => {
  const text = "bad-input/append-text"
  const json = "bad-input/append-json"

  beforeAll(async () => {
    await create(text, { body: "seed;" })
    await create(json, { contentType: "application/json", body: '[{"n":1},{"n":2}]' })
  })

  /** Sends the append, checks the error, and checks the stream did not change at all. */
  async function expectRefusedAppend(stream, headers, body, status, code) {
    const before = await snapshot(stream)
    const res = await call("POST", S(stream), { headers, body })
    const error = expectError(res, status, code)
    const after = await snapshot(stream)
    expect(after, "a refused append must leave the stream unchanged").toEqual(before)
    expect(after.next).toBe(before.next)
    return error
  }

  test("an empty body without Stream-Closed is refused with 400 empty_body", async () => {
    await expectRefusedAppend(text, { "Content-Type": "text/plain" }, "", 400, "empty_body")
    await expectRefusedAppend(text, {}, undefined, 400, "empty_body")
    await expectRefusedAppend(text, { "Content-Type": "text/plain", "Stream-Closed": "false" }, "", 400, "empty_body")
    await expectRefusedAppend(json, { "Content-Type": "application/json" }, "", 400, "empty_body")
  })

  test("a body without Content-Type is refused with 400 missing_content_type", async () => {
    await expectRefusedAppend(text, {}, "no-type", 400, "missing_content_type")
    await expectRefusedAppend(json, {}, '{"n":3}', 400, "missing_content_type")
  })

  for (const ct of ["text", "a b/c", "text/", "/plain", "text/plain; charset"]) {
    test(`an append with invalid Content-Type '${ct}' is refused with 400 invalid_content_type`, async () => {
      await expectRefusedAppend(text, { "Content-Type": ct }, "x", 400, "invalid_content_type")
    })
  }

  test("an append whose Content-Type differs from the stream's is refused with 409 content_type_mismatch", async () => {
    await expectRefusedAppend(text, { "Content-Type": "application/octet-stream" }, "x", 409, "content_type_mismatch")
    await expectRefusedAppend(text, { "Content-Type": "application/json" }, '{"a":1}', 409, "content_type_mismatch")
    await expectRefusedAppend(json, { "Content-Type": "text/plain" }, '{"n":3}', 409, "content_type_mismatch")
  })

  const partial = [
    ["only Producer-Id", { "Producer-Id": "p" }],
    ["only Producer-Epoch", { "Producer-Epoch": "0" }],
    ["only Producer-Seq", { "Producer-Seq": "0" }],
    ["Producer-Id and Producer-Epoch", { "Producer-Id": "p", "Producer-Epoch": "0" }],
    ["Producer-Id and Producer-Seq", { "Producer-Id": "p", "Producer-Seq": "0" }],
    ["Producer-Epoch and Producer-Seq", { "Producer-Epoch": "0", "Producer-Seq": "0" }],
  ]
  for (const [label, headers] of partial) {
    test(`append with ${label} is refused with 400 naming the missing headers`, async () => {
      const error = await expectRefusedAppend(
        text,
        { "Content-Type": "text/plain", ...headers },
        "x",
        400,
        "incomplete_producer_headers",
      )
      for (const h of ["Producer-Id", "Producer-Epoch", "Producer-Seq"]) {
        if (!(h in headers)) expect(error.message).toContain(h)
      }
    })
  }

  test("an empty Producer-Id is refused with 400 invalid_producer_id", async () => {
    await expectRefusedAppend(
      text,
      { "Content-Type": "text/plain", "Producer-Id": "", "Producer-Epoch": "0", "Producer-Seq": "0" },
      "x",
      400,
      "invalid_producer_id",
    )
  })

  const badIntegers = ["abc", "-1", "01", "1.5", "+1", "1e3", "", "9007199254740992", "18446744073709551616"]
  for (const v of badIntegers) {
    test(`Producer-Epoch '${v}' is refused with 400 invalid_producer_epoch`, async () => {
      await expectRefusedAppend(
        text,
        { "Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": v, "Producer-Seq": "0" },
        "x",
        400,
        "invalid_producer_epoch",
      )
    })
    test(`Producer-Seq '${v}' is refused with 400 invalid_producer_seq`, async () => {
      await expectRefusedAppend(
        text,
        { "Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": v },
        "x",
        400,
        "invalid_producer_seq",
      )
    })
  }

  test("Producer-Epoch 2^53-1 is the largest accepted value", async () => {
    const name = fresh("max-epoch")
    await create(name)
    const res = await call("POST", S(name), {
      headers: { "Content-Type": "text/plain", "Producer-Id": "p", "Producer-Epoch": "9007199254740991", "Producer-Seq": "0" },
      body: "ok",
    })
    expect(res.status).toBe(200)
    expect(res.headers.get("producer-epoch")).toBe("9007199254740991")
  })

  test("an empty Stream-Seq is refused with 400 invalid_stream_seq", async () => {
    await expectRefusedAppend(text, { "Content-Type": "text/plain", "Stream-Seq": "" }, "x", 400, "invalid_stream_seq")
  })

  const badJson = [
    ["a truncated object", "{"],
    ["a trailing comma", "[1,]"],
    ["two top-level values", '{"a":1} {"b":2}'],
    ["single quotes", "{'a':1}"],
    ["a bare word", "hello"],
    ["NaN", "NaN"],
    ["a comment", '// c\n{"a":1}'],
  ]
  for (const [label, body] of badJson) {
    test(`invalid JSON (${label}) on a JSON stream is refused with 400 invalid_json`, async () => {
      await expectRefusedAppend(json, { "Content-Type": "application/json" }, body, 400, "invalid_json")
    })
  }

  test("an empty JSON array on a JSON stream is refused with 400 empty_json_array", async () => {
    await expectRefusedAppend(json, { "Content-Type": "application/json" }, "[]", 400, "empty_json_array")
    await expectRefusedAppend(json, { "Content-Type": "application/json" }, " [ \n ] ", 400, "empty_json_array")
  })

  test("JSON nested 1000 deep is refused with 400 invalid_json", async () => {
    await expectRefusedAppend(json, { "Content-Type": "application/json" }, "[".repeat(1000) + "]".repeat(1000), 400, "invalid_json")
    await expectRefusedAppend(json, { "Content-Type": "application/json" }, '{"a":'.repeat(1000) + "1" + "}".repeat(1000), 400, "invalid_json")
  })

  const badUtf8 = [
    ["a 0xFF byte", [0xff]],
    ["a truncated 3-byte sequence", [0xe2, 0x82]],
    ["an overlong encoding of '/'", [0xc0, 0xaf]],
    ["a UTF-8 encoded surrogate", [0xed, 0xa0, 0x80]],
    ["a lone continuation byte", [0x80]],
  ]
  for (const [label, bytes] of badUtf8) {
    test(`invalid UTF-8 (${label}) inside a JSON string is refused with 400 invalid_json`, async () => {
      const body = Buffer.concat([Buffer.from('{"s":"a'), Buffer.from(bytes), Buffer.from('b"}')])
      await expectRefusedAppend(json, { "Content-Type": "application/json" }, body, 400, "invalid_json")
    })
  }

  test("an append to a missing stream is refused with 404 stream_not_found and creates nothing", async () => {
    const name = fresh("append-missing")
    expectError(await call("POST", S(name), { headers: { "Content-Type": "text/plain" }, body: "x" }), 404, "stream_not_found")
    expectError(await call("POST", S(name), { headers: { "Stream-Closed": "true" } }), 404, "stream_not_found")
    await expectMissing(name)
  })

  test("after every refused append both streams hold only their original data", async () => {
    const t = await call("GET", `${S(text)}?offset=-1`)
    expect(t.text).toBe("seed;")
    const j = await call("GET", `${S(json)}?offset=-1`)
    expect(JSON.parse(j.text)).toEqual([{ n: 1 }, { n: 2 }])
    // And the streams are still open and writable.
    await append(text, "more;")
    expect((await call("GET", `${S(text)}?offset=-1`)).text).toBe("seed;more;")
  })
})

// ---- body limits -----------------------------------------------------------------------------

describe("body limits (--max-body-bytes 1048576)", () => {
  test("a Content-Length over the limit gets 413 body_too_large before the body is sent, and nothing is appended", async () => {
    const name = fresh("limit-cl")
    await create(name, { body: "kept;" })
    const before = await snapshot(name)
    const c = await rawConnect()
    const started = Date.now()
    // Only the header section: the server must answer without waiting for the body.
    await c.write(
      `POST ${S(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`,
    )
    const closed = await c.waitClose()
    const elapsed = Date.now() - started
    c.destroy()
    const res = c.response()
    expect(res, `raw reply: ${c.received().toString("latin1")}`).not.toBeNull()
    expectCommonHeaders(res)
    expectError(res, 413, "body_too_large")
    expect(closed, "the server closes the connection after refusing the body").toBe(true)
    expect(elapsed).toBeLessThan(RAW_TIMEOUT_MS)
    expect(await snapshot(name)).toEqual(before)
    await expectServerHealthy()
  })

  test("a much larger Content-Length on PUT also gets 413 and creates no stream", async () => {
    const name = fresh("limit-put")
    const c = await rawConnect()
    await c.write(`PUT ${S(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 10737418240\r\n\r\n`)
    const closed = await c.waitClose()
    c.destroy()
    const res = c.response()
    expect(res).not.toBeNull()
    expectCommonHeaders(res)
    expectError(res, 413, "body_too_large")
    expect(closed).toBe(true)
    await expectMissing(name)
  })

  test("a chunked body that grows past the limit gets 413 body_too_large, nothing is appended, and the server keeps serving", async () => {
    const name = fresh("limit-chunked")
    await create(name, { body: "kept;" })
    const before = await snapshot(name)
    const c = await rawConnect()
    await c.write(`POST ${S(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`)
    const piece = Buffer.alloc(65536, "z")
    // 16 chunks reach the limit exactly; the 17th goes past it. Stop as soon as the server answers.
    for (let i = 0; i < 17 && c.state.chunks.length === 0 && !c.state.closed; i++) {
      const ok = await c.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]))
      if (!ok) break
    }
    const closed = await c.waitClose()
    c.destroy()
    const res = c.response()
    expect(res, `raw reply: ${c.received().toString("latin1").slice(0, 300)} error=${c.state.error}`).not.toBeNull()
    expectCommonHeaders(res)
    expectError(res, 413, "body_too_large")
    expect(closed).toBe(true)
    expect(await snapshot(name)).toEqual(before)
    await expectServerHealthy()
  })

  test("a body of exactly the limit (Content-Length) is accepted and stored whole", async () => {
    const name = fresh("limit-exact")
    const start = await create(name)
    const body = Buffer.alloc(MAX_BODY, "e")
    const res = await call("POST", S(name), { headers: { "Content-Type": "text/plain" }, body })
    expect(res.status, res.text).toBe(204)
    const read = await call("GET", `${S(name)}?offset=${start}`)
    expect(read.status).toBe(200)
    expect(read.bytes.length).toBe(MAX_BODY)
    expect(read.bytes.equals(body)).toBe(true)
    expect(read.headers.get("stream-next-offset")).toBe(res.headers.get("stream-next-offset"))
  })

  test("a chunked body of exactly the limit is accepted", async () => {
    const name = fresh("limit-exact-chunked")
    await create(name)
    const c = await rawConnect()
    let data = `POST ${S(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`
    const piece = "c".repeat(65536)
    for (let i = 0; i < 16; i++) data += `10000\r\n${piece}\r\n`
    data += "0\r\n\r\n"
    await c.write(data)
    await c.waitClose()
    c.destroy()
    const res = c.response()
    expect(res, c.received().toString("latin1").slice(0, 300)).not.toBeNull()
    expectCommonHeaders(res)
    expect(res.status, res.text).toBe(204)
    const read = await call("GET", `${S(name)}?offset=-1`)
    expect(read.bytes.length).toBe(MAX_BODY)
  })
})

// ---- malformed HTTP --------------------------------------------------------------------------

describe("malformed HTTP over a raw socket", () => {
  for (const [label, data] of [
    ["a garbage request line", "GARBAGE\r\n\r\n"],
    ["a request line without a version", "GET /v1/stream/x\r\nHost: a\r\n\r\n"],
    ["binary junk", Buffer.from([0x00, 0x01, 0x02, 0xff, 0x0d, 0x0a, 0x0d, 0x0a])],
    ["a header line without a colon", "GET /health HTTP/1.1\r\nHost: a\r\nnot a header\r\n\r\n"],
    ["a non-numeric Content-Length", "POST /v1/stream/x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"],
  ]) {
    test(`${label} gets 400 malformed_request, then the connection closes, and a new connection still works`, async () => {
      const r = await rawExchange(data)
      expect(r.response, `raw reply: ${r.raw.toString("latin1").slice(0, 300)}`).not.toBeNull()
      expectCommonHeaders(r.response)
      expectError(r.response, 400, "malformed_request")
      expect(r.closed, "the server closes a connection after a malformed request").toBe(true)
      await expectServerHealthy()
    })
  }

  test("malformed chunk framing gets 400 malformed_request and appends nothing", async () => {
    const name = fresh("bad-chunks")
    await create(name, { body: "kept;" })
    const before = await snapshot(name)
    const r = await rawExchange(
      `POST ${S(name)} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
    )
    expect(r.response, r.raw.toString("latin1")).not.toBeNull()
    expectCommonHeaders(r.response)
    expectError(r.response, 400, "malformed_request")
    expect(r.closed).toBe(true)
    expect(await snapshot(name)).toEqual(before)
    await expectServerHealthy()
  })

  test("a 100 KB header section gets 431 headers_too_large, then the connection closes, and a new connection still works", async () => {
    const big = "x".repeat(100 * 1024)
    const r = await rawExchange(`GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`)
    expect(r.response, `raw reply: ${r.raw.toString("latin1").slice(0, 300)} error=${r.error}`).not.toBeNull()
    expectCommonHeaders(r.response)
    expectError(r.response, 431, "headers_too_large")
    expect(r.closed).toBe(true)
    await expectServerHealthy()
  })

  test("many headers that together exceed the limit also get 431, and nothing is appended", async () => {
    const name = fresh("many-headers")
    await create(name, { body: "kept;" })
    const before = await snapshot(name)
    let headers = ""
    for (let i = 0; i < 2000; i++) headers += `X-H${i}: ${"v".repeat(40)}\r\n`
    const r = await rawExchange(`POST ${S(name)} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n${headers}\r\nhi`)
    expect(r.response, `raw reply: ${r.raw.toString("latin1").slice(0, 300)} error=${r.error}`).not.toBeNull()
    expectError(r.response, 431, "headers_too_large")
    expect(await snapshot(name)).toEqual(before)
  })
})

describe("request framing over a raw socket", () => {
  // A body is parsed from what arrived with its header, and the rest is read from the socket:
  // however a request is split across writes, or several share one, each is read whole, once.
  test("bodies split anywhere, pipelined requests and chunked bodies are each appended once, in order", async () => {
    const name = fresh("framing")
    await create(name, { body: "" })
    const post = (body, extra = "") =>
      `POST ${S(name)} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`
    const chunkedHead = `POST ${S(name)} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`
    const c = await rawConnect()
    const first = post("1;")
    const second = post("2;")
    const parts = [
      first.slice(0, -1), // the header and half the body
      first.slice(-1), // the rest of the body
      second.slice(0, -2), // the header alone
      "2;" + post("3;") + post("4;"), // its body, then two whole requests in one write
      chunkedHead + "3\r\n5;x", // a chunked body in pieces
      "\r\n2\r\n;6\r\n0\r\n\r\n",
      chunkedHead + "2\r\n7;\r\n0\r\n\r\n" + post("8;", "Connection: close\r\n"),
    ]
    for (const p of parts) {
      await c.write(p)
      await sleep(30)
    }
    expect(await c.waitClose(), "the last request says Connection: close").toBe(true)
    const text = c.received().toString("latin1")
    expect(text.match(/HTTP\/1.1 \d+/g)).toEqual(Array(7).fill("HTTP/1.1 204"))
    const read = await call("GET", `${S(name)}?offset=-1`)
    expect(read.text).toBe("1;2;3;4;5;x;67;8;")
  })
})

// ---- isolation -------------------------------------------------------------------------------

describe("isolation", () => {
  test("appends and reads succeed while a malformed-request client and stalled clients stay connected", async () => {
    const name = fresh("isolation")
    await create(name)
    // A client that sends garbage and never reads nor closes.
    const malformed = await rawConnect()
    malformed.socket.pause()
    await malformed.write("GARBAGE GARBAGE GARBAGE\r\n\r\n")
    // A client that sends half a request line and stalls.
    const slowHeader = await rawConnect()
    await slowHeader.write(`GET ${S(name)}?offset=-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `)
    // A client that sends an append's headers and part of its body, then stalls.
    const slowBody = await rawConnect()
    await slowBody.write(`POST ${S(name)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nPARTIAL-BODY`)
    // A client that sends a huge header section a bit at a time (never completes).
    const slowBigHeader = await rawConnect()
    await slowBigHeader.write(`GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${"y".repeat(30000)}`)
    await sleep(100)

    try {
      const started = Date.now()
      const n = 20
      const results = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const res = await call("POST", S(name), { headers: { "Content-Type": "text/plain" }, body: `m${i};` })
          return res.status
        }),
      )
      for (const s of results) expect(s).toBe(204)
      const accepted = n
      const reads = await Promise.all(Array.from({ length: 10 }, () => call("GET", `${S(name)}?offset=-1`)))
      for (const r of reads) {
        expect(r.status).toBe(200)
        expect(r.text).not.toContain("PARTIAL")
        expect(r.text.split(";").filter(Boolean).length).toBe(accepted)
      }
      const plain = await call("POST", S(name), { headers: { "Content-Type": "text/plain" }, body: "last;" })
      expect(plain.status).toBe(204)
      expect(Date.now() - started).toBeLessThan(10000)
      // The stalled clients are still connected (none was cut off by the others' traffic).
      expect(slowHeader.state.closed).toBe(false)
      expect(slowBody.state.closed).toBe(false)
    } finally {
      for (const c of [malformed, slowHeader, slowBody, slowBigHeader]) c.destroy()
    }
    await sleep(100)
    // The abandoned partial append wrote nothing.
    const final = await call("GET", `${S(name)}?offset=-1`)
    expect(final.text).not.toContain("PARTIAL")
    expect(final.text.endsWith("last;")).toBe(true)
    await expectServerHealthy()
  })
})

// ---- long-poll timeout -----------------------------------------------------------------------

describe("long-poll timeout (--long-poll-timeout 1s)", () => {
  test("a long-poll at the tail waits the configured 1 s (not the 30 s default), then answers 204 with Stream-Up-To-Date, a numeric Stream-Cursor and the tail offset", async () => {
    const name = fresh("long-poll")
    await create(name, { body: "data;" })
    const tail = (await snapshot(name)).next
    const poll = async (offset) => {
      const started = performance.now()
      const res = await call("GET", `${S(name)}?offset=${offset}&live=long-poll`)
      return { res, elapsed: performance.now() - started }
    }
    const [explicit, now] = await Promise.all([poll(tail), poll("now")])
    for (const { res, elapsed } of [explicit, now]) {
      expect(res.status).toBe(204)
      expect(res.bytes.length).toBe(0)
      expect(elapsed).toBeGreaterThanOrEqual(900)
      expect(elapsed).toBeLessThan(10000) // far below the 30 s default, with room for a loaded machine
      expect(res.headers.get("stream-up-to-date")).toBe("true")
      expect(res.headers.get("stream-cursor")).toMatch(/^\d+$/)
      expect(res.headers.get("stream-next-offset")).toBe(tail)
      expect(res.headers.get("stream-closed")).toBeNull()
    }
  })
})

// ---- headers on every response -----------------------------------------------------------------

describe("common response headers", () => {
  test("every kind of response, including errors and 404s, carries X-Content-Type-Options: nosniff and Access-Control-Allow-Origin: *", async () => {
    const name = fresh("headers")
    const responses = []
    // expected: the status this response must have (null: only the headers are checked here,
    // the status is asserted by the dedicated test).
    const push = (label, res, expected) => responses.push([label, res, expected])
    push("create", await call("PUT", S(name), { headers: { "Content-Type": "text/plain" } }), 201)
    push("idempotent create", await call("PUT", S(name), { headers: { "Content-Type": "text/plain" } }), 200)
    push("append", await call("POST", S(name), { headers: { "Content-Type": "text/plain" }, body: "a" }), 204)
    push("read", await call("GET", `${S(name)}?offset=-1`), 200)
    push("head", await call("HEAD", S(name)), 200)
    push("options", await call("OPTIONS", S(name)), 204)
    push("health", await call("GET", "/health"), 200)
    push("bad offset", await call("GET", `${S(name)}?offset=abc`), 400)
    push("foreign offset", await call("GET", `${S(name)}?offset=${"1".repeat(16)}_0000000000000001`), 410)
    push("missing stream", await call("GET", S(fresh("nope"))), 404)
    push("head missing", await call("HEAD", S(fresh("nope"))), 404)
    push("route", await call("GET", "/nowhere"), 404)
    push("patch", await call("PATCH", S(name), { body: "x" }), 405)
    push("content type", await call("POST", S(name), { headers: { "Content-Type": "application/json" }, body: "1" }), 409)
    push("exists", await call("PUT", S(name), { headers: { "Content-Type": "application/json" } }), 409)
    push("empty path", await rawRequest("GET", "/v1/stream/"), 400)
    const big = await rawExchange(`GET /health HTTP/1.1\r\nHost: a\r\nX-Big: ${"x".repeat(100 * 1024)}\r\n\r\n`)
    push("headers too large", big.response, 431)
    const garbage = await rawExchange("GARBAGE\r\n\r\n")
    push("malformed", garbage.response, 400)
    const declared = await rawConnect()
    await declared.write(`POST ${S(name)} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`)
    await declared.waitClose()
    declared.destroy()
    push("declared body too large", declared.response(), null)
    const chunked = await rawConnect()
    await chunked.write(`POST ${S(name)} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`)
    await chunked.write(`${(MAX_BODY + 1).toString(16)}\r\n`)
    await chunked.waitClose()
    chunked.destroy()
    push("chunked body too large", chunked.response(), 413)
    push("delete", await call("DELETE", S(name)), 204)
    push("read after delete", await call("GET", `${S(name)}?offset=-1`), 404)
    for (const [label, res, expected] of responses) {
      expect(res, label).not.toBeNull()
      expectCommonHeaders(res, label)
      if (expected !== null) expect(res.status, label).toBe(expected)
      if (res.status >= 400 && label !== "head missing") {
        expect(res.headers.get("content-type"), label).toBe("application/json")
      }
    }
  })
})
