// The `ordo` client commands (the C++ client library underneath) against a real server, and
// interop with the official @durable-streams/client: each writes what the other reads, for JSON
// and binary streams, across a dropped connection and an idempotent retry.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { DurableStream, IdempotentProducer, stream } from "@durable-streams/client"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
import { expectOk, request } from "../support/api.mjs"

let server
beforeAll(async () => {
  server = await startOrdo()
})
afterAll(async () => {
  await server?.stop()
  server?.cleanup()
})

/** Runs `ordo ARGS` against the server; returns { status, stdout (Buffer), text, stderr }. */
function ordo(args, { input, url = server.url, env = {} } = {}) {
  const r = spawnSync(ordoBinary(), args, {
    input,
    env: { ...process.env, ORDO_URL: url, ...env },
    maxBuffer: 64 << 20,
  })
  return { status: r.status, stdout: r.stdout, text: r.stdout.toString(), stderr: r.stderr.toString() }
}

const lines = (text) => text.split("\n").filter((l) => l.length > 0)
const ndjson = (text) => lines(text).map((l) => JSON.parse(l))
const streamUrl = (path) => `${server.url}/v1/stream/${path}`

/** Starts a long-running `ordo` command; collects stdout. */
function follow(args) {
  const child = spawn(ordoBinary(), args, { env: { ...process.env, ORDO_URL: server.url } })
  const chunks = []
  child.stdout.on("data", (d) => chunks.push(d))
  const buf = () => Buffer.concat(chunks)
  let err = ""
  child.stderr.on("data", (d) => (err += d))
  const exited = new Promise((r) => child.on("exit", (code) => r(code)))
  return {
    out: () => buf().toString(),
    buf,
    err: () => err,
    exited,
    async waitFor(predicate, ms = 15000) {
      const until = Date.now() + ms
      while (!predicate(buf().toString())) {
        if (Date.now() > until) throw new Error(`never matched; output:\n${buf()}\nstderr:\n${err}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    stop: () => child.kill("SIGINT"),
  }
}

describe("ordo stream", () => {
  test("create, append, read, head, close and delete, in text and --json", () => {
    const created = ordo(["stream", "create", "cli/a", "--content-type", "application/json", "--json"])
    expect(created.status, created.stderr).toBe(0)
    expect(JSON.parse(created.text)).toMatchObject({ content_type: "application/json", closed: false })

    const appended = ordo(["stream", "append", "cli/a", "--lines", "--json"], { input: '{"n":1}\n{"n":2}\n[1,2]\n' })
    expect(appended.status, appended.stderr).toBe(0)
    expect(JSON.parse(appended.text)).toMatchObject({ acknowledged: 3, failed: 0 })

    expect(lines(ordo(["stream", "read", "cli/a"]).text)).toEqual(['{"n":1}', '{"n":2}', "[1,2]"])
    const read = ndjson(ordo(["stream", "read", "cli/a", "--json"]).text)
    expect(read.map((l) => l.message)).toEqual([{ n: 1 }, { n: 2 }, [1, 2]])
    expect(read[2].offset).toMatch(/^[0-9a-f]{16}_\d{16}$/)

    const head = ordo(["stream", "head", "cli/a"])
    expect(head.text).toContain("content type  application/json")
    expect(head.text).toContain("closed        no")
    expect(ordo(["stream", "close", "cli/a"]).status).toBe(0)
    expect(JSON.parse(ordo(["stream", "head", "cli/a", "--json"]).text).closed).toBe(true)
    const refused = ordo(["stream", "append", "cli/a", "{}", "--json"])
    expect(refused.status).toBe(1)
    expect(JSON.parse(refused.text).error.code).toBe("stream_closed")
    expect(ordo(["stream", "delete", "cli/a"]).status).toBe(0)
  })

  test("exit codes: 3 not found, 1 refused, 4 unreachable, 2 bad usage; errors name what to fix", () => {
    const missing = ordo(["stream", "head", "cli/none"])
    expect(missing.status).toBe(3)
    expect(missing.stderr).toContain("stream_not_found")
    ordo(["stream", "create", "cli/j", "--content-type", "application/json"])
    const bad = ordo(["stream", "append", "cli/j", "not json"])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain("invalid_json")
    const down = ordo(["stream", "head", "cli/j", "--server", "http://127.0.0.1:1"])
    expect(down.status).toBe(4)
    expect(down.stderr).toContain("connection_failed")
    expect(ordo(["stream", "head"]).status).toBe(2)
    expect(ordo(["stream", "read", "cli/j", "--live", "carrier-pigeon"]).status).toBe(2)
    expect(ordo(["stream", "head", "cli/j", "--server", "ftp://x"]).stderr).toContain("invalid_url")
    expect(ordo(["stream", "--help"]).status).toBe(0)
  })

  test("the same producer run twice stores the messages once (an idempotent retry)", () => {
    ordo(["stream", "create", "cli/once", "--content-type", "application/json"])
    const input = Array.from({ length: 100 }, (_, i) => JSON.stringify({ i })).join("\n")
    for (let run = 0; run < 2; run++) {
      const r = ordo(["stream", "append", "cli/once", "--lines", "--producer", "importer", "--epoch", "7", "--json"], { input })
      expect(r.status, r.stderr).toBe(0)
      expect(JSON.parse(r.text).acknowledged).toBe(100)
    }
    const values = ndjson(ordo(["stream", "read", "cli/once", "--json"]).text).map((l) => l.message.i)
    expect(values).toEqual(Array.from({ length: 100 }, (_, i) => i))
  })

  test("tail follows live and resumes after the server restarts, with no loss and no duplicate", async () => {
    ordo(["stream", "create", "cli/live", "--content-type", "application/json"])
    ordo(["stream", "append", "cli/live", "--lines"], { input: "0\n1\n" })
    const tail = follow(["stream", "read", "cli/live", "--follow", "--live", "sse"])
    try {
      await tail.waitFor((out) => lines(out).length >= 2)
      // The server dies under the reader and comes back on the same port and data.
      const port = server.port
      const dataDir = server.dataDir
      await server.kill()
      server = await startOrdo({ port, dataDir })
      ordo(["stream", "append", "cli/live", "--lines"], { input: "2\n3\n4\n" })
      await tail.waitFor((out) => lines(out).length >= 5)
      await new Promise((r) => setTimeout(r, 200))
      expect(lines(tail.out())).toEqual(["0", "1", "2", "3", "4"])
    } finally {
      tail.stop()
      await tail.exited
    }
  })
})

describe("retries on 503 with Retry-After", () => {
  test("appends refused with 503 storage_busy while a sqlite3 shell holds a write lock are retried until stored, each once", async () => {
    const busy = await startOrdo({ args: ["--busy-timeout", "100ms"] })
    const shell = spawn("sqlite3", [`${busy.dataDir}/ordo.db`], { stdio: ["pipe", "pipe", "pipe"] })
    try {
      const created = ordo(["stream", "create", "busy", "--content-type", "application/json"], { url: busy.url })
      expect(created.status, created.stderr).toBe(0)
      shell.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
      await new Promise((resolve) => shell.stdout.once("data", resolve))
      // The lock goes away after 1.5 s, while the producer is retrying.
      setTimeout(() => shell.stdin.write("COMMIT;\n.quit\n"), 1500)
      const input = Array.from({ length: 50 }, (_, i) => String(i)).join("\n")
      const child = spawn(ordoBinary(), ["stream", "append", "busy", "--lines", "--batch-messages", "10", "--json", "--server", busy.url])
      let out = ""
      child.stdout.on("data", (d) => (out += d))
      child.stdin.end(input)
      expect(await new Promise((r) => child.on("exit", r))).toBe(0)
      expect(JSON.parse(out)).toMatchObject({ acknowledged: 50, failed: 0 })
      expect(busy.log()).toContain("locked by another process") // it was refused, then retried
      const read = ordo(["stream", "read", "busy"], { url: busy.url })
      expect(lines(read.text)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)))
    } finally {
      shell.kill()
      await busy.stop()
      busy.cleanup()
    }
  })
})

describe("interop with the official client (@durable-streams/client)", () => {
  test("JSON: its IdempotentProducer writes, ordo reads; ordo appends, it reads", async () => {
    const handle = await DurableStream.create({ url: streamUrl("interop/json"), contentType: "application/json" })
    const producer = new IdempotentProducer(handle, "js-writer", { autoClaim: true })
    for (let i = 0; i < 200; i++) producer.append(JSON.stringify({ from: "js", i }))
    await producer.flush() // (its close() would close the stream)
    const read = ndjson(ordo(["stream", "read", "interop/json", "--json"]).text).map((l) => l.message)
    expect(read).toEqual(Array.from({ length: 200 }, (_, i) => ({ from: "js", i })))

    const input = Array.from({ length: 200 }, (_, i) => JSON.stringify({ from: "cpp", i })).join("\n")
    const appended = ordo(["stream", "append", "interop/json", "--lines"], { input })
    expect(appended.status, appended.stderr).toBe(0)
    const res = await stream({ url: streamUrl("interop/json"), live: false })
    const items = await res.json()
    expect(items.slice(200)).toEqual(Array.from({ length: 200 }, (_, i) => ({ from: "cpp", i })))
  })

  test("binary: bytes written by either side read back byte for byte by the other, also over SSE", async () => {
    const handle = await DurableStream.create({ url: streamUrl("interop/bin"), contentType: "application/octet-stream" })
    const fromJs = randomBytes(50_000)
    await handle.append(fromJs)
    const read = ordo(["stream", "read", "interop/bin"])
    expect(read.status).toBe(0)
    expect(Buffer.compare(read.stdout, fromJs)).toBe(0)

    const fromCpp = randomBytes(30_000)
    expect(ordo(["stream", "append", "interop/bin"], { input: fromCpp }).status).toBe(0)
    const res = await stream({ url: streamUrl("interop/bin"), live: false })
    const all = Buffer.from(await res.body())
    expect(Buffer.compare(all, Buffer.concat([fromJs, fromCpp]))).toBe(0)

    // The C++ reader follows the binary stream over SSE (base64) while the official client
    // writes.
    const tail = follow(["stream", "tail", "interop/bin", "--live", "sse"])
    try {
      await new Promise((r) => setTimeout(r, 300))
      const live = randomBytes(1000)
      await handle.append(live)
      const until = Date.now() + 10000
      while (tail.buf().length < live.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
      expect(Buffer.compare(tail.buf(), live)).toBe(0)
    } finally {
      tail.stop()
      await tail.exited
    }
  })
})

describe("interop across a dropped connection", () => {
  test("read --json shows UTF-8 data as text and anything else (overlong forms, surrogates) as base64", async () => {
    // A binary stream's catch-up read is one chunk of bytes: one stream per case.
    const cases = [
      ["text", Buffer.from("plain text, ünïcode ✓")],
      ["overlong", Buffer.from([0xc0, 0xaf])], // an overlong '/'
      ["surrogate", Buffer.from([0xed, 0xa0, 0x80])], // a UTF-16 surrogate
      ["bytes", Buffer.from([0xff, 0x00, 0x80])],
    ]
    for (const [name, data] of cases) {
      const handle = await DurableStream.create({ url: streamUrl(`cli/utf8/${name}`), contentType: "application/octet-stream" })
      await handle.append(data)
      const read = ordo(["stream", "read", `cli/utf8/${name}`, "--json"])
      expect(read.status).toBe(0)
      const [line] = ndjson(read.text)
      if (name === "text") {
        expect(line.message).toBe(data.toString())
      } else {
        expect(line.message, name).toBeUndefined()
        expect(Buffer.compare(Buffer.from(line.message_base64, "base64"), data), name).toBe(0)
      }
    }
  })

  test("the official client writes while the server restarts; ordo's reader resumes and sees each message once", async () => {
    const handle = await DurableStream.create({ url: streamUrl("interop/restart"), contentType: "application/json" })
    const producer = new IdempotentProducer(handle, "js-restart", { autoClaim: true })
    for (let i = 0; i < 100; i++) producer.append(JSON.stringify(i))
    await producer.flush()
    const tail = follow(["stream", "read", "interop/restart", "--follow"])
    try {
      await tail.waitFor((out) => lines(out).length >= 100)
      const port = server.port
      const dataDir = server.dataDir
      await server.kill()
      server = await startOrdo({ port, dataDir })
      const again = new IdempotentProducer(await DurableStream.connect({ url: streamUrl("interop/restart") }), "js-restart-2", {
        autoClaim: true,
      })
      for (let i = 100; i < 200; i++) again.append(JSON.stringify(i))
      await again.flush()
      await tail.waitFor((out) => lines(out).length >= 200)
      await new Promise((r) => setTimeout(r, 200))
      expect(lines(tail.out())).toEqual(Array.from({ length: 200 }, (_, i) => String(i)))
    } finally {
      tail.stop()
      await tail.exited
    }
  })
})

describe("on a terminal", () => {
  test("a long read shows a progress bar on stderr when stdout goes to a file", () => {
    ordo(["stream", "create", "cli/big", "--content-type", "application/json"])
    const input = Array.from({ length: 20000 }, (_, i) => JSON.stringify({ i, pad: "x".repeat(200) })).join("\n")
    expect(ordo(["stream", "append", "cli/big", "--lines"], { input }).status).toBe(0)
    // script(1) gives the command a terminal; its stdout goes to a file.
    const out = `${server.dataDir}/big.out`
    const r = spawnSync("script", ["-qec", `${ordoBinary()} stream read cli/big --server ${server.url} > ${out}`, "/dev/null"], {
      encoding: "utf8",
    })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/\[#+\.*\] +\d+%  read: \d+ messages/)
    expect(spawnSync("wc", ["-l", out], { encoding: "utf8" }).stdout).toMatch(/^20000 /)
  })
})

describe("ordo session and ordo changes", () => {
  test("list, show, send (once, even when retried with the same key), tail events and the change feed", async () => {
    expectOk(await request(server.url, "POST", "/v1/projects", { body: { id: "cli-proj", name: "CLI" } }), 201)
    const session = expectOk(await request(server.url, "POST", "/v1/projects/cli-proj/sessions", { body: { agent_kind: "claude-code", branch: "cli-branch" } }), 201)

    const list = ordo(["session", "list", "--project", "cli-proj"])
    expect(list.status, list.stderr).toBe(0)
    expect(lines(list.text)[0]).toMatch(/^ID\s+PROJECT\s+STATE/)
    expect(list.text).toContain(session.id)
    expect(JSON.parse(ordo(["session", "list", "--json"]).text).sessions.map((s) => s.id)).toContain(session.id)
    expect(JSON.parse(ordo(["session", "show", session.id, "--json"]).text).id).toBe(session.id)
    expect(ordo(["session", "show", "nope"]).status).toBe(3)

    const first = ordo(["session", "send", session.id, "please add a test", "--key", "k-1"])
    expect(first.status, first.stderr).toBe(0)
    const again = ordo(["session", "send", session.id, "please add a test", "--key", "k-1"])
    expect(again.text).toBe(first.text)
    const commands = expectOk(await request(server.url, "GET", `/v1/sessions/${session.id}/commands`))
    expect(commands.commands).toHaveLength(1)
    expect(commands.commands[0].body).toEqual({ type: "user_message", text: "please add a test" })

    const events = follow(["session", "tail", session.id, "--offset", "-1"])
    const feed = follow(["changes", "tail", "--offset", "-1"])
    try {
      await events.waitFor((out) => out.includes('"command.accepted"'))
      await feed.waitFor((out) => out.includes('"project.created"') && out.includes('"command.accepted"'))
    } finally {
      events.stop()
      feed.stop()
      await Promise.all([events.exited, feed.exited])
    }
  })
})
