// `ordo serve --config FILE` (and ORDO_CONFIG): every serve option read from a TOML file, a flag
// winning over its ORDO_* variable, which wins over the file, which wins over the default; a file
// with an unknown key, a bad value or bad syntax, or no file at all, stops start-up with exit
// code 2 and a message naming the file and the key. And packaging/ordo.toml, the file the
// service runs with: it names every option `ordo serve --help` lists, and ordo starts with it.
import { afterAll, describe, expect, test } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"

const repoRoot = resolve(new URL(".", import.meta.url).pathname, "../..")
const shippedConfig = join(repoRoot, "packaging/ordo.toml")

const scratch = mkdtempSync(join(tmpdir(), "ordo-config-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
let files = 0
/** Writes `text` to a fresh .toml file and returns its path. */
const configFile = (text) => {
  const path = join(scratch, `config-${++files}.toml`)
  writeFileSync(path, text)
  return path
}

/** The values the start-up line reports: address, port, data_dir, sync, threads. */
const startupLine = (log) => {
  const m = log.match(/listening address=(\S+) port=(\d+) data_dir=(\S+) sync=(\S+) threads=(\d+)/)
  expect(m, log).not.toBeNull()
  return { address: m[1], port: Number(m[2]), dataDir: m[3], sync: m[4], threads: Number(m[5]) }
}

/** Starts ordo with startOrdo (which adds --port 0 and --data-dir), returns its start-up line. */
const startupWith = async (opts) => {
  const server = await startOrdo(opts)
  try {
    return startupLine(server.log())
  } finally {
    expect(await server.stop()).toBe(0)
    server.cleanup()
  }
}

/** Runs `ordo serve ARGS` expecting it to refuse to start; returns { status, stderr }. */
const refused = (args, env = {}) => {
  const dataDir = mkdtempSync(join(scratch, "refused-"))
  const r = spawnSync(ordoBinary(), ["serve", "--port", "0", "--data-dir", dataDir, ...args], {
    encoding: "utf8",
    timeout: 10000,
    env: { ...process.env, ...env },
  })
  return { status: r.status, stderr: `${r.stdout}${r.stderr}` }
}

const freePort = () =>
  new Promise((resolvePort) => {
    const s = createServer()
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolvePort(port))
    })
  })

describe("precedence: flag over environment over file over default", () => {
  // --threads is in the start-up line and has a different value at each level.
  const file = () => configFile("threads = 3\nsync = \"normal\"\n")

  test("without a file the default applies", async () => {
    const line = await startupWith({})
    expect(line.sync).toBe("full")
  })

  test("the file's value beats the default", async () => {
    const line = await startupWith({ args: ["--config", file()] })
    expect(line.threads).toBe(3)
    expect(line.sync).toBe("normal")
  })

  test("an ORDO_* variable beats the file", async () => {
    const line = await startupWith({ args: ["--config", file()], env: { ORDO_THREADS: "5", ORDO_SYNC: "full" } })
    expect(line.threads).toBe(5)
    expect(line.sync).toBe("full")
  })

  test("a flag beats both the variable and the file", async () => {
    const line = await startupWith({
      args: ["--config", file(), "--threads", "7"],
      env: { ORDO_THREADS: "5" },
    })
    expect(line.threads).toBe(7)
    expect(line.sync).toBe("normal") // from the file: neither a flag nor a variable set it
  })

  test("an empty variable does not override the file", async () => {
    const line = await startupWith({ args: ["--config", file()], env: { ORDO_THREADS: "" } })
    expect(line.threads).toBe(3)
  })

  test("the file's port, host and data-dir are used when no flag gives them", async () => {
    const port = await freePort()
    const dataDir = mkdtempSync(join(scratch, "data-"))
    const path = configFile(`host = "127.0.0.1"\nport = ${port}\ndata-dir = "${dataDir}"\n`)
    const child = spawn(ordoBinary(), ["serve", "--config", path], { stdio: ["ignore", "pipe", "pipe"] })
    let log = ""
    child.stderr.on("data", (c) => (log += c))
    const exited = new Promise((r) => child.on("exit", (code) => r(code)))
    try {
      const until = Date.now() + 15000
      while (!/listening/.test(log) && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
      const line = startupLine(log)
      expect(line).toMatchObject({ address: "127.0.0.1", port, dataDir })
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)
    } finally {
      child.kill("SIGTERM")
      expect(await exited).toBe(0)
    }
  })

  test("a duration from the file is used (long-poll-timeout)", async () => {
    const server = await startOrdo({ args: ["--config", configFile('long-poll-timeout = "300ms"  # short\n')] })
    try {
      const s = `${server.url}/v1/stream/poll`
      const put = await fetch(s, { method: "PUT", headers: { "Content-Type": "text/plain" } })
      expect(put.status).toBe(201)
      const started = performance.now()
      const poll = await fetch(`${s}?offset=${put.headers.get("Stream-Next-Offset")}&live=long-poll`)
      expect(poll.status).toBe(204)
      expect(performance.now() - started).toBeLessThan(10000) // 300 ms, not the 30 s default
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })

  test("ORDO_CONFIG names the file; --config wins over it", async () => {
    const fromEnv = configFile("threads = 3\n")
    expect((await startupWith({ env: { ORDO_CONFIG: fromEnv } })).threads).toBe(3)
    const fromFlag = configFile("threads = 4\n")
    expect((await startupWith({ env: { ORDO_CONFIG: fromEnv }, args: ["--config", fromFlag] })).threads).toBe(4)
  })

  test("booleans and single-quoted strings are read", async () => {
    const path = configFile("end-on-merge = false\nsync = 'normal'\n")
    expect((await startupWith({ args: ["--config", path] })).sync).toBe("normal")
  })
})

describe("a file ordo refuses stops start-up with exit code 2 and names the key", () => {
  for (const [what, text, fragments] of [
    ["an unknown key", "port = 4437\nprot = 4437\n", ["unknown key 'prot'", "line 2"]],
    ["a value out of range", "threads = 0\n", ["--threads"]],
    ["a value that is not a number", 'port = "http"\n', ["--port"]],
    ["a port too large (checked although --port overrides it)", "port = 70000\n", ["--port"]],
    ["a value not among the choices", 'sync = "fast"\n', ["--sync"]],
    ["a bad duration", 'long-poll-timeout = "soon"\n', ["--long-poll-timeout"]],
    ["a bad boolean", 'end-on-merge = "maybe"\n', ["--end-on-merge"]],
    ["a line without =", "port 4437\n", ["expected key = value", "line 1"]],
    ["an unterminated string", 'data-dir = "/tmp/x\n', ["'data-dir'", "closing quote"]],
    ["a bare word", "sync = normal\n", ["'sync'", "string in quotes"]],
    ["a table", "[serve]\nport = 1\n", ["tables"]],
    ["a key set twice", "threads = 2\nthreads = 3\n", ["'threads' is set twice", "line 2"]],
    ["two values", "threads = 2 3\n", ["'threads' has more than one value"]],
    ["help, which is not a setting", "help = true\n", ["unknown key 'help'"]],
    ["the config key itself", 'config = "/etc/ordo/ordo.toml"\n', ["'config' cannot be set"]],
  ]) {
    test(what, () => {
      const path = configFile(text)
      const r = refused(["--config", path])
      expect(r.status, r.stderr).toBe(2)
      expect(r.stderr).toContain(`config file ${path}: `)
      for (const f of fragments) expect(r.stderr).toContain(f)
    })
  }

  test("a missing file", () => {
    const path = join(scratch, "missing.toml")
    const r = refused(["--config", path])
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain(`config file ${path}: cannot open it: No such file or directory`)
  })

  test("a missing file named by ORDO_CONFIG", () => {
    const path = join(scratch, "missing-env.toml")
    const r = refused([], { ORDO_CONFIG: path })
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain(`config file ${path}: cannot open it`)
  })

  test("a directory", () => {
    const r = refused(["--config", scratch])
    expect(r.status, r.stderr).toBe(2)
    expect(r.stderr).toContain(`config file ${scratch}: is a directory`)
  })
})

describe("packaging/ordo.toml, installed as /etc/ordo/ordo.toml", () => {
  const shipped = readFileSync(shippedConfig, "utf8")

  test("names every option `ordo serve --help` lists", () => {
    const help = spawnSync(ordoBinary(), ["serve", "--help"], { encoding: "utf8" })
    expect(help.status).toBe(0)
    const options = [...help.stdout.matchAll(/^\s+--([a-z][a-z0-9-]*)/gm)].map((m) => m[1])
    expect(options.length).toBeGreaterThan(25)
    for (const option of options.filter((o) => o !== "config" && o !== "help")) {
      expect(shipped, `packaging/ordo.toml does not mention ${option}`).toMatch(
        new RegExp(`^(# )?${option} = `, "m"),
      )
    }
  })

  test("ordo starts with it and answers /health", async () => {
    // startOrdo overrides data-dir (and port, in case something listens on 4437) by flag.
    const server = await startOrdo({ args: ["--config", shippedConfig] })
    try {
      expect(startupLine(server.log())).toMatchObject({ address: "127.0.0.1", sync: "full" })
      const health = await fetch(`${server.url}/health`)
      expect(health.status).toBe(200)
      expect(await health.json()).toEqual({ status: "ok" })
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })

  test("every value it documents in a comment is one ordo accepts", async () => {
    // Except the TLS and authentication files, whose example paths exist only where an operator
    // put them (tls.test.mjs serves HTTPS from such keys, auth_scopes.test.mjs authenticates),
    // and the PostgreSQL database (conformance_postgres serves from one).
    const uncommented = shipped.replace(/^# ((?!tls-|auth-|storage )[a-z][a-z0-9-]* = )/gm, "$1")
    expect(uncommented).not.toBe(shipped)
    expect(uncommented).toMatch(/^# tls-cert = /m)
    expect(uncommented).toMatch(/^# auth-tokens-file = /m)
    expect(uncommented).toMatch(/^# storage = /m)
    expect(uncommented).toMatch(/^auth = "none"/m)
    const server = await startOrdo({ args: ["--config", configFile(uncommented)] })
    try {
      expect(startupLine(server.log())).toMatchObject({ sync: "full", threads: 4 })
      expect((await fetch(`${server.url}/health`)).status).toBe(200)
    } finally {
      expect(await server.stop()).toBe(0)
      server.cleanup()
    }
  })
})
