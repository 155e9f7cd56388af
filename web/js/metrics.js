// Reading ordo's GET /metrics: the Prometheus text exposition format 0.0.4, and the arithmetic the
// Server view draws from it. Pure functions, no DOM, so node tests import this file directly.
//
// The format, one line at a time (blank lines and other `#` comments are ignored):
//
//   # HELP name text            text escapes \\ and \n
//   # TYPE name counter|gauge|histogram|summary|untyped
//   name [ "{" label="value" { "," label="value" } [ "," ] "}" ] value [ timestamp ]
//
// A label value escapes `\"`, `\\` and `\n`; a value is a float, `+Inf`, `-Inf` or `NaN`. A
// histogram `h` is the samples h_bucket{le="…"} (cumulative counts, the last le="+Inf"), h_sum
// and h_count.
//
// Counters only grow while the server runs; a value lower than the one before (or a new
// process_start_time_seconds) means the server restarted and counts from zero, so the increase
// over that interval is the new value itself, never a negative one (Prometheus' rate() does the
// same).

/** @typedef {{name: string, labels: Record<string,string>, value: number, timestamp?: number}} Sample */

const k_name = /[a-zA-Z_:][a-zA-Z0-9_:]*/y
const k_label_name = /[a-zA-Z_][a-zA-Z0-9_]*/y
const k_space = /[ \t]*/y

/** A float as the format writes it: "+Inf", "-Inf", "NaN" or a Go/JS float literal. */
export function parseValue(text) {
  if (text === "+Inf" || text === "Inf") return Infinity
  if (text === "-Inf") return -Infinity
  if (text === "NaN") return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined
  return Number(text)
}

function skipSpace(line, pos) {
  k_space.lastIndex = pos
  k_space.exec(line)
  return k_space.lastIndex
}

function match(re, line, pos) {
  re.lastIndex = pos
  const m = re.exec(line)
  return m ? m[0] : null
}

/** One label value from its opening quote; returns [value, position after the closing quote]. */
function parseLabelValue(line, pos) {
  if (line[pos] !== '"') return null
  let out = ""
  for (let i = pos + 1; i < line.length; i++) {
    const c = line[i]
    if (c === '"') return [out, i + 1]
    if (c !== "\\") {
      out += c
      continue
    }
    const next = line[++i]
    if (next === "n") out += "\n"
    else if (next === "\\" || next === '"') out += next
    else if (next === undefined) return null
    // An unknown escape is kept as written, as Prometheus' own parser does.
    else out += "\\" + next
  }
  return null
}

/** One sample line, or null when it is not one. */
export function parseSampleLine(line) {
  let pos = skipSpace(line, 0)
  const name = match(k_name, line, pos)
  if (!name) return null
  pos += name.length
  const labels = {}
  pos = skipSpace(line, pos)
  if (line[pos] === "{") {
    pos = skipSpace(line, pos + 1)
    while (line[pos] !== "}") {
      const label = match(k_label_name, line, pos)
      if (!label) return null
      pos = skipSpace(line, pos + label.length)
      if (line[pos] !== "=") return null
      pos = skipSpace(line, pos + 1)
      const parsed = parseLabelValue(line, pos)
      if (!parsed) return null
      labels[label] = parsed[0]
      pos = skipSpace(line, parsed[1])
      if (line[pos] === ",") pos = skipSpace(line, pos + 1)
      else if (line[pos] !== "}") return null
    }
    pos = skipSpace(line, pos + 1)
  }
  const rest = line.slice(pos).trim().split(/[ \t]+/)
  if (rest.length < 1 || rest.length > 2 || rest[0] === "") return null
  const value = parseValue(rest[0])
  if (value === undefined) return null
  const sample = { name, labels, value }
  if (rest.length === 2) {
    const ts = Number(rest[1])
    if (!/^-?\d+$/.test(rest[1])) return null
    sample.timestamp = ts
  }
  return sample
}

/**
 * A whole exposition. Lines that are not samples or comments are skipped and counted, so one
 * odd line does not blank the page.
 * @returns {{samples: Sample[], types: Record<string,string>, help: Record<string,string>, skipped: number}}
 */
export function parseMetrics(text) {
  const samples = []
  const types = {}
  const help = {}
  let skipped = 0
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    if (line.trim() === "") continue
    if (line.trimStart().startsWith("#")) {
      const m = line.match(/^\s*#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s(.*))?$/)
      if (m && m[1] === "TYPE") types[m[2]] = (m[3] ?? "").trim()
      else if (m) help[m[2]] = (m[3] ?? "").replace(/\\(n|\\)/g, (_, c) => (c === "n" ? "\n" : "\\"))
      continue
    }
    const sample = parseSampleLine(line)
    if (sample) samples.push(sample)
    else skipped++
  }
  return { samples, types, help, skipped }
}

/**
 * A scrape indexed for lookups by name.
 * value(name, labels?) the first sample of that name whose labels include `labels`;
 * byLabel(name, label) {label value: sample value}; histogram(name) its cumulative buckets.
 */
export class Scrape {
  /** @param {Sample[]} samples */
  constructor(samples) {
    this.byName = new Map()
    for (const s of samples) {
      let list = this.byName.get(s.name)
      if (!list) this.byName.set(s.name, (list = []))
      list.push(s)
    }
  }

  static parse(text) {
    return new Scrape(parseMetrics(text).samples)
  }

  has(name) {
    return this.byName.has(name)
  }

  value(name, labels = {}) {
    const found = (this.byName.get(name) ?? []).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    return found?.value
  }

  byLabel(name, label) {
    const out = {}
    for (const s of this.byName.get(name) ?? []) {
      if (label in s.labels) out[s.labels[label]] = s.value
    }
    return out
  }

  /** The label value of `label` on the sample of `name` whose value is 1 (an enum gauge). */
  current(name, label) {
    return (this.byName.get(name) ?? []).find((s) => s.value === 1 && label in s.labels)?.labels[label]
  }

  /** @returns {{buckets: {le: number, count: number}[], sum?: number, count?: number} | undefined} */
  histogram(name) {
    const raw = this.byName.get(`${name}_bucket`)
    if (!raw) return undefined
    const buckets = raw
      .filter((s) => "le" in s.labels)
      .map((s) => ({ le: parseValue(s.labels.le), count: s.value }))
      .filter((b) => b.le !== undefined)
      .sort((a, b) => a.le - b.le)
    return { buckets, sum: this.value(`${name}_sum`), count: this.value(`${name}_count`) }
  }
}

/** How much a counter grew from `before` to `after`; a drop is a restart, counted from zero. */
export function counterIncrease(before, after, restarted = false) {
  if (!Number.isFinite(after)) return undefined
  if (!Number.isFinite(before) || restarted || after < before) return Math.max(0, after)
  return after - before
}

/** Per-second rate of a counter between two scrapes `seconds` apart; undefined without both. */
export function counterRate(before, after, seconds, restarted = false) {
  if (before === undefined || after === undefined || !(seconds > 0)) return undefined
  const inc = counterIncrease(before, after, restarted)
  return inc === undefined ? undefined : inc / seconds
}

/**
 * The observations that fell into each bucket between two scrapes of one histogram: cumulative
 * buckets again, with the counts of the interval. A count that went down anywhere means the server
 * restarted, and the later histogram is the whole interval.
 */
export function histogramDelta(before, after, restarted = false) {
  if (!after) return undefined
  if (!before) return undefined
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]))
  const reset =
    restarted ||
    (after.count ?? 0) < (before.count ?? 0) ||
    after.buckets.some((b) => prev.has(b.le) && b.count < prev.get(b.le)) ||
    after.buckets.some((b) => !prev.has(b.le))
  const buckets = after.buckets.map((b) => ({ le: b.le, count: reset ? b.count : b.count - prev.get(b.le) }))
  const count = counterIncrease(before.count, after.count, reset)
  const sum = counterIncrease(before.sum, after.sum, reset)
  return { buckets, count, sum }
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of the observations in cumulative buckets, estimated as Prometheus'
 * histogram_quantile() does: find the bucket holding rank q·total and interpolate linearly
 * between its bounds (the first bucket's lower bound is 0). A rank in the +Inf bucket answers the
 * highest finite bound. NaN when there are no observations or no +Inf bucket.
 * @param {number} q
 * @param {{le: number, count: number}[]} cumulative
 */
export function histogramQuantile(q, cumulative) {
  if (Number.isNaN(q)) return NaN
  if (q < 0) return -Infinity
  if (q > 1) return Infinity
  const buckets = [...cumulative].sort((a, b) => a.le - b.le)
  if (buckets.length < 2 || buckets[buckets.length - 1].le !== Infinity) return NaN
  // Counts read at slightly different moments may dip; a cumulative count never does.
  for (let i = 1; i < buckets.length; i++) {
    if (buckets[i].count < buckets[i - 1].count) buckets[i] = { ...buckets[i], count: buckets[i - 1].count }
  }
  const total = buckets[buckets.length - 1].count
  if (!(total > 0)) return NaN
  let rank = q * total
  const b = buckets.findIndex((x, i) => i < buckets.length - 1 && x.count >= rank)
  if (b === -1) return buckets[buckets.length - 2].le
  if (b === 0 && buckets[0].le <= 0) return buckets[0].le
  const end = buckets[b].le
  let start = 0
  let count = buckets[b].count
  if (b > 0) {
    start = buckets[b - 1].le
    count -= buckets[b - 1].count
    rank -= buckets[b - 1].count
  }
  return start + (end - start) * (rank / count)
}

/**
 * The last `windowMs` of points, oldest first: a ring buffer with a time bound. Each point is
 * {t: milliseconds, ...fields}; a field is null where the interval had no value (a gap).
 */
export class Window {
  constructor(windowMs, maxPoints = 1000) {
    this.windowMs = windowMs
    this.maxPoints = maxPoints
    this.points = []
  }

  push(point) {
    this.points.push(point)
    this.trim(point.t)
  }

  trim(now) {
    const from = now - this.windowMs
    let drop = 0
    while (drop < this.points.length && this.points[drop].t < from) drop++
    drop = Math.max(drop, this.points.length - this.maxPoints)
    if (drop > 0) this.points.splice(0, drop)
  }

  get length() {
    return this.points.length
  }

  last() {
    return this.points[this.points.length - 1]
  }
}
