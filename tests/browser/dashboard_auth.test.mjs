// The dashboard with authentication on, in Debian's Chromium (headless, playwright-core): the
// page shows nothing but a sign-in form until a token is given; a wrong token is refused with
// the server's reason; signed in, it follows a session live and sends a command (through the
// HttpOnly cookie and the page's own header, never the token in page script); the cookie is
// one no script can read; signing out returns to the form and the cookie no longer reads.
import { afterAll, beforeAll, expect, test } from "vitest"
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { chromium } from "playwright-core"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectOk, request } from "../support/api.mjs"

const chromiumPath = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium"
const outputDir = join(
  process.env.ORDO_TEST_OUTPUT ?? resolve(new URL(".", import.meta.url).pathname, "../../build/test-output"),
  "dashboard-auth",
)
const SHOW_TIMEOUT_MS = 10000
const dir = mkdtempSync(join(tmpdir(), "ordo-dash-auth-"))

let server
let browser
let admin
let viewer
const pageErrors = []

function token(...scopes) {
  const args = ["token", "create", "--tokens-file", join(dir, "tokens.jsonl"), "--expires", "1h"]
  for (const s of scopes) args.push("--scope", s)
  const r = spawnSync(ordoBinary(), args)
  expect(r.status, r.stderr.toString()).toBe(0)
  return r.stdout.toString().trim()
}

beforeAll(async () => {
  mkdirSync(outputDir, { recursive: true })
  admin = token("admin")
  viewer = token("sessions:write:web-app")
  server = await startOrdo({
    args: ["--auth", "tokens", "--auth-tokens-file", join(dir, "tokens.jsonl"), "--sse-heartbeat", "1s",
      "--heartbeat-timeout", "1h", "--detach-timeout", "2h"],
  })
  expectOk(await api("POST", "/v1/projects", { id: "web-app", name: "Web App" }), 201)
  expectOk(await api("POST", "/v1/projects", { id: "secret", name: "Secret" }), 201)
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] })
}, 60000)

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  server?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

const api = (method, path, body, headers = {}) => request(server.url, method, path, { body, headers: { Authorization: `Bearer ${admin}`, ...headers } })

test("sign in, watch a session live, send a command, sign out", { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 1300, height: 900 } })
  const page = await context.newPage()
  page.on("pageerror", (e) => pageErrors.push(String(e)))
  const shot = (name) => page.screenshot({ path: join(outputDir, `${name}.png`), fullPage: true })

  await page.goto(server.url + "/")
  await page.waitForSelector("#sign-in-token", { timeout: SHOW_TIMEOUT_MS })
  expect(await page.locator("#sessions").count()).toBe(0)
  await shot("1-sign-in")

  // A wrong token: the server's reason, still the form.
  await page.fill("#sign-in-token", "ordo_000000000000_wrong")
  await page.click("#sign-in-submit")
  await expect.poll(() => page.locator("#sign-in-error").textContent(), { timeout: SHOW_TIMEOUT_MS }).toMatch(/not known/)

  // The right one: the sessions view, live.
  await page.fill("#sign-in-token", viewer)
  await page.click("#sign-in-submit")
  await page.waitForSelector("#sessions", { timeout: SHOW_TIMEOUT_MS })
  await page.waitForFunction(() => document.getElementById("connection").dataset.state === "live", null, { timeout: SHOW_TIMEOUT_MS })
  // The project the token may not read is not there.
  await page.locator('[data-project="web-app"]').waitFor({ timeout: SHOW_TIMEOUT_MS })
  expect(await page.locator('[data-project="secret"]').count()).toBe(0)
  // The cookie is HttpOnly, SameSite=Strict, and page script cannot see it.
  const cookies = await context.cookies()
  const cookie = cookies.find((c) => c.name === "ordo_token")
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", value: viewer })
  expect(await page.evaluate(() => document.cookie)).not.toContain("ordo_token")

  // A session created through the API appears, and its transcript streams in.
  const s = expectOk(await api("POST", "/v1/projects/web-app/sessions", { title: "Signed in" }), 201)
  await page.locator(`[data-session="${s.id}"]`).waitFor({ timeout: SHOW_TIMEOUT_MS })
  await page.goto(`${server.url}/#/session/${s.id}`)
  await page.waitForSelector("#transcript", { state: "attached", timeout: SHOW_TIMEOUT_MS })
  await page.waitForFunction(() => document.getElementById("connection").dataset.state === "live", null, { timeout: SHOW_TIMEOUT_MS })
  expectOk(await api("PUT", `/v1/sessions/${s.id}/rows/r1`, { kind: "assistant", body: { text: "hello from the agent" } }), 201)
  await page.locator('#transcript > li[data-row-id="r1"]').waitFor({ timeout: SHOW_TIMEOUT_MS })

  // A command from the page: written with the cookie and the page's header.
  await page.fill("#command-form textarea", "Ship it")
  await page.click("#command-form button")
  await expect
    .poll(async () => (await api("GET", `/v1/sessions/${s.id}/commands`)).json.commands.length, { timeout: SHOW_TIMEOUT_MS })
    .toBe(1)
  await shot("2-session")

  // The change feed: this token reads only web-app, so the view reads web-app's own feed.
  await page.goto(`${server.url}/#/changes`)
  await expect.poll(() => page.locator('#feed-filters input[name="project"]').inputValue(), { timeout: SHOW_TIMEOUT_MS }).toBe("web-app")
  await page.locator('#feed > li[data-type="command.accepted"]').first().waitFor({ timeout: SHOW_TIMEOUT_MS })
  expect(await page.locator("#feed > li").count()).toBeGreaterThan(0)
  expect(await page.locator("#feed").textContent()).not.toContain("secret")

  // Sign out: the form again, and the old cookie value reads nothing any more from this browser.
  await page.click("#sign-out")
  await page.waitForSelector("#sign-in-token", { timeout: SHOW_TIMEOUT_MS })
  expect((await context.cookies()).find((c) => c.name === "ordo_token")).toBeUndefined()
  const afterwards = await page.evaluate(async () => (await fetch("/v1/sessions")).status)
  expect(afterwards).toBe(401)
  await shot("3-signed-out")
  expect(pageErrors).toEqual([])
  await context.close()
})

test("a cross-site form cannot use the cookie to change anything", async () => {
  // What a browser sends for a cross-site form post if SameSite were ignored: the cookie and no
  // page header.
  const res = await request(server.url, "POST", "/v1/projects/web-app/sessions", {
    headers: { Cookie: `ordo_token=${viewer}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: "title=forged",
  })
  expect(res.status, ctx(res)).toBe(403)
  expect(res.json.error.code).toBe("csrf_header_missing")
  const signIn = await request(server.url, "POST", "/ui/sign-in", { body: { token: viewer } })
  expect(signIn.status, ctx(signIn)).toBe(403)
})
