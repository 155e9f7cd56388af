// The official Durable Streams conformance suite against a freshly started `ordo serve`, twice
// in a row against the same server: the second pass runs after the first one's large payloads
// (10 MiB) are stored, so a large message slowing other streams would show there (issue 16).
// ORDO_SYNC selects --sync (full or normal); the long-poll timeout is short so that the
// suite's timeout tests finish within their own deadlines. With ORDO_TLS_DIR (server.pem and
// server.key made by support/tls.mjs) the server speaks HTTPS and the suite's fetch trusts the
// test CA through NODE_EXTRA_CA_CERTS (tests.cmake sets both). With ORDO_CONFORMANCE_STORAGE=postgres
// the server stores its streams in a scratch PostgreSQL cluster of the test's own
// (support/postgres.mjs) instead of SQLite; with ORDO_CONFORMANCE_STORAGE=postgres-cluster two
// nodes share it behind nginx round-robin (support/proxy_cluster.mjs), so that consecutive
// requests of one test land on different nodes.
import { afterAll, beforeAll, describe, expect } from "vitest"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { join } from "node:path"
import { startOrdo } from "../support/ordo_server.mjs"
import { postgresMissing, startPostgres } from "../support/postgres.mjs"
import { proxyMissing, startProxyCluster } from "../support/proxy_cluster.mjs"

const longPollTimeoutMs = 2000
const config = { baseUrl: "", longPollTimeoutMs }
const tlsDir = process.env.ORDO_TLS_DIR
const storageKind = process.env.ORDO_CONFORMANCE_STORAGE ?? "sqlite"
const onPostgres = storageKind.startsWith("postgres")
const clustered = storageKind === "postgres-cluster"
const missing = (onPostgres ? postgresMissing() : null) ?? (clustered ? proxyMissing() : null)
if (missing) console.warn(`skipping the suite on PostgreSQL: ${missing}`)
let server
let cluster
let postgres

beforeAll(async () => {
  if (missing) return
  const tls = tlsDir ? ["--tls-cert", join(tlsDir, "server.pem"), "--tls-key", join(tlsDir, "server.key")] : []
  let storage = []
  if (onPostgres) {
    postgres = startPostgres()
    storage = ["--storage", postgres.url(postgres.createDatabase())]
  }
  const args = ["--sync", process.env.ORDO_SYNC ?? "full", "--long-poll-timeout", `${longPollTimeoutMs}ms`, ...tls]
  if (clustered) {
    cluster = await startProxyCluster({ storage: storage[1], nodes: 2, args })
    config.baseUrl = cluster.url
    return
  }
  server = await startOrdo({ args: [...args, ...storage] })
  config.baseUrl = tlsDir ? `https://127.0.0.1:${server.port}` : server.url
})

afterAll(async () => {
  if (cluster) {
    // Round-robin spread the suite over both nodes: each answered a good share of the requests
    // and stored appends of its own.
    const served = []
    for (const node of cluster.nodes) {
      const text = await (await fetch(`${node.url}/metrics`)).text()
      const total = (name) =>
        [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, "gm"))].reduce((n, m) => n + Number(m[1]), 0)
      served.push({ responses: total("ordo_http_responses_total"), appends: total("ordo_appends_total") })
    }
    const all = served.reduce((n, s) => n + s.responses, 0)
    for (const s of served) {
      expect(s.responses / all, JSON.stringify(served)).toBeGreaterThan(0.3)
      expect(s.appends, JSON.stringify(served)).toBeGreaterThan(100)
    }
    const codes = await cluster.stop()
    postgres?.stop()
    if (codes.some((c) => c !== 0)) {
      throw new Error(`ordo nodes exited with ${codes}:\n${cluster.nodes.map((n) => n.log()).join("\n---\n")}`)
    }
    return
  }
  if (!server) return
  const code = await server.stop()
  server.cleanup()
  postgres?.stop()
  if (code !== 0) throw new Error(`ordo exited with ${code} after the suite:\n${server.log()}`)
})

describe.skipIf(missing)("first pass", () => runConformanceTests(config))
describe.skipIf(missing)("second pass, same server", () => runConformanceTests(config))
