// Runs in a worker thread beside a stress test, so that what it times is the server and not the
// test's own event loop, busy with thousands of sockets:
//   - GET /health on a fresh connection every `healthEveryMs`, each answer's status and time;
//   - when `live` is given: follows that stream live over SSE from its tail and, once following,
//     appends `live.appends` messages {"i": live.firstIndex + k, "t": send time} one every
//     `live.everyMs`, then closes the stream; each message's time from append to arrival.
// workerData: { base, healthEveryMs, live?: { path, firstIndex, appends, everyMs } }.
// Posts {type: "following"} once the live reader is at the tail, {type: "written", tail} after
// the close, and {type: "result", ...} after the parent posts "stop".
import http from "node:http"
import { parentPort, workerData } from "node:worker_threads"
import { followSse } from "./sse_follow.mjs"

const { base, healthEveryMs, live } = workerData
const agent = new http.Agent({ keepAlive: false })
let stopping = false
const health = []  // [{ ms, status }]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function getHealth() {
  const started = performance.now()
  return new Promise((resolve) => {
    const req = http.get(`${base}/health`, { agent }, (res) => {
      res.resume()
      res.on("end", () => resolve({ ms: performance.now() - started, status: res.statusCode }))
    })
    req.setTimeout(10000, () => req.destroy(new Error("timeout")))
    req.on("error", (e) => resolve({ ms: performance.now() - started, status: `error: ${e.message}` }))
  })
}

async function pollHealth() {
  while (!stopping) {
    health.push(await getHealth())
    await sleep(healthEveryMs)
  }
}

async function post(path, body, headers) {
  const res = await fetch(`${base}/v1/stream/${path}`, { method: "POST", headers, body })
  if (res.status !== 204 && res.status !== 200) throw new Error(`append -> ${res.status} ${await res.text()}`)
  return res.headers.get("Stream-Next-Offset")
}

async function runLive() {
  const latencies = []
  const received = []
  let announce
  const following = new Promise((r) => (announce = r))
  const reader = followSse(base, live.path, "now", {
    map: (m) => m,
    onControl: () => announce(),
    onMessages: (ms, at) => {
      for (const m of ms) {
        latencies.push(at - m.t)
        received.push(m.i)
      }
    },
  })
  await following
  parentPort.postMessage({ type: "following" })
  let tail
  for (let k = 0; k < live.appends; k++) {
    const body = JSON.stringify([{ i: live.firstIndex + k, t: Date.now() }])
    tail = await post(live.path, body, { "Content-Type": "application/json" })
    await sleep(live.everyMs)
  }
  tail = await post(live.path, undefined, { "Stream-Closed": "true" })
  parentPort.postMessage({ type: "written", tail })
  await reader.done
  return { latencies, received }
}

const healthDone = pollHealth()
const liveDone = live ? runLive() : Promise.resolve(null)
parentPort.on("message", async (m) => {
  if (m !== "stop") return
  stopping = true
  await healthDone
  let liveResult = null
  let liveError = null
  try {
    liveResult = await liveDone
  } catch (e) {
    liveError = String(e)
  }
  parentPort.postMessage({ type: "result", health, live: liveResult, liveError })
})
liveDone.catch((e) => parentPort.postMessage({ type: "error", error: String(e) }))
