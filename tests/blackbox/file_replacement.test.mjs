// The database file replaced under a running server (seed 002: a store that kept serving a file
// no longer at its path). ordo notices within a second. A valid replacement is adopted without a
// restart: live readers end, old offsets get 410 and a re-read, writes go on into the new file
// and stay there. An invalid or missing one keeps writes refused, saying why; a process still
// holding the old database delays the switch until it lets go.
import { describe, expect, test } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, renameSync, rmSync, writeFileSync, copyFileSync } from "node:fs"
import { randomBytes } from "node:crypto"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ordoBinary, startOrdo, waitForLog } from "../support/ordo_server.mjs"
import { openSse } from "../support/sse.mjs"
import { expectError, expectOk, request } from "../support/api.mjs"

const TEXT = { "Content-Type": "text/plain" }
const SWITCHED = /switched to the replacement database/

function backup(dataDir, dest) {
  const r = spawnSync(ordoBinary(), ["backup", "--data-dir", dataDir, dest], { encoding: "utf8" })
  expect(r.status, r.stdout + r.stderr).toBe(0)
}

const prefixOf = (offset) => offset.split("_")[0]

/** Every message of a text stream whose messages end with ';', following catch-up chunks. */
async function readMessages(url, offset = "-1") {
  let text = ""
  for (;;) {
    const r = await fetch(`${url}?offset=${offset}`)
    expect(r.status, await r.clone().text()).toBe(200)
    text += await r.text()
    offset = r.headers.get("Stream-Next-Offset")
    if (r.headers.get("Stream-Up-To-Date") === "true") break
  }
  return { messages: text.split(";").filter((m) => m.length > 0), offset }
}

async function appendAll(url, names) {
  let offset
  for (const name of names) {
    const r = await fetch(url, { method: "POST", headers: TEXT, body: `${name};` })
    expect(r.status).toBe(204)
    offset = r.headers.get("Stream-Next-Offset")
  }
  return offset
}

const range = (prefix, from, to) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)

/** Polls /ready until it answers `status`; returns how long that took (ms). */
async function readyBecomes(server, status, ms = 5000) {
  const started = Date.now()
  for (;;) {
    const r = await fetch(`${server.url}/ready`)
    if (r.status === status) return Date.now() - started
    if (Date.now() - started > ms) throw new Error(`/ready never answered ${status}:\n${server.log()}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe("a valid replacement is adopted without a restart", () => {
  test("a backup renamed over the database under load: live readers end, old offsets get 410, writes go on into the new file and survive a restart", async () => {
    const server = await startOrdo({ args: ["--long-poll-timeout", "60s"] })
    let again
    try {
      const s = `${server.url}/v1/stream/log`
      expect((await fetch(s, { method: "PUT", headers: TEXT })).status).toBe(201)
      await appendAll(s, range("m", 0, 50))
      expectOk(await request(server.url, "POST", "/v1/projects", { body: { id: "kept", name: "Kept" } }), 201)
      const copy = join(server.dataDir, "copy.db")
      backup(server.dataDir, copy)
      const oldTail = await appendAll(s, range("m", 50, 100)) // only in the old file
      expectOk(await request(server.url, "POST", "/v1/projects", { body: { id: "lost", name: "Lost" } }), 201)
      const oldSnapshot = expectOk(await request(server.url, "GET", "/v1/changes/snapshot"))

      // A live SSE reader at the tail and a long-poll waiting there.
      const reader = openSse(`${s}?offset=-1&live=sse`)
      while (!reader.events.some((e) => e.event === "control" && e.data.streamNextOffset === oldTail)) {
        await new Promise((r) => setTimeout(r, 10))
      }
      const longPoll = fetch(`${s}?offset=${oldTail}&live=long-poll`)

      // Four writers keep appending throughout, retrying what is refused, and three readers keep
      // re-reading the stream from the start.
      let stop = false
      const acked = [] // [name, Stream-Next-Offset]
      const writers = [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; !stop; i++) {
          for (;;) {
            const r = await fetch(s, { method: "POST", headers: TEXT, body: `w${w}-${i};` })
            if (r.status === 204) {
              acked.push([`w${w}-${i}`, r.headers.get("Stream-Next-Offset")])
              break
            }
            expect(r.status, await r.text()).toBe(503)
            await new Promise((r) => setTimeout(r, 10))
          }
        }
      })
      const readStatuses = new Map()
      const readers = [0, 1, 2].map(async () => {
        while (!stop) {
          const r = await fetch(`${s}?offset=-1`)
          readStatuses.set(r.status, (readStatuses.get(r.status) ?? 0) + 1)
          const body = await r.text()
          if (r.status !== 200) expect([410, 503], body).toContain(r.status)
        }
      })
      await new Promise((r) => setTimeout(r, 100))

      const swapped = Date.now()
      renameSync(copy, join(server.dataDir, "ordo.db"))
      await waitForLog(server, SWITCHED, 5000)
      expect(Date.now() - swapped).toBeLessThan(1500) // "within a second", with slack for a busy machine
      expect(await reader.ended).toBe("end") // the live reader was ended, cleanly
      const polled = await longPoll // answered by the switch, not by its 60 s timeout
      expect([200, 204]).toContain(polled.status)
      await readyBecomes(server, 200)

      // Let writes land in the new file, then stop the writer.
      const newPrefix = () => acked.filter(([, o]) => prefixOf(o) !== prefixOf(oldTail))
      while (newPrefix().length < 20) await new Promise((r) => setTimeout(r, 10))
      stop = true
      await Promise.all([...writers, ...readers])
      expect(readStatuses.get(200)).toBeGreaterThan(0)

      // Old offsets are answered with 410 and a re-read; the stream is the backup's plus exactly
      // the writes acknowledged by the new file, in order, each once.
      const stale = await request(server.url, "GET", `/v1/stream/log?offset=${oldTail}`)
      expectError(stale, 410, "offset_not_for_stream")
      const position = (offset) => Number(offset.split("_")[1])
      const afterSwitch = newPrefix()
        .sort((a, b) => position(a[1]) - position(b[1]))
        .map(([name]) => name)
      const expected = [...range("m", 0, 50), ...afterSwitch]
      const { messages, offset } = await readMessages(s)
      expect(messages).toEqual(expected)
      expect(prefixOf(offset)).not.toBe(prefixOf(oldTail))
      const reconnect = await fetch(`${s}?offset=${oldTail}&live=sse`)
      expect(reconnect.status).toBe(410)
      await reconnect.body?.cancel()

      // Sessions and the change feed read the new file too, with the new epoch.
      const snapshot = expectOk(await request(server.url, "GET", "/v1/changes/snapshot"))
      expect(snapshot.projects.map((p) => p.id)).toEqual(["kept"])
      expect(prefixOf(snapshot.offset)).not.toBe(prefixOf(oldSnapshot.offset))
      expectError(await request(server.url, "GET", `/v1/changes?offset=${oldSnapshot.offset}`), 410, "offset_not_for_stream")
      expectOk(await request(server.url, "GET", `/v1/changes?offset=${snapshot.offset}`))
      expectOk(await request(server.url, "POST", "/v1/projects", { body: { id: "after", name: "After" } }), 201)

      expect(await server.stop()).toBe(0)
      const doctor = spawnSync(ordoBinary(), ["doctor", "--data-dir", server.dataDir, "--json"], { encoding: "utf8" })
      expect(doctor.status, doctor.stdout + doctor.stderr).toBe(0)
      again = await startOrdo({ dataDir: server.dataDir })
      expect((await readMessages(`${again.url}/v1/stream/log`)).messages).toEqual(expected)
      const projects = expectOk(await request(again.url, "GET", "/v1/projects"))
      expect(projects.projects.map((p) => p.id).sort()).toEqual(["after", "kept"])
    } finally {
      await again?.stop()
      await server.stop()
      server.cleanup()
    }
  })

  test("moved away, then a backup moved in: the moved file keeps everything it had, the new one takes the writes", async () => {
    const server = await startOrdo()
    try {
      const s = `${server.url}/v1/stream/log`
      expect((await fetch(s, { method: "PUT", headers: TEXT })).status).toBe(201)
      await appendAll(s, range("a", 0, 10))
      const copy = join(server.dataDir, "copy.db")
      backup(server.dataDir, copy)
      await appendAll(s, range("a", 10, 30)) // in the old file's WAL only

      renameSync(join(server.dataDir, "ordo.db"), join(server.dataDir, "moved.db"))
      expect(await readyBecomes(server, 503)).toBeLessThan(1500)
      const refused = await request(server.url, "POST", "/v1/stream/log", { headers: TEXT, body: "x;" })
      expectError(refused, 503, "storage_replaced")
      expect(refused.json.error.message).toContain("was moved or deleted")
      expect((await readMessages(s)).messages).toEqual(range("a", 0, 30)) // reads go on

      renameSync(copy, join(server.dataDir, "ordo.db"))
      await waitForLog(server, SWITCHED, 5000)
      await appendAll(s, ["b0", "b1"])
      expect((await readMessages(s)).messages).toEqual([...range("a", 0, 10), "b0", "b1"])
      expect(await server.stop()).toBe(0)

      // The moved file was given everything its WAL held when ordo let go of it.
      const movedDir = mkdtempSync(join(tmpdir(), "ordo-moved-"))
      try {
        copyFileSync(join(server.dataDir, "moved.db"), join(movedDir, "ordo.db"))
        const doctor = spawnSync(ordoBinary(), ["doctor", "--data-dir", movedDir], { encoding: "utf8" })
        expect(doctor.status, doctor.stdout + doctor.stderr).toBe(0)
        const moved = await startOrdo({ dataDir: movedDir })
        try {
          expect((await readMessages(`${moved.url}/v1/stream/log`)).messages).toEqual(range("a", 0, 30))
        } finally {
          await moved.stop()
        }
      } finally {
        rmSync(movedDir, { recursive: true, force: true })
      }
    } finally {
      await server.stop()
      server.cleanup()
    }
  })
})

describe("a replacement that cannot be used keeps writes refused", () => {
  test("an invalid file: 503 storage_replaced, a log line saying why, reads go on; a valid file put there later is adopted", async () => {
    const server = await startOrdo()
    try {
      const s = `${server.url}/v1/stream/kept`
      expect((await fetch(s, { method: "PUT", headers: TEXT, body: "a;" })).status).toBe(201)
      const copy = join(server.dataDir, "copy.db")
      backup(server.dataDir, copy)
      await appendAll(s, ["b"])

      const garbage = join(server.dataDir, "garbage")
      writeFileSync(garbage, randomBytes(64 * 1024))
      renameSync(garbage, join(server.dataDir, "ordo.db"))
      expect(await readyBecomes(server, 503)).toBeLessThan(1500)
      await waitForLog(server, /is not a usable ordo database/, 3000)
      const refused = await request(server.url, "POST", "/v1/stream/kept", { headers: TEXT, body: "c;" })
      expectError(refused, 503, "storage_replaced")
      expect(refused.json.error.message).toContain("a file ordo cannot use")
      expect((await readMessages(s)).messages).toEqual(["a", "b"])
      expect((await fetch(`${server.url}/health`)).status).toBe(200)

      renameSync(copy, join(server.dataDir, "ordo.db"))
      await waitForLog(server, SWITCHED, 5000)
      await readyBecomes(server, 200)
      await appendAll(s, ["c"])
      expect((await readMessages(s)).messages).toEqual(["a", "c"])
    } finally {
      await server.stop()
      server.cleanup()
    }
  })

  test("another process holding the old database open delays the switch until it closes it", async () => {
    const server = await startOrdo()
    let shell
    try {
      const s = `${server.url}/v1/stream/kept`
      expect((await fetch(s, { method: "PUT", headers: TEXT, body: "a;" })).status).toBe(201)
      const copy = join(server.dataDir, "copy.db")
      backup(server.dataDir, copy)
      await appendAll(s, ["b"])

      // A sqlite3 shell with the database open (it opens it at its first statement).
      shell = spawn("sqlite3", [join(server.dataDir, "ordo.db")], { stdio: ["pipe", "pipe", "pipe"] })
      let out = ""
      shell.stdout.on("data", (d) => (out += d))
      shell.stdin.write("SELECT 'open', COUNT(*) FROM streams;\n")
      while (!out.includes("open|")) await new Promise((r) => setTimeout(r, 10))

      renameSync(copy, join(server.dataDir, "ordo.db"))
      await waitForLog(server, /another process still has the replaced database/, 5000)
      expect((await fetch(`${server.url}/ready`)).status).toBe(503)
      expectError(await request(server.url, "POST", "/v1/stream/kept", { headers: TEXT, body: "c;" }), 503, "storage_replaced")
      expect(server.log()).not.toMatch(SWITCHED)

      const exited = new Promise((r) => shell.on("exit", r))
      shell.stdin.end()
      await exited
      await waitForLog(server, SWITCHED, 5000)
      await readyBecomes(server, 200)
      await appendAll(s, ["c"])
      expect((await readMessages(s)).messages).toEqual(["a", "c"])
    } finally {
      shell?.kill()
      await server.stop()
      server.cleanup()
    }
  })
})
