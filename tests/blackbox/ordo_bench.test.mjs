// ordo-bench against a server that closes the connection after each answer: the load
// generator speaks plain HTTP/1.1, so it reconnects instead of counting the next request on a
// closed socket as an error.
import http from "node:http"
import { spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { expect, test } from "vitest"
import { ordoBinary } from "../support/ordo_server.mjs"

/** Runs ordo-bench with `args`; resolves with its JSON report. */
function runBench(args) {
  const bench = join(dirname(ordoBinary()), "ordo-bench")
  return new Promise((resolve, reject) => {
    const child = spawn(bench, args, { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (err += d))
    child.on("error", reject)
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`ordo-bench exited ${code}: ${err}`))
      else resolve(JSON.parse(out))
    })
  })
}

test("appends go on when every answer carries Connection: close, with or without a length", async () => {
  let puts = 0
  let posts = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on("end", () => {
      res.shouldKeepAlive = false // Connection: close, and the socket is closed after the answer
      res.useChunkedEncodingByDefault = false // a body without a length is ended by the close
      if (req.method === "PUT") {
        puts++
        res.writeHead(201, { "Stream-Next-Offset": "0", "Content-Length": "0" })
        res.end()
      } else {
        posts++
        // Every other answer has a body that only the close ends (no length, not chunked).
        if (posts % 2 === 0) {
          res.writeHead(200, { "Stream-Next-Offset": String(posts) })
          res.end("ok")
        } else {
          res.writeHead(204, { "Stream-Next-Offset": String(posts) })
          res.end()
        }
      }
    })
  })
  await new Promise((r) => server.listen(0, "127.0.0.1", r))
  try {
    const { port } = server.address()
    const report = await runBench(["append", "--url", `http://127.0.0.1:${port}`, "--connections", "2", "--streams", "1", "--duration", "0.5"])
    expect(report.errors, JSON.stringify(report)).toBe(0)
    expect(report.requests).toBeGreaterThan(10)
    expect(puts).toBeGreaterThanOrEqual(1)
    expect(posts).toBeGreaterThanOrEqual(report.requests)
  } finally {
    server.close()
  }
})


// The reconnect storm's exactly-once check must be able to fail: a server that sends one
// message twice to every SSE reader makes ordo-bench report an error, and one that sends every
// message once passes, with /health probed by the separate process meanwhile.
async function stormAgainst(duplicate) {
  let healthProbes = 0
  const server = http.createServer((req, res) => {
    if (req.url === "/health") {
      healthProbes++
      res.writeHead(200, { "Content-Type": "application/json" })
      return res.end('{"status":"ok"}')
    }
    req.resume()
    req.on("end", () => {
      if (req.method === "PUT") {
        res.writeHead(201, { "Stream-Next-Offset": "0", "Content-Length": "0" })
        return res.end()
      }
      if (req.method === "POST") {
        res.writeHead(204, { "Stream-Next-Offset": "1" })
        return res.end()
      }
      // GET ?offset=-1&live=sse: the stalled reader never reads, the others get 20 messages.
      res.writeHead(200, { "Content-Type": "text/event-stream" })
      const seqs = [...Array(20).keys()]
      if (duplicate) seqs.splice(10, 0, 9)
      const data = seqs.map((s) => `{"t":0,"s":${s},"p":"x"}`).join(",")
      res.write(`event: data\ndata: [${data}]\n\nevent: control\ndata: {"streamNextOffset":"20","upToDate":true}\n\n`)
    })
  })
  await new Promise((r) => server.listen(0, "127.0.0.1", r))
  try {
    const { port } = server.address()
    const args = ["storm", "--url", `http://127.0.0.1:${port}`, "--subscribers", "5", "--messages", "20"]
    return { report: await runBench(args).catch((e) => e), healthProbes }
  } finally {
    server.closeAllConnections()
    server.close()
  }
}

test("the storm passes when every reader gets every message once, and fails on a duplicate", async () => {
  const once = await stormAgainst(false)
  expect(once.report.errors, JSON.stringify(once.report)).toBe(0)
  expect(once.report.readers_complete).toBe(5)
  expect(once.report.values).toBe(100)
  expect(once.report.health_probes).toBeGreaterThanOrEqual(1)
  expect(once.report.health_failures).toBe(0)
  expect(once.healthProbes).toBe(once.report.health_probes)

  const twice = await stormAgainst(true)
  expect(twice.report).toBeInstanceOf(Error)
  expect(twice.report.message).toMatch(/exited 1/)
})
