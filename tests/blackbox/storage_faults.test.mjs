// The disk fills up under a running server: appends answer 507 with a JSON error, reads and
// other clients go on, writes resume when space returns, and ordo doctor finds nothing wrong.
// The test makes its own small filesystem (a size-limited tmpfs), which needs root; CI runs as
// root. Without root it is skipped, saying why.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { spawnSync } from "node:child_process"
import { renameSync, mkdtempSync, rmSync, unlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomBytes } from "node:crypto"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"

const root = process.getuid?.() === 0
const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`)
}

describe.skipIf(!root)("a full disk (tmpfs of 3 MiB; needs root)", () => {
  let mountPoint
  beforeAll(() => {
    mountPoint = mkdtempSync(join(tmpdir(), "ordo-full-"))
    sh("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mountPoint])
  })
  afterAll(() => {
    spawnSync("umount", [mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })

  test("appends get 507 storage_full, reads continue, writes resume when space returns, doctor finds nothing", async () => {
    const server = await startOrdo({ dataDir: mountPoint })
    const blob = randomBytes(100_000)
    const s = `${server.url}/v1/stream/big`
    const post = () => fetch(s, { method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: blob })
    /** Every byte of the stream, following chunked catch-up reads. */
    const readAll = async () => {
      const parts = []
      let offset = "-1"
      for (;;) {
        const r = await fetch(`${s}?offset=${offset}`)
        expect(r.status).toBe(200)
        parts.push(Buffer.from(await r.arrayBuffer()))
        offset = r.headers.get("Stream-Next-Offset")
        if (r.headers.get("Stream-Up-To-Date") === "true") return Buffer.concat(parts)
      }
    }
    try {
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "application/octet-stream" } })).status).toBe(201)
      let acked = 0
      let full
      for (let i = 0; i < 100 && !full; i++) {
        const r = await post()
        if (r.status === 204) acked += 1
        else full = r
      }
      expect(full, "the 3 MiB filesystem never filled").toBeDefined()
      expect(full.status).toBe(507)
      expect(full.headers.get("content-type")).toContain("application/json")
      const err = (await full.json()).error
      expect(err.code).toBe("storage_full")
      expect(err.message).toContain("full")
      expect(acked).toBeGreaterThan(5)

      // Still full: writes keep failing cleanly, everything else works.
      expect((await post()).status).toBe(507)
      expect((await fetch(`${server.url}/health`)).status).toBe(200)
      let all = await readAll()
      expect(all.length).toBe(acked * blob.length)
      for (let i = 0; i < acked; i++) expect(all.subarray(i * blob.length, (i + 1) * blob.length).equals(blob)).toBe(true)

      // Space returns: the same server writes again, and nothing of the refused appends shows.
      sh("mount", ["-o", "remount,size=16m", mountPoint])
      expect((await post()).status).toBe(204)
      all = await readAll()
      expect(all.length).toBe((acked + 1) * blob.length)
      expect(await server.stop()).toBe(0)

      const doctor = spawnSync(ordoBinary(), ["doctor", "--data-dir", mountPoint, "--json"], { encoding: "utf8" })
      expect(doctor.status, doctor.stdout + doctor.stderr).toBe(0)
      expect(JSON.parse(doctor.stdout).healthy).toBe(true)
    } finally {
      await server.stop()
    }
  })
})

// Without root the describe block above is reported as skipped (vitest says so), never as a pass.

// The database file moved or deleted under a running server: it notices within a second and
// refuses writes rather than writing to a file no longer at its path. (A file put in its place
// is file_replacement.test.mjs.)
describe("the database file taken away under a running server", () => {
  const cases = [
    ["moved", (dir) => renameSync(join(dir, "ordo.db"), join(dir, "moved.db")), "was moved or deleted"],
    ["deleted", (dir) => unlinkSync(join(dir, "ordo.db")), "was moved or deleted"],
  ]
  for (const [what, act, phrase] of cases) {
    test(`${what}: /ready turns 503 within a second, writes get 503 storage_replaced, reads go on`, async () => {
      const server = await startOrdo()
      try {
        const s = `${server.url}/v1/stream/kept`
        const post = (body) => fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body })
        expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "a" })).status).toBe(201)
        expect((await post("b")).status).toBe(204)
        expect((await fetch(`${server.url}/ready`)).status).toBe(200)

        act(server.dataDir)
        const started = Date.now()
        let ready
        while (Date.now() - started < 3000) {
          ready = await fetch(`${server.url}/ready`)
          if (ready.status === 503) break
          await new Promise((r) => setTimeout(r, 50))
        }
        expect(ready.status).toBe(503)
        expect(Date.now() - started).toBeLessThan(1500) // "within a second", with slack for a busy machine

        const refused = await post("c")
        expect(refused.status).toBe(503)
        const err = (await refused.json()).error
        expect(err.code).toBe("storage_replaced")
        expect(err.message).toContain(phrase)
        expect(await (await fetch(s)).text()).toBe("ab")
        expect((await fetch(`${server.url}/health`)).status).toBe(200)
        expect(server.log()).toContain(phrase)
      } finally {
        expect(await server.stop()).toBe(0)
        server.cleanup()
      }
    })
  }
})
