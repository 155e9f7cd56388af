// The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core
// against a real `ordo serve`. What the page shows must follow what the API does, without a
// reload: new projects and sessions appear, transcript rows render in sequence order as they
// stream and an upsert changes a row where it stands, a server restart is bridged with nothing
// shown twice or missed, a double-clicked Send makes one command, PR checks and the CI brake
// follow observations, the change feed filters, the stream browser tails. Screenshots of each step
// go to $ORDO_TEST_OUTPUT/dashboard (CTest: build/release/test-output), never into the tree.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { chromium } from "playwright-core"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
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
  p.$$eval("#transcript > li.row", (lis) => lis.map((li) => [li.dataset.rowId, li.querySelector(".row-body").textContent]))

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

  test("PRs show their checks per commit, and the CI brake turns on and off live", async () => {
    const s = await createSession("web-app", { title: "CI loop" })
    await page.goto(`${server.url}/#/session/${s.id}`)
    await page.waitForSelector("#prs", { state: "attached" })
    const url = "https://github.example/acme/web-app/pull/7"
    const observe = (ci_state, head_commit, checks) =>
      api("PUT", `/v1/sessions/${s.id}/prs`, { pr: { url, number: 7, title: "Loop", state: "open", ci_state, head_commit }, checks })
    for (const commit of ["c1", "c2", "c3"]) {
      const res = await observe("failing", commit, [{ name: "test", commit, status: "failure" }, { name: "lint", commit, status: "success" }])
      expect([200, 201]).toContain(res.status)
    }
    const brake = page.locator("#ci-brake")
    await expect.poll(() => brake.getAttribute("class"), { timeout: SHOW_TIMEOUT_MS }).toBe("brake on")
    expect(await brake.textContent()).toContain("'test' failed on the last 3 commits")
    // The brake and the PR list are re-read separately after each observation: the list may
    // show its third failed check a moment after the brake turned on.
    await expect
      .poll(() => page.locator('#prs [data-check="test"][data-status="failure"]').count(), { timeout: SHOW_TIMEOUT_MS })
      .toBe(3)
    await shot("5-ci-brake-on")

    expectOk(await observe("passing", "c4", [{ name: "test", commit: "c4", status: "success" }]))
    await expect.poll(() => brake.getAttribute("class"), { timeout: SHOW_TIMEOUT_MS }).toBe("brake off")
    await page.locator('#prs [data-check="test"][data-commit="c4"][data-status="success"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
  })

  test("a session driven by `ordo demo` renders whole: transcript, approval, PR, timeline", async () => {
    const r = spawnSync(ordoBinary(), ["demo", "--step-delay", "0", "--chunk-delay", "0", "--approval-delay", "0"], {
      env: { ...process.env, ORDO_URL: server.url },
    })
    expect(r.status, r.stderr.toString()).toBe(0)
    const id = r.stdout.toString().match(/^session (\S+)/m)[1]
    await page.goto(`${server.url}/#/session/${id}`)
    await page.waitForSelector("#transcript > li.row", { timeout: SHOW_TIMEOUT_MS })
    const { rows } = expectOk(await api("GET", `/v1/sessions/${id}/rows?limit=500`))
    await expect.poll(() => transcript().then((t) => t.map(([rowId]) => rowId)), { timeout: SHOW_TIMEOUT_MS }).toEqual(rows.map((row) => row.row_id))
    expect(await page.locator('#transcript [data-row-id="approval-1"]').getAttribute("class")).toContain("status-approved")
    await expect.poll(() => page.textContent('[data-fact="state"]'), { timeout: SHOW_TIMEOUT_MS }).toBe("suspended")
    expect(await page.textContent("#timeline")).toContain("execution #1 finished: completed")
    await page.locator('#prs [data-check="test"][data-status="failure"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    expect(await page.locator('#prs [data-check="test"][data-status="success"]').count()).toBe(1)
    expect(await page.getAttribute("#ci-brake", "class")).toBe("brake off")
    await shot("6-demo-session")
  })

  test("an approval request is answered from the page, once, and the agent goes on", async () => {
    const child = spawn(ordoBinary(), ["demo", "--project", "approve", "--step-delay", "0", "--chunk-delay", "0", "--approval-delay", "60s"], {
      env: { ...process.env, ORDO_URL: server.url },
    })
    const exited = new Promise((r) => child.on("exit", (code) => r(code)))
    try {
      const until = Date.now() + 15000
      while ((await api("GET", "/v1/sessions/approve-1")).status !== 200) {
        if (Date.now() > until) throw new Error("the demo session never came")
        await new Promise((r) => setTimeout(r, 50))
      }
      await page.goto(`${server.url}/#/session/approve-1`)
      const approve = page.locator('#transcript [data-row-id="approval-1"] button[data-decision="approved"]')
      await approve.waitFor({ timeout: SHOW_TIMEOUT_MS })
      await expect.poll(() => page.textContent('[data-fact="client-state"]'), { timeout: SHOW_TIMEOUT_MS }).toBe("requires_action")
      await shot("6-approval-pending")
      await approve.dblclick()
      await expect.poll(() => page.getAttribute('#transcript [data-row-id="approval-1"]', "class"), { timeout: SHOW_TIMEOUT_MS }).toContain("status-approved")
      expect(await exited).toBe(0)
      const { commands } = expectOk(await api("GET", "/v1/sessions/approve-1/commands"))
      expect(commands.map((c) => [c.body, c.status])).toEqual([[{ decision: "approved", row_id: "approval-1", type: "approval" }, "done"]])
      await page.locator('#transcript [data-row-id="tool-3"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
      expect(await page.locator("#transcript button[data-decision]").count()).toBe(0)
    } finally {
      child.kill()
    }
  })

  test("the change feed page filters by session and type, live", async () => {
    const a = await createSession("web-app", { title: "Feed A" })
    const b = await createSession("web-app", { title: "Feed B" })
    await page.goto(`${server.url}/#/changes`)
    await page.fill('#feed-filters input[name="session"]', a.id)
    await page.selectOption('#feed-filters select[name="types"]', ["row.appended"])
    await page.click('#feed-filters button[type="submit"]')
    for (const [session, row] of [[a.id, "fa1"], [b.id, "fb1"], [a.id, "fa2"]]) {
      expectOk(await api("PUT", `/v1/sessions/${session}/rows/${row}`, { kind: "user", body: { text: row } }), 201)
    }
    expectOk(await api("PATCH", `/v1/sessions/${a.id}`, { branch: "other" }))
    const shown = () => page.$$eval("#feed > li", (lis) => lis.map((li) => [li.dataset.type, li.textContent]))
    await expect.poll(() => shown().then((x) => x.length), { timeout: SHOW_TIMEOUT_MS }).toBe(2)
    const items = await shown()
    expect(items.map(([type]) => type)).toEqual(["row.appended", "row.appended"])
    expect(items[0][1]).toContain("fa2")
    expect(items[1][1]).toContain("fa1")
    await shot("7-feed-filtered")
  })

  test("the stream browser lists streams, shows metadata and tails one live", async () => {
    expect((await api("PUT", "/v1/stream/browse/log", "first line\n", { "Content-Type": "text/plain" })).status).toBe(201)
    expect((await api("PUT", "/v1/stream/browse/events", [{ n: 1 }], { "Content-Type": "application/json" })).status).toBe(201)
    await page.goto(`${server.url}/#/streams`)
    await page.locator('#streams [data-stream="browse/log"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
    expect(await page.locator('#streams [data-stream="browse/events"]').textContent()).toContain("application/json")
    await page.click('#streams [data-stream="browse/events"] a')
    await page.waitForSelector("#stream-meta dd", { timeout: SHOW_TIMEOUT_MS })
    expect(await page.textContent("#stream-meta")).toContain("application/json")
    await expect.poll(() => page.$$eval("#messages pre", (p) => p.map((x) => x.textContent)), { timeout: SHOW_TIMEOUT_MS }).toEqual(['{"n":1}'])
    expect((await api("POST", "/v1/stream/browse/events", [{ n: 2 }, { n: 3 }], { "Content-Type": "application/json" })).status).toBe(204)
    await expect.poll(() => page.$$eval("#messages pre", (p) => p.map((x) => x.textContent)), { timeout: SHOW_TIMEOUT_MS }).toEqual(['{"n":1}', '{"n":2}', '{"n":3}'])
    await shot("8-stream")

    // A text stream, from the start and then only what is new.
    await page.goto(`${server.url}/#/streams/${encodeURIComponent("browse/log")}`)
    const texts = () => page.$$eval("#messages pre", (p) => p.map((x) => x.textContent))
    await expect.poll(texts, { timeout: SHOW_TIMEOUT_MS }).toEqual(["first line\n"])
    await page.uncheck('input[name="from-start"]')
    await expect.poll(texts, { timeout: SHOW_TIMEOUT_MS }).toEqual([])
    await page.waitForFunction(() => document.getElementById("connection").dataset.state === "live", null, { timeout: SHOW_TIMEOUT_MS })
    expect((await api("POST", "/v1/stream/browse/log", "second line\n", { "Content-Type": "text/plain" })).status).toBe(204)
    await expect.poll(texts, { timeout: SHOW_TIMEOUT_MS }).toEqual(["second line\n"])
  })

  test("the change feed page says so when retention removed the start, and follows from the oldest kept", async () => {
    const short = await startOrdo({ args: [...serverArgs, "--changes-retention", "1s"] })
    try {
      const call = (method, path, body) => request(short.url, method, path, { body })
      expectOk(await call("POST", "/v1/projects", { id: "pruned", name: "Pruned" }), 201)
      const until = Date.now() + 15000
      while ((await call("GET", "/v1/changes?offset=-1")).status !== 410) {
        if (Date.now() > until) throw new Error("the feed was never pruned")
        await new Promise((r) => setTimeout(r, 200))
      }
      expectOk(await call("POST", "/v1/projects/pruned/sessions", { title: "after pruning" }), 201)
      await page.goto(`${short.url}/#/changes`)
      await page.locator(".changes-view .notice").waitFor({ timeout: SHOW_TIMEOUT_MS })
      expect(await page.textContent(".changes-view .notice")).toContain("offset_pruned")
      // Live from there (what retention removed meanwhile may differ run to run; the removed
      // project.created never shows).
      expectOk(await call("DELETE", "/v1/projects/pruned"))
      await page.locator('#feed > li[data-type="project.archived"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
      expect(await page.locator('#feed > li[data-type="project.created"]').count()).toBe(0)
    } finally {
      await page.goto("about:blank")
      await short.stop()
      short.cleanup()
    }
  }, 60000)

  test("the page raised no script error", () => {
    expect(pageErrors).toEqual([])
  })
})
