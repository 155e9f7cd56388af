// A Durable Streams SSE client for the stress suites, over node:http: it follows a JSON stream,
// takes the messages of data events only when the control event after them arrives (a control
// event is the only resume point the protocol gives), and after any end, error or 503 (waiting
// Retry-After) reconnects from the last control event's offset, as a correct client does. It
// is done when a control event says the stream is closed and fully read.
import http from "node:http"
import { parseEvent } from "./sse.mjs"

/**
 * @param {string} base  server URL
 * @param {string} path  stream path under /v1/stream/
 * @param {string} offset  where to start
 * @param {{ agent?: http.Agent, map?: (m: any) => any, onMessages?: (ms: any[], at: number) => void,
 *           onControl?: (c: any) => void }} opts
 * @returns {{ done: Promise<{ messages: any[], connects: number, refusals: number, offset: string }>,
 *             stop: () => void }}
 */
export function followSse(base, path, offset, opts = {}) {
  const { agent, map = (m) => m, onMessages, onControl } = opts
  const messages = []
  let connects = 0
  let refusals = 0
  let finished = false
  let current
  let resolveDone
  let rejectDone
  const done = new Promise((resolve, reject) => {
    resolveDone = resolve
    rejectDone = reject
  })
  const finish = () => {
    finished = true
    current?.destroy()
    resolveDone({ messages, connects, refusals, offset })
  }
  const connect = () => {
    if (finished) return
    connects++
    let ended = false
    // Whatever ends this connection (clean end, reset, error), the next one resumes once.
    const again = (ms) => {
      if (ended || finished) return
      ended = true
      setTimeout(connect, ms)
    }
    const url = `${base}/v1/stream/${path}?offset=${encodeURIComponent(offset)}&live=sse`
    const req = http.get(url, { agent }, (res) => {
      if (res.statusCode === 503) {
        refusals++
        res.resume()
        const after = Number(res.headers["retry-after"] ?? "1") * 1000
        again(after * (0.5 + Math.random()))
        return
      }
      if (res.statusCode !== 200) {
        let body = ""
        res.on("data", (c) => (body += c))
        res.on("end", () => {
          finished = true
          rejectDone(new Error(`GET ${url} -> ${res.statusCode} ${body}`))
        })
        return
      }
      res.setEncoding("utf8")
      let buffer = ""
      let pending = []
      res.on("data", (chunk) => {
        buffer += chunk
        let i
        while (!finished && (i = buffer.indexOf("\n\n")) >= 0) {
          const ev = parseEvent(buffer.slice(0, i))
          buffer = buffer.slice(i + 2)
          if (!ev) continue
          if (ev.event === "data") {
            for (const m of JSON.parse(ev.data)) pending.push(map(m))
          } else if (ev.event === "control") {
            if (pending.length) {
              onMessages?.(pending, Date.now())
              for (const m of pending) messages.push(m)
              pending = []
            }
            offset = ev.data.streamNextOffset
            onControl?.(ev.data)
            if (ev.data.streamClosed) finish()
          }
        }
      })
      res.on("end", () => again(10))
      res.on("error", () => again(50))
      res.on("close", () => again(50))
    })
    current = req
    req.on("error", () => again(100))
  }
  connect()
  return {
    done,
    stop() {
      if (finished) return
      finish()
    },
  }
}

/** The position part of an offset ("{prefix}_{position}"). */
export function positionOf(offset) {
  return Number(offset.slice(offset.indexOf("_") + 1))
}

/** The offset of `position` in the stream whose offsets look like `sample`. */
export function offsetAt(sample, position) {
  return `${sample.slice(0, sample.indexOf("_"))}_${String(position).padStart(16, "0")}`
}
