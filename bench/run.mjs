// `make bench`: runs ordo and the Durable Streams reference server (memory and file-backed)
// side by side through every scenario of ordo-bench, alternating which goes first each round,
// and writes docs/BENCHMARKS.md (medians, spreads, ratios, targets) with PNG charts.
//
//   node bench/run.mjs [--quick] [--rounds N] [--servers ordo,ref-memory,ref-file]
//                      [--scenarios a1,a1000,...] [--baseline BUILD_DIR]
//                      [--out docs/BENCHMARKS.md] [--json results.json]
//
// --baseline BUILD_DIR adds the server `ordo-baseline`, the ordo binary built in BUILD_DIR (an
// earlier commit, say), to compare a change before and after in one run on one machine:
// `--servers ordo,ordo-baseline --baseline /tmp/before/build/release`. The rounds alternate
// which goes first, as with the reference server. --scenarios runs only the scenarios named
// (ids as in the table; g is the startup scenario).
//
// The server `ordo-jwt` is ordo with JWT authentication on (--auth jwt, an Ed25519 key made for
// the run): every request of ordo-bench carries the same token, so the cost shown beside
// `ordo` is verification once and the cache's lookup on every request after
// (docs/SECURITY.md, "Cost per request"). It runs the scenarios that say `jwtTarget`, (a)'s,
// whose third target is its ratio to the nginx ceiling of the same run.
//
// The servers `nginx-1` and `nginx-n` are the ceiling: Debian's nginx-light answering every
// request with `return 204` (201 to a PUT, so that streams "exist"), with one worker and with
// one worker per core, driven by the same ordo-bench with the same connections and bodies in the
// same run. They run the append scenarios only; each append row shows ordo's ratio to them, and
// (a)'s targets are ratios to the 1-worker ceiling: an absolute figure holds only for the machine
// and the run it came from.
//
// The servers `ordo-pg` and `ordo-pg2` are ordo on PostgreSQL (--storage): one node, and two
// nodes sharing one database, on a scratch cluster started for the run with PostgreSQL's own
// durability settings (fsync on, synchronous_commit on: --sync full), a new database for each
// server start. They run the scenarios that say `postgres`; ordo-bench spreads the appending
// connections over both nodes of ordo-pg2, and its delivery scenarios append through one node
// and read through the other (cross-node delivery). The ratio column "ordo vs ..." is then the
// embedded SQLite's ratio to PostgreSQL. Their server CPU is not reported: PostgreSQL's own
// processes do much of the work.
//
// --quick runs every scenario briefly and small (the smoke run in `make test`): it checks that
// the harness works, not how fast anything is.
import { spawn, spawnSync } from "node:child_process"
import { generateKeyPairSync, sign } from "node:crypto"
import { cpus, totalmem, tmpdir, release } from "node:os"
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { createServer } from "node:net"
import { postgresMissing, startPostgres } from "../tests/support/postgres.mjs"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : fallback
}
const quick = args.includes("--quick")
const rounds = Number(flag("--rounds", quick ? 1 : 3))
const serverNames = flag("--servers", "ordo,ordo-jwt,ordo-pg,ordo-pg2,ref-memory,ref-file,nginx-1,nginx-n")
  .split(",")
  .filter((name) => {
    // Without PostgreSQL's server binaries the default run leaves its servers out, and says so.
    const missing = name.startsWith("ordo-pg") && postgresMissing()
    if (missing && !flag("--servers", null)) console.error(`leaving out ${name}: ${missing}`)
    return !missing || flag("--servers", null)
  })
const baselineDir = flag("--baseline", null)
const scenarioIds = flag("--scenarios", null)?.split(",")
const out = resolve(flag("--out", join(root, "docs/BENCHMARKS.md")))
const jsonOut = flag("--json", null)
const buildDir = process.env.ORDO_BUILD_DIR ?? join(root, "build/release")
const ordoBin = join(buildDir, "ordo")
const benchBin = join(buildDir, "ordo-bench")

// ---- servers ---------------------------------------------------------------------------------

const servers = {
  ordo: {
    label: "ordo",
    command: (dataDir) => [ordoBin, ["serve", "--port", "0", "--data-dir", dataDir, "--log-level", "info",
      "--max-connections", "15000"]],
    persistent: true,
  },
  "ref-memory": {
    label: "reference (memory)",
    command: () => ["node", [join(root, "tests/support/reference_server.mjs")]],
    persistent: false,
  },
  "ref-file": {
    label: "reference (file)",
    command: (dataDir) => ["node", [join(root, "tests/support/reference_server.mjs"), dataDir]],
    persistent: true,
    // Its file store answers part of the appends from 16 connections spread over 10,000 streams
    // with 404 "Stream not found" for streams that exist (HEAD says 200 right after): the
    // prefill for (g) uses one connection, which it serves completely.
    prefillConnections: 1,
  },
}
{
  // A key for the run and a token signed with it: admin, valid for a day.
  const keys = generateKeyPairSync("ed25519")
  const keyDir = mkdtempSync(join(tmpdir(), "ordo-bench-jwt-"))
  const keyFile = join(keyDir, "keys.pem")
  writeFileSync(keyFile, keys.publicKey.export({ type: "spki", format: "pem" }))
  const b64url = (v) => Buffer.from(JSON.stringify(v)).toString("base64url")
  const input = `${b64url({ alg: "EdDSA", typ: "JWT" })}.${b64url({ sub: "bench", scope: "admin", aud: "ordo-bench", exp: Math.floor(Date.now() / 1000) + 86400 })}`
  servers["ordo-jwt"] = {
    ...servers.ordo,
    label: "ordo, JWT auth",
    command: (dataDir) => [ordoBin, [...servers.ordo.command(dataDir)[1], "--auth", "jwt", "--auth-jwt-keys", keyFile,
      "--auth-jwt-audience", "ordo-bench", "--token-max-in-flight", "0"]],
    token: `${input}.${sign(null, Buffer.from(input), keys.privateKey).toString("base64url")}`,
  }
  process.on("exit", () => rmSync(keyDir, { recursive: true, force: true }))
}
// The ceiling: nginx with a configuration that answers at once. `workers`: "1" or "auto".
const nginxBin = process.env.ORDO_NGINX ?? "/usr/sbin/nginx"
function nginxServer(workers) {
  return {
    label: `nginx return 204 (${workers === "1" ? "1 worker" : "1 worker per core"})`,
    ceiling: true,
    persistent: false,
    async start(dataDir) {
      const port = await freePort()
      const conf = join(dataDir, "nginx.conf")
      writeFileSync(conf, `daemon off;
master_process on;
worker_processes ${workers};
pid ${join(dataDir, "nginx.pid")};
error_log stderr warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${join(dataDir, "body")};
  proxy_temp_path ${join(dataDir, "proxy")};
  fastcgi_temp_path ${join(dataDir, "fastcgi")};
  uwsgi_temp_path ${join(dataDir, "uwsgi")};
  scgi_temp_path ${join(dataDir, "scgi")};
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${port};
    location / {
      if ($request_method = PUT) { return 201; }
      return 204;
    }
  }
}
`)
      return { cmd: nginxBin, args: ["-p", dataDir, "-c", conf, "-e", "stderr"], url: `http://127.0.0.1:${port}` }
    },
  }
}
// ordo on PostgreSQL: one scratch cluster for the whole run, a new database per start.
let postgres = null
let postgresDatabases = 0
function ordoOnPostgres(nodes) {
  return {
    label: `ordo on PostgreSQL (${nodes === 1 ? "1 node" : `${nodes} nodes`})`,
    persistent: false,
    postgres: true,
    nodes,
    command: () => {
      if (!postgres) {
        postgres = startPostgres({ durable: true })
        process.on("exit", () => postgres.stop())
      }
      const url = postgres.url(postgres.createDatabase(`bench_${process.pid}_${++postgresDatabases}`))
      return [ordoBin, ["serve", "--port", "0", "--storage", url, "--log-level", "info",
        "--max-connections", "15000"]]
    },
  }
}
servers["ordo-pg"] = ordoOnPostgres(1)
servers["ordo-pg2"] = ordoOnPostgres(2)
servers["nginx-1"] = nginxServer("1")
servers["nginx-n"] = nginxServer("auto")

function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolvePort(port))
    })
  })
}

if (baselineDir) {
  const describe = spawnSync("git", ["describe", "--always", "--dirty"], { cwd: resolve(baselineDir), encoding: "utf8" })
  const commit = describe.status === 0 ? describe.stdout.trim() : baselineDir
  servers["ordo-baseline"] = {
    ...servers.ordo,
    label: `ordo before (${commit})`,
    command: (dataDir) => [join(resolve(baselineDir), "ordo"), servers.ordo.command(dataDir)[1]],
  }
}
for (const name of serverNames) {
  if (!servers[name]) {
    console.error(`unknown server '${name}' (${Object.keys(servers).join(", ")}; ordo-baseline needs --baseline)`)
    process.exit(2)
  }
}
// Whether scenario `sc` runs on server `name`: `only` lists servers by kind, and the baseline
// is ordo; the ceiling runs the scenarios that say `ceiling`.
const runsOn = (sc, name) => {
  if (servers[name].ceiling) return Boolean(sc.ceiling)
  if (servers[name].postgres) return Boolean(sc.postgres)
  if (name === "ordo-jwt") return sc.jwtTarget !== undefined
  return !sc.only || sc.only.includes(name.startsWith("ordo-") ? "ordo" : name)
}

/** Starts a server; resolves with { url, pid, stop, startedMs } once it is listening. A server of
 * several nodes (ordo-pg2) starts each on the same database; its url lists them all, comma-
 * separated, as ordo-bench takes them. */
async function start(name, dataDir) {
  const custom = servers[name].start ? await servers[name].start(dataDir) : null
  const [cmd, cmdArgs] = custom ? [custom.cmd, custom.args] : servers[name].command(dataDir)
  const t0 = performance.now()
  const nodes = []
  try {
    for (let i = 0; i < (servers[name].nodes ?? 1); i++) nodes.push(await startProcess(name, cmd, cmdArgs, custom?.url))
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop()))
    throw e
  }
  const readyMs = performance.now() - t0
  return {
    url: nodes.map((n) => n.url).join(","),
    // The ceiling's work is done by nginx's worker processes, not the one started here, and
    // ordo on PostgreSQL shares its work with PostgreSQL's processes: their CPU is not reported.
    pid: servers[name].ceiling || servers[name].postgres ? null : nodes[0].pid,
    token: servers[name].token,
    readyMs,
    log: () => nodes.map((n) => n.log()).join("\n"),
    stop: () => Promise.all(nodes.map((n) => n.stop())),
  }
}

async function startProcess(name, cmd, cmdArgs, customUrl) {
  const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"], cwd: join(root, "tests") })
  let log = ""
  const url = customUrl ?? await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${log}`)), 120_000)
    const onData = (d) => {
      log += d
      const ordo = log.match(/listening address=(\S+) port=(\d+)/)
      const ref = log.match(/listening (http:\/\/\S+)/)
      if (ordo || ref) {
        clearTimeout(timer)
        resolveUrl(ordo ? `http://${ordo[1]}:${ordo[2]}` : ref[1])
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.on("exit", (code) => reject(new Error(`${name} exited with ${code}:\n${log}`)))
  })
  if (customUrl) {
    child.stdout.on("data", (d) => (log += d))
    child.stderr.on("data", (d) => (log += d))
  }
  // Ready: the first answered request.
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${log}`)
    try {
      const r = await fetch(`${url}/health`)
      await r.arrayBuffer()
      break
    } catch {
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  const exited = new Promise((r) => child.on("exit", r))
  return {
    url,
    pid: child.pid,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
      await exited
      clearTimeout(timer)
    },
  }
}

function bench(scenario, server, params) {
  const argv = [scenario, "--url", server.url]
  if (server.pid) argv.push("--server-pid", String(server.pid))
  if (server.token) argv.push("--token", server.token)
  for (const [k, v] of Object.entries(params)) argv.push(`--${k}`, String(v))
  const r = spawnSync(benchBin, argv, { encoding: "utf8", maxBuffer: 64 << 20, timeout: 1_800_000 })
  const line = (r.stdout || "").trim().split("\n").pop()
  let result
  try {
    result = JSON.parse(line)
  } catch {
    throw new Error(`ordo-bench ${argv.join(" ")} printed no result (exit ${r.status}):\n${r.stdout}\n${r.stderr}`)
  }
  result.command = `ordo-bench ${argv.join(" ")}`
  return result
}

// ---- scenarios -------------------------------------------------------------------------------

const d = (full, small) => (quick ? small : full)
const scenarioTable = [
  { id: "a1", title: "(a) 100-byte appends, 64 connections, 1 stream", run: "append",
    params: { connections: 64, streams: 1, "message-bytes": 100, duration: d(10, 0.5) },
    metric: "values_per_s", unit: "appends/s", ceiling: true, ceilingTarget: 0.8, jwtTarget: 0.7, postgres: true },
  { id: "a1000", title: "(a) 100-byte appends, 64 connections, 1,000 streams", run: "append",
    params: { connections: 64, streams: d(1000, 20), "message-bytes": 100, duration: d(10, 0.5) },
    metric: "values_per_s", unit: "appends/s", ceiling: true, ceilingTarget: 0.7, jwtTarget: 0.7, postgres: true },
  { id: "b", title: "(b) JSON batch appends (1,000 × 100 B per request, 4 connections)", run: "batch",
    params: { connections: 4, batch: 1000, "message-bytes": 100, duration: d(10, 0.5) },
    metric: "values_per_s", unit: "messages/s", target: 1_000_000, ceiling: true },
  { id: "c-sse-1k", title: "(c) append→SSE delivery at 1k/s", run: "delivery",
    params: { rate: 1000, duration: d(10, 0.5), live: "sse" },
    metric: "latency.p99_us", unit: "µs p99", target: 2000, lower: true, postgres: true,
    // Issue 20: append→SSE p99 across two nodes on PostgreSQL (ordo-pg2 reads through the node it
    // does not append through).
    serverTarget: { server: "ordo-pg2", max: 10_000, label: "2 nodes on PostgreSQL, cross-node ≤ 10 ms" } },
  { id: "c-sse-10k", title: "(c) append→SSE delivery at 10k/s", run: "delivery",
    params: { rate: 10000, duration: d(10, 0.3), live: "sse" }, metric: "latency.p99_us", unit: "µs p99", lower: true },
  { id: "c-lp-1k", title: "(c) append→long-poll delivery at 1k/s", run: "delivery",
    params: { rate: 1000, duration: d(10, 0.5), live: "long-poll" }, metric: "latency.p99_us", unit: "µs p99", lower: true,
    postgres: true },
  { id: "c-lp-10k", title: "(c) append→long-poll delivery at 10k/s", run: "delivery",
    params: { rate: 10000, duration: d(10, 0.3), live: "long-poll" }, metric: "latency.p99_us", unit: "µs p99", lower: true },
  { id: "d", title: "(d) fan-out to 10,000 SSE subscribers of one stream", run: "fanout",
    params: { subscribers: d(10000, 50), rate: d(100, 20), duration: d(5, 0.5) },
    metric: "values_per_s", unit: "deliveries/s", target: 500_000, extra: "latency.p99_us",
    // Issue 19's second target for (d), checked on the median of the rounds' p99.
    alsoTarget: { metric: "latency.p99_us", max: 20_000, label: "p99 ≤ 20 ms", scale: 1e-3, unit: "ms" } },
  { id: "e", title: "(e) catch-up read of 1,000,000 messages", run: "catchup",
    params: { messages: d(1_000_000, 5000) }, metric: "values_per_s", unit: "messages/s", target: 1_000_000 },
  // The noisy neighbour (issue 16): (a) on 1,000 streams while another stream holds a 64 MiB
  // message; throughput and p99 must stay within the spread of (a) on 1,000 streams in the same
  // run. ordo only: the reference server's body limit is its own business.
  { id: "i", title: "(i) noisy neighbour: (a) on 1,000 streams beside a 64 MiB message", run: "append",
    params: { connections: 64, streams: d(1000, 20), "message-bytes": 100, duration: d(10, 0.5),
      "neighbour-bytes": d(64 << 20, 1 << 20) },
    metric: "values_per_s", unit: "appends/s", extra: "latency.p99_us", only: ["ordo"], within: "a1000" },
  // The reconnect storm (issue 19): every reader from -1 at once beside one that never reads,
  // /health probed every 100 ms by a separate process; "latency" is /health's. Exactly once is
  // checked by ordo-bench (an error otherwise). ordo only.
  { id: "h1k", title: "(h) reconnect storm: 1,000 SSE readers from -1 of 5,000 messages, /health p99", run: "storm",
    params: { subscribers: d(1000, 50), messages: d(5000, 200) }, metric: "latency.p99_us", unit: "µs",
    target: 50_000, lower: true, only: ["ordo"],
    alsoTarget: { metric: "rss_growth_kib", max: 100 * 1024, label: "RSS growth ≤ 100 MB", scale: 1 / 1024, unit: "MB" } },
  { id: "h10k", title: "(h) reconnect storm: 10,000 SSE readers from -1 of 5,000 messages, /health p99", run: "storm",
    params: { subscribers: d(10000, 100), messages: d(5000, 200) }, metric: "latency.p99_us", unit: "µs",
    target: 50_000, lower: true, only: ["ordo"],
    alsoTarget: { metric: "rss_growth_kib", max: 100 * 1024, label: "RSS growth ≤ 100 MB", scale: 1 / 1024, unit: "MB" } },
  { id: "f", title: "(f) server memory per idle SSE connection (10,000 connections)", run: "idle-sse",
    params: { subscribers: d(10000, 50) }, metric: "bytes_per_connection", unit: "bytes", target: 8192, lower: true },
]
const startup = { id: "g", title: "(g) time to ready with 1,000,000 messages in 10,000 streams",
  params: { messages: d(1_000_000, 2000), streams: d(10_000, 20), connections: 16 }, unit: "ms", target: 200, lower: true }
for (const id of scenarioIds ?? []) {
  if (id !== "g" && !scenarioTable.some((sc) => sc.id === id)) {
    console.error(`unknown scenario '${id}' (${[...scenarioTable.map((sc) => sc.id), "g"].join(", ")})`)
    process.exit(2)
  }
}
const scenarios = scenarioIds ? scenarioTable.filter((sc) => scenarioIds.includes(sc.id)) : scenarioTable
const runStartup = !scenarioIds || scenarioIds.includes("g")

const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj)

// ---- the run ---------------------------------------------------------------------------------

const results = [] // { scenario, server, round, value, result }
const log = (...a) => console.error(...a)

for (let round = 0; round < rounds; round++) {
  // Alternate the order each round so neither server always runs on a warmer machine.
  const order = round % 2 === 0 ? serverNames : [...serverNames].reverse()
  for (const sc of scenarios) {
    for (const name of order) {
      if (!runsOn(sc, name)) continue
      const dataDir = mkdtempSync(join(tmpdir(), `bench-${name}-`))
      const server = await start(name, dataDir)
      try {
        const result = bench(sc.run, server, sc.params)
        const value = get(result, sc.metric)
        results.push({ scenario: sc.id, server: name, round, value, result })
        log(`round ${round + 1} ${sc.id.padEnd(10)} ${name.padEnd(10)} ${sc.metric}=${Math.round(value)} errors=${result.errors}${result.first_error ? " (" + result.first_error + ")" : ""}`)
      } finally {
        await server.stop()
        rmSync(dataDir, { recursive: true, force: true })
      }
    }
  }
  for (const name of runStartup ? order : []) {
    if (!servers[name].persistent) continue
    const dataDir = mkdtempSync(join(tmpdir(), `bench-${name}-`))
    try {
      const first = await start(name, dataDir)
      const connections = servers[name].prefillConnections ?? startup.params.connections
      const filled = bench("prefill", first, { ...startup.params, connections })
      await first.stop()
      const again = await start(name, dataDir)
      await again.stop()
      results.push({ scenario: "g", server: name, round, value: again.readyMs, result: { ...filled, ready_ms: again.readyMs } })
      log(`round ${round + 1} g          ${name.padEnd(10)} ready_ms=${Math.round(again.readyMs)} (prefilled ${filled.values} in ${filled.seconds.toFixed(1)} s, errors=${filled.errors}${filled.first_error ? " (" + filled.first_error + ")" : ""})`)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

// ---- the report ------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const fmt = (v) => {
  if (v === undefined || Number.isNaN(v)) return "–"
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)} M`
  if (Math.abs(v) >= 1e4) return `${Math.round(v / 1e3)} k`
  if (Math.abs(v) >= 100) return String(Math.round(v))
  return v.toFixed(1)
}
const summary = (id, name) => {
  const vs = results.filter((r) => r.scenario === id && r.server === name).map((r) => r.value)
  if (!vs.length) return null
  return { median: median(vs), min: Math.min(...vs), max: Math.max(...vs), n: vs.length }
}

const allScenarios = [...scenarios, ...(runStartup ? [{ ...startup, metric: "ready_ms" }] : [])]
const rows = []
for (const sc of allScenarios) {
  const cells = serverNames.map((n) => summary(sc.id, n))
  const ordo = summary(sc.id, "ordo")
  const ratios = serverNames.filter((n) => n !== "ordo").map((n) => {
    const s = summary(sc.id, n)
    if (!s || !ordo || !s.median || !ordo.median) return "–"
    const r = sc.lower ? s.median / ordo.median : ordo.median / s.median
    return `${r < 1 ? r.toFixed(2) : r.toFixed(1)}×`
  })
  let target = "–"
  if (sc.target !== undefined && ordo) {
    const met = sc.lower ? ordo.median <= sc.target : ordo.median >= sc.target
    target = `${sc.lower ? "≤" : "≥"} ${fmt(sc.target)}: ${met ? "met" : "**not met**"}`
  }
  if (sc.ceilingTarget !== undefined && ordo) {
    // A ratio to the 1-worker ceiling measured in this run.
    const ceiling = summary(sc.id, "nginx-1")
    target = ceiling
      ? `≥ ${sc.ceilingTarget}× nginx-1: ${(ordo.median / ceiling.median).toFixed(2)}×, ${ordo.median / ceiling.median >= sc.ceilingTarget ? "met" : "**not met**"}`
      : `≥ ${sc.ceilingTarget}× nginx-1 (nginx-1 not run)`
    const jwt = summary(sc.id, "ordo-jwt")
    if (sc.jwtTarget !== undefined && jwt && ceiling) {
      const r = jwt.median / ceiling.median
      target += `; with JWT auth ≥ ${sc.jwtTarget}×: ${r.toFixed(2)}×, ${r >= sc.jwtTarget ? "met" : "**not met**"}`
    }
  }
  if (sc.alsoTarget && ordo) {
    const t = sc.alsoTarget
    const values = results.filter((r) => r.scenario === sc.id && r.server === "ordo").map((r) => get(r.result, t.metric))
    const m = median(values)
    target += `; ${t.label}: ${m <= t.max ? "met" : "**not met**"} (${Math.round(m * t.scale)} ${t.unit})`
  }
  if (sc.serverTarget) {
    const t = sc.serverTarget
    const other = summary(sc.id, t.server)
    if (other) {
      const met = other.median <= t.max
      target += `; ${t.label}: ${fmt(other.median / 1000)} ms, ${met ? "met" : "**not met**"}`
    }
  }
  if (sc.within && ordo) {
    // Within the spread of the same run without the neighbour: throughput at least that
    // scenario's lowest round, p99 at most its highest.
    const base = results.filter((r) => r.scenario === sc.within && r.server === "ordo")
    const mine = results.filter((r) => r.scenario === sc.id && r.server === "ordo")
    if (base.length && mine.length) {
      const low = Math.min(...base.map((r) => r.value))
      const p99High = Math.max(...base.map((r) => get(r.result, "latency.p99_us")))
      const p99 = median(mine.map((r) => get(r.result, "latency.p99_us")))
      const met = ordo.median >= low && p99 <= p99High
      target = `within (${sc.within}): throughput ≥ ${fmt(low)}, p99 ${fmt(p99 / 1000)} ms ≤ ${fmt(p99High / 1000)} ms: ${met ? "met" : "**not met**"}`
    }
  }
  rows.push(`| ${sc.title} | ${sc.unit} | ${cells.map((c) => (c ? `${fmt(c.median)} (${fmt(c.min)}–${fmt(c.max)})` : "–")).join(" | ")} | ${ratios.join(" | ")} | ${target} |`)
}

// What an append costs the server: CPU and context switches per value, per ordo server, on the
// append scenarios (medians over rounds).
const costRows = []
for (const sc of scenarios.filter((x) => x.run === "append" || x.run === "batch")) {
  for (const name of serverNames.filter((n) => n.startsWith("ordo"))) {
    const rs = results.filter((r) => r.scenario === sc.id && r.server === name && r.result.values > 0 &&
      r.result.server_cpu_s !== undefined)
    if (!rs.length) continue
    const per = (f) => median(rs.map((r) => f(r.result) / r.result.values))
    const cpuUs = per((x) => x.server_cpu_s * 1e6)
    const vol = per((x) => x.server_voluntary_switches ?? NaN)
    const invol = per((x) => x.server_involuntary_switches ?? NaN)
    costRows.push(`| ${sc.title} | ${servers[name].label} | ${cpuUs.toFixed(1)} | ${(vol + invol).toFixed(2)} | ${vol.toFixed(2)} | ${invol.toFixed(2)} |`)
  }
}

// Charts (gnuplot): throughput by scenario, and delivery latency.
const chartDir = join(dirname(out), "benchmarks")
mkdirSync(chartDir, { recursive: true })
const throughputIds = ["a1", "a1000", "b", "d", "e"]
const latencyIds = ["c-sse-1k", "c-sse-10k", "c-lp-1k", "c-lp-10k"]
function chart(file, ids, title, ylabel, logscale) {
  // Nothing to draw when none of these scenarios ran (--scenarios picked others).
  if (!ids.some((id) => serverNames.some((n) => summary(id, n)))) return
  const data = ids.map((id) => [id, ...serverNames.map((n) => summary(id, n)?.median ?? 0)].join(" ")).join("\n")
  const dat = join(chartDir, `${file}.dat`)
  writeFileSync(dat, `# scenario ${serverNames.join(" ")}\n${data}\n`)
  const plots = serverNames.map((n, i) => `'${dat}' using ${i + 2}:xtic(1) title '${servers[n].label}'`).join(", ")
  const script = `set terminal pngcairo size 900,420 font ',10'
set output '${join(chartDir, file + ".png")}'
set title '${title}'
set ylabel '${ylabel}'
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
${logscale ? "set logscale y" : ""}
set yrange [${logscale ? "1" : "0"}:*]
plot ${plots}
`
  const g = spawnSync("gnuplot", [], { input: script, encoding: "utf8" })
  if (g.status !== 0) log(`gnuplot failed for ${file}: ${g.stderr}`)
}
chart("throughput", throughputIds, "Throughput (median; log scale)", "per second", true)
chart("latency", latencyIds, "Append-to-delivery latency, p99 (median of rounds)", "microseconds", true)

const cpu = cpus()[0]?.model ?? "unknown"
const machine = `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}`
const commands = allScenarios
  .map((sc) => {
    const r = results.find((x) => x.scenario === sc.id && x.server === "ordo")
    return r ? `- ${sc.id}: \`${(r.result.command ?? "").replace(/--url \S+ --server-pid \d+ /, "--url URL --server-pid PID ")}\`` : null
  })
  .filter(Boolean)
  .join("\n")

const report = `# Benchmarks

Generated by \`make bench\` (\`node bench/run.mjs\`)${quick ? " in --quick mode (a smoke run: the numbers mean nothing)" : ""} on ${new Date().toISOString().slice(0, 10)}.

**Machine:** ${machine}. The load generator (\`ordo-bench\`: one thread, plus one reader thread
per core in (d)) runs on the same machine as the server, so the two share its cores.

**Servers:** ordo (\`build/release/ordo serve\`, \`--sync full\`: every acknowledged append is
fsynced), the Durable Streams reference server \`@durable-streams/server\` (pinned in
\`tests/package-lock.json\`) in memory and file-backed modes, and the ceiling: Debian's
nginx-light answering every request with \`return 204\` (201 to a PUT), with one worker and with
one worker per core, on the append scenarios. ordo's ratio to nginx is what says how close it is
to what HTTP on this machine allows; absolute figures hold only for this machine and this run.
Each scenario runs on a freshly started server with an empty data directory; the order of the
servers alternates each round. Rounds: ${rounds}. Cells are medians, with the range over rounds in
brackets. Ratios compare ordo with each other server (above 1×: ordo is better; against nginx,
the share of the ceiling ordo reaches).

| scenario | unit | ${serverNames.map((n) => servers[n].label).join(" | ")} | ${serverNames.filter((n) => n !== "ordo").map((n) => `ordo vs ${servers[n].label}`).join(" | ")} | target (ordo) |
|---|---|${serverNames.map(() => "---|").join("")}${serverNames.filter((n) => n !== "ordo").map(() => "---|").join("")}---|
${rows.join("\n")}

${(() => {
  const bad = results.filter((r) => r.result.errors > 0)
  if (!bad.length) return "Every run completed without an error."
  return "Runs that reported errors (their numbers count only what completed):\n\n" +
    bad.map((r) => `- ${r.scenario}, ${servers[r.server].label}, round ${r.round + 1}: ${r.result.errors} errors; first: ${r.result.first_error}`).join("\n")
})()}

${costRows.length ? `What each value costs the server, from its CPU time and the context switches of its threads
(\`/proc/PID/task/*/status\`) over the measured part of the run; medians over rounds. One batch
request carries many values, so (b) is per value, not per request.

| scenario | server | server CPU µs per value | context switches per value | voluntary | involuntary |
|---|---|---|---|---|---|
${costRows.join("\n")}
` : ""}
![Throughput](benchmarks/throughput.png)

![Delivery latency](benchmarks/latency.png)

## Commands

Every scenario is one \`ordo-bench\` invocation against a server started for it
(\`ordo-bench\` prints one JSON object; \`--server-pid\` adds the server's CPU time and memory):

${commands}
- g: \`ordo-bench prefill ...\`, then the server is stopped and started again on the same data;
  the time is from the start of the process to the first answered request. The reference's
  file mode is prefilled over one connection (see "Reading the numbers").

## Raw results

${"```"}json
${JSON.stringify(results.map((r) => ({ scenario: r.scenario, server: r.server, round: r.round, value: r.value, errors: r.result.errors, server_cpu_s: r.result.server_cpu_s, server_peak_kib: r.result.server_peak_kib, server_voluntary_switches: r.result.server_voluntary_switches, server_involuntary_switches: r.result.server_involuntary_switches, latency: r.result.latency })), null, 0).replace(/\},\{/g, "},\n{")}
${"```"}
`
const notes = (() => {
  try {
    const old = readFileSync(out, "utf8")
    // The hand-written part: from "Reading the numbers" (or the change log) to the end.
    for (const heading of ["\n## Reading the numbers", "\n## Changes and what they gained"]) {
      const i = old.indexOf(heading)
      if (i >= 0) return old.slice(i)
    }
    return ""
  } catch {
    return ""
  }
})()
writeFileSync(out, report + notes)
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2))
log(`wrote ${relative(process.cwd(), out)}`)
const missing = allScenarios.flatMap((sc) =>
  serverNames
    .filter((n) => sc.id !== "g" || servers[n].persistent)
    .filter((n) => runsOn(sc, n))
    .filter((n) => !results.some((r) => r.scenario === sc.id && r.server === n && Number.isFinite(r.value)))
    .map((n) => `${sc.id}/${n}`),
)
if (missing.length) {
  log(`no result for: ${missing.join(", ")}`)
  process.exit(1)
}
const failed = results.filter((r) => r.result.errors > 0 && r.server === "ordo")
if (failed.length) {
  log(`ordo-bench reported errors against ordo in: ${failed.map((f) => f.scenario).join(", ")}`)
  process.exit(1)
}
