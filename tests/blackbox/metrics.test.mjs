// /metrics: the Prometheus text exposition of a running ordo. promtool (Debian's prometheus
// package) accepts it; each metric moves when what it counts happens; and a real Prometheus,
// started here, scrapes ordo under load and answers the append rate and an fsync quantile
// through its HTTP API.
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectOk, request } from "../support/api.mjs"

let server
let base
beforeAll(async () => {
  server = await startOrdo({ args: ["--sync", "full", "--long-poll-timeout", "20s"] })
  base = server.url
})
afterAll(async () => {
  await server?.stop()
  server?.cleanup()
})

/** The samples of one exposition: Map from `name{labels}` (as written) to its value. */
function parseExposition(text) {
  const samples = new Map()
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue
    const at = line.lastIndexOf(" ")
    samples.set(line.slice(0, at), Number(line.slice(at + 1).replace("+Inf", "Infinity")))
  }
  return samples
}

async function scrape() {
  const res = await request(base, "GET", "/metrics")
  expect(res.status, ctx(res)).toBe(200)
  return { res, samples: parseExposition(res.text) }
}

const value = (samples, key) => {
  expect(samples.has(key), `${key} is exposed`).toBe(true)
  return samples.get(key)
}

async function append(path, body) {
  const res = await request(base, "POST", `/v1/stream/${path}`, { headers: { "Content-Type": "text/plain" }, body })
  expect(res.status, ctx(res)).toBe(204)
}

describe("the exposition", () => {
  test("is text/plain version 0.0.4, not cached, and promtool check metrics accepts it", async () => {
    await request(base, "PUT", "/v1/stream/promtool", { headers: { "Content-Type": "text/plain" } })
    await append("promtool", "x")
    const { res } = await scrape()
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
    expect(res.headers.get("cache-control")).toBe("no-store")
    const check = spawnSync("promtool", ["check", "metrics"], { input: res.text, encoding: "utf8" })
    expect(check.status, `promtool: ${check.stdout}${check.stderr}`).toBe(0)
    expect(check.stdout + check.stderr).toBe("")
  })

  test("HEAD answers the headers; other methods get 405 with Allow", async () => {
    const head = await request(base, "HEAD", "/metrics")
    expect(head.status).toBe(200)
    expect(head.text).toBe("")
    const post = await request(base, "POST", "/metrics", { body: "x" })
    expect(post.status, ctx(post)).toBe(405)
    expect(post.headers.get("allow")).toBe("GET, HEAD")
    expect(post.json.error.code).toBe("method_not_allowed")
  })

  test("every family the operations guide documents is there", async () => {
    const { res } = await scrape()
    for (const family of [
      "ordo_build_info", "ordo_appends_total", "ordo_appended_messages_total", "ordo_appended_bytes_total",
      "ordo_write_batches_total", "ordo_write_batches_failed_total", "ordo_write_batch_jobs",
      "ordo_commit_duration_seconds", "ordo_fsync_duration_seconds", "ordo_write_queue_jobs",
      "ordo_write_queue_bytes", "ordo_storage_state", "ordo_background_worker", "ordo_streams", "ordo_tail_cache_bytes",
      "ordo_connections_open", "ordo_sse_readers", "ordo_long_poll_readers", "ordo_slow_readers_reset_total",
      "ordo_catch_up_reads_active", "ordo_catch_up_reads_waiting", "ordo_catch_up_waits_total",
      "ordo_catch_up_refusals_total", "ordo_sessions", "ordo_commands", "ordo_change_events_total",
      "ordo_change_events_pruned_total", "ordo_background_job_failures_total", "ordo_http_responses_total", "process_cpu_seconds_total",
      "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
    ]) {
      expect(res.text, family).toContain(`# TYPE ${family} `)
    }
  })
})

describe("each metric moves with what it counts", () => {
  test("appends, bytes, batches, commit and fsync histograms, and HTTP responses by route", async () => {
    await request(base, "PUT", "/v1/stream/counted", { headers: { "Content-Type": "text/plain" } })
    const before = (await scrape()).samples
    for (let i = 0; i < 20; i++) await append("counted", "12345")
    const missing = await request(base, "GET", "/v1/stream/no-such-stream")
    expect(missing.status).toBe(404)
    const after = (await scrape()).samples
    const delta = (key) => value(after, key) - value(before, key)
    expect(delta("ordo_appends_total")).toBe(20)
    expect(delta("ordo_appended_messages_total")).toBe(20)
    expect(delta("ordo_appended_bytes_total")).toBe(100)
    expect(delta("ordo_write_batches_total")).toBeGreaterThanOrEqual(20)
    expect(delta("ordo_write_batch_jobs_count")).toBeGreaterThanOrEqual(20)
    expect(delta("ordo_commit_duration_seconds_count")).toBeGreaterThanOrEqual(20)
    expect(delta("ordo_fsync_duration_seconds_count")).toBeGreaterThanOrEqual(1)
    expect(value(after, 'ordo_fsync_duration_seconds_bucket{le="+Inf"}')).toBe(value(after, "ordo_fsync_duration_seconds_count"))
    expect(delta('ordo_http_responses_total{route="streams",code="2xx"}')).toBe(20)
    expect(delta('ordo_http_responses_total{route="streams",code="4xx"}')).toBe(1)
    // The scrape before this one was answered, and counted, before this one was rendered.
    expect(delta('ordo_http_responses_total{route="metrics",code="2xx"}')).toBe(1)
    expect(value(after, 'ordo_storage_state{state="ok"}')).toBe(1)
    for (const state of ["busy", "full", "unavailable", "replaced", "poisoned"]) {
      expect(value(after, `ordo_storage_state{state="${state}"}`)).toBe(0)
    }
    expect(value(after, "ordo_streams")).toBeGreaterThanOrEqual(2)
    expect(value(after, "ordo_background_worker")).toBe(1)  // SQLite: always this node
    expect(value(after, "ordo_write_queue_jobs")).toBe(0)
    expect(value(after, "ordo_connections_open")).toBeGreaterThanOrEqual(1)
    expect(value(after, 'ordo_build_info{version="0.1.0"}')).toBe(1)
    expect(value(after, "process_resident_memory_bytes")).toBeGreaterThan(1 << 20)
    expect(value(after, "process_start_time_seconds")).toBeGreaterThan(Date.now() / 1000 - 3600)
    expect(value(after, "process_start_time_seconds")).toBeLessThanOrEqual(Date.now() / 1000 + 1)
  })

  test("sessions by state, commands by status and change-feed events", async () => {
    const before = (await scrape()).samples
    expectOk(await request(base, "POST", "/v1/projects", { body: { name: "Metrics" } }), 201)
    const session = expectOk(await request(base, "POST", "/v1/projects/metrics/sessions", { body: { title: "t" } }), 201)
    const command = await request(base, "POST", `/v1/sessions/${session.id}/commands`, {
      headers: { "Idempotency-Key": "m-1" },
      body: { text: "hello" },
    })
    expect(command.status, ctx(command)).toBe(202)
    const after = (await scrape()).samples
    const delta = (key) => value(after, key) - value(before, key)
    expect(delta('ordo_sessions{state="created"}')).toBe(1)
    expect(value(after, 'ordo_sessions{state="ended"}')).toBe(0)
    expect(delta('ordo_commands{status="accepted"}')).toBe(1)
    expect(value(after, 'ordo_commands{status="interrupted"}')).toBe(0)
    expect(delta("ordo_change_events_total")).toBeGreaterThanOrEqual(3)
    expect(delta('ordo_http_responses_total{route="sessions",code="2xx"}')).toBe(3)
  })

  test("SSE and long-poll readers are counted while they are connected", async () => {
    await request(base, "PUT", "/v1/stream/live", { headers: { "Content-Type": "text/plain" } })
    const sse = new AbortController()
    const longPoll = new AbortController()
    const sseRes = await fetch(`${base}/v1/stream/live?offset=now&live=sse`, { signal: sse.signal })
    expect(sseRes.status).toBe(200)
    const pending = fetch(`${base}/v1/stream/live?offset=now&live=long-poll`, { signal: longPoll.signal }).catch(() => null)
    await expect.poll(async () => value((await scrape()).samples, "ordo_long_poll_readers"), { timeout: 5000 }).toBe(1)
    expect(value((await scrape()).samples, "ordo_sse_readers")).toBe(1)
    await append("live", "wake")  // answers the long-poll
    await pending
    await expect.poll(async () => value((await scrape()).samples, "ordo_long_poll_readers"), { timeout: 5000 }).toBe(0)
    sse.abort()
    // A parked reader's socket is written by the wake task: the server notices the reader left
    // when a write to it fails, at one of the next appends.
    await expect
      .poll(
        async () => {
          await append("live", "after")
          return value((await scrape()).samples, "ordo_sse_readers")
        },
        { timeout: 10000 },
      )
      .toBe(0)
  })
})

/** A free loopback port for Prometheus. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on("error", reject)
  })
}

describe("a real Prometheus", () => {
  test("scrapes ordo under load; its API answers the append rate and the fsync p99", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-prometheus-"))
    const port = await freePort()
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: ordo",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${server.port}"]`,
        "",
      ].join("\n"),
    )
    const prometheus = spawn(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    )
    let log = ""
    prometheus.stderr.on("data", (c) => (log += c))
    const api = `http://127.0.0.1:${port}/api/v1`
    const query = async (q) => {
      const res = await fetch(`${api}/query?query=${encodeURIComponent(q)}`)
      const body = await res.json()
      expect(body.status, `${q}: ${JSON.stringify(body)}`).toBe("success")
      return body.data.result
    }
    try {
      await request(base, "PUT", "/v1/stream/scraped", { headers: { "Content-Type": "text/plain" } })
      // Load: 8 concurrent appenders for 8 seconds, while Prometheus scrapes every second.
      const until = Date.now() + 8000
      let appended = 0
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (Date.now() < until) {
            await append("scraped", "load")
            appended++
          }
        }),
      )
      expect(appended).toBeGreaterThan(100)
      const up = await query('up{job="ordo"}')
      expect(up.length, log).toBe(1)
      expect(up[0].value[1]).toBe("1")
      const rate = await query('rate(ordo_appends_total{job="ordo"}[5s])')
      expect(rate.length, log).toBe(1)
      expect(Number(rate[0].value[1])).toBeGreaterThan(0)
      const p99 = await query('histogram_quantile(0.99, rate(ordo_fsync_duration_seconds_bucket{job="ordo"}[5s]))')
      expect(p99.length, log).toBe(1)
      const seconds = Number(p99[0].value[1])
      expect(Number.isFinite(seconds), `fsync p99 ${p99[0].value[1]}`).toBe(true)
      expect(seconds).toBeGreaterThan(0)
      expect(seconds).toBeLessThan(10)
    } finally {
      prometheus.kill("SIGTERM")
      await new Promise((r) => prometheus.once("exit", r))
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60000)
})
