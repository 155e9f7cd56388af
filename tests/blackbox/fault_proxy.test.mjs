// Delivery through a faulty network: a proxy between the C++ client (the `ordo` command) and the
// server delays chunks and cuts connections part-way through requests and responses, with resets
// and plain closes. 10,000 messages sent by the C++ producer arrive exactly once and in order,
// and readers following through the same proxy (SSE and long-poll) see each exactly once.
import { afterAll, beforeAll, expect, test } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
import { startFaultProxy } from "../support/fault_proxy.mjs"

const COUNT = 10_000

let server
let proxy
beforeAll(async () => {
  server = await startOrdo()
  proxy = await startFaultProxy(server.port, { seed: 7, cutProbability: 1, maxBytesBeforeCut: 2048 })
})
afterAll(async () => {
  await proxy?.close()
  await server?.stop()
  server?.cleanup()
})

/** Runs `ordo ARGS` (asynchronously: the proxy lives in this process). */
function run(args, { input, url }) {
  return new Promise((resolve) => {
    const child = spawn(ordoBinary(), [...args, "--server", url])
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (err += d))
    child.on("exit", (status) => resolve({ status, out, err, child }))
    if (input !== undefined) child.stdin.end(input)
  })
}

/** Starts a reader following through the proxy; `lines()` is what it printed so far. */
function reader(live) {
  const child = spawn(ordoBinary(), ["stream", "read", "flaky", "--follow", "--live", live, "--server", proxy.url])
  let out = ""
  let err = ""
  child.stdout.on("data", (d) => (out += d))
  child.stderr.on("data", (d) => (err += d))
  const exited = new Promise((r) => child.on("exit", r))
  return {
    lines: () => out.split("\n").filter((l) => l.length > 0),
    err: () => err,
    async stop() {
      child.kill("SIGINT")
      await exited
    },
  }
}

const expected = Array.from({ length: COUNT }, (_, i) => String(i))

test("10,000 messages through drops, delays and resets: the producer delivers each once, in order; SSE and long-poll readers see each once", { timeout: 180_000 }, async () => {
  const created = spawnSync(ordoBinary(), ["stream", "create", "flaky", "--content-type", "application/json", "--server", server.url])
  expect(created.status, created.stderr.toString()).toBe(0)

  const readers = [reader("sse"), reader("long-poll")]
  try {
    const input = expected.join("\n") + "\n"
    const appended = await run(["stream", "append", "flaky", "--lines", "--batch-messages", "25", "--linger", "1ms", "--json"], {
      input,
      url: proxy.url,
    })
    expect(appended.status, appended.err).toBe(0)
    expect(JSON.parse(appended.out)).toMatchObject({ acknowledged: COUNT, failed: 0 })

    // Straight from the server, bypassing the proxy: exactly once, in order.
    const direct = spawnSync(ordoBinary(), ["stream", "read", "flaky", "--server", server.url], { maxBuffer: 64 << 20 })
    expect(direct.stdout.toString().split("\n").filter((l) => l)).toEqual(expected)

    for (const r of readers) {
      const until = Date.now() + 60_000
      while (r.lines().length < COUNT && Date.now() < until) await new Promise((res) => setTimeout(res, 50))
      expect(r.lines(), r.err()).toEqual(expected)
    }
    // The faults really happened, in both directions.
    expect(proxy.stats.cutRequests).toBeGreaterThanOrEqual(3)
    expect(proxy.stats.cutResponses).toBeGreaterThanOrEqual(3)
    expect(proxy.stats.resets).toBeGreaterThanOrEqual(3)
  } finally {
    for (const r of readers) await r.stop()
  }
})

test("a producer that must first ask the stream's content type retries when that request is cut", async () => {
  const created = spawnSync(ordoBinary(), ["stream", "create", "typed", "--content-type", "application/json", "--server", server.url])
  expect(created.status, created.stderr.toString()).toBe(0)
  const cutting = await startFaultProxy(server.port, { cutProbability: 0, delayProbability: 0, cutFirstResponses: 3 })
  try {
    // No --content-type: the producer HEADs the stream first, and the first three answers are cut.
    const appended = await run(["stream", "append", "typed", '{"n":1}', "--json"], { url: cutting.url })
    expect(appended.status, appended.out + appended.err).toBe(0)
    expect(JSON.parse(appended.out)).toMatchObject({ acknowledged: 1, failed: 0 })
    expect(cutting.stats.cutResponses).toBe(3)
  } finally {
    await cutting.close()
  }
  const direct = spawnSync(ordoBinary(), ["stream", "read", "typed", "--server", server.url])
  expect(direct.stdout.toString().trim()).toBe('{"n":1}')
})
