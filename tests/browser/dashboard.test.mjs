// The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core
// against a real `ordo serve`. What the page shows must follow what the API does, without a
// reload: new projects and sessions appear, transcript rows render in sequence order as they
// stream and an upsert changes a row where it stands, a server restart is bridged with nothing
// shown twice or missed, and a double-clicked Send makes one command. Screenshots of each step
// go to $ORDO_TEST_OUTPUT/dashboard (CTest: build/release/test-output), never into the tree.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { chromium } from "playwright-core"
import { startOrdo } from "../support/ordo_server.mjs"
import { expectOk, request } from "../support/api.mjs"

const chromiumPath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium"
const outputDir = join(
  process.env.ORDO_TEST_OUTPUT ?? resolve(new URL(".", import.meta.url).pathname, "../../build/test-output"),
  "dashboard",
)
// How long the page gets to show a change made through the API.
const SHOW_TIMEOUT_MS = 10000

let server
let browser
let page
const pageErrors = []

const serverArgs = ["--heartbeat-timeout", "1h", "--detach-timeout", "2h", "--sse-heartbeat", "1s"]

beforeAll(async () => {
  mkdirSync(outputDir, { recursive: true })
  server = await startOrdo({ args: serverArgs })
  expectOk(await api("POST", "/v1/projects", { id: "web-app", name: "Web App" }), 201)
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in CI containers: Chromium's sandbox needs user namespaces it may not have there.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  })
  page = await newPage()
}, 60000)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  server?.cleanup()
})

async function newPage() {
  const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  p.on("pageerror", (e) => pageErrors.push(String(e)))
  return p
}

const api = (method, path, body, headers) => request(server.url, method, path, { body, headers })
const shot = (name) => page.screenshot({ path: join(outputDir, `${name}.png`), fullPage: true })

async function createSession(project, fields = {}) {
  return expectOk(await api("POST", `/v1/projects/${project}/sessions`, fields), 201)
}

/** The transcript as the page shows it: [row_id, text shown] in DOM order. */
const transcript = (p = page) =>
  p.$$eval("#transcript > li", (lis) => lis.map((li) => [li.dataset.rowId, li.querySelector(".row-body").textContent]))

describe("the dashboard in Chromium", () => {
  test("a project and a session created through the API appear without a reload", async () => {
    await page.goto(server.url + "/")
    await page.waitForSelector("#sessions")
    await page.waitForFunction(() => document.getElementById("connection").dataset.state === "live", null, { timeout: SHOW_TIMEOUT_MS })
    const marker = await page.evaluate(() => (window.__loadedOnce = Math.random()))

    expectOk(await api("POST", "/v1/projects", { id: "checkout", name: "Checkout" }), 201)
    await page.locator('[data-project="checkout"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    const s = await createSession("checkout", { agent_kind: "claude-code", branch: "fix/login", title: "Fix login" })
    const row = page.locator(`tr[data-session="${s.id}"]`)
    await row.waitFor({ timeout: SHOW_TIMEOUT_MS })
    await expect.poll(() => row.textContent(), { timeout: SHOW_TIMEOUT_MS }).toContain("fix/login")
    expect(await row.textContent()).toContain("claude-code")

    // A change of state shows up in the same row.
    expectOk(await api("POST", `/v1/sessions/${s.id}/transition`, { to: "starting" }))
    await expect.poll(() => row.locator("td").nth(2).textContent(), { timeout: SHOW_TIMEOUT_MS }).toBe("starting")
    expect(await page.locator('[data-project="checkout"]').textContent()).toContain("1 session")
    // Still the same document: nothing reloaded it.
    expect(await page.evaluate(() => window.__loadedOnce)).toBe(marker)
    await shot("1-sessions")
  })

  test("streamed rows render in sequence order; an upsert changes its row in place", async () => {
    const s = await createSession("web-app", { title: "Transcript" })
    await page.goto(`${server.url}/#/session/${s.id}`)
    await page.waitForSelector("#transcript", { state: "attached", timeout: SHOW_TIMEOUT_MS })
    await page.waitForFunction(() => document.getElementById("connection").dataset.state === "live", null, { timeout: SHOW_TIMEOUT_MS })

    const ids = ["u1", "a1", "t1", "a2", "u2", "a3", "t2", "a4"]
    for (const [i, id] of ids.entries()) {
      expectOk(await api("PUT", `/v1/sessions/${s.id}/rows/${id}`, { kind: "assistant", status: "in_progress", body: { text: `row ${i + 1}` } }), 201)
    }
    await expect.poll(() => transcript().then((t) => t.length), { timeout: SHOW_TIMEOUT_MS }).toBe(ids.length)
    expect(await transcript()).toEqual(ids.map((id, i) => [id, `row ${i + 1}`]))

    // The third row is updated twice, as a streamed message is: it keeps its place.
    const third = await page.$('#transcript > li[data-row-id="t1"]')
    const box = await third.boundingBox()
    expectOk(await api("PUT", `/v1/sessions/${s.id}/rows/t1`, { body: { text: "row 3, streaming" } }))
    expectOk(await api("PUT", `/v1/sessions/${s.id}/rows/t1`, { status: "complete", body: { text: "row 3, done" } }))
    const updated = page.locator('#transcript > li[data-row-id="t1"]')
    await expect.poll(() => updated.getAttribute("data-revision"), { timeout: SHOW_TIMEOUT_MS }).toBe("3")
    expect(await updated.getAttribute("class")).toContain("status-complete")
    const after = await transcript()
    expect(after.map(([id]) => id)).toEqual(ids)
    expect(after[2][1]).toBe("row 3, done")
    expect(Math.round((await updated.boundingBox()).y)).toBe(Math.round(box.y))
    await shot("2-transcript")
  })

  test("after a server restart the page resumes: nothing shown twice, nothing missed", async () => {
    const s = await createSession("web-app", { title: "Restart" })
    for (const id of ["r1", "r2", "r3"]) {
      expectOk(await api("PUT", `/v1/sessions/${s.id}/rows/${id}`, { kind: "user", body: { text: id } }), 201)
    }
    await page.goto(`${server.url}/#/session/${s.id}`)
    await expect.poll(() => transcript().then((t) => t.length), { timeout: SHOW_TIMEOUT_MS }).toBe(3)
    // A second tab on the change feed, an append-only list where a replay would show twice.
    const feedPage = await newPage()
    await feedPage.goto(`${server.url}/#/changes`)
    const feedOffsets = () => feedPage.$$eval("#feed > li", (lis) => lis.map((li) => li.dataset.offset))
    const feedBefore = expectOk(await api("GET", "/v1/changes?offset=-1"))
    await expect.poll(() => feedOffsets().then((o) => o.length), { timeout: SHOW_TIMEOUT_MS }).toBe(feedBefore.length)

    const { port, dataDir } = server
    expect(await server.stop()).toBe(0)
    await page.waitForFunction(() => document.getElementById("connection").dataset.state === "reconnecting", null, { timeout: SHOW_TIMEOUT_MS })
    await shot("3-server-away")
    server = await startOrdo({ port, dataDir, args: serverArgs })

    for (const id of ["r4", "r5"]) {
      expectOk(await api("PUT", `/v1/sessions/${s.id}/rows/${id}`, { kind: "user", body: { text: id } }), 201)
    }
    await expect.poll(() => transcript().then((t) => t.length), { timeout: 20000 }).toBe(5)
    expect((await transcript()).map(([id]) => id)).toEqual(["r1", "r2", "r3", "r4", "r5"])
    await page.waitForFunction(() => document.getElementById("connection").dataset.state === "live")

    const feedAll = expectOk(await api("GET", "/v1/changes?offset=-1"))
    await expect.poll(() => feedOffsets().then((o) => o.length), { timeout: 20000 }).toBe(feedAll.length)
    // Newest first on the page; exactly the feed's offsets, each once.
    expect((await feedOffsets()).reverse()).toEqual(feedAll.map((e) => e.offset))
    await shot("3-resumed")
    await feedPage.screenshot({ path: join(outputDir, "3-change-feed.png"), fullPage: true })
    await feedPage.close()
  }, 60000)

  test("a double-clicked Send makes one command, shown as pending", async () => {
    const s = await createSession("web-app", { title: "Commands" })
    await page.goto(`${server.url}/#/session/${s.id}`)
    await page.waitForSelector("#command-form")
    await page.fill("#command-form textarea", "Please also add a test")
    await page.dblclick("#command-form button")
    await expect.poll(() => page.textContent("#command-status"), { timeout: SHOW_TIMEOUT_MS }).toMatch(/^Sent as /)
    // Any second request would have been answered by now; give a stray one time to land anyway.
    await new Promise((r) => setTimeout(r, 300))
    const { commands } = expectOk(await api("GET", `/v1/sessions/${s.id}/commands`))
    expect(commands).toHaveLength(1)
    expect(commands[0].body).toEqual({ text: "Please also add a test", type: "user_message" })
    expect(commands[0].request_id).toMatch(/^dash-[0-9a-f]{24}$/)
    await page.locator(`#pending-commands [data-command="${commands[0].id}"]`).waitFor({ timeout: SHOW_TIMEOUT_MS })
    expect(await page.inputValue("#command-form textarea")).toBe("")

    // A second message is a second command; acknowledging it takes it off the pending list.
    await page.fill("#command-form textarea", "And update the changelog")
    await page.click("#command-form button")
    await expect.poll(async () => expectOk(await api("GET", `/v1/sessions/${s.id}/commands`)).commands.length, { timeout: SHOW_TIMEOUT_MS }).toBe(2)
    expectOk(await api("POST", `/v1/sessions/${s.id}/commands/${commands[0].id}`, { status: "done" }))
    await page.locator(`#pending-commands [data-command="${commands[0].id}"]`).waitFor({ state: "detached", timeout: SHOW_TIMEOUT_MS })
    await shot("4-commands")
  })

  test("the page raised no script error", () => {
    expect(pageErrors).toEqual([])
  })
})
