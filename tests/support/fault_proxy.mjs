// A TCP proxy that injects faults between a client and ordo, for delivery tests: it delays
// chunks, and cuts connections (a reset, or a plain close) part-way through what the client
// sends (a request) or what the server answers (a response). Seeded, so a failing run can be
// replayed with the same faults.
import net from "node:net"
import { mulberry32 } from "./random.mjs"

/**
 * Starts a proxy to 127.0.0.1:`targetPort`.
 * @param {{ seed?: number, cutProbability?: number, maxBytesBeforeCut?: number,
 *           delayProbability?: number, maxDelayMs?: number }} opts
 *   cutProbability: the share of connections that are cut, in one direction chosen at random,
 *   after a random number of bytes up to maxBytesBeforeCut; half of the cuts are resets.
 *   cutFirstResponses: the first this many connections are closed after the server's first byte
 *   of response, whatever the seed says (for a client's very first request).
 */
export async function startFaultProxy(targetPort, opts = {}) {
  const rnd = mulberry32(opts.seed ?? 42)
  const cutProbability = opts.cutProbability ?? 0.3
  const maxBytesBeforeCut = opts.maxBytesBeforeCut ?? 16384
  const delayProbability = opts.delayProbability ?? 0.2
  const maxDelayMs = opts.maxDelayMs ?? 20
  let cutFirstResponses = opts.cutFirstResponses ?? 0
  const stats = { connections: 0, cutRequests: 0, cutResponses: 0, resets: 0, delayed: 0 }
  const sockets = new Set()

  const server = net.createServer((client) => {
    stats.connections++
    const upstream = net.connect(targetPort, "127.0.0.1")
    sockets.add(client)
    sockets.add(upstream)
    const forced = cutFirstResponses > 0
    if (forced) cutFirstResponses--
    const cut = forced || rnd() < cutProbability
    const cutRequest = !forced && rnd() < 0.5
    const reset = !forced && rnd() < 0.5
    let budget = forced ? 1 : cut ? 1 + Math.floor(rnd() * maxBytesBeforeCut) : Infinity
    let closed = false
    const kill = () => {
      if (closed) return
      closed = true
      if (reset) {
        stats.resets++
        client.resetAndDestroy()
        upstream.resetAndDestroy()
      } else {
        client.destroy()
        upstream.destroy()
      }
    }
    // Chunks of one direction stay in order: each waits for the one before it.
    const pipe = (from, to, isRequest) => {
      let chain = Promise.resolve()
      from.on("data", (chunk) => {
        const delay = rnd() < delayProbability ? Math.floor(rnd() * maxDelayMs) : 0
        if (delay > 0) stats.delayed++
        chain = chain.then(async () => {
          if (delay > 0) await new Promise((r) => setTimeout(r, delay))
          if (closed) return
          if (cut && isRequest === cutRequest) {
            if (chunk.length >= budget) {
              to.write(chunk.subarray(0, budget))
              if (isRequest) stats.cutRequests++
              else stats.cutResponses++
              kill()
              return
            }
            budget -= chunk.length
          }
          to.write(chunk)
        })
      })
      from.on("end", () => chain.then(() => to.end()))
    }
    pipe(client, upstream, true)
    pipe(upstream, client, false)
    const done = () => {
      closed = true
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("error", done)
    upstream.on("error", done)
    client.on("close", done)
    upstream.on("close", done)
  })
  await new Promise((r) => server.listen(0, "127.0.0.1", r))
  return {
    port: server.address().port,
    url: `http://127.0.0.1:${server.address().port}`,
    stats,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}
