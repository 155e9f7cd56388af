// The official Durable Streams conformance suite against a freshly started `ordo serve`, twice
// in a row against the same server: the second pass runs after the first one's large payloads
// (10 MiB) are stored, so a large message slowing other streams would show there (issue 16).
// ORDO_SYNC selects --sync (full or normal); the long-poll timeout is short so that the
// suite's timeout tests finish within their own deadlines. With ORDO_TLS_DIR (server.pem and
// server.key made by support/tls.mjs) the server speaks HTTPS and the suite's fetch trusts the
// test CA through NODE_EXTRA_CA_CERTS (tests.cmake sets both). With ORDO_CONFORMANCE_STORAGE=postgres
// the server stores its streams in a scratch PostgreSQL cluster of the test's own
// (support/postgres.mjs) instead of SQLite.
import { afterAll, beforeAll, describe } from "vitest"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { join } from "node:path"
import { startOrdo } from "../support/ordo_server.mjs"
import { postgresMissing, startPostgres } from "../support/postgres.mjs"

const longPollTimeoutMs = 2000
const config = { baseUrl: "", longPollTimeoutMs }
const tlsDir = process.env.ORDO_TLS_DIR
const onPostgres = process.env.ORDO_CONFORMANCE_STORAGE === "postgres"
const missing = onPostgres ? postgresMissing() : null
if (missing) console.warn(`skipping the suite on PostgreSQL: ${missing}`)
let server
let postgres

beforeAll(async () => {
  if (missing) return
  const tls = tlsDir ? ["--tls-cert", join(tlsDir, "server.pem"), "--tls-key", join(tlsDir, "server.key")] : []
  let storage = []
  if (onPostgres) {
    postgres = startPostgres()
    storage = ["--storage", postgres.url(postgres.createDatabase())]
  }
  server = await startOrdo({
    args: ["--sync", process.env.ORDO_SYNC ?? "full", "--long-poll-timeout", `${longPollTimeoutMs}ms`, ...tls, ...storage],
  })
  config.baseUrl = tlsDir ? `https://127.0.0.1:${server.port}` : server.url
})

afterAll(async () => {
  if (!server) return
  const code = await server.stop()
  server.cleanup()
  postgres?.stop()
  if (code !== 0) throw new Error(`ordo exited with ${code} after the suite:\n${server.log()}`)
})

describe.skipIf(missing)("first pass", () => runConformanceTests(config))
describe.skipIf(missing)("second pass, same server", () => runConformanceTests(config))
