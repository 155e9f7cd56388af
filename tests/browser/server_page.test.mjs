// The dashboard's Server view (#/server) in Debian's Chromium against a real `ordo serve`: it
// reads GET /metrics once a second and charts it. Appends made by this test move the throughput
// chart; the connections chart and the table show the server's values; with --sync normal the
// fsync chart says "no fsync"; leaving the view stops the reads; a server that goes away shows
// "metrics unavailable", and after its restart (counters from zero) the charts go on with no
// negative rate. Screenshots go to $ORDO_TEST_OUTPUT/dashboard (CTest:
// build/release/test-output), never into the tree.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { chromium } from "playwright-core"
import { startOrdo } from "../support/ordo_server.mjs"
import { request } from "../support/api.mjs"

const chromiumPath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium"
const outputDir = join(
  process.env.ORDO_TEST_OUTPUT ?? resolve(new URL(".", import.meta.url).pathname, "../../build/test-output"),
  "dashboard",
)
// The view reads once a second; a few reads' worth of time to show a change.
const SHOW_TIMEOUT_MS = 10000
const STREAM = "/v1/stream/server-page/load"

let server
let browser
let page
const pageErrors = []
const metricsReads = []

beforeAll(async () => {
  mkdirSync(outputDir, { recursive: true })
  server = await startOrdo()
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in CI containers: Chromium's sandbox needs user namespaces it may not have there.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  page.on("pageerror", (e) => pageErrors.push(String(e)))
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === "/metrics") metricsReads.push(Date.now())
  })
}, 60000)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  server?.cleanup()
})

const api = (method, path, body, headers) => request(server.url, method, path, { body, headers })
const shot = (name) => page.screenshot({ path: join(outputDir, `${name}.png`), fullPage: true })

/** What a chart's <svg> says about its main series. */
async function chart(id) {
  const svg = page.locator(`#${id}`)
  const [points, last, min] = await Promise.all(["data-points", "data-last", "data-min"].map((a) => svg.getAttribute(a)))
  return { points: Number(points), last: last === "" ? null : Number(last), min: min === "" ? null : Number(min) }
}

/** `count` appends of one small JSON message, `concurrency` at a time, spread over about `ms`. */
async function appendFor(count, ms, concurrency = 4) {
  const pause = ms / (count / concurrency)
  for (let sent = 0; sent < count; sent += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, count - sent) }, (_, i) =>
      api("POST", STREAM, [{ n: sent + i, pad: "x".repeat(64) }], { "Content-Type": "application/json" }),
    )
    for (const res of await Promise.all(batch)) expect(res.status).toBe(204)
    await new Promise((r) => setTimeout(r, pause))
  }
}

const fact = (key) => page.textContent(`#server-facts [data-fact="${key}"] td`)

describe("the Server view in Chromium", () => {
  test("appends move the throughput chart; connections and the table show the server's values", async () => {
    expect((await api("PUT", STREAM, [], { "Content-Type": "application/json" })).status).toBe(201)
    await page.goto(`${server.url}/#/server`)
    await page.locator('#server-view[data-state="live"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    expect(await page.getAttribute('[data-nav="server"]', "class")).toContain("active")

    // A rate needs two reads: the chart starts empty and fills.
    await expect.poll(async () => (await chart("chart-appends")).points, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThanOrEqual(1)
    const before = await chart("chart-appends")

    await appendFor(300, 3000)
    await expect.poll(async () => (await chart("chart-appends")).last, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(0)
    const during = await chart("chart-appends")
    expect(during.points).toBeGreaterThan(before.points)
    expect((await chart("chart-bytes")).last).toBeGreaterThan(0)
    // The page's own request is on an open connection when the server counts them.
    expect((await chart("chart-connections")).last).toBeGreaterThanOrEqual(1)
    expect(await page.locator("#chart-connections polyline, #chart-connections circle").count()).toBeGreaterThan(0)
    // Each commit is timed, and with --sync full (the default) each is flushed: both latency
    // charts have had points while appends ran.
    expect((await chart("chart-commit")).points).toBeGreaterThan(0)
    expect((await chart("chart-fsync")).points).toBeGreaterThan(0)

    expect(await page.getAttribute("#storage-state", "data-state")).toBe("ok")
    expect(await page.textContent("#storage-state")).toBe("Storage: ok")
    expect(await fact("version")).toMatch(/^\d+\.\d+\.\d+/)
    expect(await fact("streams")).toMatch(/^[1-9]/)
    expect(await fact("uptime")).toMatch(/\d+ (s|min|h|d)/)
    expect(await fact("memory")).toMatch(/ [kMG]?B$/)
    await shot("server-1-throughput")

    // Without appends the rate falls to zero and the window keeps growing.
    await expect.poll(async () => (await chart("chart-appends")).last, { timeout: SHOW_TIMEOUT_MS }).toBe(0)
    expect((await chart("chart-appends")).points).toBeGreaterThan(during.points)
  }, 60000)

  test("with --sync normal nothing is flushed per commit: the fsync chart says no fsync, not zero", async () => {
    const normal = await startOrdo({ env: { ORDO_SYNC: "normal" } })
    try {
      expect((await request(normal.url, "PUT", STREAM, { body: [], headers: { "Content-Type": "application/json" } })).status).toBe(201)
      await page.goto(`${normal.url}/#/server`)
      await page.locator('#server-view[data-state="live"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
      for (let i = 0; i < 20; i++) {
        const res = await request(normal.url, "POST", STREAM, { body: [{ i }], headers: { "Content-Type": "application/json" } })
        expect(res.status).toBe(204)
        await new Promise((r) => setTimeout(r, 100))
      }
      await expect.poll(async () => (await chart("chart-commit")).points, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(0)
      expect(await chart("chart-fsync")).toEqual({ points: 0, last: null, min: null })
      expect(await page.textContent('#chart-fsync-legend [data-series="fsyncP50"]')).toBe("no fsync")
      expect(await page.textContent("#chart-fsync .chart-message")).toBe("no fsync")
      await shot("server-2-no-fsync")
    } finally {
      await page.goto("about:blank")
      await normal.stop()
      normal.cleanup()
    }
  }, 60000)

  test("leaving the view stops reading /metrics", async () => {
    await page.goto(`${server.url}/#/server`)
    await page.locator('#server-view[data-state="live"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    await page.click('[data-nav="streams"]')
    await page.locator("#streams").waitFor({ state: "attached", timeout: SHOW_TIMEOUT_MS })
    // A read in flight when the view was left may still land; none may start after it.
    await new Promise((r) => setTimeout(r, 300))
    const reads = metricsReads.length
    await new Promise((r) => setTimeout(r, 2500))
    expect(metricsReads.length).toBe(reads)
    await page.click('[data-nav="server"]')
    await expect.poll(() => metricsReads.length, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(reads)
  })

  test("a server that goes away shows metrics unavailable; after its restart no rate is negative", async () => {
    await page.goto(`${server.url}/#/server`)
    await page.locator('#server-view[data-state="live"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    await appendFor(200, 2000)
    await expect.poll(async () => (await chart("chart-appends")).last, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(0)

    const { port, dataDir } = server
    expect(await server.stop()).toBe(0)
    await page.locator('#server-view[data-state="unavailable"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    expect(await page.isVisible("#metrics-notice")).toBe(true)
    expect(await page.textContent("#metrics-notice")).toContain("Metrics unavailable")
    expect(await page.textContent("#connection")).toBe("reconnecting")
    await shot("server-3-unavailable")

    // The restarted server counts from zero: fewer appends than before, so the counter went down.
    server = await startOrdo({ port, dataDir })
    await page.locator('#server-view[data-state="live"]').waitFor({ timeout: 20000 })
    expect(await page.isHidden("#metrics-notice")).toBe(true)
    await appendFor(40, 1500)
    await expect.poll(async () => (await chart("chart-appends")).last, { timeout: SHOW_TIMEOUT_MS }).toBeGreaterThan(0)
    for (const id of ["chart-appends", "chart-bytes"]) expect((await chart(id)).min, id).toBeGreaterThanOrEqual(0)
    await shot("server-4-after-restart")
  }, 60000)

  test("the page raised no script error", () => {
    expect(pageErrors).toEqual([])
  })
})
