// Two ordo nodes on one PostgreSQL database (--storage), each addressed directly: what one node
// commits, the other serves at once (a read checks the stream against the table first) and
// delivers live to its waiting readers (one NOTIFY per batch wakes them); idempotent producers
// writing through both nodes at once get dense positions, each message exactly once; a node
// killed with SIGKILL loses nothing acknowledged, and its producers finish through the other;
// PostgreSQL going away answers 503 and /ready says so, until it is back; one node at a time
// expires and purges streams, and another takes that over when it dies. Behind nginx, a node
// killed again and again under several producers loses nothing acknowledged and stores nothing
// twice, and a reader on the other node sees every message once, in order.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { startOrdo } from "../support/ordo_server.mjs"
import { postgresMissing, startPostgres } from "../support/postgres.mjs"
import { proxyMissing, startProxyCluster } from "../support/proxy_cluster.mjs"
import { followSse } from "../support/sse_follow.mjs"

const missing = postgresMissing()
let pg
let url
let nodes = []

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

async function put(node, path, headers = { "Content-Type": "text/plain" }) {
  return fetch(`${node.url}/v1/stream/${path}`, { method: "PUT", headers })
}

async function append(node, path, body, headers = {}) {
  return fetch(`${node.url}/v1/stream/${path}`, {
    method: "POST",
    headers: { "Content-Type": "text/plain", ...headers },
    body,
  })
}

async function readText(node, path, offset = "-1") {
  const res = await fetch(`${node.url}/v1/stream/${path}?offset=${encodeURIComponent(offset)}`)
  return { status: res.status, text: await res.text(), next: res.headers.get("Stream-Next-Offset") }
}

// Every JSON value of a stream, read through `node` from the start.
async function readAll(node, path) {
  const values = []
  let offset = "-1"
  for (let i = 0; i < 10000; i++) {
    const res = await fetch(`${node.url}/v1/stream/${path}?offset=${encodeURIComponent(offset)}`)
    expect(res.status).toBe(200)
    values.push(...(await res.json()))
    const next = res.headers.get("Stream-Next-Offset")
    if (res.headers.get("Stream-Up-To-Date") === "true") break
    offset = next
  }
  return values
}

beforeAll(async () => {
  if (missing) return
  pg = startPostgres()
  url = pg.url(pg.createDatabase())
  nodes = [await startOrdo({ args: ["--storage", url] }), await startOrdo({ args: ["--storage", url] })]
})

afterAll(async () => {
  for (const n of nodes) {
    await n.stop()
    n.cleanup()
  }
  pg?.stop()
})

describe.skipIf(missing)("two nodes on one PostgreSQL database", () => {
  test("what one node commits the other serves at once: create, append, close, delete", async () => {
    const [a, b] = nodes
    expect((await put(a, "shared")).status).toBe(201)
    expect((await fetch(`${b.url}/v1/stream/shared`, { method: "HEAD" })).status).toBe(200)
    for (let i = 0; i < 20; ++i) {
      const writer = i % 2 ? a : b
      const reader = i % 2 ? b : a
      const res = await append(writer, "shared", `m${i};`)
      expect(res.status).toBe(204)
      const next = res.headers.get("Stream-Next-Offset")
      const read = await readText(reader, "shared")
      expect(read.status).toBe(200)
      expect(read.next).toBe(next)
      expect(read.text).toBe(Array.from({ length: i + 1 }, (_, k) => `m${k};`).join(""))
    }
    const closed = await fetch(`${a.url}/v1/stream/shared`, { method: "POST", headers: { "Stream-Closed": "true" } })
    expect(closed.status).toBe(204)
    const head = await fetch(`${b.url}/v1/stream/shared`, { method: "HEAD" })
    expect(head.headers.get("Stream-Closed")).toBe("true")
    expect((await append(b, "shared", "late")).status).toBe(409)
    expect((await fetch(`${b.url}/v1/stream/shared`, { method: "DELETE" })).status).toBe(204)
    expect((await readText(a, "shared")).status).toBe(404)
    // The path is free again, on either node.
    expect((await put(a, "shared")).status).toBe(201)
    expect((await readText(b, "shared")).text).toBe("")
  })

  test("a long-poll and an SSE reader on one node get what the other node appends", async () => {
    const [a, b] = nodes
    expect((await put(a, "live")).status).toBe(201)
    const tail = (await readText(b, "live")).next
    const poll = fetch(`${b.url}/v1/stream/live?offset=${tail}&live=long-poll`)
    const sse = new AbortController()
    const events = fetch(`${b.url}/v1/stream/live?offset=${tail}&live=sse`, { signal: sse.signal })
    await sleep(300)
    const started = Date.now()
    expect((await append(a, "live", "hello")).status).toBe(204)
    const polled = await poll
    expect(polled.status).toBe(200)
    expect(await polled.text()).toBe("hello")
    const reader = (await events).body.getReader()
    let seen = ""
    while (!seen.includes("hello")) {
      const { value, done } = await reader.read()
      if (done) break
      seen += Buffer.from(value).toString("utf8")
    }
    sse.abort()
    expect(seen).toContain("hello")
    // A NOTIFY, not the one-second safety poll, woke them.
    expect(Date.now() - started).toBeLessThan(900)
  })

  test("readers of several streams on one node stay through its rechecks of everything", async () => {
    const [a, b] = nodes
    const names = ["poll-1", "poll-2", "poll-3", "poll-4"]
    for (const name of names) expect((await put(a, name)).status).toBe(201)
    const readers = []
    for (const name of names) {
      const tail = (await readText(b, name)).next
      const abort = new AbortController()
      const res = await fetch(`${b.url}/v1/stream/${name}?offset=${tail}&live=sse`, { signal: abort.signal })
      readers.push({ name, abort, reader: res.body.getReader(), seen: "" })
    }
    // The listener's safety poll rechecks every stream with readers on b, once a second.
    await sleep(2500)
    for (const name of names) expect((await append(a, name, `late-${name}`)).status).toBe(204)
    for (const r of readers) {
      while (!r.seen.includes(`late-${r.name}`)) {
        const { value, done } = await r.reader.read()
        if (done) break
        r.seen += Buffer.from(value).toString("utf8")
      }
      r.abort.abort()
      expect(r.seen, r.name).toContain(`late-${r.name}`)
    }
  })

  test("producers writing through both nodes at once: dense positions, each message once", async () => {
    const [a, b] = nodes
    expect((await put(a, "busy", { "Content-Type": "application/json" })).status).toBe(201)
    const producers = 6
    const each = 40
    await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        for (let seq = 0; seq < each; ++seq) {
          const node = (p + seq) % 2 ? a : b
          const res = await fetch(`${node.url}/v1/stream/busy`, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Producer-Id": `p${p}`, "Producer-Epoch": "0", "Producer-Seq": String(seq) },
            body: JSON.stringify({ p, seq }),
          })
          expect([200, 204]).toContain(res.status)
        }
      }),
    )
    for (const node of nodes) {
      const values = await readAll(node, "busy")
      expect(values.length).toBe(producers * each)
      for (let p = 0; p < producers; ++p) {
        expect(values.filter((v) => v.p === p).map((v) => v.seq)).toEqual(Array.from({ length: each }, (_, i) => i))
      }
    }
    // Retrying an acknowledged append through the other node is a duplicate, not a copy.
    const retry = await fetch(`${b.url}/v1/stream/busy`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Producer-Id": "p0", "Producer-Epoch": "0", "Producer-Seq": String(each - 1) },
      body: JSON.stringify({ p: 0, seq: each - 1 }),
    })
    expect(retry.status).toBe(204)
    expect((await readAll(a, "busy")).length).toBe(producers * each)
  })

  test("a node killed with SIGKILL loses nothing acknowledged; its producer finishes on the other", async () => {
    const [a] = nodes
    const victim = await startOrdo({ args: ["--storage", url] })
    expect((await put(a, "crash", { "Content-Type": "application/json" })).status).toBe(201)
    const acked = []
    let seq = 0
    const writing = (async () => {
      for (;;) {
        let res
        try {
          res = await fetch(`${victim.url}/v1/stream/crash`, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Producer-Id": "k", "Producer-Epoch": "0", "Producer-Seq": String(seq) },
            body: JSON.stringify({ seq }),
          })
        } catch {
          return  // the node is gone; `seq` may or may not be stored
        }
        expect([200, 204]).toContain(res.status)
        acked.push(seq++)
      }
    })()
    await sleep(400)
    await victim.kill()
    await writing
    victim.cleanup()
    expect(acked.length).toBeGreaterThan(5)
    // The producer retries its unanswered append through the surviving node, then goes on.
    for (let s = seq; s < seq + 3; ++s) {
      const res = await fetch(`${a.url}/v1/stream/crash`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Producer-Id": "k", "Producer-Epoch": "0", "Producer-Seq": String(s) },
        body: JSON.stringify({ seq: s }),
      })
      expect([200, 204]).toContain(res.status)
    }
    const values = (await readAll(a, "crash")).map((v) => v.seq)
    expect(values).toEqual(Array.from({ length: seq + 3 }, (_, i) => i))
  })

  test.skipIf(proxyMissing())("kill -9 of a node, again and again, under producers through nginx: every acknowledged append once, in order; a reader on the other node misses nothing", async () => {
    // A cluster of its own, with fsync on and each COMMIT held 20 ms before its WAL flush
    // (commit_delay): a kill then mostly lands while a batch is committing, and PostgreSQL
    // commits it although its node is gone. Its producers' retries must be answered as
    // duplicates, not stored again.
    const durable = startPostgres({ durable: true })
    const name = durable.createDatabase()
    durable.sql("postgres", `ALTER DATABASE ${name} SET commit_delay = 20000`)
    durable.sql("postgres", `ALTER DATABASE ${name} SET commit_siblings = 0`)
    const db = durable.url(name)
    // max_fails=0: nginx tries a node again as soon as it is back on its port.
    const cluster = await startProxyCluster({ storage: db, serverParams: "max_fails=0" })
    const [survivor, first] = cluster.nodes
    const restarted = []
    try {
      const res = await fetch(`${cluster.url}/v1/stream/kills`, { method: "PUT", headers: { "Content-Type": "application/json" } })
      expect(res.status).toBe(201)
      const reader = followSse(survivor.url, "kills", "-1")

      // Each producer retries an append that got no answer (or 502 from nginx, 503 from a
      // node) with the same Producer-Seq until it is answered: 200 stored, 204 a duplicate.
      let stop = false
      const answers = { stored: 0, duplicates: 0, retries: 0 }
      const sent = [0, 0, 0, 0]
      const produce = async (p) => {
        while (!stop) {
          const seq = sent[p]
          let status
          try {
            const r = await fetch(`${cluster.url}/v1/stream/kills`, {
              method: "POST",
              headers: { "Content-Type": "application/json", "Producer-Id": `p${p}`, "Producer-Epoch": "0", "Producer-Seq": String(seq) },
              body: JSON.stringify({ p, seq }),
            })
            status = r.status
            await r.arrayBuffer()
          } catch {
            status = 0
          }
          if (status === 0 || status === 502 || status === 503) {
            answers.retries++
            await sleep(10)
            continue
          }
          expect([200, 204]).toContain(status)
          if (status === 200) answers.stored++
          else answers.duplicates++
          sent[p] = seq + 1
        }
      }
      const producing = [0, 1, 2, 3].map(produce)

      // Five kills at least, and more (up to 12) until a retry has been answered as a duplicate.
      let victim = first
      for (let round = 0; round < 12 && (round < 5 || answers.duplicates === 0); round++) {
        await sleep(300)
        await victim.kill()
        victim.cleanup()
        await sleep(100)
        victim = await startOrdo({ port: first.port, args: ["--storage", db] })
        restarted.push(victim)
      }
      await sleep(300)
      stop = true
      await Promise.all(producing)
      expect(answers.retries).toBeGreaterThan(0)  // the kills cut requests in flight
      expect(answers.duplicates).toBeGreaterThan(0)
      expect(answers.duplicates).toBeLessThanOrEqual(answers.retries)

      // Stored: each producer's messages exactly once, in order, nothing else.
      const values = await readAll(survivor, "kills")
      for (let p = 0; p < 4; p++) {
        expect(values.filter((v) => v.p === p).map((v) => v.seq)).toEqual(Array.from({ length: sent[p] }, (_, i) => i))
      }
      expect(values.length).toBe(sent.reduce((a, b) => a + b, 0))
      expect(answers.stored + answers.duplicates).toBe(values.length)

      // The reader on the surviving node got the same messages in the same order.
      const closed = await fetch(`${survivor.url}/v1/stream/kills`, { method: "POST", headers: { "Stream-Closed": "true" } })
      expect([200, 204]).toContain(closed.status)
      const followed = await Promise.race([reader.done, sleep(20_000).then(() => null)])
      reader.stop()
      expect(followed).not.toBeNull()
      expect(followed.messages).toEqual(values)
    } finally {
      for (const n of restarted) {
        await n.stop()
        n.cleanup()
      }
      await cluster.stop()
      durable.stop()
    }
  }, 90_000)

  test("one node does the background work; when it dies another takes over", async () => {
    const name = pg.createDatabase()
    const db = pg.url(name)
    const first = await startOrdo({ args: ["--storage", db] })
    const second = await startOrdo({ args: ["--storage", db] })
    const worker = async (node) => {
      const text = await (await fetch(`${node.url}/metrics`)).text()
      return Number(/^ordo_background_worker (\d)$/m.exec(text)[1])
    }
    try {
      let roles
      for (let i = 0; i < 50; ++i) {
        roles = [await worker(first), await worker(second)]
        if (roles[0] + roles[1] === 1) break
        await sleep(100)
      }
      expect(roles[0] + roles[1]).toBe(1)
      const [leader, follower] = roles[0] ? [first, second] : [second, first]
      // A stream created through the follower expires (the worker decides from the table).
      expect((await put(follower, "short", { "Content-Type": "text/plain", "Stream-TTL": "1" })).status).toBe(201)
      await sleep(1600)
      for (let i = 0; i < 30; ++i) {
        if (pg.sql(name, "SELECT count(*) FROM streams WHERE path = 'short'") === "0") break
        await sleep(100)
      }
      expect(pg.sql(name, "SELECT count(*) FROM streams WHERE path = 'short'")).toBe("0")
      expect((await readText(follower, "short")).status).toBe(404)
      await leader.kill()
      leader.cleanup()
      let took = 0
      for (let i = 0; i < 50 && !took; ++i) {
        took = await worker(follower)
        if (!took) await sleep(100)
      }
      expect(took).toBe(1)
    } finally {
      for (const n of [first, second]) {
        if (n.child.exitCode === null && n.child.signalCode === null) {
          await n.stop()
          n.cleanup()
        }
      }
    }
  })

  test("PostgreSQL away: writes and reads answer 503, /ready says why; back: both resume", async () => {
    const [a, b] = nodes
    expect((await put(a, "outage")).status).toBe(201)
    pg.pause()
    try {
      // /ready sees it before any write does: the LISTEN connection breaks.
      let ready
      for (let i = 0; i < 40; ++i) {
        ready = await fetch(`${b.url}/ready`)
        if (ready.status === 503) break
        await sleep(100)
      }
      expect(ready.status).toBe(503)
      expect(await ready.text()).toContain("PostgreSQL is unreachable")
      const write = await append(a, "outage", "x")
      expect(write.status).toBe(503)
      expect(write.headers.get("Retry-After")).toBeTruthy()
      const read = await readText(b, "outage")
      expect(read.status).toBe(503)
      for (let i = 0; i < 40; ++i) {
        ready = await fetch(`${a.url}/ready`)
        if (ready.status === 503) break
        await sleep(100)
      }
      expect(ready.status).toBe(503)
      expect(await ready.text()).toContain("PostgreSQL is unreachable")
    } finally {
      pg.resume()
    }
    let res
    for (let i = 0; i < 100; ++i) {
      res = await append(a, "outage", "back")
      if (res.status === 204) break
      await sleep(100)
    }
    expect(res.status).toBe(204)
    for (let i = 0; i < 100; ++i) {
      const read = await readText(b, "outage")
      if (read.status === 200) {
        expect(read.text).toBe("back")
        break
      }
      await sleep(100)
    }
    for (const node of nodes) {
      let ready
      for (let i = 0; i < 100; ++i) {
        ready = await fetch(`${node.url}/ready`)
        if (ready.status === 200) break
        await sleep(100)
      }
      expect(ready.status).toBe(200)
    }
  })
})
