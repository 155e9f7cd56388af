// The official Durable Streams conformance suite against a freshly started `ordo serve`, twice
// in a row against the same server: the second pass runs after the first one's large payloads
// (10 MiB) are stored, so a large message slowing other streams would show there (issue 16).
// ORDO_SYNC selects --sync (full or normal); the long-poll timeout is short so that the
// suite's timeout tests finish within their own deadlines. With ORDO_TLS_DIR (server.pem and
// server.key made by support/tls.mjs) the server speaks HTTPS and the suite's fetch trusts the
// test CA through NODE_EXTRA_CA_CERTS (tests.cmake sets both).
import { afterAll, beforeAll, describe } from "vitest"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { join } from "node:path"
import { startOrdo } from "../support/ordo_server.mjs"

const longPollTimeoutMs = 2000
const config = { baseUrl: "", longPollTimeoutMs }
const tlsDir = process.env.ORDO_TLS_DIR
let server

beforeAll(async () => {
  const tls = tlsDir ? ["--tls-cert", join(tlsDir, "server.pem"), "--tls-key", join(tlsDir, "server.key")] : []
  server = await startOrdo({
    args: ["--sync", process.env.ORDO_SYNC ?? "full", "--long-poll-timeout", `${longPollTimeoutMs}ms`, ...tls],
  })
  config.baseUrl = tlsDir ? `https://127.0.0.1:${server.port}` : server.url
})

afterAll(async () => {
  const code = await server.stop()
  server.cleanup()
  if (code !== 0) throw new Error(`ordo exited with ${code} after the suite:\n${server.log()}`)
})

describe("first pass", () => runConformanceTests(config))
describe("second pass, same server", () => runConformanceTests(config))
