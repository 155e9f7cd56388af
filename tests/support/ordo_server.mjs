// Starts a real `ordo serve` on a free loopback port with a fresh data directory, for the
// JavaScript test suites. The binary is $ORDO_BIN, or build/release/ordo.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { startPostgres } from "./postgres.mjs"

const repoRoot = resolve(new URL(".", import.meta.url).pathname, "../..")

export function ordoBinary() {
  return process.env.ORDO_BIN ?? join(repoRoot, "build/release/ordo")
}

// How much slower than the release build the binary under test is (the sanitized build of
// `ctest --preset asan` sets ORDO_TEST_TIME_SCALE); waits that bound how long ordo may take are
// multiplied by it.
export const timeScale = Number(process.env.ORDO_TEST_TIME_SCALE ?? "1") || 1
export function scaled(ms) {
  return Math.round(ms * timeScale)
}
// Whether the binary under test is built with sanitizers (ORDO_TEST_SANITIZED=1, set with the
// time scale): bounds on its memory would measure the sanitizer, not ordo.
export const sanitized = process.env.ORDO_TEST_SANITIZED === "1"

// A sanitizer's report on ordo's stderr (AddressSanitizer, LeakSanitizer at exit,
// UndefinedBehaviorSanitizer). The sanitized build stops at the first one (halt_on_error), and
// it fails the test file even when the test's own checks passed: stop() throws on it, and
// support/setup.mjs checks every server a file started once the file is done.
const sanitizerReport = /ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: |SUMMARY: UndefinedBehaviorSanitizer/
const startedServers = []

/** Reports found in the output of the servers started since the last call, each with its log. */
export function takeSanitizerReports() {
  const found = startedServers.filter((s) => sanitizerReport.test(s.log())).map((s) => s.log())
  startedServers.length = 0
  return found
}

/**
 * @param {{ args?: string[], dataDir?: string, env?: Record<string,string> }} opts
 * @returns {Promise<{ url: string, port: number, dataDir: string, child: import("node:child_process").ChildProcess, log: () => string, stop: () => Promise<number|null>, kill: () => Promise<void>, cleanup: () => void }>}
 */
// Servers still running after a test file are killed (support/setup.mjs calls this after
// each file), so a test that timed out, whose `finally` never ran, leaves no ordo behind.
const running = new Set()
export function killLeftoverServers() {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
}

// ORDO_TEST_STORAGE=postgres: every server a suite starts stores its data in PostgreSQL, in one
// scratch cluster per test process (support/postgres.mjs) stopped when the process exits,
// unless the suite gives --storage itself. The database goes with the data directory: a server
// restarted on the same --data-dir finds its data again.
let sharedPostgres = null
const databases = new Map() // data directory -> database

/** Stops the shared cluster, if a suite started one (support/setup.mjs, after each file). */
export function stopSharedPostgres() {
  if (!sharedPostgres) return
  const pg = sharedPostgres
  sharedPostgres = null
  databases.clear()
  pg.stop()
}
function postgresStorage(dataDir) {
  if (!sharedPostgres) {
    sharedPostgres = startPostgres()
    // Also when the file's worker exits without the setup's afterAll (a crash).
    process.on("exit", stopSharedPostgres)
  }
  if (!databases.has(dataDir)) databases.set(dataDir, sharedPostgres.createDatabase())
  return ["--storage", sharedPostgres.url(databases.get(dataDir))]
}

// ORDO_TEST_STORAGE=postgres-cluster: every server a suite starts is two nodes on that
// database behind nginx round-robin (support/proxy_cluster.mjs), seen through one URL: stop()
// and kill() act on every node.
async function startCluster(opts, dataDir) {
  const [, url] = postgresStorage(dataDir)
  const { startProxyCluster } = await import("./proxy_cluster.mjs")
  const cluster = await startProxyCluster({ storage: url, nodes: 2, args: opts.args ?? [] })
  const port = Number(new URL(cluster.url).port)
  return {
    url: cluster.url,
    port,
    dataDir,
    nodes: cluster.nodes,
    child: cluster.nodes[0].child,
    log: () => cluster.nodes.map((n) => n.log()).join("\n--- next node ---\n"),
    async stop() {
      const codes = await cluster.stop()
      return codes.find((c) => c !== 0) ?? 0
    },
    async kill() {
      for (const n of cluster.nodes) await n.kill()
      await cluster.stop().catch(() => {})
    },
    cleanup() {
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export async function startOrdo(opts = {}) {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "ordo-test-"))
  if (process.env.ORDO_TEST_STORAGE === "postgres-cluster" && !(opts.args ?? []).includes("--storage") && !opts.single) {
    return startCluster(opts, dataDir)
  }
  const storage =
    process.env.ORDO_TEST_STORAGE?.startsWith("postgres") && !(opts.args ?? []).includes("--storage")
      ? postgresStorage(dataDir)
      : []
  const args = ["serve", "--port", String(opts.port ?? 0), "--data-dir", dataDir, ...storage, ...(opts.args ?? [])]
  const child = spawn(ordoBinary(), args, {
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
  })
  running.add(child)
  child.once("exit", () => running.delete(child))
  let output = ""
  const port = await new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`ordo did not start:\n${output}`)), scaled(15000))
    const onData = (chunk) => {
      output += chunk.toString()
      const m = output.match(/listening address=\S+ port=(\d+)/)
      if (m) {
        clearTimeout(timer)
        resolvePort(Number(m[1]))
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`ordo exited with ${code} before listening:\n${output}`))
    })
  })
  child.stderr.removeAllListeners("data")
  child.stdout.removeAllListeners("data")
  child.stderr.on("data", (c) => (output += c.toString()))
  child.stdout.on("data", (c) => (output += c.toString()))
  const exited = new Promise((r) => child.on("exit", (code, signal) => r(code ?? signal)))
  startedServers.push({ log: () => output })
  const checked = async () => {
    const status = await exited
    if (sanitizerReport.test(output)) throw new Error(`ordo's sanitizer reported:\n${output}`)
    return status
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    child,
    log: () => output,
    async stop() {
      child.kill("SIGTERM")
      return checked()
    },
    async kill() {
      child.kill("SIGKILL")
      await checked()
    },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** Waits until the server's log matches `pattern`; throws with the log after `ms`. */
export async function waitForLog(server, pattern, ms = 10000) {
  const until = Date.now() + ms
  while (!pattern.test(server.log())) {
    if (Date.now() > until) throw new Error(`log never matched ${pattern}:\n${server.log()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
