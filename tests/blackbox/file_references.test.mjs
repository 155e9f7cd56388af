// Comments and docs name files (`streams/group_commit_writer.cpp`, `docs/OPERATIONS.md`); after
// a file is split, moved or renamed, such a name must not point at nothing. Scans the code's
// comments, src/README.md, README.md and docs/ for repository paths and checks each exists.
import { describe, expect, test } from "vitest"
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

function filesUnder(dir, keep) {
  const out = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, keep))
    else if (keep(name)) out.push(path)
  }
  return out
}

// A path as the code and docs write it: a folder of the repository (or of src/, which the tour
// leaves out) and a file name with an extension.
const folders = "src|base|http|sessions|streams|storage|cli|client|bench|tests|web|packaging|cmake|scripts|docs"
const pathPattern = new RegExp(`(?<![\\w./-])((?:${folders})/[A-Za-z0-9_./-]*[A-Za-z0-9_]\\.(?:cpp|hpp|mjs|js|md|sh|cmake|toml|in|json))\\b`, "g")

function exists(path) {
  return [path, `src/${path}`].some((p) => existsSync(join(root, p)))
}

// The text to scan: comments only in code (an #include is the compiler's business), all of a
// Markdown file.
function commentsOf(text) {
  return text
    .split("\n")
    .map((line) => {
      const at = line.indexOf("//")
      return at >= 0 ? line.slice(at) : ""
    })
    .join("\n")
}

function referencesIn(file) {
  const text = readFileSync(file, "utf8")
  const scanned = file.endsWith(".md") ? text : commentsOf(text)
  const found = []
  scanned.split("\n").forEach((line, i) => {
    for (const m of line.matchAll(pathPattern)) found.push({ path: m[1], line: i + 1 })
  })
  return found
}

const sources = [
  ...filesUnder(join(root, "src"), (n) => /\.(cpp|hpp|md)$/.test(n)),
  join(root, "README.md"),
  ...filesUnder(join(root, "docs"), (n) => n.endsWith(".md")),
]

describe("file references in comments and docs", () => {
  test("the scan finds the references it is meant to check", () => {
    // Guards the test itself: a pattern that matched nothing would pass vacuously.
    const all = sources.flatMap(referencesIn).map((r) => r.path)
    expect(all).toContain("streams/group_commit_writer.cpp")
    expect(all).toContain("http/error_response.cpp")
    expect(all.length).toBeGreaterThan(100)
  })

  test("every named file exists", () => {
    const missing = sources.flatMap((file) =>
      referencesIn(file)
        .filter((r) => !exists(r.path))
        .map((r) => `${relative(root, file)}:${r.line}: ${r.path}`),
    )
    expect(missing).toEqual([])
  })
})
