// A throwaway PostgreSQL cluster for the JavaScript test suites, like the C++ tests' own
// (src/storage/postgres/scratch_cluster.hpp): in a temporary directory, reached only through a
// unix socket there (no TCP port), fsync off (unless `durable`), superuser `ordo` with trust
// authentication.
// initdb refuses to run as root, so as root the cluster runs as the `postgres` user.
//
// Without PostgreSQL's server binaries, postgresMissing() says why and the suites skip, unless
// ORDO_REQUIRE_POSTGRES=1 (CI, where scripts/bootstrap --test installs PostgreSQL): then
// startPostgres() throws.
import { execFileSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"

const port = 5432 // names the socket file only

function serverBinaries() {
  if (process.env.ORDO_PG_BIN) return process.env.ORDO_PG_BIN
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return null
  const versions = readdirSync(root)
    .map(Number)
    .filter((v) => v > 0 && existsSync(join(root, String(v), "bin/initdb")))
    .sort((a, b) => b - a)
  return versions.length ? join(root, String(versions[0]), "bin") : null
}

/** Why no cluster can be started here, or null when one can. */
export function postgresMissing() {
  if (process.env.ORDO_REQUIRE_POSTGRES === "1") return null // startPostgres() fails loudly
  return serverBinaries() ? null : "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
}

function postgresUser() {
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("postgres:"))
  if (!line) throw new Error("running as root, and there is no postgres user to run the cluster as")
  const [, , uid, gid] = line.split(":")
  return { uid: Number(uid), gid: Number(gid) }
}

// A test process that died without stopping its cluster (a crash, a kill) leaves it running:
// stop and remove every cluster whose owner process is gone.
function reapAbandoned(bin, asRoot) {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith("ordo-pg-")) continue
    const dir = join(tmpdir(), name)
    let pid = 0
    try {
      pid = Number(readFileSync(join(dir, "owner"), "utf8").trim())
    } catch {
      continue // being created, or not ours
    }
    if (!(pid > 0) || alive(pid)) continue
    const [file, argv] = asRoot
      ? ["runuser", ["-u", "postgres", "--", join(bin, "pg_ctl"), "-D", join(dir, "data"), "stop", "-m", "immediate"]]
      : [join(bin, "pg_ctl"), ["-D", join(dir, "data"), "stop", "-m", "immediate"]]
    try {
      execFileSync(file, argv, { stdio: "ignore" })
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true })
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return e.code !== "ESRCH"
  }
}

/**
 * Starts a cluster. `url(db)` names database `db` (postgres exists from the start);
 * createDatabase(name) makes one; sql(db, text) runs SQL through psql and returns its rows as
 * text; stop() stops the cluster and removes its directory.
 */
// `durable`: fsync, full-page writes and synchronous commit as PostgreSQL ships them (the
// benchmarks' cluster), instead of off (the tests' clusters, where speed is all that matters).
export function startPostgres({ durable = false } = {}) {
  const bin = serverBinaries()
  if (!bin) throw new Error("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
  const asRoot = userInfo().uid === 0
  reapAbandoned(bin, asRoot)
  const dir = mkdtempSync(join(tmpdir(), "ordo-pg-"))
  writeFileSync(join(dir, "owner"), `${process.pid}\n`)
  const run = (cmd, args) => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args]
    return execFileSync(file, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  }
  if (asRoot) {
    const { uid, gid } = postgresUser()
    chownSync(dir, uid, gid)
  }
  const data = join(dir, "data")
  const pgCtl = (action) =>
    run(join(bin, "pg_ctl"), ["-D", data, "-w", "-l", join(dir, "server.log"), "-o",
      `-p ${port} -k ${dir} -c listen_addresses=''` +
        (durable ? "" : " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"),
      ...action])
  try {
    run(join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "ordo", "-E", "UTF8", "--locale=C", "--no-sync"])
    pgCtl(["start"])
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`the scratch PostgreSQL cluster did not start: ${e.stderr ?? e.message}`)
  }
  const url = (db = "postgres") => `postgresql://ordo@/${db}?host=${dir}&port=${port}`
  const sql = (db, text) =>
    execFileSync("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url(db), "-c", text], {
      encoding: "utf8",
    }).trim()
  let databases = 0
  return {
    dir,
    url,
    sql,
    createDatabase(name = `test_${process.pid}_${++databases}`) {
      sql("postgres", `CREATE DATABASE ${name}`)
      return name
    },
    // The server stopped (immediately: as a crash) and started again, its data kept: what a
    // node sees of a database that goes away and comes back.
    pause() {
      pgCtl(["stop", "-m", "immediate"])
    },
    resume() {
      pgCtl(["start"])
    },
    stop() {
      try {
        pgCtl(["stop", "-m", "immediate"])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
