// The Server view: ordo's own metrics (GET /metrics, Prometheus text), read once a second while
// the view is shown, charted over the last five minutes and summed up in a table.
//
// Each read is compared with the one before it: counters give rates (the increase over the
// seconds between the two reads; a restart counts from zero, see metrics.js), histograms give
// the p50 and p99 of the observations made in between (bucket deltas, interpolated as
// histogram_quantile() does), gauges are drawn as read. The charts start empty when the view
// opens and keep at most five minutes; leaving the view stops the reads. When a read fails the
// view says so and tries again with a capped backoff.
import { reportConnection } from "./live.js"
import { h, clear } from "./dom.js"
import { lineChart, formatValue } from "./chart.js"
import { Scrape, Window, counterRate, histogramDelta, histogramQuantile } from "./metrics.js"

const k_poll_interval_ms = 1000
const k_window_ms = 5 * 60 * 1000
const k_max_retry_ms = 10000
const k_read_timeout_ms = 5000

/** One point of the charts from two consecutive reads (`prev` undefined for the first). */
function pointFrom(prev, cur) {
  const p = { t: cur.t }
  const g = (name) => cur.scrape.value(name)
  p.connections = g("ordo_connections_open")
  p.sse = g("ordo_sse_readers")
  p.longPoll = g("ordo_long_poll_readers")
  p.queueJobs = g("ordo_write_queue_jobs")
  p.queueBytes = g("ordo_write_queue_bytes")
  if (!prev) return p
  const seconds = (cur.t - prev.t) / 1000
  const start = (r) => r.scrape.value("process_start_time_seconds")
  // The start time is computed from clock ticks: only a move of more than a second is a new process.
  const restarted = Math.abs(start(cur) - start(prev)) > 1
  const rate = (name) => counterRate(prev.scrape.value(name), g(name), seconds, restarted)
  p.appends = rate("ordo_appends_total")
  p.bytes = rate("ordo_appended_bytes_total")
  for (const [key, name] of [
    ["fsync", "ordo_fsync_duration_seconds"],
    ["commit", "ordo_commit_duration_seconds"],
  ]) {
    const delta = histogramDelta(prev.scrape.histogram(name), cur.scrape.histogram(name), restarted)
    // No observation in the interval: a gap, and the legend says so.
    const moved = delta && delta.count > 0
    p[`${key}P50`] = moved ? histogramQuantile(0.5, delta.buckets) * 1000 : null
    p[`${key}P99`] = moved ? histogramQuantile(0.99, delta.buckets) * 1000 : null
  }
  return p
}

function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—"
  const s = Math.floor(seconds)
  const d = Math.floor(s / 86400)
  const hh = Math.floor((s % 86400) / 3600)
  const mm = Math.floor((s % 3600) / 60)
  if (d) return `${d} d ${hh} h`
  if (hh) return `${hh} h ${mm} min`
  if (mm) return `${mm} min ${s % 60} s`
  return `${s} s`
}

/** "active 3 · ended 12", the labels in the server's order, zeros left out. */
function counts(map) {
  const parts = Object.entries(map)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${formatValue(v)}`)
  return parts.length ? parts.join(" · ") : "none"
}

export function serverView() {
  const common = { windowMs: k_window_ms, intervalMs: k_poll_interval_ms }
  const charts = [
    lineChart({ ...common, id: "chart-appends", title: "Appends", unit: "/s", series: [{ key: "appends", label: "appends/s" }] }),
    lineChart({ ...common, id: "chart-bytes", title: "Bytes appended", unit: "B/s", series: [{ key: "bytes", label: "bytes/s" }] }),
    lineChart({
      ...common,
      id: "chart-fsync",
      title: "fsync latency",
      unit: "ms",
      idle: "no fsync",
      series: [
        { key: "fsyncP50", label: "p50" },
        { key: "fsyncP99", label: "p99" },
      ],
    }),
    lineChart({
      ...common,
      id: "chart-commit",
      title: "Commit latency",
      unit: "ms",
      idle: "no commit",
      series: [
        { key: "commitP50", label: "p50" },
        { key: "commitP99", label: "p99" },
      ],
    }),
    lineChart({
      ...common,
      id: "chart-connections",
      title: "Connections",
      unit: "count",
      series: [
        { key: "connections", label: "open" },
        { key: "sse", label: "SSE readers" },
        { key: "longPoll", label: "long-poll readers" },
      ],
    }),
    lineChart({
      ...common,
      id: "chart-queue",
      title: "Writer queue",
      unit: "count",
      series: [{ key: "queueJobs", label: "jobs waiting" }],
    }),
    lineChart({
      ...common,
      id: "chart-queue-bytes",
      title: "Writer queue bytes",
      unit: "B",
      series: [{ key: "queueBytes", label: "bytes waiting" }],
    }),
  ]

  const storage = h("p", { class: "storage-state", id: "storage-state", dataset: { state: "unknown" } }, "Storage: —")
  const notice = h("p", { class: "notice", id: "metrics-notice", hidden: true })
  const facts = h("tbody", { id: "server-facts" })
  const el = h(
    "div",
    { class: "server-view", id: "server-view", dataset: { state: "loading" } },
    h("h2", {}, "Server"),
    storage,
    notice,
    h(
      "div",
      { class: "columns" },
      h("section", { class: "panel side server-side" }, h("h3", {}, "Now"), h("table", { class: "server-facts" }, facts)),
      h("section", { class: "grow charts" }, charts.map((c) => c.el)),
    ),
  )

  const recent = new Window(k_window_ms)
  let prev
  let stopped = false
  let timer = null
  let controller = null
  let retryMs = k_poll_interval_ms

  function renderFacts(scrape, serverNow) {
    const state = scrape.current("ordo_storage_state", "state") ?? "unknown"
    storage.dataset.state = state
    storage.textContent = `Storage: ${state}`
    const start = scrape.value("process_start_time_seconds")
    const rows = [
      ["version", "Version", scrape.current("ordo_build_info", "version") ?? "—"],
      ["uptime", "Uptime", start ? duration(serverNow / 1000 - start) : "—"],
      ["streams", "Streams", formatValue(scrape.value("ordo_streams"))],
      ["sessions", "Sessions", counts(scrape.byLabel("ordo_sessions", "state"))],
      ["commands", "Commands", counts(scrape.byLabel("ordo_commands", "status"))],
      ["tail-cache", "Tail cache", formatValue(scrape.value("ordo_tail_cache_bytes"), "B")],
      ["memory", "Resident memory", formatValue(scrape.value("process_resident_memory_bytes"), "B")],
    ]
    clear(facts)
    for (const [key, label, value] of rows) facts.append(h("tr", { dataset: { fact: key } }, h("th", {}, label), h("td", {}, value)))
  }

  function draw(now) {
    recent.trim(now)
    for (const c of charts) c.update(recent.points, now)
  }

  async function poll() {
    timer = null
    if (stopped) return
    controller = new AbortController()
    const abort = setTimeout(() => controller.abort(), k_read_timeout_ms)
    try {
      const res = await fetch("/metrics", { cache: "no-store", signal: controller.signal })
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const text = await res.text()
      if (stopped) return
      const t = Date.now()
      const cur = { t, scrape: Scrape.parse(text) }
      if (!cur.scrape.has("ordo_appends_total")) throw new Error("the answer holds no ordo metrics")
      recent.push(pointFrom(prev, cur))
      prev = cur
      const serverDate = Date.parse(res.headers.get("Date") ?? "")
      renderFacts(cur.scrape, Number.isNaN(serverDate) ? t : serverDate)
      draw(t)
      notice.hidden = true
      el.dataset.state = "live"
      reportConnection("server", "live")
      retryMs = k_poll_interval_ms
      timer = setTimeout(poll, k_poll_interval_ms)
    } catch (e) {
      if (stopped) return
      // fetch rejects with a TypeError when no answer came at all (refused, reset, offline).
      const why = e.name === "AbortError" ? "no answer in time" : e instanceof TypeError ? "the server did not answer" : e.message
      notice.hidden = false
      notice.textContent = `Metrics unavailable (${why}); trying again in ${Math.round(retryMs / 1000)} s.`
      el.dataset.state = "unavailable"
      storage.dataset.state = "unknown"
      storage.textContent = "Storage: unknown"
      reportConnection("server", "reconnecting")
      // The time axis moves on, so the last points slide left and a gap opens.
      draw(Date.now())
      timer = setTimeout(poll, retryMs)
      retryMs = Math.min(retryMs * 2, k_max_retry_ms)
    } finally {
      clearTimeout(abort)
    }
  }

  poll()
  return {
    el,
    stop() {
      stopped = true
      clearTimeout(timer)
      controller?.abort()
      reportConnection("server", "stopped")
    },
  }
}
