// Test certificates made with the `openssl` command: a CA, and server certificates it signs
// for localhost and 127.0.0.1. Imported by the TLS suites; also run as a script
// (`node support/tls.mjs DIR`) by CTest to make DIR/ca.pem, DIR/server.pem and DIR/server.key
// before the conformance suite runs over HTTPS (NODE_EXTRA_CA_CERTS must name the CA before
// Node starts).
import { spawnSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

function openssl(args) {
  const r = spawnSync("openssl", args, { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${r.stderr}`)
  return r.stdout
}

/** Makes DIR/ca.pem and DIR/ca.key: a CA valid for two days. */
export function makeTestCa(dir) {
  mkdirSync(dir, { recursive: true })
  openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=ordo test CA", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.pem"),
  ])
  return { ca: join(dir, "ca.pem"), caKey: join(dir, "ca.key") }
}

/**
 * Makes DIR/NAME.pem (signed by DIR/ca.pem, for `san`: localhost and 127.0.0.1 by default) and
 * DIR/NAME.key. Returns the paths and the certificate's serial number (upper-case hex, as
 * node:tls shows it).
 */
export function makeServerCert(dir, name = "server", san = "DNS:localhost,IP:127.0.0.1") {
  const cert = join(dir, `${name}.pem`)
  const key = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  writeFileSync(
    ext,
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n` +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  )
  openssl([
    "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
    "-keyout", key, "-out", csr,
  ])
  openssl([
    "x509", "-req", "-in", csr, "-CA", join(dir, "ca.pem"), "-CAkey", join(dir, "ca.key"),
    "-set_serial", `0x${Math.floor(Math.random() * 2 ** 48).toString(16).padStart(12, "1")}`,
    "-days", "2", "-extfile", ext, "-out", cert,
  ])
  const serial = openssl(["x509", "-in", cert, "-noout", "-serial"]).trim().replace(/^serial=/, "")
  return { cert, key, serial: serial.toUpperCase() }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const dir = process.argv[2]
  if (!dir) {
    console.error("usage: node support/tls.mjs DIR")
    process.exit(2)
  }
  makeTestCa(dir)
  makeServerCert(dir, "server")
}
