// A time-series line chart in plain SVG: time on x (the last `windowMs`, now at the right edge),
// y from 0 to a rounded maximum of what is shown, a few labelled gridlines, one polyline per
// series and a legend with each series' latest value. No library: the page loads nothing but ordo.
//
// The <svg> carries what a test (or a curious reader of the DOM) needs without reading pixels:
// data-points, the number of points with a value of the main (first) series; data-last, its
// latest value ("" when the latest interval had none); data-min, its lowest value shown.
import { h } from "./dom.js"

const k_svg = "http://www.w3.org/2000/svg"
const k_width = 520
const k_height = 170
const k_margin = { left: 64, right: 10, top: 10, bottom: 22 }
const k_gridlines = 4
// Points further apart than this many poll intervals are not joined: the page was not reading.
const k_gap_intervals = 3.5

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(k_svg, tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v))
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  return el
}

/** 1, 2 or 5 times a power of ten, at least `x`. */
export function niceStep(x) {
  if (!(x > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(x))
  for (const m of [1, 2, 5, 10]) if (m * p >= x * (1 - 1e-9)) return m * p
  return 10 * p
}

/** v as a number and an SI prefix: [950, ""], [1.2, "k"], [3.4, "M"]; three significant digits. */
function siParts(v) {
  const a = Math.abs(v)
  for (const [div, prefix] of [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ]) {
    if (a >= div) return [trim(v / div), prefix]
  }
  return [trim(v), ""]
}

/** "950", "1.2k", "3.4M" */
export function si(v) {
  return Number.isFinite(v) ? siParts(v).join("") : "—"
}

function trim(v) {
  const a = Math.abs(v)
  const s = a === 0 ? "0" : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(2)
  return s.includes(".") && !s.includes("e") ? s.replace(/\.?0+$/, "") : s
}

/** A value with its unit as the charts and the table write it. */
export function formatValue(v, unit) {
  if (!Number.isFinite(v)) return "—"
  const [n, prefix] = siParts(v)
  switch (unit) {
    case "B":
      return `${n} ${prefix}B`
    case "B/s":
      return `${n} ${prefix}B/s`
    case "ms":
      return `${trim(v)} ms`
    case "/s":
      return `${n}${prefix}/s`
    default:
      return `${n}${prefix}`
  }
}

/**
 * @param {{id: string, title: string, unit: string, windowMs: number, intervalMs: number,
 *          series: {key: string, label: string}[], idle?: string}} opts
 *   series: the first is the main one; idle: what the legend says when the latest interval has
 *   no value (e.g. "no fsync").
 */
export function lineChart({ id, title, unit, windowMs, intervalMs, series, idle = "no data" }) {
  const plotW = k_width - k_margin.left - k_margin.right
  const plotH = k_height - k_margin.top - k_margin.bottom
  const grid = svg("g", { class: "grid" })
  const lines = svg("g", { class: "lines" })
  const message = svg("text", { class: "chart-message", x: k_margin.left + plotW / 2, y: k_margin.top + plotH / 2, "text-anchor": "middle" })
  const chart = svg(
    "svg",
    { id, class: "chart", viewBox: `0 0 ${k_width} ${k_height}`, role: "img", "aria-label": title, "data-points": 0, "data-last": "", "data-min": "" },
    grid,
    lines,
    message,
  )
  const values = series.map((s, i) => h("span", { class: "legend-value", dataset: { series: s.key } }, "—"))
  const legend = h(
    "ul",
    { class: "legend", id: `${id}-legend` },
    series.map((s, i) => h("li", {}, h("span", { class: `swatch series-${i}` }), s.label, " ", values[i])),
  )
  const el = h("figure", { class: "panel chart-panel" }, h("figcaption", {}, h("h3", {}, title), legend), chart)

  /** @param {{t: number}[]} points oldest first; @param {number} now ms */
  function update(points, now) {
    const from = now - windowMs
    const x = (t) => k_margin.left + ((t - from) / windowMs) * plotW
    let max = 0
    for (const p of points) for (const s of series) if (Number.isFinite(p[s.key]) && p[s.key] > max) max = p[s.key]
    const step = niceStep(max / k_gridlines)
    const top = Math.max(step * Math.ceil(max / step - 1e-9), step)
    const y = (v) => k_margin.top + plotH - (v / top) * plotH

    grid.replaceChildren()
    for (let v = 0; v <= top + step / 2; v += step) {
      const gy = y(v).toFixed(1)
      grid.append(
        svg("line", { x1: k_margin.left, x2: k_margin.left + plotW, y1: gy, y2: gy, class: v === 0 ? "axis" : "" }),
        svg("text", { x: k_margin.left - 6, y: gy, dy: "0.32em", "text-anchor": "end" }, formatValue(v, unit)),
      )
    }
    const minutes = Math.round(windowMs / 60000)
    for (let m = 0; m <= minutes; m++) {
      const gx = x(now - m * 60000).toFixed(1)
      grid.append(
        svg("line", { x1: gx, x2: gx, y1: k_margin.top, y2: k_margin.top + plotH, class: "minute" }),
        svg("text", { x: gx, y: k_height - 6, "text-anchor": m === 0 ? "end" : m === minutes ? "start" : "middle" }, m === 0 ? "now" : `−${m} min`),
      )
    }

    lines.replaceChildren()
    series.forEach((s, i) => {
      let run = []
      const flush = () => {
        if (run.length === 1) lines.append(svg("circle", { cx: run[0][0], cy: run[0][1], r: 2, class: `series-${i}` }))
        else if (run.length > 1) lines.append(svg("polyline", { points: run.map((p) => p.join(",")).join(" "), class: `series-${i}`, "data-series": s.key }))
        run = []
      }
      let lastT = -Infinity
      for (const p of points) {
        const v = p[s.key]
        if (!Number.isFinite(v) || p.t - lastT > k_gap_intervals * intervalMs) flush()
        if (Number.isFinite(v)) run.push([x(p.t).toFixed(1), y(v).toFixed(1)])
        lastT = p.t
      }
      flush()
    })

    const main = series[0].key
    const shown = points.map((p) => p[main]).filter(Number.isFinite)
    const last = points.at(-1)
    chart.dataset.points = String(shown.length)
    chart.dataset.min = shown.length ? String(Math.min(...shown)) : ""
    chart.dataset.last = last && Number.isFinite(last[main]) ? String(last[main]) : ""
    series.forEach((s, i) => {
      values[i].textContent = !last ? "—" : Number.isFinite(last[s.key]) ? formatValue(last[s.key], unit) : idle
    })
    message.textContent = points.length === 0 ? "waiting for data" : last && !Number.isFinite(last[main]) ? idle : ""
  }

  update([], Date.now())
  return { el, update }
}
