// The front door: `make run` installs only what building and serving need, `make test` adds the
// test suites' packages, and the npm lock installs with `npm ci` on a machine whose npm cache is
// empty (a lock that lacks another platform's optional package fails there, and only there).
import { spawnSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, test } from "vitest"

const repoRoot = resolve(new URL(".", import.meta.url).pathname, "../..")

function bootstrapList(...flags) {
  const r = spawnSync(join(repoRoot, "scripts/bootstrap"), ["--list", ...flags], { encoding: "utf8" })
  expect(r.status, r.stderr).toBe(0)
  return r.stdout.trim().split("\n")
}

describe("scripts/bootstrap", () => {
  test("the set make run installs builds and serves, and holds no test tool, browser or Node.js", () => {
    const run = bootstrapList()
    for (const p of ["cmake", "ninja-build", "g++", "libsqlite3-dev", "libspdlog-dev", "libcli11-dev", "libjemalloc-dev"]) {
      expect(run).toContain(p)
    }
    for (const p of ["chromium", "nodejs", "npm", "libgtest-dev", "prometheus", "gnuplot-nox"]) {
      expect(run).not.toContain(p)
    }
  })

  test("the set make test installs adds GoogleTest, Node.js, chromium, Prometheus and clang", () => {
    const all = bootstrapList("--test")
    for (const p of [...bootstrapList(), "libgtest-dev", "nodejs", "chromium", "prometheus", "dpkg-dev", "clang-14"]) {
      expect(all).toContain(p)
    }
  })

  test("an unknown argument is refused with exit 2", () => {
    const r = spawnSync(join(repoRoot, "scripts/bootstrap"), ["--tset"], { encoding: "utf8" })
    expect(r.status).toBe(2)
    expect(r.stderr).toContain("unknown argument '--tset'")
  })

  test("make run builds only the server target after the build set, make test everything", () => {
    const makefile = readFileSync(join(repoRoot, "Makefile"), "utf8")
    expect(makefile).toMatch(/^run: build-server$/m)
    expect(makefile).toMatch(/^build-server: bootstrap$/m)
    expect(makefile).toMatch(/^test: build build-asan build-thread-safety build-fuzz$/m)
    expect(makefile).toMatch(/^build: bootstrap-test$/m)
    expect(makefile).toMatch(/^build-thread-safety: bootstrap-test$/m)
    expect(makefile).toMatch(/^build-fuzz: bootstrap-test$/m)
  })
})

describe("tests/package-lock.json", () => {
  test("npm ci accepts it with an empty cache and a fresh HOME", () => {
    const dir = mkdtempSync(join(tmpdir(), "ordo-lock-"))
    try {
      copyFileSync(join(repoRoot, "tests/package.json"), join(dir, "package.json"))
      copyFileSync(join(repoRoot, "tests/package-lock.json"), join(dir, "package-lock.json"))
      const r = spawnSync("npm", ["ci", "--dry-run", "--no-audit", "--no-fund"], {
        cwd: dir,
        encoding: "utf8",
        env: { ...process.env, HOME: join(dir, "home"), npm_config_cache: join(dir, "cache") },
        timeout: 120000,
      })
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 150000)

  test("it lists every platform's build of each optional native package, not just this one's", () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, "tests/package-lock.json"), "utf8"))
    const names = Object.keys(lock.packages)
    for (const family of ["@msgpackr-extract/msgpackr-extract-", "@rollup/rollup-", "@esbuild/"]) {
      const builds = names.filter((n) => n.startsWith(`node_modules/${family}`))
      expect(builds.some((n) => n.includes("darwin")), family).toBe(true)
      expect(builds.some((n) => n.includes("win32")), family).toBe(true)
      expect(builds.some((n) => n.includes("linux-x64")), family).toBe(true)
    }
  })
})
