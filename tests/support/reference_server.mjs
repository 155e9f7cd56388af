// The Durable Streams reference server (@durable-streams/server, pinned in package-lock.json),
// for benchmarks beside ordo: `node reference_server.mjs [DATA_DIR]`. With a data directory it
// runs file-backed, otherwise in memory. Prints "listening URL" once ready; stops on SIGTERM.
import { DurableStreamTestServer } from "@durable-streams/server"

const dataDir = process.argv[2] || undefined
const server = new DurableStreamTestServer({ port: 0, dataDir, compression: false })
const url = await server.start()
console.log(`listening ${url}`)
const stop = async () => {
  await server.stop()
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
