// The official Durable Streams conformance suite against a freshly started `ordo serve`.
// ORDO_SYNC selects --sync (full or normal); the long-poll timeout is short so that the
// suite's timeout tests finish within their own deadlines.
import { afterAll, beforeAll } from "vitest"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { startOrdo } from "../support/ordo_server.mjs"

const longPollTimeoutMs = 2000
const config = { baseUrl: "", longPollTimeoutMs }
let server

beforeAll(async () => {
  server = await startOrdo({
    args: ["--sync", process.env.ORDO_SYNC ?? "full", "--long-poll-timeout", `${longPollTimeoutMs}ms`],
  })
  config.baseUrl = server.url
})

afterAll(async () => {
  const code = await server.stop()
  server.cleanup()
  if (code !== 0) throw new Error(`ordo exited with ${code} after the suite:\n${server.log()}`)
})

runConformanceTests(config)
