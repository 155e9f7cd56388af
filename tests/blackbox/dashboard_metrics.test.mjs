// The arithmetic behind the dashboard's Server view (web/js/metrics.js), tested in node without
// a browser: parsing the Prometheus text format 0.0.4, counter rates across a restart, and
// quantiles from histogram buckets against values computed by hand.
import { describe, expect, test } from "vitest"
import {
  Scrape,
  Window,
  counterIncrease,
  counterRate,
  histogramDelta,
  histogramQuantile,
  parseMetrics,
  parseSampleLine,
  parseValue,
} from "../../web/js/metrics.js"

const exposition = `# HELP ordo_appends_total Appends committed.
# TYPE ordo_appends_total counter
ordo_appends_total 1027
# HELP ordo_build_info Build information.
# TYPE ordo_build_info gauge
ordo_build_info{version="0.1.0"} 1
# TYPE ordo_storage_state gauge
ordo_storage_state{state="ok"} 1
ordo_storage_state{state="busy"} 0
ordo_storage_state{state="full"} 0
# TYPE ordo_sessions gauge
ordo_sessions{state="active"} 3
ordo_sessions{state="ended"} 12
# TYPE ordo_fsync_duration_seconds histogram
ordo_fsync_duration_seconds_bucket{le="0.001"} 10
ordo_fsync_duration_seconds_bucket{le="0.005"} 30
ordo_fsync_duration_seconds_bucket{le="0.01"} 38
ordo_fsync_duration_seconds_bucket{le="+Inf"} 40
ordo_fsync_duration_seconds_sum 0.17
ordo_fsync_duration_seconds_count 40
process_start_time_seconds 1.7e9
`

describe("parsing the text format", () => {
  test("samples carry name, labels and value; HELP and TYPE are read, not sampled", () => {
    const { samples, types, help, skipped } = parseMetrics(exposition)
    expect(skipped).toBe(0)
    expect(samples[0]).toEqual({ name: "ordo_appends_total", labels: {}, value: 1027 })
    expect(samples[1]).toEqual({ name: "ordo_build_info", labels: { version: "0.1.0" }, value: 1 })
    expect(samples.filter((s) => s.name.startsWith("#"))).toEqual([])
    expect(types.ordo_fsync_duration_seconds).toBe("histogram")
    expect(types.ordo_appends_total).toBe("counter")
    expect(help.ordo_appends_total).toBe("Appends committed.")
    expect(samples.at(-1).value).toBe(1.7e9)
  })

  test("label values unescape \\\", \\\\ and \\n; commas and braces inside quotes are text", () => {
    const s = parseSampleLine(String.raw`m{a="say \"hi\"",b="C:\\dir\\",c="two\nlines",d="x,y}z"} 2`)
    expect(s.labels).toEqual({ a: 'say "hi"', b: "C:\\dir\\", c: "two\nlines", d: "x,y}z" })
    expect(s.value).toBe(2)
  })

  test("+Inf, -Inf, NaN, exponents, a trailing comma, spaces and a timestamp", () => {
    expect(parseValue("+Inf")).toBe(Infinity)
    expect(parseValue("-Inf")).toBe(-Infinity)
    expect(parseValue("NaN")).toBeNaN()
    expect(parseValue("1.5e-3")).toBe(0.0015)
    expect(parseValue("-2")).toBe(-2)
    expect(parseValue("abc")).toBeUndefined()
    expect(parseSampleLine('h_bucket{le="+Inf",} 7')).toEqual({ name: "h_bucket", labels: { le: "+Inf" }, value: 7 })
    expect(parseSampleLine('  m { a = "1" , b="2" }   3.25   1700000000000')).toEqual({
      name: "m",
      labels: { a: "1", b: "2" },
      value: 3.25,
      timestamp: 1700000000000,
    })
    expect(parseSampleLine("m NaN").value).toBeNaN()
    expect(parseSampleLine("m{} 4")).toEqual({ name: "m", labels: {}, value: 4 })
    expect(parseSampleLine("ns:rule_name 1").name).toBe("ns:rule_name")
  })

  test("malformed lines are skipped and counted; the rest still parses; CRLF is accepted", () => {
    const text = ['good 1', 'm{a="unterminated} 1', "m{a=1} 1", "no_value", "m 1 2 3", "m x", "9bad 1", "# a comment", "", "also_good 2"].join("\r\n")
    const { samples, skipped } = parseMetrics(text)
    expect(samples.map((s) => [s.name, s.value])).toEqual([
      ["good", 1],
      ["also_good", 2],
    ])
    expect(skipped).toBe(6)
  })

  test("Scrape looks samples up by name and labels, enum gauges and histograms", () => {
    const scrape = Scrape.parse(exposition)
    expect(scrape.value("ordo_appends_total")).toBe(1027)
    expect(scrape.value("ordo_sessions", { state: "ended" })).toBe(12)
    expect(scrape.value("absent")).toBeUndefined()
    expect(scrape.byLabel("ordo_sessions", "state")).toEqual({ active: 3, ended: 12 })
    expect(scrape.current("ordo_storage_state", "state")).toBe("ok")
    expect(scrape.current("ordo_build_info", "version")).toBe("0.1.0")
    const h = scrape.histogram("ordo_fsync_duration_seconds")
    expect(h.buckets).toEqual([
      { le: 0.001, count: 10 },
      { le: 0.005, count: 30 },
      { le: 0.01, count: 38 },
      { le: Infinity, count: 40 },
    ])
    expect(h.sum).toBe(0.17)
    expect(h.count).toBe(40)
  })
})

describe("rates from counters", () => {
  test("a rate is the increase over the seconds between the two reads", () => {
    expect(counterRate(100, 350, 2.5)).toBe(100)
    expect(counterRate(100, 100, 1)).toBe(0)
  })

  test("a counter that went down (a restart) counts from zero: never a negative rate", () => {
    expect(counterIncrease(5000, 40)).toBe(40)
    expect(counterRate(5000, 40, 2)).toBe(20)
    // A restart seen through process_start_time_seconds, with the counter already past its old value.
    expect(counterIncrease(10, 25, true)).toBe(25)
  })

  test("no rate without two reads or without elapsed time", () => {
    expect(counterRate(undefined, 5, 1)).toBeUndefined()
    expect(counterRate(5, undefined, 1)).toBeUndefined()
    expect(counterRate(5, 6, 0)).toBeUndefined()
  })
})

describe("quantiles from histogram buckets, as histogram_quantile()", () => {
  const buckets = [
    { le: 0.001, count: 10 },
    { le: 0.005, count: 30 },
    { le: 0.01, count: 38 },
    { le: Infinity, count: 40 },
  ]

  test("linear interpolation inside the bucket that holds the rank", () => {
    // p50: rank 20, in (0.001, 0.005] holding 20 of them, 10 before: 0.001 + 0.004 * 10/20.
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.003, 12)
    // p90: rank 36, in (0.005, 0.01] holding 8, 30 before: 0.005 + 0.005 * 6/8.
    expect(histogramQuantile(0.9, buckets)).toBeCloseTo(0.00875, 12)
    // p10: rank 4, in the first bucket, whose lower bound is 0: 0.001 * 4/10.
    expect(histogramQuantile(0.1, buckets)).toBeCloseTo(0.0004, 12)
    // p25: rank exactly the first bucket's count: its upper bound.
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.001, 12)
  })

  test("a rank in the +Inf bucket answers the highest finite bound", () => {
    // p99: rank 39.6 > 38.
    expect(histogramQuantile(0.99, buckets)).toBe(0.01)
  })

  test("no observations, no +Inf bucket or a single bucket give NaN; q outside [0,1] gives ±Inf", () => {
    expect(histogramQuantile(0.5, buckets.map((b) => ({ ...b, count: 0 })))).toBeNaN()
    expect(histogramQuantile(0.5, buckets.slice(0, 3))).toBeNaN()
    expect(histogramQuantile(0.5, [{ le: Infinity, count: 3 }])).toBeNaN()
    expect(histogramQuantile(-0.1, buckets)).toBe(-Infinity)
    expect(histogramQuantile(1.1, buckets)).toBe(Infinity)
  })

  test("buckets in any order; a count that dips is raised to the one below it", () => {
    const shuffled = [buckets[2], buckets[0], buckets[3], buckets[1]]
    expect(histogramQuantile(0.5, shuffled)).toBeCloseTo(0.003, 12)
    const dipping = [
      { le: 1, count: 4 },
      { le: 2, count: 3 },
      { le: Infinity, count: 8 },
    ]
    // Read as 4, 4, 8: p50 has rank 4, at the top of the first bucket.
    expect(histogramQuantile(0.5, dipping)).toBe(1)
  })

  test("the quantile of an interval comes from the bucket deltas of two reads", () => {
    const before = { buckets, sum: 0.17, count: 40 }
    const after = {
      buckets: [
        { le: 0.001, count: 10 },
        { le: 0.005, count: 30 },
        { le: 0.01, count: 46 },
        { le: Infinity, count: 50 },
      ],
      sum: 0.3,
      count: 50,
    }
    const delta = histogramDelta(before, after)
    expect(delta.buckets.map((b) => b.count)).toEqual([0, 0, 8, 10])
    expect(delta.count).toBe(10)
    expect(delta.sum).toBeCloseTo(0.13, 12)
    // p50 of the 10 new ones: rank 5 in (0.005, 0.01] holding 8: 0.005 + 0.005 * 5/8.
    expect(histogramQuantile(0.5, delta.buckets)).toBeCloseTo(0.008125, 12)
    expect(histogramQuantile(0.99, delta.buckets)).toBe(0.01)
    // Nothing moved: no observation, no quantile.
    const still = histogramDelta(after, after)
    expect(still.count).toBe(0)
    expect(histogramQuantile(0.5, still.buckets)).toBeNaN()
  })

  test("a histogram that went down (a restart) is the interval by itself", () => {
    const before = { buckets, sum: 0.17, count: 40 }
    const after = {
      buckets: [
        { le: 0.001, count: 2 },
        { le: 0.005, count: 2 },
        { le: 0.01, count: 2 },
        { le: Infinity, count: 2 },
      ],
      sum: 0.001,
      count: 2,
    }
    const delta = histogramDelta(before, after)
    expect(delta.buckets.map((b) => b.count)).toEqual([2, 2, 2, 2])
    expect(delta.count).toBe(2)
    expect(histogramQuantile(0.5, delta.buckets)).toBeCloseTo(0.0005, 12)
    expect(histogramDelta(undefined, after)).toBeUndefined()
  })
})

describe("the 5-minute window", () => {
  test("keeps the points of the last window, oldest first", () => {
    const w = new Window(300000)
    for (let t = 0; t <= 400000; t += 1000) w.push({ t, v: t })
    expect(w.length).toBe(301)
    expect(w.points[0].t).toBe(100000)
    expect(w.last().t).toBe(400000)
  })

  test("never holds more than its bound of points", () => {
    const w = new Window(300000, 10)
    for (let t = 0; t < 50; t++) w.push({ t, v: t })
    expect(w.length).toBe(10)
    expect(w.points[0].t).toBe(40)
  })
})
