// Small DOM helpers: element construction without innerHTML (every value is text, so nothing a
// session writes can inject markup), and formatting.

/** h("div", {class: "x", onclick: f}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v)
    else if (k === "dataset") Object.assign(el.dataset, v)
    else el.setAttribute(k, v === true ? "" : String(v))
  }
  append(el, children)
  return el
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove()
  return el
}

/** "12:04:05" for today, else "2026-11-21 12:04". */
export function time(iso) {
  if (!iso) return "—"
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const now = new Date()
  const hms = d.toLocaleTimeString([], { hour12: false })
  if (d.toDateString() === now.toDateString()) return hms
  return `${d.toISOString().slice(0, 10)} ${hms.slice(0, 5)}`
}

/** "5 s ago", "3 min ago", ... */
export function ago(iso) {
  if (!iso) return "—"
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}

export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${String(kind).replaceAll("_", "-")}` }, text ?? "—")
}

/** A hex key from the browser's random source (crypto.randomUUID needs a secure context). */
export function randomKey(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
}

/** Calls fn once per animation-free pause: coalesces bursts of events into one refetch. */
export function debounce(fn, ms) {
  let timer = null
  return (...args) => {
    clearTimeout(timer)
    timer = setTimeout(() => fn(...args), ms)
  }
}
