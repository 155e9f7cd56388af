// The dashboard as files: ordo serves the page at / and its modules and stylesheet under /ui/
// from the binary itself, with the right Content-Type, an ETag that answers 304, and nothing
// loaded from anywhere but ordo; unknown files are 404 and other methods 405. Also the stream
// list (GET /v1/streams) that the stream browser reads.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { ctx, expectError, expectOk, request } from "../support/api.mjs"

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

const types = { html: "text/html; charset=utf-8", js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" }

/** Every file the page loads: the index's /ui/ references and each module's relative imports. */
async function reachableAssets() {
  const index = await request(base, "GET", "/")
  const found = new Set()
  const queue = [...index.text.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1])
  while (queue.length) {
    const path = queue.shift()
    if (found.has(path)) continue
    found.add(path)
    if (!path.endsWith(".js")) continue
    const res = await request(base, "GET", path)
    expect(res.status, ctx(res)).toBe(200)
    for (const m of res.text.matchAll(/\bfrom\s+"([^"]+)"/g)) queue.push(new URL(m[1], `http://x${path}`).pathname)
  }
  return [...found]
}

describe("the dashboard's files", () => {
  test("GET / answers the page as HTML with a strong ETag and no-cache", async () => {
    const res = await request(base, "GET", "/")
    expect(res.status, ctx(res)).toBe(200)
    expect(res.headers.get("content-type")).toBe(types.html)
    expect(res.headers.get("cache-control")).toBe("no-cache")
    expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]{16}"$/)
    expect(res.headers.get("x-content-type-options")).toBe("nosniff")
    // The browser itself refuses anything from another origin, inline scripts and framing.
    const csp = res.headers.get("content-security-policy")
    expect(csp).toContain("default-src 'self'")
    expect(csp).toContain("connect-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain("unsafe-inline")
    expect(res.text).toContain('<script type="module" src="/ui/js/app.js">')
  })

  test("every file the page loads is served with the Content-Type of its kind", async () => {
    const assets = await reachableAssets()
    expect(assets).toContain("/ui/style.css")
    expect(assets).toContain("/ui/js/live.js")
    expect(assets.length).toBeGreaterThanOrEqual(7)
    for (const path of assets) {
      const res = await request(base, "GET", path)
      expect(res.status, ctx(res)).toBe(200)
      expect(res.headers.get("content-type"), path).toBe(types[path.split(".").pop()])
      expect(res.headers.get("cache-control"), path).toBe("no-cache")
      expect(res.text.length, path).toBeGreaterThan(100)
    }
  })

  test("nothing is loaded from outside ordo: no absolute URL in a src, href, import or url()", async () => {
    for (const path of ["/", ...(await reachableAssets())]) {
      const { text } = await request(base, "GET", path)
      expect(text, path).not.toMatch(/(?:src|href)="(?:https?:)?\/\//)
      expect(text, path).not.toMatch(/\bfrom\s+"(?:https?:)?\/\//)
      expect(text, path).not.toMatch(/url\(\s*["']?(?:https?:)?\/\//)
      expect(text, path).not.toMatch(/@import/)
    }
  })

  test("If-None-Match with the ETag answers 304 without a body; another tag the file", async () => {
    for (const path of ["/", "/ui/js/app.js", "/ui/style.css"]) {
      const first = await request(base, "GET", path)
      const etag = first.headers.get("etag")
      const again = await request(base, "GET", path, { headers: { "If-None-Match": etag } })
      expect(again.status, ctx(again)).toBe(304)
      expect(again.text).toBe("")
      expect(again.headers.get("etag")).toBe(etag)
      const listed = await request(base, "GET", path, { headers: { "If-None-Match": `"0000000000000000", ${etag}` } })
      expect(listed.status, ctx(listed)).toBe(304)
      const other = await request(base, "GET", path, { headers: { "If-None-Match": '"0000000000000000"' } })
      expect(other.status, ctx(other)).toBe(200)
      expect(other.text).toBe(first.text)
    }
    const page = await request(base, "GET", "/")
    const css = await request(base, "GET", "/ui/style.css")
    expect(page.headers.get("etag")).not.toBe(css.headers.get("etag"))
  })

  test("HEAD answers the headers of GET without a body", async () => {
    const res = await request(base, "HEAD", "/ui/js/app.js")
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toBe(types.js)
    expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]{16}"$/)
    expect(res.text).toBe("")
  })

  test("unknown files are 404 route_not_found, as JSON", async () => {
    for (const path of ["/ui/nope.js", "/ui/", "/ui/js/", "/ui/js/app.js.map", "/ui/JS/app.js", "/ui/js/app.js/", "/index.html", "/app.js"]) {
      expectError(await request(base, "GET", path), 404, "route_not_found")
    }
  })

  test("methods other than GET and HEAD are 405 with Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      for (const path of ["/", "/ui/style.css"]) {
        const res = await request(base, method, path, { body: "x", headers: { "Content-Type": "text/plain" } })
        expectError(res, 405, "method_not_allowed")
        expect(res.headers.get("allow")).toBe("GET, HEAD")
      }
    }
  })
})

describe("GET /v1/streams", () => {
  test("lists the streams clients created, ordered by path, without managed streams", async () => {
    await request(base, "PUT", "/v1/stream/list/b", { headers: { "Content-Type": "text/plain" }, body: "one" })
    await request(base, "PUT", "/v1/stream/list/a", { headers: { "Content-Type": "application/json" } })
    await request(base, "PUT", "/v1/stream/list/c", { headers: { "Content-Type": "text/plain", "Stream-Closed": "true", "Stream-TTL": "3600" } })
    await request(base, "POST", "/v1/projects", { body: { id: "listing", name: "Listing" } })
    await request(base, "POST", "/v1/projects/listing/sessions", { body: {} })

    const res = await request(base, "GET", "/v1/streams?prefix=list/")
    const body = expectOk(res)
    expect(res.headers.get("cache-control")).toBe("no-store")
    expect(body.streams.map((s) => s.path)).toEqual(["list/a", "list/b", "list/c"])
    const [a, b, c] = body.streams
    expect(a).toMatchObject({ content_type: "application/json", closed: false, deleted: false, ttl_seconds: null, expires_at: null })
    const head = await request(base, "HEAD", "/v1/stream/list/b")
    expect(b.next_offset).toBe(head.headers.get("stream-next-offset"))
    expect(c).toMatchObject({ closed: true, ttl_seconds: 3600 })
    expect(Date.parse(a.created_at)).not.toBeNaN()

    const all = expectOk(await request(base, "GET", "/v1/streams")).streams.map((s) => s.path)
    expect(all.some((p) => p.startsWith("__"))).toBe(false)
    expect(all).toEqual([...all].sort())
  })

  test("a deleted stream is no longer listed; an unmatched prefix lists nothing", async () => {
    await request(base, "PUT", "/v1/stream/gone/x", { headers: { "Content-Type": "text/plain" } })
    expect(expectOk(await request(base, "GET", "/v1/streams?prefix=gone/")).streams).toHaveLength(1)
    await request(base, "DELETE", "/v1/stream/gone/x")
    expect(expectOk(await request(base, "GET", "/v1/streams?prefix=gone/")).streams).toEqual([])
    expect(expectOk(await request(base, "GET", "/v1/streams?prefix=nothing-here")).streams).toEqual([])
  })

  test("only GET and HEAD: 405 with Allow", async () => {
    const res = await request(base, "POST", "/v1/streams", { body: {} })
    expectError(res, 405, "method_not_allowed")
    expect(res.headers.get("allow")).toBe("GET, HEAD")
  })
})
