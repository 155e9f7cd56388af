// Authentication and scopes, black-box: one `ordo serve --auth jwt,tokens` with an Ed25519 key
// the test made, an issuer and an audience.
//
// The scope matrix: every route the server lists (`ordo routes --json`) has a sample request
// below, sent with each credential of CREDENTIALS. Missing, expired, forged, unsigned and
// wrong-audience tokens get 401 on every route but the open ones; a token scoped to another
// project and other streams gets what a missing resource gets (404), or 403 where the route
// needs a scope it lacks, or a list without anything of project alpha; the right scope gets the
// route's own answer. A route the server lists without a sample here fails the test, so a new
// route cannot ship without its rule being tried.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { generateKeyPairSync, sign } from "node:crypto"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
import { ctx, request } from "../support/api.mjs"

const AUDIENCE = "ordo-test"
const ISSUER = "https://issuer.test"
const dir = mkdtempSync(join(tmpdir(), "ordo-auth-"))
const keys = generateKeyPairSync("ed25519")
const otherKeys = generateKeyPairSync("ed25519")
const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url")
const now = () => Math.floor(Date.now() / 1000)

/** A JWT signed with `key` (Ed25519), or unsigned with alg none. */
function jwt(claims, { key = keys.privateKey, alg = "EdDSA" } = {}) {
  const input = `${b64url({ alg, typ: "JWT" })}.${b64url({ iss: ISSUER, aud: AUDIENCE, exp: now() + 600, ...claims })}`
  if (alg === "none") return `${input}.`
  return `${input}.${sign(null, Buffer.from(input), key).toString("base64url")}`
}

const RIGHT = "sessions:write:alpha streams:admin:alpha/** metrics:read"
const WRONG = "sessions:write:beta streams:admin:beta/**"
const CREDENTIALS = {
  none: () => undefined,
  expired: () => jwt({ scope: RIGHT, exp: now() - 3600 }),
  bad_signature: () => jwt({ scope: RIGHT }, { key: otherKeys.privateKey }),
  alg_none: () => jwt({ scope: RIGHT }, { alg: "none" }),
  wrong_audience: () => jwt({ scope: RIGHT, aud: "another-service" }),
  wrong_scope: () => jwt({ scope: WRONG }),
  right_scope: () => jwt({ scope: RIGHT }),
}
const REFUSED = ["none", "expired", "bad_signature", "alg_none", "wrong_audience"]

let server
let admin
let alpha // { project, session, otherSession, command, stream }
const call = (method, path, token, options = {}) =>
  request(server.url, method, path, {
    ...options,
    headers: { ...(options.headers ?? {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  })
const asAdmin = (method, path, options) => call(method, path, admin, options)

beforeAll(async () => {
  const keyFile = join(dir, "keys.pem")
  writeFileSync(keyFile, keys.publicKey.export({ type: "spki", format: "pem" }))
  const tokensFile = join(dir, "tokens.jsonl")
  const created = spawnSync(ordoBinary(), ["token", "create", "--tokens-file", tokensFile, "--scope", "admin", "--expires", "1h"])
  expect(created.status, created.stderr.toString()).toBe(0)
  admin = created.stdout.toString().trim()
  server = await startOrdo({
    args: ["--auth", "jwt,tokens", "--auth-jwt-keys", keyFile, "--auth-jwt-issuer", ISSUER,
      "--auth-jwt-audience", AUDIENCE, "--auth-tokens-file", tokensFile, "--long-poll-timeout", "500ms"],
  })
  // Two projects with the same shape: alpha is the right scope's, beta the wrong scope's.
  const made = {}
  for (const project of ["alpha", "beta"]) {
    expect((await asAdmin("POST", "/v1/projects", { body: { id: project, name: project } })).status).toBe(201)
    const session = (await asAdmin("POST", `/v1/projects/${project}/sessions`, { body: { title: `${project} secret title` } })).json
    const otherSession = (await asAdmin("POST", `/v1/projects/${project}/sessions`, { body: {} })).json
    for (const to of ["starting", "active"]) await asAdmin("POST", `/v1/sessions/${session.id}/transition`, { body: { to } })
    const command = (await asAdmin("POST", `/v1/sessions/${session.id}/commands`, { headers: { "Idempotency-Key": "k1" }, body: { text: `${project} command` } })).json
    await asAdmin("POST", `/v1/sessions/${session.id}/rows`, { body: { kind: "assistant", body: { text: `${project} row` } } })
    const put = await asAdmin("PUT", `/v1/stream/${project}/s1`, { headers: { "Content-Type": "text/plain" }, body: `${project} stream data` })
    expect(put.status, ctx(put)).toBe(201)
    made[project] = { project, session: session.id, otherSession: otherSession.id, command: command.id }
  }
  alpha = made.alpha
}, 60_000)

afterAll(async () => {
  await server?.stop()
  server?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

/**
 * A sample request per route, keyed "METHOD path" as `ordo routes` lists them; `fresh`
 * requests build what they change anew for each credential, so repeats do not interfere.
 * ok: the right scope's status; wrong: the wrong scope's (404 hides, 403 refuses, 200 lists).
 */
function samples() {
  const s = alpha.session
  let n = 0
  const unique = () => `${Date.now().toString(36)}-${++n}`
  const newSession = async () => (await asAdmin("POST", `/v1/projects/alpha/sessions`, { body: {} })).json.id
  const activeSession = async () => {
    const id = await newSession()
    for (const to of ["starting", "active"]) await asAdmin("POST", `/v1/sessions/${id}/transition`, { body: { to } })
    return id
  }
  return {
    "GET, HEAD /health, /ready": [{ method: "GET", path: "/ready", ok: 200, wrong: 200, open: true }],
    "GET, HEAD /metrics": [{ method: "GET", path: "/metrics", ok: 200, wrong: 403 }],
    "* /ui/sign-in, /ui/sign-out, /ui/session": [
      { method: "GET", path: "/ui/session", ok: 200, wrong: 200, open: true },
    ],
    "* /, /ui/...": [{ method: "GET", path: "/", ok: 200, wrong: 200, open: true }],
    "* /v1/streams": [{ method: "GET", path: "/v1/streams", ok: 200, wrong: 200, list: true }],
    "GET, HEAD /v1/sessions/{session}/events": [
      { method: "GET", path: `/v1/sessions/${s}/events?offset=-1`, ok: 200, wrong: 404 },
      { method: "HEAD", path: `/v1/sessions/${s}/events`, ok: 200, wrong: 404 },
    ],
    "GET /v1/sessions/{session}/events": [{ method: "GET", path: `/v1/sessions/${s}/events?offset=-1&live=long-poll`, ok: 200, wrong: 404 }],
    // A token that reads some projects reads one project's own feed, named by ?project=.
    "GET, HEAD /v1/changes": [
      { method: "GET", path: "/v1/changes?offset=-1&project=alpha", ok: 200, wrong: 404 },
      { method: "HEAD", path: "/v1/changes?project=alpha", ok: 200, wrong: 404 },
      { method: "GET", path: "/v1/changes?offset=-1", ok: 403, wrong: 403 },
    ],
    "PUT, POST, DELETE, HEAD, GET /v1/stream/{path...}": [
      { method: "GET", path: "/v1/stream/alpha/s1?offset=-1", ok: 200, wrong: 404 },
      { method: "HEAD", path: "/v1/stream/alpha/s1", ok: 200, wrong: 404 },
      { method: "POST", path: "/v1/stream/alpha/s1", headers: { "Content-Type": "text/plain" }, body: "more", ok: 204, wrong: 404 },
      { method: "PUT", path: () => `/v1/stream/alpha/${unique()}`, headers: { "Content-Type": "text/plain" }, ok: 201, wrong: 404 },
      { method: "DELETE", path: async () => {
        const p = `/v1/stream/alpha/${unique()}`
        await asAdmin("PUT", p, { headers: { "Content-Type": "text/plain" } })
        return p
      }, ok: 204, wrong: 404 },
    ],
    "POST /v1/projects": [{ method: "POST", path: "/v1/projects", body: () => ({ id: "alpha", name: "again" }), ok: 409, wrong: 403 }],
    "GET /v1/projects": [{ method: "GET", path: "/v1/projects", ok: 200, wrong: 200, list: true }],
    "GET /v1/projects/{project}": [{ method: "GET", path: "/v1/projects/alpha", ok: 200, wrong: 404 }],
    "DELETE /v1/projects/{project}": [{ method: "DELETE", path: "/v1/projects/alpha", ok: 200, wrong: 404, last: true }],
    "POST /v1/projects/{project}/sessions": [{ method: "POST", path: "/v1/projects/alpha/sessions", body: {}, ok: 201, wrong: 404 }],
    "GET /v1/projects/{project}/sessions": [{ method: "GET", path: "/v1/projects/alpha/sessions", ok: 200, wrong: 404 }],
    "GET /v1/changes/snapshot": [
      { method: "GET", path: "/v1/changes/snapshot?project=alpha", ok: 200, wrong: 404 },
      { method: "GET", path: "/v1/changes/snapshot", ok: 403, wrong: 403 },
    ],
    "GET /v1/sessions": [{ method: "GET", path: "/v1/sessions", ok: 200, wrong: 200, list: true }],
    "GET /v1/sessions/{session}": [{ method: "GET", path: `/v1/sessions/${s}`, ok: 200, wrong: 404 }],
    "PATCH /v1/sessions/{session}": [{ method: "PATCH", path: `/v1/sessions/${s}`, body: { title: "renamed" }, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/transition": [{ method: "POST", path: async () => `/v1/sessions/${await activeSession()}/transition`, body: { to: "suspended" }, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/end": [{ method: "POST", path: async () => `/v1/sessions/${await newSession()}/end`, body: { reason: "completed" }, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/heartbeat": [{ method: "POST", path: `/v1/sessions/${s}/heartbeat`, ok: 200, wrong: 404 }],
    "GET /v1/sessions/{session}/snapshot": [{ method: "GET", path: `/v1/sessions/${s}/snapshot`, ok: 200, wrong: 404 }],
    "PUT /v1/sessions/{session}/prs": [{ method: "PUT", path: `/v1/sessions/${s}/prs`, body: () => ({ pr: { url: `https://git.test/pr/${unique()}`, state: "open" } }), ok: 200, wrong: 404, okAny: true }],
    "GET /v1/sessions/{session}/prs": [{ method: "GET", path: `/v1/sessions/${s}/prs`, ok: 200, wrong: 404 }],
    "GET /v1/sessions/{session}/ci-brake": [{ method: "GET", path: `/v1/sessions/${s}/ci-brake`, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/executions": [{ method: "POST", path: async () => `/v1/sessions/${await activeSession()}/executions`, ok: 201, wrong: 404 }],
    "GET /v1/sessions/{session}/executions": [{ method: "GET", path: `/v1/sessions/${s}/executions`, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/executions/{generation}/finish": [{ method: "POST", path: async () => {
      const id = await activeSession()
      await asAdmin("POST", `/v1/sessions/${id}/executions`)
      return `/v1/sessions/${id}/executions/1/finish`
    }, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/executions/{generation}/abort": [{ method: "POST", path: async () => {
      const id = await activeSession()
      await asAdmin("POST", `/v1/sessions/${id}/executions`)
      return `/v1/sessions/${id}/executions/1/abort`
    }, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/commands": [{ method: "POST", path: `/v1/sessions/${s}/commands`, headers: () => ({ "Idempotency-Key": unique() }), body: { text: "go" }, ok: 202, wrong: 404 }],
    "GET /v1/sessions/{session}/commands": [{ method: "GET", path: `/v1/sessions/${s}/commands`, ok: 200, wrong: 404 }],
    "GET /v1/sessions/{session}/commands/{command}": [{ method: "GET", path: `/v1/sessions/${s}/commands/${alpha.command}`, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/commands/{command}": [{ method: "POST", path: `/v1/sessions/${s}/commands/${alpha.command}`, body: { status: "delivered" }, ok: 200, wrong: 404 }],
    "POST /v1/sessions/{session}/rows": [{ method: "POST", path: `/v1/sessions/${s}/rows`, body: { kind: "assistant", body: { text: "hi" } }, ok: 201, wrong: 404 }],
    "GET /v1/sessions/{session}/rows": [{ method: "GET", path: `/v1/sessions/${s}/rows`, ok: 200, wrong: 404 }],
    "GET /v1/sessions/{session}/rows/{row}": [{ method: "GET", path: `/v1/sessions/${s}/rows/r-fixed`, before: () => asAdmin("PUT", `/v1/sessions/${s}/rows/r-fixed`, { body: { kind: "assistant", body: { text: "fixed" } } }), ok: 200, wrong: 404 }],
    "PUT /v1/sessions/{session}/rows/{row}": [{ method: "PUT", path: () => `/v1/sessions/${s}/rows/${unique()}`, body: { kind: "assistant", body: { text: "up" } }, ok: 201, wrong: 404, okAny: true }],
  }
}

async function send(sample, token) {
  const value = (v) => (typeof v === "function" ? v() : v)
  if (sample.before) await sample.before()
  const path = await value(sample.path)
  return call(sample.method, path, token, { headers: value(sample.headers) ?? {}, body: value(sample.body) })
}

describe("the scope matrix", () => {
  test("every route the server lists has a rule and a sample here", () => {
    const listed = spawnSync(ordoBinary(), ["routes", "--json"])
    expect(listed.status).toBe(0)
    const routes = listed.stdout.toString().trim().split("\n").map((l) => JSON.parse(l))
    const known = samples()
    for (const r of routes) {
      expect(r.requires, `${r.method} ${r.path} declares no rule`).not.toBe("")
      const key = r.path === "/v1/projects..., /v1/sessions..., /v1/changes/..." ? null : `${r.method} ${r.path}`
      if (key) expect(Object.keys(known), `no sample for ${key}`).toContain(key)
    }
    // And nothing here is stale: every sample names a listed route.
    const names = routes.map((r) => `${r.method} ${r.path}`)
    for (const key of Object.keys(known)) expect(names, `sample for an unlisted route ${key}`).toContain(key)
  })

  test("every route x every credential answers 401, 403, 404 or its own status; nothing of alpha leaks", { timeout: 120_000 }, async () => {
    const all = Object.entries(samples()).flatMap(([key, list]) => list.map((s) => ({ key, ...s })))
    const ordered = [...all.filter((s) => !s.last), ...all.filter((s) => s.last)]
    for (const sample of ordered) {
      for (const [name, make] of Object.entries(CREDENTIALS)) {
        const res = await send(sample, make())
        const what = `${sample.key} with ${name}: ${ctx(res)}`
        if (REFUSED.includes(name)) {
          if (sample.open) {
            expect(res.status, what).toBe(sample.ok)
          } else {
            expect(res.status, what).toBe(401)
            expect(res.headers.get("www-authenticate"), what).toMatch(/^Bearer realm="ordo"/)
            expect(res.text, what).not.toMatch(/alpha/)
          }
        } else if (name === "wrong_scope") {
          expect(res.status, what).toBe(sample.wrong)
          // A hidden resource answers exactly like a missing one; a list holds nothing of alpha.
          if (res.status === 404 && sample.method !== "HEAD") expect(res.json?.error?.code, what).toMatch(/_not_found$/)
          if (sample.list) expect(res.text, what).not.toMatch(/alpha/)
        } else if (sample.okAny) {
          expect(res.status, what).toBeGreaterThanOrEqual(200)
          expect(res.status, what).toBeLessThan(300)
        } else {
          expect(res.status, what).toBe(sample.ok)
        }
      }
    }
  })

  test("the wrong scope's lists, snapshot and feed hold beta's data and none of alpha's", async () => {
    const token = CREDENTIALS.wrong_scope()
    for (const path of ["/v1/projects", "/v1/sessions", "/v1/changes/snapshot?project=beta", "/v1/changes?offset=-1&project=beta", "/v1/streams"]) {
      const res = await call("GET", path, token)
      expect(res.status, ctx(res)).toBe(200)
      expect(res.text, ctx(res)).toMatch(/beta/)
      expect(res.text, ctx(res)).not.toMatch(/alpha/)
    }
    // The feed's ETag differs from admin's: a cached answer of one cannot serve the other.
    const mine = await call("GET", "/v1/changes?offset=-1&project=beta", token)
    const theirs = await asAdmin("GET", "/v1/changes?offset=-1&project=beta")
    expect(mine.headers.get("etag")).not.toBe(theirs.headers.get("etag"))
  })

  test("a project's own feed: its offsets count its changes only, so nothing shows of the others", async () => {
    const token = CREDENTIALS.right_scope()
    const position = (offset) => Number(offset.split("_")[1])
    const read = async (offset) => {
      const res = await call("GET", `/v1/changes?offset=${offset}&project=alpha`, token)
      expect(res.status, ctx(res)).toBe(200)
      return { events: res.json, next: res.headers.get("stream-next-offset") }
    }
    // Every change of alpha, numbered 1, 2, 3, ... in its own feed: no gap for beta's changes.
    const first = await read("-1")
    expect(first.events.length).toBeGreaterThan(0)
    first.events.forEach((e, i) => {
      expect(e.project).toBe("alpha")
      expect(position(e.offset)).toBe(i + 1)
    })
    expect(position(first.next)).toBe(first.events.length)
    const server = await asAdmin("HEAD", "/v1/changes")
    const serverBefore = position(server.headers.get("stream-next-offset"))
    // Five changes of beta, then one of alpha: alpha's reader sees exactly the next position.
    const beta = (await asAdmin("POST", "/v1/projects/beta/sessions", { body: {} })).json.id
    for (let i = 0; i < 5; ++i) {
      const patched = await asAdmin("PATCH", `/v1/sessions/${beta}`, { body: { title: `beta ${i}` } })
      expect(patched.status, ctx(patched)).toBe(200)
    }
    const patched = await asAdmin("PATCH", `/v1/sessions/${alpha.otherSession}`, { body: { title: "alpha again" } })
    expect(patched.status, ctx(patched)).toBe(200)
    const next = await read(first.next)
    expect(next.events.map((e) => [e.type, e.session])).toEqual([["session.updated", alpha.otherSession]])
    expect(position(next.events[0].offset)).toBe(first.events.length + 1)
    const serverAfter = position((await asAdmin("HEAD", "/v1/changes")).headers.get("stream-next-offset"))
    expect(serverAfter - serverBefore).toBe(7) // beta's session, its five updates, alpha's update
    // HEAD and the snapshot give the same place in alpha's feed, and only alpha's entities.
    const head = await call("HEAD", "/v1/changes?project=alpha", token)
    expect(head.headers.get("stream-next-offset")).toBe(next.next)
    const snapshot = await call("GET", "/v1/changes/snapshot?project=alpha", token)
    expect(snapshot.status, ctx(snapshot)).toBe(200)
    expect(snapshot.json.offset).toBe(next.next)
    // (alpha may be archived by now, by the matrix above: a snapshot lists live projects only)
    expect(snapshot.json.projects.every((p) => p.id === "alpha")).toBe(true)
    expect(snapshot.json.sessions.length).toBeGreaterThan(0)
    expect(snapshot.json.sessions.every((x) => x.project === "alpha")).toBe(true)
    expect(snapshot.text).not.toMatch(/beta/)
    // Without a project, or with one it may not read: refused, like elsewhere.
    const unnamed = await call("GET", "/v1/changes?offset=-1", token)
    expect(unnamed.status).toBe(403)
    expect(unnamed.json.error.code).toBe("project_required")
    const other = await call("GET", "/v1/changes?offset=-1&project=beta", token)
    expect(other.status).toBe(404)
    expect(other.json.error.code).toBe("project_not_found")
    // A project its glob would cover but which does not exist: the same 404, nothing created.
    const globbed = jwt({ scope: "sessions:read:alp*" })
    for (const path of ["/v1/changes?offset=-1&project=alpine", "/v1/changes/snapshot?project=alpine"]) {
      const missing = await call("GET", path, globbed)
      expect(missing.status, ctx(missing)).toBe(404)
      expect(missing.json.error.code).toBe("project_not_found")
    }
    expect((await call("HEAD", "/v1/changes?project=alpine", globbed)).status).toBe(404)
    const streams = await asAdmin("GET", "/v1/streams")
    expect(streams.text).not.toMatch(/projects\/alpine/)
    // A token that reads every project reads the server's feed, as admin does.
    const everything = jwt({ scope: "sessions:read:*" })
    const all = await call("GET", "/v1/changes?offset=-1", everything)
    expect(all.status, ctx(all)).toBe(200)
    expect(all.headers.get("stream-next-offset")).toBe((await asAdmin("HEAD", "/v1/changes")).headers.get("stream-next-offset"))
  })
})

describe("an agent token", () => {
  test("works its own session and nothing else", async () => {
    const created = spawnSync(ordoBinary(), ["token", "create", "--tokens-file", join(dir, "tokens.jsonl"), "--scope", `agent:${alpha.otherSession}`, "--expires", "1h"])
    expect(created.status, created.stderr.toString()).toBe(0)
    const agent = created.stdout.toString().trim()
    const mine = alpha.otherSession
    for (const to of ["starting", "active"]) await asAdmin("POST", `/v1/sessions/${mine}/transition`, { body: { to } })
    const command = (await asAdmin("POST", `/v1/sessions/${mine}/commands`, { headers: { "Idempotency-Key": "agent-1" }, body: { text: "do it" } })).json
    // Allowed, on its session.
    for (const [method, path, options, status] of [
      ["POST", `/v1/sessions/${mine}/heartbeat`, {}, 200],
      ["POST", `/v1/sessions/${mine}/executions`, {}, 201],
      ["POST", `/v1/sessions/${mine}/rows`, { body: { kind: "assistant", body: { text: "working" } } }, 201],
      ["PUT", `/v1/sessions/${mine}/rows/r1`, { body: { kind: "assistant", body: { text: "v1" } } }, 201],
      ["POST", `/v1/sessions/${mine}/commands/${command.id}`, { body: { status: "delivered" } }, 200],
      ["PUT", `/v1/sessions/${mine}/prs`, { body: { pr: { url: "https://git.test/pr/agent", state: "open" } } }, 200],
      ["GET", `/v1/sessions/${mine}/commands`, {}, 200],
      ["GET", `/v1/sessions/${mine}`, {}, 200],
      ["GET", `/v1/sessions/${mine}/events?offset=-1`, {}, 200],
    ]) {
      const res = await call(method, path, agent, options)
      expect(res.status, ctx(res)).toBeGreaterThanOrEqual(200)
      expect(res.status, ctx(res)).toBeLessThan(300)
      if (method !== "PUT" || !path.endsWith("/prs")) expect(res.status, ctx(res)).toBe(status)
    }
    // Refused on its own session: steering it is the user's.
    for (const [method, path, body] of [
      ["POST", `/v1/sessions/${mine}/commands`, { text: "self" }],
      ["POST", `/v1/sessions/${mine}/end`, { reason: "completed" }],
      ["PATCH", `/v1/sessions/${mine}`, { title: "mine now" }],
    ]) {
      const res = await call(method, path, agent, { body, headers: { "Idempotency-Key": "x" } })
      expect(res.status, ctx(res)).toBe(403)
    }
    // Another session of the same project, and project-level routes: as if missing.
    for (const [method, path] of [
      ["GET", `/v1/sessions/${alpha.session}`],
      ["POST", `/v1/sessions/${alpha.session}/heartbeat`],
      ["GET", `/v1/sessions/${alpha.session}/events?offset=-1`],
      ["GET", "/v1/projects/alpha"],
      ["GET", "/v1/stream/alpha/s1"],
    ]) {
      const res = await call(method, path, agent)
      expect(res.status, ctx(res)).toBe(404)
    }
    // Its lists hold its session only.
    const list = await call("GET", "/v1/sessions", agent)
    expect(list.json.sessions.map((x) => x.id)).toEqual([mine])
  })
})

describe("credentials", () => {
  test("the CLI sends --token and ORDO_TOKEN; without one it is told to authenticate", () => {
    const denied = spawnSync(ordoBinary(), ["stream", "read", "alpha/s1", "--server", server.url])
    expect(denied.status).not.toBe(0)
    expect(denied.stderr.toString()).toMatch(/bearer token.*--token/)
    const read = spawnSync(ordoBinary(), ["stream", "read", "alpha/s1", "--server", server.url], { env: { ...process.env, ORDO_TOKEN: admin } })
    expect(read.status, read.stderr.toString()).toBe(0)
    expect(read.stdout.toString()).toMatch(/alpha stream data/)
  })

  test("a revoked API token stops working within a second or two", async () => {
    const file = join(dir, "tokens.jsonl")
    const created = spawnSync(ordoBinary(), ["token", "create", "--tokens-file", file, "--scope", "admin", "--json"])
    const { token, id } = JSON.parse(created.stdout.toString())
    expect((await call("GET", "/v1/streams", token)).status).toBe(200)
    expect(spawnSync(ordoBinary(), ["token", "revoke", "--tokens-file", file, id]).status).toBe(0)
    await new Promise((r) => setTimeout(r, 1500))
    expect((await call("GET", "/v1/streams", token)).status).toBe(401)
  })

  test("the dashboard's cookie reads, but changes nothing without the page's header", async () => {
    const cookie = { Cookie: `ordo_token=${admin}` }
    expect((await call("GET", "/v1/streams", undefined, { headers: cookie })).status).toBe(200)
    const post = await call("POST", "/v1/stream/alpha/s1", undefined, { headers: { ...cookie, "Content-Type": "text/plain" }, body: "csrf" })
    expect(post.status, ctx(post)).toBe(403)
    expect(post.json.error.code).toBe("csrf_header_missing")
    const ok = await call("POST", "/v1/stream/alpha/s1", undefined, { headers: { ...cookie, "Content-Type": "text/plain", "X-Ordo-Request": "1" }, body: "ok" })
    expect(ok.status, ctx(ok)).toBe(204)
  })
})

describe("safe defaults", () => {
  test("without authentication ordo refuses a public address unless told to allow it", async () => {
    const refused = spawnSync(ordoBinary(), ["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", join(dir, "open")], { timeout: 15_000 })
    expect(refused.status).toBe(1)
    expect(refused.stderr.toString() + refused.stdout.toString()).toMatch(/without authentication/)
    const open = await startOrdo({ args: ["--host", "0.0.0.0", "--allow-unauthenticated"] })
    try {
      const ready = await fetch(`${open.url}/ready`)
      expect(await ready.json()).toMatchObject({ status: "ready", auth: "none", warning: expect.stringMatching(/without authentication/) })
      expect(open.log()).toMatch(/WITHOUT authentication/)
    } finally {
      await open.stop()
      open.cleanup()
    }
  })
})

describe("per-token caps", () => {
  test("past its rate or its requests in flight a token gets 429 with Retry-After; others are served; /metrics counts them", { timeout: 60_000 }, async () => {
    const file = join(dir, "capped.jsonl")
    const make = (scope) => {
      const r = spawnSync(ordoBinary(), ["token", "create", "--tokens-file", file, "--scope", scope])
      expect(r.status, r.stderr.toString()).toBe(0)
      return r.stdout.toString().trim()
    }
    const busy = make("admin")
    const calm = make("admin")
    const capped = await startOrdo({
      args: ["--auth", "tokens", "--auth-tokens-file", file, "--token-max-requests-per-second", "5",
        "--token-max-in-flight", "2", "--long-poll-timeout", "3s"],
    })
    const get = (token, path) => request(capped.url, "GET", path, { headers: { Authorization: `Bearer ${token}` } })
    try {
      // The bucket holds twice the rate: ten at once pass, the eleventh waits.
      const statuses = []
      for (let i = 0; i < 11; i++) statuses.push((await get(busy, "/v1/streams")).status)
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200))
      const refused = await get(busy, "/v1/streams")
      expect(refused.status, ctx(refused)).toBe(429)
      expect(refused.json.error.code).toBe("too_many_requests")
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      expect((await get(calm, "/v1/streams")).status).toBe(200)

      // Two long-polls of one token are in flight; its third request is refused at once.
      await request(capped.url, "PUT", "/v1/stream/wait", { headers: { Authorization: `Bearer ${calm}`, "Content-Type": "text/plain" } })
      await new Promise((r) => setTimeout(r, 1200)) // let calm's bucket refill
      const polls = [get(calm, "/v1/stream/wait?offset=now&live=long-poll"), get(calm, "/v1/stream/wait?offset=now&live=long-poll")]
      await new Promise((r) => setTimeout(r, 300))
      const third = await get(calm, "/v1/streams")
      expect(third.status, ctx(third)).toBe(429)
      expect(third.json.error.message).toMatch(/in flight/)
      expect((await Promise.all(polls)).map((r) => r.status)).toEqual([204, 204])
      await new Promise((r) => setTimeout(r, 1200))
      expect((await get(calm, "/v1/streams")).status).toBe(200)

      const metrics = (await get(calm, "/metrics")).text
      expect(metrics).toMatch(/^ordo_token_limit_refusals_total\{cap="rate"\} [1-9]/m)
      expect(metrics).toMatch(/^ordo_token_limit_refusals_total\{cap="in_flight"\} [1-9]/m)
      expect(metrics).toMatch(/^ordo_auth_cache_hits_total [1-9]/m)
    } finally {
      await capped.stop()
      capped.cleanup()
    }
  })
})

describe("CORS", () => {
  test("--cors-origins allows the listed origins with credentials and no other", async () => {
    const server2 = await startOrdo({ args: ["--cors-origins", "https://app.example.com, http://localhost:5173"] })
    try {
      const ask = (origin, method = "GET") => fetch(`${server2.url}/v1/streams`, { method, headers: origin ? { Origin: origin } : {} })
      const listed = await ask("https://app.example.com")
      expect(listed.headers.get("access-control-allow-origin")).toBe("https://app.example.com")
      expect(listed.headers.get("access-control-allow-credentials")).toBe("true")
      expect(listed.headers.get("vary")).toMatch(/Origin/)
      const preflight = await ask("http://localhost:5173", "OPTIONS")
      expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:5173")
      expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/)
      const other = await ask("https://evil.example")
      expect(other.status).toBe(200)
      expect(other.headers.get("access-control-allow-origin")).toBeNull()
      expect(other.headers.get("access-control-allow-credentials")).toBeNull()
    } finally {
      await server2.stop()
      server2.cleanup()
    }
    // By default: any origin, never with credentials.
    const open = await fetch(`${server.url}/health`, { headers: { Origin: "https://evil.example" } })
    expect(open.headers.get("access-control-allow-origin")).toBe("*")
    expect(open.headers.get("access-control-allow-credentials")).toBeNull()
    const bad = spawnSync(ordoBinary(), ["serve", "--port", "0", "--data-dir", join(dir, "cors"), "--cors-origins", "app.example.com/path"], { timeout: 15_000 })
    expect(bad.status).toBe(1)
    expect(bad.stdout.toString() + bad.stderr.toString()).toMatch(/not an origin/)
  })
})
