// `ordo migrate` and `ordo doctor` with --storage postgres://... as an operator meets them,
// against a scratch PostgreSQL cluster: a dry run that writes nothing, the migration, a second
// run that finds nothing to do, ORDO_STORAGE, several nodes migrating at once, doctor's findings
// (text and JSON), and the errors (no server, a URL that is not PostgreSQL's, --repair) with the
// password never shown.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ordoBinary } from "../support/ordo_server.mjs"
import { postgresMissing, startPostgres } from "../support/postgres.mjs"

const run = promisify(execFile)
/**
 * Runs `ordo args...`; resolves with { code, stdout, stderr } whatever the exit status. Every
 * command here ends at once: one still running after 10 s is killed (a serve that did not refuse).
 */
async function ordo(args, env = {}) {
  try {
    const { stdout, stderr } = await run(ordoBinary(), args, { env: { ...process.env, ...env }, timeout: 10_000 })
    return { code: 0, stdout, stderr }
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe.skipIf(postgresMissing())("ordo migrate against PostgreSQL", () => {
  let pg
  beforeAll(() => {
    pg = startPostgres()
  })
  afterAll(() => pg?.stop())

  const tables = (db) => Number(pg.sql(db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))

  test("a dry run lists the migrations and writes nothing; then they run once", async () => {
    const db = pg.createDatabase()
    const dry = await ordo(["migrate", "--storage", pg.url(db), "--dry-run"])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/schema version 0; 1 migration\(s\) would run:\n\s+1 {2}streams, sessions and pull requests/)
    expect(tables(db)).toBe(0)

    const first = await ordo(["migrate", "--storage", pg.url(db)])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain("applied 1 migration(s), now at schema version 1")
    expect(pg.sql(db, "SELECT version FROM schema_migrations")).toBe("1")
    expect(tables(db)).toBeGreaterThan(10)

    const again = await ordo(["migrate", "--storage", pg.url(db)])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toContain("schema version 1 is current; nothing to do")
    const dryAgain = await ordo(["migrate", "--dry-run"], { ORDO_STORAGE: pg.url(db) })
    expect(dryAgain.code, dryAgain.stderr).toBe(0)
    expect(dryAgain.stdout).toContain("schema version 1 is current; nothing to do")
  })

  test("ORDO_STORAGE names the database; nodes migrating at once migrate it once", async () => {
    const db = pg.createDatabase()
    const runs = await Promise.all(
      Array.from({ length: 4 }, () => ordo(["migrate"], { ORDO_STORAGE: pg.url(db) })),
    )
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    expect(runs.filter((r) => r.stdout.includes("applied 1 migration(s)")).length).toBe(1)
    expect(pg.sql(db, "SELECT count(*) FROM schema_migrations")).toBe("1")
  })

  test("a schema changed outside ordo is named, and migrate fails", async () => {
    const db = pg.createDatabase()
    expect((await ordo(["migrate", "--storage", pg.url(db)])).code).toBe(0)
    pg.sql(db, "ALTER TABLE streams DROP COLUMN tail_seq")
    const r = await ordo(["migrate", "--storage", pg.url(db)])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("its schema differs (changed outside ordo?): column streams.tail_seq is missing")
  })

  test("a database written by a newer ordo is refused, also by a dry run", async () => {
    const db = pg.createDatabase()
    expect((await ordo(["migrate", "--storage", pg.url(db)])).code).toBe(0)
    pg.sql(db, "INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    for (const args of [["migrate"], ["migrate", "--dry-run"]]) {
      const r = await ordo([...args, "--storage", pg.url(db)])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain("schema version 99, written by a newer ordo")
    }
  })
})

describe.skipIf(postgresMissing())("ordo doctor against PostgreSQL", () => {
  let pg
  beforeAll(() => {
    pg = startPostgres()
  })
  afterAll(() => pg?.stop())

  test("a healthy database, then one whose stream counter is ahead of its data", async () => {
    const db = pg.createDatabase()
    expect((await ordo(["migrate", "--storage", pg.url(db)])).code).toBe(0)
    const healthy = await ordo(["doctor", "--storage", pg.url(db)])
    expect(healthy.code, healthy.stderr).toBe(0)
    expect(healthy.stdout).toBe(`${pg.url(db)}: healthy\n`)

    pg.sql(db, `INSERT INTO streams (path, content_type, incarnation, created_at_ms, last_access_ms, tail_seq)
                VALUES ('ahead', 'text/plain', 1, 0, 0, 4)`)
    const text = await ordo(["doctor"], { ORDO_STORAGE: pg.url(db) })
    expect(text.code).toBe(1)
    expect(text.stdout).toContain("1 problem(s)")
    expect(text.stdout).toMatch(/stream_counter +ahead: the stream's counter is at 4 and its last position is 0: the next append would leave a gap/)
    expect(text.stdout).not.toContain("--repair")
    const json = await ordo(["doctor", "--json", "--storage", pg.url(db)])
    expect(json.code).toBe(1)
    const report = JSON.parse(json.stdout)
    expect(report.healthy).toBe(false)
    expect(report.findings).toEqual([expect.objectContaining({ check: "stream_counter", subject: "ahead", repairable: false })])
    // The doctor only read.
    expect(pg.sql(db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ordo doctor'")).toBe("0")
  })

  test("--repair is for SQLite; an unreachable server cannot be checked", async () => {
    const repair = await ordo(["doctor", "--repair", "--storage", pg.url("postgres")])
    expect(repair.code).toBe(2)
    expect(repair.stderr).toContain("--repair is for SQLite databases")
    const unreachable = await ordo(["doctor", "--storage",
      "postgresql://ordo:hunter2@/ordo?host=/nonexistent-ordo-socket-dir&port=1"])
    expect(unreachable.code).toBe(2)
    expect(unreachable.stderr).not.toContain("hunter2")
  })
})

describe.skipIf(postgresMissing())("ordo inspect against PostgreSQL", () => {
  let pg
  beforeAll(() => {
    pg = startPostgres()
  })
  afterAll(() => pg?.stop())

  test("reports what the database holds, in one snapshot, read-only", async () => {
    const db = pg.createDatabase()
    const empty = await ordo(["inspect", "--storage", pg.url(db)])
    expect(empty.code, empty.stderr).toBe(0)
    expect(empty.stdout).toContain("schema version  0 (this ordo: 1)\n(empty database)")

    expect((await ordo(["migrate", "--storage", pg.url(db)])).code).toBe(0)
    pg.sql(db, `INSERT INTO meta VALUES ('database_epoch', '00000000000000ab');
      INSERT INTO streams (path, content_type, incarnation, created_at_ms, last_access_ms, tail_seq, closed)
        VALUES ('big', 'text/plain', 1, 0, 0, 2, true), ('__ordo/changes', 'application/json', 1, 0, 0, 1, false),
               ('small', 'text/plain', 1, 0, 0, 1, false);
      INSERT INTO messages SELECT id, 1, '\\x68656c6c6f' FROM streams;
      INSERT INTO messages SELECT id, 2, '\\x21' FROM streams WHERE path = 'big';
      INSERT INTO projects (id, name, created_at_ms, updated_at_ms) VALUES ('p', 'P', 0, 0);
      INSERT INTO sessions (id, project_id, number, state, created_at_ms, updated_at_ms, events_stream_id)
        SELECT 'p-1', 'p', 1, 'active', 0, 0, id FROM streams WHERE path = 'small'`)
    const json = await ordo(["inspect", "--json", "--top", "2", "--storage", pg.url(db)])
    expect(json.code, json.stderr).toBe(0)
    const r = JSON.parse(json.stdout)
    expect(r).toMatchObject({
      path: pg.url(db),
      storage: "postgresql",
      schema_version: 1,
      database_epoch: "00000000000000ab",
      streams: { live: 2, managed: 1, soft_deleted: 0, purging: 0, appends: 4, payload_bytes: 16 },
      projects: { live: 1, archived: 0 },
      sessions: { total: 1, by_state: { active: 1 } },
      change_feed: { exists: true, appends: 1, tail: 1, pruned_upto: 0 },
      pull_requests: 0,
    })
    expect(r.database_bytes).toBeGreaterThan(0)
    expect(r.largest_streams).toEqual([
      { path: "big", content_type: "text/plain", closed: true, appends: 2, payload_bytes: 6 },
      { path: "__ordo/changes", content_type: "application/json", closed: false, appends: 1, payload_bytes: 5 },
    ])
    const text = await ordo(["inspect"], { ORDO_STORAGE: pg.url(db) })
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/streams +2 live, 1 managed, 0 soft-deleted, 0 purging\nappends +4, 16 B of payload/)
    expect(text.stdout).toMatch(/size +[0-9.]+ (KiB|MiB) \(pg_database_size\)/)
  })
})

describe("ordo migrate --storage: bad URLs", () => {
  test("an unreachable server fails with its URL, the password hidden", async () => {
    const r = await ordo(["migrate", "--storage",
      "postgresql://ordo:hunter2@/ordo?host=/nonexistent-ordo-socket-dir&port=1"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("cannot connect to postgresql://ordo:***@/ordo")
    expect(r.stderr).not.toContain("hunter2")
  })

  test("a --storage that is not a PostgreSQL URL is refused", async () => {
    const r = await ordo(["migrate", "--storage", "./data"])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("--storage takes a postgres:// or postgresql:// URL, not './data'")
    const doctor = await ordo(["doctor", "--storage", "./data"])
    expect(doctor.code).toBe(2)
    expect(doctor.stderr).toContain("--storage takes a postgres:// or postgresql:// URL, not './data'")
    const inspect = await ordo(["inspect", "--storage", "./data"])
    expect(inspect.code).toBe(1)
    expect(inspect.stderr).toContain("--storage takes a postgres:// or postgresql:// URL, not './data'")
  })

  test("inspect of an unreachable server fails, the password hidden", async () => {
    const r = await ordo(["inspect", "--storage",
      "postgresql://ordo:hunter2@/ordo?host=/nonexistent-ordo-socket-dir&port=1"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("cannot connect to postgresql://ordo:***@/ordo")
    expect(r.stderr).not.toContain("hunter2")
  })

  test("serve with an unreachable database does not start, the password hidden", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ordo-test-"))
    try {
      const r = await ordo(["serve", "--port", "0", "--data-dir", dataDir],
        { ORDO_STORAGE: "postgresql://ordo:hunter2@/ordo?host=/nonexistent-ordo-socket-dir&port=1" })
      expect(r.code).toBe(1)
      expect(r.stderr + r.stdout).toContain("cannot connect to postgresql://ordo:***@/ordo")
      expect(r.stderr + r.stdout).not.toContain("hunter2")
      // Nothing was written to SQLite instead.
      expect(existsSync(join(dataDir, "ordo.db"))).toBe(false)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  test("serve --storage takes a PostgreSQL URL only", async () => {
    const r = await ordo(["serve", "--port", "0", "--storage", "mysql://ordo:hunter2@db/ordo"])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toContain("--storage: takes a postgres:// or postgresql:// URL")
    expect(r.stderr).not.toContain("hunter2")
  })
})
