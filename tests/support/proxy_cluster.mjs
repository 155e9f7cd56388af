// Several `ordo serve` nodes on one PostgreSQL database behind a real proxy: Debian's nginx
// (nginx-light, which the bootstrap installs) balancing round-robin, so consecutive requests of
// one client land on different nodes. Responses are not buffered (`proxy_buffering off`), so
// SSE and long-polls reach the client as the node writes them, as they do behind a production
// load balancer configured for streaming.
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startOrdo } from "./ordo_server.mjs"

const nginxBin = process.env.ORDO_NGINX ?? "/usr/sbin/nginx"

/** Why no proxy can be started here, or null when one can. */
export function proxyMissing() {
  return existsSync(nginxBin) ? null : `nginx is not installed at ${nginxBin}`
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function waitForHttp(url, ms = 10000) {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await fetch(url)
      return
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${url} did not answer: ${e.message}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/**
 * Starts `nodes` ordo nodes on `storage` (a postgres:// URL) and nginx in front of them.
 * `serverParams` are added to each upstream server line (e.g. "max_fails=0": a node that
 * failed is tried again at once, for a test that restarts nodes on their ports).
 * @param {{ storage: string, nodes?: number, args?: string[], serverParams?: string }} opts
 */
export async function startProxyCluster({ storage, nodes = 2, args = [], serverParams = "" }) {
  const servers = []
  for (let i = 0; i < nodes; ++i) servers.push(await startOrdo({ args: ["--storage", storage, ...args] }))
  const dir = mkdtempSync(join(tmpdir(), "ordo-proxy-"))
  const port = await freePort()
  const upstreams = servers.map((s) => `    server 127.0.0.1:${s.port} ${serverParams};`).join("\n")
  writeFileSync(join(dir, "nginx.conf"), `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  client_max_body_size 64m;
  upstream ordo {
${upstreams}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://ordo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
    }
  }
}
`)
  let log = ""
  const nginx = spawn(nginxBin, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr"], {
    stdio: ["ignore", "pipe", "pipe"],
  })
  // A file that ends without stop() (a failed test) leaves no proxy behind.
  const killProxy = () => nginx.kill("SIGKILL")
  process.once("exit", killProxy)
  nginx.stdout.on("data", (d) => (log += d))
  nginx.stderr.on("data", (d) => (log += d))
  const url = `http://127.0.0.1:${port}`
  try {
    await waitForHttp(`${url}/health`)
  } catch (e) {
    nginx.kill("SIGKILL")
    throw new Error(`${e.message}\n${log}`)
  }
  return {
    url,
    nodes: servers,
    proxyLog: () => log,
    /** Stops the proxy and every node; the nodes' exit codes. */
    async stop() {
      process.removeListener("exit", killProxy)
      nginx.kill("SIGTERM")
      await new Promise((r) => (nginx.exitCode !== null ? r() : nginx.once("exit", r)))
      rmSync(dir, { recursive: true, force: true })
      const codes = []
      for (const s of servers) {
        codes.push(await s.stop())
        s.cleanup()
      }
      return codes
    },
  }
}
