// Crash safety: eight idempotent producers append over HTTP while ordo is killed with SIGKILL at
// random moments, five times. After every restart:
//   - every acknowledged append is present exactly once, in the order it was acknowledged;
//   - acknowledged offsets strictly increase, and their order is the order of the data;
//   - a producer retrying its last acknowledged batch gets 204 (a duplicate), not a second copy;
//   - a producer retrying a batch whose answer was lost gets 200 or 204, and the data holds it
//     exactly once either way.
import { describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const PRODUCERS = 8
const ROUNDS = 5
const STREAM = "/v1/stream/crash-test"

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

async function post(url, producer, seq) {
  return fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Producer-Id": `p${producer}`,
      "Producer-Epoch": "0",
      "Producer-Seq": String(seq),
    },
    body: JSON.stringify({ p: producer, s: seq }),
  })
}

async function readAll(base) {
  const values = []
  let offset = "-1"
  for (let i = 0; i < 10000; i++) {
    const res = await fetch(`${base}${STREAM}?offset=${encodeURIComponent(offset)}`)
    expect(res.status).toBe(200)
    const batch = await res.json()
    values.push(...batch)
    const next = res.headers.get("Stream-Next-Offset")
    if (res.headers.get("Stream-Up-To-Date") === "true" && next === offset) break
    if (res.headers.get("Stream-Up-To-Date") === "true" && batch.length === 0) break
    offset = next
  }
  return values
}

describe("crash safety under SIGKILL", () => {
  test(
    "acknowledged appends survive kill -9 exactly once and in order",
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "ordo-crash-"))
      // Per producer: the next seq to send, the acknowledged (seq, offset) pairs, and the batch
      // whose answer was lost when the server died.
      const state = Array.from({ length: PRODUCERS }, () => ({
        next: 0,
        acked: [],
        pending: null,
      }))
      let totalAcked = 0
      let lostAnswers = 0
      try {
        let server = await startOrdo({ dataDir, args: ["--sync", "full"] })
        const created = await fetch(`${server.url}${STREAM}`, {
          method: "PUT",
          headers: { "Content-Type": "application/json" },
        })
        expect(created.status).toBe(201)

        for (let round = 0; round < ROUNDS; round++) {
          const base = server.url
          let killed = false
          const loops = state.map(async (st, producer) => {
            while (!killed) {
              const seq = st.next
              let res
              try {
                res = await post(`${base}${STREAM}`, producer, seq)
              } catch {
                st.pending = seq // the outcome is unknown
                return
              }
              expect(res.status).toBe(200)
              st.acked.push({ seq, offset: res.headers.get("Stream-Next-Offset") })
              st.next = seq + 1
              totalAcked++
            }
          })
          await sleep(150 + Math.floor(Math.random() * 900))
          killed = true
          await server.kill()
          await Promise.all(loops)

          server = await startOrdo({ dataDir, args: ["--sync", "full"] })
          const url = `${server.url}${STREAM}`

          // Retrying the last acknowledged batch is a duplicate.
          for (let producer = 0; producer < PRODUCERS; producer++) {
            const st = state[producer]
            if (st.acked.length === 0) continue
            const last = st.acked[st.acked.length - 1]
            const retry = await post(url, producer, last.seq)
            expect(retry.status, `producer ${producer} retrying acked seq ${last.seq}`).toBe(204)
          }
          // Retrying a batch with a lost answer lands exactly once.
          for (let producer = 0; producer < PRODUCERS; producer++) {
            const st = state[producer]
            if (st.pending === null) continue
            lostAnswers++
            const res = await post(url, producer, st.pending)
            expect([200, 204]).toContain(res.status)
            st.acked.push({ seq: st.pending, offset: res.headers.get("Stream-Next-Offset"), retried: true })
            st.next = st.pending + 1
            st.pending = null
          }

          const values = await readAll(server.url)
          const seen = new Set()
          const position = new Map()
          values.forEach((v, i) => {
            const key = `${v.p}:${v.s}`
            expect(seen.has(key), `duplicate ${key}`).toBe(false)
            seen.add(key)
            position.set(key, i)
          })
          for (let producer = 0; producer < PRODUCERS; producer++) {
            const st = state[producer]
            let previousPosition = -1
            let previousOffset = ""
            for (const a of st.acked) {
              const key = `${producer}:${a.seq}`
              expect(position.has(key), `acknowledged ${key} is missing after restart`).toBe(true)
              expect(position.get(key)).toBeGreaterThan(previousPosition)
              previousPosition = position.get(key)
              if (!a.retried) {
                expect(a.offset > previousOffset, `offsets of ${producer} increase`).toBe(true)
                previousOffset = a.offset
              }
            }
            // Nothing beyond what was sent.
            const sent = values.filter((v) => v.p === producer).length
            expect(sent).toBe(st.next)
          }
          // Across producers, acknowledged offsets sort in the order of the data.
          const acks = state.flatMap((st, producer) =>
            st.acked.filter((a) => !a.retried).map((a) => ({ ...a, producer }))
          )
          acks.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0))
          for (let i = 1; i < acks.length; i++) {
            expect(acks[i].offset > acks[i - 1].offset).toBe(true)
            expect(position.get(`${acks[i].producer}:${acks[i].seq}`)).toBeGreaterThan(
              position.get(`${acks[i - 1].producer}:${acks[i - 1].seq}`)
            )
          }
        }
        console.log(`crash test: ${totalAcked} acknowledged appends, ${lostAnswers} retried after a lost answer`)
        expect(totalAcked).toBeGreaterThan(PRODUCERS * ROUNDS)
        // Kills landed while requests were in flight, so retries of unknown outcomes were tested.
        expect(lostAnswers).toBeGreaterThan(0)
        expect(await server.stop()).toBe(0)
      } finally {
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
    120_000
  )
})
