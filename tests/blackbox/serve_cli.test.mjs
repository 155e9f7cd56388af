// `ordo serve` as an operator meets it: --help, ORDO_* variables, refused flag values,
// /health and /ready, a clean exit on SIGTERM, and data kept across restarts.
import { describe, expect, test } from "vitest"
import { execFile, spawn, spawnSync } from "node:child_process"
import { promisify } from "node:util"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"

/** Runs SQL on a database file with the sqlite3 shell (bootstrap installs it); returns stdout. */
const sqlite = (db, sql) => {
  const r = spawnSync("sqlite3", [db, sql], { encoding: "utf8" })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim()
}

const OPTIONS = [
  ["--host", "ORDO_HOST"],
  ["--port", "ORDO_PORT"],
  ["--data-dir", "ORDO_DATA_DIR"],
  ["--sync", "ORDO_SYNC"],
  ["--threads", "ORDO_THREADS"],
  ["--long-poll-timeout", "ORDO_LONG_POLL_TIMEOUT"],
  ["--max-body-bytes", "ORDO_MAX_BODY_BYTES"],
  ["--read-chunk-bytes", "ORDO_READ_CHUNK_BYTES"],
  ["--max-write-queue-bytes", "ORDO_MAX_WRITE_QUEUE_BYTES"],
  ["--max-write-queue-jobs", "ORDO_MAX_WRITE_QUEUE_JOBS"],
  ["--sse-heartbeat", "ORDO_SSE_HEARTBEAT"],
  ["--sse-max-duration", "ORDO_SSE_MAX_DURATION"],
  ["--idle-timeout", "ORDO_IDLE_TIMEOUT"],
  ["--header-timeout", "ORDO_HEADER_TIMEOUT"],
  ["--body-timeout", "ORDO_BODY_TIMEOUT"],
  ["--journal", "ORDO_JOURNAL"],
  ["--busy-timeout", "ORDO_BUSY_TIMEOUT"],
  ["--max-connections", "ORDO_MAX_CONNECTIONS"],
  ["--sse-write-timeout", "ORDO_SSE_WRITE_TIMEOUT"],
  ["--max-catch-up-reads", "ORDO_MAX_CATCH_UP_READS"],
  ["--catch-up-wait-timeout", "ORDO_CATCH_UP_WAIT_TIMEOUT"],
  ["--tail-cache-bytes", "ORDO_TAIL_CACHE_BYTES"],
  ["--tail-cache-total-bytes", "ORDO_TAIL_CACHE_TOTAL_BYTES"],
  ["--log-merge-rows", "ORDO_LOG_MERGE_ROWS"],
  ["--log-merge-bytes", "ORDO_LOG_MERGE_BYTES"],
]

describe("ordo serve", () => {
  test("--help explains every option and names its environment variable", () => {
    const r = spawnSync(ordoBinary(), ["serve", "--help"], { encoding: "utf8" })
    expect(r.status).toBe(0)
    for (const [flag, env] of OPTIONS) {
      expect(r.stdout).toContain(flag)
      expect(r.stdout).toContain(`Env:${env}`)
    }
  })

  test("options are read from ORDO_* variables", async () => {
    const server = await startOrdo({
      env: { ORDO_LONG_POLL_TIMEOUT: "300ms", ORDO_MAX_BODY_BYTES: "16" },
    })
    try {
      const s = `${server.url}/v1/stream/env`
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201)
      const small = await fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x".repeat(16) })
      expect(small.status).toBe(204)
      const big = await fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x".repeat(17) })
      expect(big.status).toBe(413)
      const tail = small.headers.get("Stream-Next-Offset")
      const started = performance.now()
      const poll = await fetch(`${s}?offset=${tail}&live=long-poll`)
      expect(poll.status).toBe(204)
      expect(performance.now() - started).toBeLessThan(10000) // 300 ms, not the 30 s default
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })

  test("a flag wins over its environment variable", async () => {
    const server = await startOrdo({ env: { ORDO_MAX_BODY_BYTES: "4" }, args: ["--max-body-bytes", "8"] })
    try {
      const s = `${server.url}/v1/stream/precedence`
      await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" } })
      const r = await fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "12345678" })
      expect(r.status).toBe(204)
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("--log-merge-rows moves the append log into the stream table at that size, and a stop moves the rest", async () => {
    const server = await startOrdo({ args: ["--log-merge-rows", "2"] })
    const db = join(server.dataDir, "ordo.db")
    const count = (table) => Number(sqlite(db, `SELECT COUNT(*) FROM ${table}`))
    try {
      const s = `${server.url}/v1/stream/merged`
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201)
      for (const m of ["a;", "b;", "c;", "d;", "e;"]) {
        const r = await fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body: m })
        expect(r.status).toBe(204)
      }
      // One append per transaction: moved after the 2nd and the 4th.
      expect(count("messages")).toBe(4)
      expect(count("recent_messages")).toBe(1)
      expect(await (await fetch(`${s}?offset=-1`)).text()).toBe("a;b;c;d;e;")
    } finally {
      expect(await server.stop()).toBe(0)
    }
    try {
      expect(count("recent_messages")).toBe(0)
      expect(count("messages")).toBe(5)
    } finally {
      server.cleanup()
    }
  })

  test("/health and /ready answer JSON", async () => {
    const server = await startOrdo()
    try {
      const health = await fetch(`${server.url}/health`)
      expect(health.status).toBe(200)
      expect(await health.json()).toEqual({ status: "ok" })
      const ready = await fetch(`${server.url}/ready`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toEqual({ status: "ready", streams: 0, tls: false, auth: "none" })
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("SIGTERM exits 0 and a restart on the same data directory keeps every stream", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ordo-restart-"))
    try {
      let server = await startOrdo({ dataDir })
      const s = (base) => `${base}/v1/stream/kept`
      await fetch(s(server.url), { method: "PUT", headers: { "Content-Type": "application/json" }, body: "[1,2]" })
      const closed = await fetch(s(server.url), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Stream-Closed": "true" },
        body: "3",
      })
      const offset = closed.headers.get("Stream-Next-Offset")
      expect(await server.stop()).toBe(0)

      server = await startOrdo({ dataDir })
      const read = await fetch(s(server.url))
      expect(await read.json()).toEqual([1, 2, 3])
      expect(read.headers.get("Stream-Next-Offset")).toBe(offset)
      expect(read.headers.get("Stream-Closed")).toBe("true")
      expect(await server.stop()).toBe(0)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  describe("refused configuration", () => {
    for (const [args, fragment] of [
      [["--sync", "fast"], "--sync"],
      [["--long-poll-timeout", "5x"], "duration"],
      [["--threads", "0"], "--threads"],
      [["--max-body-bytes", "0"], "--max-body-bytes"],
      [["--host", "not-an-address"], "--host"],
      [["--journal", "memory"], "--journal"],
      [["--busy-timeout", "soon"], "duration"],
      [["--log-merge-rows", "0"], "--log-merge-rows"],
      [["--log-merge-bytes", "0"], "--log-merge-bytes"],
      [["--bogus"], "bogus"],
    ]) {
      test(`${args.join(" ")} exits non-zero and says what is wrong`, () => {
        const dataDir = mkdtempSync(join(tmpdir(), "ordo-badflag-"))
        try {
          const r = spawnSync(ordoBinary(), ["serve", "--port", "0", "--data-dir", dataDir, ...args], {
            encoding: "utf8",
            timeout: 10000,
          })
          expect(r.status).not.toBe(0)
          expect(`${r.stdout}${r.stderr}`).toContain(fragment)
        } finally {
          rmSync(dataDir, { recursive: true, force: true })
        }
      })
    }
  })
})

// ---- ordo migrate ----------------------------------------------------------------------------

describe("ordo migrate", () => {
  const run = (args, opts = {}) => spawnSync(ordoBinary(), ["migrate", ...args], { encoding: "utf8", timeout: 20000, ...opts })
  /** The files of `dir` with their bytes and mtimes, to prove a tool left them alone. */
  const fingerprint = (dir) =>
    readdirSync(dir)
      .sort()
      .map((f) => [f, statSync(join(dir, f)).mtimeMs, readFileSync(join(dir, f)).toString("base64")])
  const withDir = async (body) => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-migrate-"))
    try {
      await body(dir)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  test("--dry-run on a new data directory lists every migration and creates nothing", () =>
    withDir((dir) => {
      const r = run(["--data-dir", join(dir, "data"), "--dry-run"])
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/does not exist; it would be created with \d+ migration\(s\)/)
      expect(r.stdout).toMatch(/^\s+1\s+streams core$/m)
      expect(existsSync(join(dir, "data"))).toBe(false)
    }))

  test("migrate applies them once; afterwards --dry-run says it is current and touches no file", () =>
    withDir((dir) => {
      const first = run(["--data-dir", dir])
      expect(first.status, first.stderr).toBe(0)
      expect(first.stdout).toMatch(/applied \d+ migration\(s\), now at schema version \d+/)
      const again = run(["--data-dir", dir])
      expect(again.stdout).toContain("is current; nothing to do")
      const before = fingerprint(dir)
      const dry = run(["--data-dir", dir, "--dry-run"])
      expect(dry.status, dry.stderr).toBe(0)
      expect(dry.stdout).toContain("is current; nothing to do")
      expect(fingerprint(dir)).toEqual(before) // no -wal, no -shm, same bytes and mtime
    }))

  test("--dry-run reads the database of a running server, and the server keeps serving", async () => {
    const server = await startOrdo()
    try {
      const s = `${server.url}/v1/stream/live`
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "a" })).status).toBe(201)
      const dry = run(["--data-dir", server.dataDir, "--dry-run"])
      expect(dry.status, dry.stderr).toBe(0)
      expect(dry.stdout).toContain("is current; nothing to do")
      expect((await fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "b" })).status).toBe(204)
      expect(await (await fetch(s)).text()).toBe("ab")
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })

  test("a database written by a newer ordo is refused by migrate, --dry-run and serve, unchanged", () =>
    withDir((dir) => {
      expect(run(["--data-dir", dir]).status).toBe(0)
      const db = join(dir, "ordo.db")
      sqlite(db, "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (999, 'future', 0)")
      const before = fingerprint(dir)
      for (const args of [["migrate", "--data-dir", dir, "--dry-run"], ["migrate", "--data-dir", dir]]) {
        const r = spawnSync(ordoBinary(), args, { encoding: "utf8", timeout: 20000 })
        expect(r.status).toBe(1)
        expect(r.stderr).toContain("schema version 999, written by a newer ordo")
      }
      const served = spawnSync(ordoBinary(), ["serve", "--port", "0", "--data-dir", dir], { encoding: "utf8", timeout: 20000 })
      expect(served.status).not.toBe(0)
      expect(served.stderr).toContain("written by a newer ordo")
      expect(sqlite(db, "SELECT MAX(version) FROM schema_migrations")).toBe("999")
      expect(fingerprint(dir).map(([f]) => f)).toEqual(before.map(([f]) => f))
    }))

  test("a schema changed by hand is named by the probe and the server refuses to start on it", () =>
    withDir((dir) => {
      expect(run(["--data-dir", dir]).status).toBe(0)
      sqlite(join(dir, "ordo.db"), "DROP TABLE pr_comments; ALTER TABLE streams DROP COLUMN last_access_ms;")
      for (const args of [["migrate", "--data-dir", dir], ["serve", "--port", "0", "--data-dir", dir]]) {
        const r = spawnSync(ordoBinary(), args, { encoding: "utf8", timeout: 20000 })
        expect(r.status).not.toBe(0)
        expect(r.stderr).toContain("table pr_comments is missing")
        expect(r.stderr).toContain("column streams.last_access_ms is missing")
      }
    }))
})

// ---- ordo backup -----------------------------------------------------------------------------

describe("ordo backup", () => {
  const run = promisify(execFile)

  test("copies a consistent database while appends continue; the copy serves as a data directory", async () => {
    const server = await startOrdo()
    const dir = mkdtempSync(join(tmpdir(), "ordo-backup-"))
    try {
      const s = `${server.url}/v1/stream/counter`
      const post = (body) => fetch(s, { method: "POST", headers: { "Content-Type": "application/json" }, body })
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "application/json" } })).status).toBe(201)
      // Some volume, so the copy takes a moment: 200 appends of 20 KB.
      const filler = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ n: -1 - i, pad: "x".repeat(20000) })))
      expect((await fetch(`${server.url}/v1/stream/filler`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: filler })).status).toBe(201)

      let acked = 0
      let writing = true
      const writer = (async () => {
        while (writing) {
          const r = await post(JSON.stringify({ n: acked }))
          expect(r.status).toBe(204)
          acked += 1
        }
      })()
      while (acked < 20) await new Promise((r) => setTimeout(r, 5))
      const ackedBefore = acked
      const dest = join(dir, "copy.db")
      const out = await run(ordoBinary(), ["backup", "--data-dir", server.dataDir, dest])
      const ackedAfter = acked
      expect(out.stdout).toContain("integrity ok")
      while (acked < ackedAfter + 20) await new Promise((r) => setTimeout(r, 5))
      writing = false
      await writer

      // The running server was not disturbed.
      const original = await fetch(s)
      expect((await original.json()).length).toBe(acked)
      const originalTail = original.headers.get("Stream-Next-Offset")
      // A second backup to the same name is refused; --force replaces it.
      await expect(run(ordoBinary(), ["backup", "--data-dir", server.dataDir, dest])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining("already exists"),
      })
      await run(ordoBinary(), ["backup", "--data-dir", server.dataDir, "--force", dest])

      // Restore as the OPERATIONS guide says: the copy becomes ordo.db of a data directory.
      const restoreDir = join(dir, "restored")
      mkdirSync(restoreDir)
      copyFileSync(join(dir, "copy.db"), join(restoreDir, "ordo.db"))
      expect(existsSync(`${dest}.partial`)).toBe(false)
      const restored = await startOrdo({ dataDir: restoreDir })
      try {
        const items = await (await fetch(`${restored.url}/v1/stream/counter`)).json()
        // A prefix of what was written, with nothing missing in between.
        expect(items.length).toBeGreaterThanOrEqual(ackedBefore)
        expect(items.map((m) => m.n)).toEqual(Array.from({ length: items.length }, (_, i) => i))
        expect((await (await fetch(`${restored.url}/v1/stream/filler`)).json()).length).toBe(200)
        const more = await fetch(`${restored.url}/v1/stream/counter`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })
        expect(more.status).toBe(204)
        // The restored database has a new epoch: an offset the original handed out (whose
        // positions the restored one reuses for other data) is a 410, never wrong data.
        const stale = await fetch(`${restored.url}/v1/stream/counter?offset=${originalTail}`)
        expect(stale.status).toBe(410)
        expect((await stale.json()).error.code).toBe("offset_not_for_stream")
        expect(restored.log()).toContain("restored from a backup")
      } finally {
        expect(await restored.stop()).toBe(0)
      }
      // The new epoch is kept across restarts: offsets of the restored server stay valid.
      const again = await startOrdo({ dataDir: restoreDir })
      try {
        const read = await fetch(`${again.url}/v1/stream/counter?offset=-1`)
        const tail = read.headers.get("Stream-Next-Offset")
        expect((await fetch(`${again.url}/v1/stream/counter?offset=${tail}`)).status).toBe(200)
        expect(again.log()).not.toContain("restored from a backup")
      } finally {
        expect(await again.stop()).toBe(0)
      }
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("refuses a missing database and a missing destination directory, writing nothing", () => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-backup-"))
    try {
      let r = spawnSync(ordoBinary(), ["backup", "--data-dir", join(dir, "none"), join(dir, "x.db")], { encoding: "utf8" })
      expect(r.status).toBe(1)
      expect(r.stderr).toContain("no database at")
      expect(spawnSync(ordoBinary(), ["migrate", "--data-dir", dir]).status).toBe(0)
      r = spawnSync(ordoBinary(), ["backup", "--data-dir", dir, join(dir, "missing", "x.db")], { encoding: "utf8" })
      expect(r.status).toBe(1)
      expect(r.stderr).toContain("does not exist")
      expect(readdirSync(dir)).toEqual(["ordo.db"])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

// ---- ordo inspect ----------------------------------------------------------------------------

describe("ordo inspect", () => {
  const inspect = (dir, extra = []) => {
    const r = spawnSync(ordoBinary(), ["inspect", "--data-dir", dir, ...extra], { encoding: "utf8", timeout: 20000 })
    expect(r.status, r.stderr).toBe(0)
    return r.stdout
  }
  /** Bytes and mtimes of the database and its WAL (the -shm holds only reader marks). */
  const files = (dir) =>
    ["ordo.db", "ordo.db-wal"].map((f) => {
      const p = join(dir, f)
      return existsSync(p) ? [f, statSync(p).mtimeMs, readFileSync(p).toString("base64")] : [f, null]
    })

  test("reports streams, sessions and the feed, with and without a server, changing no byte", async () => {
    const server = await startOrdo()
    try {
      const api = (method, path, body) =>
        fetch(`${server.url}${path}`, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) })
      expect((await api("PUT", "/v1/stream/big", ["a".repeat(1000), "b"])).status).toBe(201)
      expect((await api("PUT", "/v1/stream/small", ["c"])).status).toBe(201)
      expect((await api("POST", "/v1/projects", { id: "web", name: "Web" })).status).toBe(201)
      expect((await api("POST", "/v1/projects/web/sessions", {})).status).toBe(201)
      const ended = await (await api("POST", "/v1/projects/web/sessions", {})).json()
      expect((await api("POST", `/v1/sessions/${ended.id}/end`, { reason: "completed" })).status).toBe(200)

      const check = (r) => {
        expect(r.schema_version).toBe(r.schema_version_of_this_ordo)
        expect(r.streams).toMatchObject({ live: 2, soft_deleted: 0, purging: 0 })
        expect(r.streams.managed).toBeGreaterThanOrEqual(3) // two session streams and the feed
        const big = r.largest_streams.find((s) => s.path === "big")
        expect(big).toMatchObject({ appends: 1, closed: false }) // one stored append, two JSON messages
        expect(big.payload_bytes).toBeGreaterThan(1000)
        const order = r.largest_streams.map((s) => s.path)
        expect(order.indexOf("big")).toBeLessThan(order.indexOf("small"))
        expect(r.projects).toEqual({ live: 1, archived: 0 })
        expect(r.sessions).toEqual({ total: 2, by_state: { created: 1, ended: 1 } })
        expect(r.change_feed.exists).toBe(true)
        expect(r.change_feed.appends).toBeGreaterThanOrEqual(4)
        expect(r.pull_requests).toBe(0)
      }
      const before = files(server.dataDir)
      check(JSON.parse(inspect(server.dataDir, ["--json"])))
      const text = inspect(server.dataDir)
      expect(text).toMatch(/sessions\s+2 \(1 created, 1 ended\)/)
      expect(text).toMatch(/largest streams[\s\S]* big\n/)
      expect(files(server.dataDir)).toEqual(before)

      expect(await server.stop()).toBe(0)
      const stopped = files(server.dataDir)
      check(JSON.parse(inspect(server.dataDir, ["--json"])))
      expect(files(server.dataDir)).toEqual(stopped)
      expect(readdirSync(server.dataDir).sort()).toEqual(["ordo.db"])
    } finally {
      server.cleanup()
    }
  })

  test("a missing database is an error that names the path", () => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-inspect-"))
    try {
      const r = spawnSync(ordoBinary(), ["inspect", "--data-dir", dir], { encoding: "utf8" })
      expect(r.status).toBe(1)
      expect(r.stderr).toContain(`no database at '${join(dir, "ordo.db")}'`)
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

// ---- ordo doctor -----------------------------------------------------------------------------

describe("ordo doctor", () => {
  const doctor = (dir, extra = []) => {
    const r = spawnSync(ordoBinary(), ["doctor", "--data-dir", dir, "--json", ...extra], { encoding: "utf8", timeout: 30000 })
    return { status: r.status, report: r.stdout ? JSON.parse(r.stdout) : null, stderr: r.stderr }
  }

  test("finds a broken stream and session rows, repairs them in order, and clients resync", async () => {
    let server = await startOrdo()
    try {
      const api = (method, path, body) =>
        fetch(`${server.url}${path}`, { method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) })
      const s = "/v1/stream/log"
      expect((await api("PUT", s)).status).toBe(201)
      for (const n of [1, 2, 3, 4]) expect((await api("POST", s, { n })).status).toBe(204)
      expect((await api("POST", "/v1/projects", { id: "web", name: "Web" })).status).toBe(201)
      const session = await (await api("POST", "/v1/projects/web/sessions", {})).json()
      for (const text of ["a", "b", "c"]) {
        expect((await api("POST", `/v1/sessions/${session.id}/rows`, { kind: "user", body: { text } })).status).toBe(201)
      }
      const read = await api("GET", `${s}?offset=-1`)
      const oldTail = read.headers.get("Stream-Next-Offset")

      // While the server runs: healthy, read-only, and --repair is refused.
      expect(doctor(server.dataDir)).toMatchObject({ status: 0, report: { healthy: true, findings: [] } })
      const busy = doctor(server.dataDir, ["--repair"])
      expect(busy.status).toBe(2)
      expect(busy.stderr).toContain("stop it before --repair")
      expect(await server.stop()).toBe(0)

      // Break it as a bad tool might: a stored append and a transcript row vanish.
      const db = join(server.dataDir, "ordo.db")
      sqlite(db, `DELETE FROM messages WHERE stream_id = (SELECT id FROM streams WHERE path = 'log') AND seq = 2;
                  DELETE FROM rows WHERE session_id = '${session.id}' AND seq = 2;`)
      const before = readFileSync(db).toString("base64")
      const sick = doctor(server.dataDir)
      expect(sick.status).toBe(1)
      expect(sick.report.healthy).toBe(false)
      expect(sick.report.findings).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ check: "stream_offsets", subject: "log", repairable: true }),
          expect.objectContaining({ check: "session_rows", subject: session.id, repairable: true }),
        ]),
      )
      expect(readFileSync(db).toString("base64")).toBe(before) // diagnosis wrote nothing

      const fixed = doctor(server.dataDir, ["--repair"])
      expect(fixed.status, fixed.stderr).toBe(0)
      expect(fixed.report).toMatchObject({ healthy: true, epoch_renewed: true })
      expect(fixed.report.repairs.join("\n")).toContain("stream 'log'")
      expect(doctor(server.dataDir).status).toBe(0)

      server = await startOrdo({ dataDir: server.dataDir })
      const after = await api("GET", `${s}?offset=-1`)
      expect(await after.json()).toEqual([{ n: 1 }, { n: 3 }, { n: 4 }])
      // Offsets from before the repair are refused, never served from moved positions.
      expect((await api("GET", `${s}?offset=${oldTail}`)).status).toBe(410)
      const rows = await (await api("GET", `/v1/sessions/${session.id}/rows`)).json()
      const list = rows.rows ?? rows
      expect(list.map((r) => [r.sequence, r.body.text])).toEqual([[1, "a"], [2, "c"]])
      // The next row takes the next sequence.
      expect((await api("POST", `/v1/sessions/${session.id}/rows`, { kind: "user", body: { text: "d" } })).status).toBe(201)
      const more = await (await api("GET", `/v1/sessions/${session.id}/rows`)).json()
      expect((more.rows ?? more).map((r) => r.sequence)).toEqual([1, 2, 3])
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("a missing database exits 2 naming the path", () => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-doctor-"))
    try {
      const r = spawnSync(ordoBinary(), ["doctor", "--data-dir", dir], { encoding: "utf8" })
      expect(r.status).toBe(2)
      expect(r.stderr).toContain("no database at")
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

// ---- journal modes and locks held by other processes -----------------------------------------

describe("the database file shared with other processes", () => {
  test("--journal delete serves with a rollback journal: no -wal file, reads and writes work", async () => {
    const server = await startOrdo({ args: ["--journal", "delete"] })
    try {
      const s = `${server.url}/v1/stream/rj`
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "a" })).status).toBe(201)
      const tail = (await fetch(s)).headers.get("Stream-Next-Offset")
      const poll = fetch(`${s}?offset=${tail}&live=long-poll`)
      expect((await fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "b" })).status).toBe(204)
      expect(await (await poll).text()).toBe("b")
      expect(existsSync(join(server.dataDir, "ordo.db-wal"))).toBe(false)
      expect(server.log()).toContain("journal=delete")
      // inspect reads it beside the server (shared locks, not the immutable shortcut).
      const r = spawnSync(ordoBinary(), ["inspect", "--data-dir", server.dataDir, "--json"], { encoding: "utf8" })
      expect(r.status, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout).streams.live).toBe(1)
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })

  test("a sqlite3 shell holding a write transaction gets writes a 503 storage_busy after --busy-timeout; reads go on; writes resume", async () => {
    const server = await startOrdo({ args: ["--busy-timeout", "300ms"] })
    const shell = spawn("sqlite3", [join(server.dataDir, "ordo.db")], { stdio: ["pipe", "pipe", "pipe"] })
    try {
      const s = `${server.url}/v1/stream/locked`
      const post = (body) => fetch(s, { method: "POST", headers: { "Content-Type": "text/plain" }, body })
      expect((await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "a" })).status).toBe(201)
      // A write lock, proven held: the shell answers after taking it.
      shell.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
      await new Promise((resolve) => shell.stdout.once("data", resolve))

      const refused = await post("b")
      expect(refused.status).toBe(503)
      const err = (await refused.json()).error
      expect(err.code).toBe("storage_busy")
      expect(err.message).toContain("locked by another process")
      expect(await (await fetch(s)).text()).toBe("a") // reads are not blocked
      expect((await fetch(`${server.url}/health`)).status).toBe(200)

      shell.stdin.write("COMMIT;\n.quit\n")
      await new Promise((resolve) => shell.once("exit", resolve))
      expect((await post("c")).status).toBe(204)
      expect(await (await fetch(s)).text()).toBe("ac") // the refused write left nothing
    } finally {
      shell.kill()
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })
})
