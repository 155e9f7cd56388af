// HTTPS: `ordo serve --tls-cert/--tls-key` with a test CA and server certificates made by the
// openssl command (support/tls.mjs). The ordo client commands with and without --cacert, the
// official @durable-streams/client trusting the CA through NODE_EXTRA_CA_CERTS, a SIGHUP
// certificate swap under an open SSE reader, what is refused (plain HTTP on the TLS port,
// TLS 1.1, a client that never handshakes) and the startup errors of bad TLS flags.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import https from "node:https"
import net from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import tls from "node:tls"
import { ordoBinary, startOrdo, waitForLog } from "../support/ordo_server.mjs"
import { makeServerCert, makeTestCa } from "../support/tls.mjs"

const testsDir = resolve(new URL(".", import.meta.url).pathname, "..")
const dir = mkdtempSync(join(tmpdir(), "ordo-tls-"))
// The files the server is started with; a SIGHUP test overwrites them with another certificate.
const certFile = join(dir, "served.pem")
const keyFile = join(dir, "served.key")
// The handshake shares --idle-timeout: short here, so the test of a silent client is quick.
const idleTimeoutMs = 1500
let ca
let first
let server
let base

beforeAll(async () => {
  ca = makeTestCa(dir).ca
  first = makeServerCert(dir, "first")
  copyFileSync(first.cert, certFile)
  copyFileSync(first.key, keyFile)
  server = await startOrdo({
    args: ["--tls-cert", certFile, "--tls-key", keyFile, "--idle-timeout", `${idleTimeoutMs}ms`],
  })
  base = `https://127.0.0.1:${server.port}`
})

afterAll(async () => {
  await server?.stop()
  server?.cleanup()
  rmSync(dir, { recursive: true, force: true })
})

/** Runs `ordo ARGS` against the server over HTTPS; returns { status, text, stderr }. */
function ordo(args, { input, env = {}, url = base } = {}) {
  const r = spawnSync(ordoBinary(), args, {
    input,
    env: { ...process.env, ORDO_URL: url, ORDO_CACERT: "", ...env },
    encoding: "utf8",
  })
  return { status: r.status, text: r.stdout, stderr: r.stderr }
}

/** A GET over HTTPS trusting the test CA: { status, body, serial } (serial of the served cert). */
function get(path, { host = "127.0.0.1" } = {}) {
  return new Promise((resolvePromise, reject) => {
    const req = https.get(
      { host, port: server.port, path, ca: readFileSync(ca), agent: false, servername: host === "localhost" ? host : undefined },
      (res) => {
        const serial = res.socket.getPeerCertificate().serialNumber
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (c) => (body += c))
        res.on("end", () => resolvePromise({ status: res.statusCode, body, serial }))
      },
    )
    req.on("error", reject)
  })
}

/** The serial number of the certificate a fresh TLS connection is served. */
function servedSerial() {
  return new Promise((resolvePromise, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port: server.port, ca: readFileSync(ca) }, () => {
      const serial = s.getPeerCertificate().serialNumber
      s.end()
      resolvePromise(serial)
    })
    s.on("error", reject)
  })
}

/** An SSE reader over HTTPS: collects data events; `serial` is its connection's certificate. */
function openTlsSse(path) {
  const data = []
  let serial
  let req
  const opened = new Promise((resolveOpen, reject) => {
    req = https.get(
      { host: "127.0.0.1", port: server.port, path, ca: readFileSync(ca), agent: false },
      (res) => {
        serial = res.socket.getPeerCertificate().serialNumber
        res.setEncoding("utf8")
        let buffer = ""
        res.on("data", (chunk) => {
          buffer += chunk
          let end
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            if (block.startsWith("event: data") || block.startsWith("event:data")) {
              data.push(block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n"))
            }
          }
        })
        resolveOpen()
      },
    )
    req.on("error", reject)
  })
  return {
    data,
    opened,
    serial: () => serial,
    closed: () => req.destroyed || req.socket?.destroyed,
    close: () => req.destroy(),
  }
}

async function until(predicate, what, ms = 10000) {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe("ordo serve over HTTPS", () => {
  test("/ready says TLS is on and the startup log says so", async () => {
    const r = await get("/ready")
    expect(r.status).toBe(200)
    expect(JSON.parse(r.body)).toMatchObject({ status: "ready", tls: true })
    expect(server.log()).toMatch(/listening address=\S+ port=\d+ .* tls=on cert=/)
  })

  test("the CLI with --cacert creates, appends and reads a stream over https", () => {
    const created = ordo(["stream", "create", "tls/cli", "--content-type", "application/json", "--cacert", ca])
    expect(created.status, created.stderr).toBe(0)
    const appended = ordo(["stream", "append", "tls/cli", "--lines", "--cacert", ca], { input: '{"n":1}\n{"n":2}\n' })
    expect(appended.status, appended.stderr).toBe(0)
    // ORDO_CACERT works like the flag, and a host name is verified as well as an address.
    const read = ordo(["stream", "read", "tls/cli", "--json"], {
      env: { ORDO_CACERT: ca },
      url: `https://localhost:${server.port}`,
    })
    expect(read.status, read.stderr).toBe(0)
    const messages = read.text.trim().split("\n").map((l) => JSON.parse(l).message)
    expect(messages).toEqual([{ n: 1 }, { n: 2 }])
  })

  test("without --cacert the CLI refuses the untrusted certificate at once, with a clear error", () => {
    const started = Date.now()
    const r = ordo(["stream", "read", "tls/cli"])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/tls_verify_failed: the TLS certificate of 127\.0\.0\.1:\d+ is not trusted/)
    expect(r.stderr).toMatch(/--cacert/)
    // Not retried: a reader gives up on it at once instead of backing off for a minute.
    expect(Date.now() - started).toBeLessThan(5000)
    const missing = ordo(["stream", "read", "tls/cli", "--cacert", join(dir, "no-such-ca.pem")])
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toMatch(/tls_ca_invalid: .*no-such-ca\.pem/)
  })

  test("the official @durable-streams/client writes and reads over HTTPS trusting the test CA", () => {
    // NODE_EXTRA_CA_CERTS is read when Node starts: the client runs in a child process.
    const script = `
      import { DurableStream, stream } from "@durable-streams/client"
      const url = process.env.STREAM_URL
      const handle = await DurableStream.create({ url, contentType: "application/json" })
      await handle.append(JSON.stringify({ from: "js", i: 1 }))
      await handle.append(JSON.stringify({ from: "js", i: 2 }))
      const res = await stream({ url, live: false })
      console.log(JSON.stringify(await res.json()))
    `
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: testsDir,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca, STREAM_URL: `${base}/v1/stream/tls/js` },
      encoding: "utf8",
      timeout: 20000,
    })
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.trim())).toEqual([
      { from: "js", i: 1 },
      { from: "js", i: 2 },
    ])
    // What it wrote, ordo's own client reads.
    const read = ordo(["stream", "read", "tls/js", "--json", "--cacert", ca])
    expect(read.status, read.stderr).toBe(0)
    expect(read.text.trim().split("\n").map((l) => JSON.parse(l).message)).toEqual([
      { from: "js", i: 1 },
      { from: "js", i: 2 },
    ])
    // Without the CA, Node's fetch (which the client uses) refuses the server.
    const untrusted = spawnSync(
      process.execPath,
      ["--input-type=module", "-e", "fetch(process.env.URL).then(() => console.log('trusted'), (e) => console.log(e.cause?.code))"],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: "", URL: `${base}/health` }, encoding: "utf8", timeout: 20000 },
    )
    expect(untrusted.stdout.trim()).toMatch(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/)
  })

  test("a parked TLS reader whose client goes is let go at once, with no append and long before its heartbeat", async () => {
    expect(ordo(["stream", "create", "tls/quiet", "--content-type", "application/json", "--cacert", ca]).status).toBe(0)
    const sseReaders = async () => Number((await get("/metrics")).body.match(/^ordo_sse_readers (\d+)/m)[1])
    const before = await sseReaders()
    const reader = openTlsSse("/v1/stream/tls/quiet?offset=-1&live=sse")
    await reader.opened
    await until(async () => (await sseReaders()) === before + 1, "the reader to be counted")
    // Its socket turns readable (the close_notify, then the FIN): the server cannot read past
    // the encryption there, and ends the reader.
    reader.close()
    await until(async () => (await sseReaders()) === before, "the reader to be let go", 5000)
  })

  test("SIGHUP swaps the certificate: an open SSE reader keeps receiving, new connections get the new one", async () => {
    expect(ordo(["stream", "create", "tls/live", "--content-type", "application/json", "--cacert", ca]).status).toBe(0)
    expect(ordo(["stream", "append", "tls/live", '{"n":0}', "--cacert", ca]).status).toBe(0)
    const reader = openTlsSse("/v1/stream/tls/live?offset=-1&live=sse")
    await reader.opened
    await until(() => reader.data.length === 1, "the first event")
    expect(reader.serial()).toBe(first.serial)
    expect(await servedSerial()).toBe(first.serial)

    const second = makeServerCert(dir, "second")
    expect(second.serial).not.toBe(first.serial)
    copyFileSync(second.cert, certFile)
    copyFileSync(second.key, keyFile)
    server.child.kill("SIGHUP")
    await waitForLog(server, /SIGHUP: reloaded the TLS certificate/)
    expect(await servedSerial()).toBe(second.serial)
    expect((await get("/health")).serial).toBe(second.serial)

    // The reader, on the first certificate, still gets what is appended after the swap.
    expect(ordo(["stream", "append", "tls/live", '{"n":1}', "--cacert", ca]).status).toBe(0)
    expect(ordo(["stream", "append", "tls/live", '{"n":2}', "--cacert", ca]).status).toBe(0)
    await until(() => reader.data.join("").includes('{"n":2}'), "the events appended after the swap")
    expect(reader.closed()).toBeFalsy()
    expect(reader.data.join("")).toContain('{"n":1}')

    // A reload that fails keeps serving the certificate it had.
    writeFileSync(keyFile, "not a key\n")
    server.child.kill("SIGHUP")
    await waitForLog(server, /SIGHUP: TLS reload failed, still serving the previous certificate: .*served\.key/)
    expect(await servedSerial()).toBe(second.serial)
    expect((await get("/ready")).status).toBe(200)
    expect(ordo(["stream", "append", "tls/live", '{"n":3}', "--cacert", ca]).status).toBe(0)
    await until(() => reader.data.join("").includes('{"n":3}'), "the event appended after the failed reload")
    reader.close()
    copyFileSync(second.key, keyFile)
  })

  test("plain HTTP on the HTTPS port is cut without harm, and the server keeps serving", async () => {
    const answer = await new Promise((resolveAnswer, reject) => {
      const s = net.connect({ host: "127.0.0.1", port: server.port }, () => {
        s.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
      })
      let got = ""
      s.on("data", (c) => (got += c.toString("latin1")))
      s.on("close", () => resolveAnswer(got))
      s.on("error", () => resolveAnswer(got))
      setTimeout(() => reject(new Error("the plain connection was not closed")), 5000)
    })
    expect(answer).not.toMatch(/^HTTP\/1\.1 200/)
    expect((await get("/health")).status).toBe(200)
    expect(server.child.exitCode).toBe(null)
  })

  test("a TLS 1.1-only client is refused", async () => {
    const error = await new Promise((resolveError) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port: server.port,
        minVersion: "TLSv1.1",
        maxVersion: "TLSv1.1",
        // Node's own security level would refuse TLS 1.1 before sending anything: lower it, so
        // that the refusal is the server's.
        ciphers: "DEFAULT@SECLEVEL=0",
        rejectUnauthorized: false,
      })
      s.on("secureConnect", () => {
        s.destroy()
        resolveError(null)
      })
      s.on("error", (e) => resolveError(e))
    })
    expect(error).not.toBe(null)
    expect(error.code).toBe("ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION")
    expect((await get("/health")).status).toBe(200)
  })

  test("a client that connects and never handshakes is cut after --idle-timeout", async () => {
    const started = Date.now()
    await new Promise((resolveClosed, reject) => {
      const s = net.connect({ host: "127.0.0.1", port: server.port })
      s.on("close", resolveClosed)
      s.on("error", () => {})
      setTimeout(() => reject(new Error("the silent connection was never cut")), idleTimeoutMs + 5000)
    })
    expect(Date.now() - started).toBeGreaterThanOrEqual(idleTimeoutMs - 100)
    expect((await get("/health")).status).toBe(200)
  })
})

describe("host name verification", () => {
  test("a certificate of the right CA for another host is refused by the CLI", async () => {
    const elsewhere = makeServerCert(dir, "elsewhere", "DNS:ordo.example")
    const s = await startOrdo({ args: ["--tls-cert", elsewhere.cert, "--tls-key", elsewhere.key] })
    try {
      const byAddress = ordo(["stream", "read", "x", "--cacert", ca], { url: `https://127.0.0.1:${s.port}` })
      expect(byAddress.status).not.toBe(0)
      expect(byAddress.stderr).toMatch(/tls_verify_failed: .*IP address mismatch/)
      const byName = ordo(["stream", "read", "x", "--cacert", ca], { url: `https://localhost:${s.port}` })
      expect(byName.status).not.toBe(0)
      expect(byName.stderr).toMatch(/tls_verify_failed: .*hostname mismatch/)
    } finally {
      await s.stop()
      s.cleanup()
    }
  })
})

describe("shutdown over HTTPS", () => {
  test("SIGTERM gives an open TLS SSE reader its last control event and a clean end", async () => {
    const s = await startOrdo({ args: ["--tls-cert", first.cert, "--tls-key", first.key] })
    try {
      const url = `https://127.0.0.1:${s.port}`
      const created = ordo(["stream", "create", "tls/stop", "--content-type", "application/json", "--cacert", ca], { url })
      expect(created.status, created.stderr).toBe(0)
      expect(ordo(["stream", "append", "tls/stop", '{"n":1}', "--cacert", ca], { url }).status).toBe(0)
      let text = ""
      const ended = new Promise((resolveEnd, reject) => {
        https
          .get({ host: "127.0.0.1", port: s.port, path: "/v1/stream/tls/stop?offset=-1&live=sse", ca: readFileSync(ca), agent: false }, (res) => {
            res.setEncoding("utf8")
            res.on("data", (c) => (text += c))
            res.on("end", () => resolveEnd("end"))
            res.on("error", (e) => resolveEnd(`error ${e.code}`))
          })
          .on("error", reject)
      })
      await until(() => text.includes('"upToDate":true'), "the reader to catch up")
      const code = s.stop()
      expect(await ended).toBe("end")
      expect(text).toContain(": server shutting down; resume from streamNextOffset")
      expect(await code).toBe(0)
    } finally {
      await s.kill().catch(() => {})
      s.cleanup()
    }
  })
})

describe("TLS startup errors", () => {
  function serve(args) {
    const data = mkdtempSync(join(tmpdir(), "ordo-tls-data-"))
    const r = spawnSync(ordoBinary(), ["serve", "--port", "0", "--data-dir", data, ...args], {
      encoding: "utf8",
      timeout: 15000,
    })
    rmSync(data, { recursive: true, force: true })
    return r
  }

  test("--tls-cert without --tls-key (and the other way round) is refused", () => {
    const certOnly = serve(["--tls-cert", first.cert])
    expect(certOnly.status).not.toBe(0)
    expect(certOnly.stderr).toMatch(/--tls-cert and --tls-key go together: --tls-cert given without --tls-key/)
    const keyOnly = spawnSync(ordoBinary(), ["serve", "--port", "0", "--data-dir", join(dir, "d2")], {
      encoding: "utf8",
      env: { ...process.env, ORDO_TLS_KEY: first.key },
      timeout: 15000,
    })
    expect(keyOnly.status).not.toBe(0)
    expect(keyOnly.stderr).toMatch(/--tls-key given without --tls-cert/)
  })

  test("a certificate that does not load, or a key that is not its own, is refused naming the file", () => {
    const missing = serve(["--tls-cert", join(dir, "missing.pem"), "--tls-key", first.key])
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toMatch(/cannot load the TLS certificate .*missing\.pem/)
    const other = makeServerCert(dir, "other")
    const mismatch = serve(["--tls-cert", first.cert, "--tls-key", other.key])
    expect(mismatch.status).not.toBe(0)
    expect(mismatch.stderr).toMatch(/the TLS private key in --tls-key '.*other\.key' does not belong to the certificate/)
  })

  test("the config file's tls-cert and tls-key keys serve HTTPS", async () => {
    const config = join(dir, "ordo.toml")
    writeFileSync(config, `tls-cert = "${first.cert}"\ntls-key = "${first.key}"\n`)
    const s = await startOrdo({ args: ["--config", config] })
    try {
      expect(s.log()).toMatch(/tls=on cert=.*first\.pem/)
      const r = await new Promise((resolveGet, reject) => {
        https
          .get({ host: "127.0.0.1", port: s.port, path: "/ready", ca: readFileSync(ca), agent: false }, (res) => {
            let body = ""
            res.on("data", (c) => (body += c))
            res.on("end", () => resolveGet(JSON.parse(body)))
          })
          .on("error", reject)
      })
      expect(r.tls).toBe(true)
    } finally {
      await s.stop()
      s.cleanup()
    }
  })
})
