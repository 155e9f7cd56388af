// Follows a Durable Streams stream live over SSE (EventSource) and resumes where it left off.
//
// Exactly once: a `data` event is held until the `control` event that follows it (ordo writes
// the two together) and applied only then, with that event's streamNextOffset as the new
// position. A connection cut between them drops the held data, and the reconnect from the last
// control's offset reads it again: nothing is applied twice and nothing is skipped.
//
// Reconnects: EventSource would retry on its own with the URL it was opened with (the first
// offset, hence duplicates), so every error closes it; a catch-up read at the current offset
// then tells apart a server that is away (retry with capped backoff), an offset the server no
// longer serves (410: onReset, the caller reloads its snapshot) and a stream that is gone (404).

const k_initial_retry_ms = 250
const k_max_retry_ms = 5000

export class LiveStream {
  /**
   * @param {string} path  e.g. /v1/changes or /v1/sessions/x/events
   * (json: each event is an array of messages; text and base64: each event is one chunk of bytes)
   * @param {{offset?: string, params?: Record<string,string>, encoding?: "json"|"text"|"base64",
   *          onData: (messages: any[], offset: string) => void,
   *          onReset?: (error: any) => void, onClosed?: () => void, onGone?: (error: any) => void,
   *          onStatus?: (state: "live"|"reconnecting"|"closed"|"stopped") => void}} opts
   */
  constructor(path, opts) {
    this.path = path
    this.offset = opts.offset ?? "-1"
    this.params = opts.params ?? {}
    this.encoding = opts.encoding ?? "json"
    this.opts = opts
    this.source = null
    this.stopped = false
    this.retryMs = k_initial_retry_ms
    this.timer = null
    // Whether the current connection delivered a control event: only then is an immediate
    // reconnect safe from looping on a server that accepts the read but cannot stream it.
    this.delivered = false
  }

  start() {
    this.#open()
    return this
  }

  stop() {
    this.stopped = true
    clearTimeout(this.timer)
    this.source?.close()
    this.source = null
    this.opts.onStatus?.("stopped")
  }

  #url(extra) {
    const q = new URLSearchParams({ ...this.params, offset: this.offset, ...extra })
    return `${this.path}?${q}`
  }

  #decode(data) {
    if (this.encoding === "json") return JSON.parse(data)
    if (this.encoding === "base64") return [atob(data.replaceAll("\n", ""))]
    return [data]
  }

  #open() {
    if (this.stopped) return
    const source = new EventSource(this.#url({ live: "sse" }))
    this.source = source
    this.delivered = false
    let held = []
    source.addEventListener("data", (e) => {
      held = held.concat(this.#decode(e.data))
    })
    source.addEventListener("control", (e) => {
      const control = JSON.parse(e.data)
      const batch = held
      held = []
      this.retryMs = k_initial_retry_ms
      this.delivered = true
      if (!control.streamNextOffset) return
      this.offset = control.streamNextOffset
      if (batch.length) this.opts.onData(batch, this.offset)
      this.opts.onStatus?.("live")
      if (control.streamClosed) {
        source.close()
        this.source = null
        this.opts.onStatus?.("closed")
        this.opts.onClosed?.()
      }
    })
    source.onerror = () => {
      source.close()
      if (this.source !== source || this.stopped) return
      this.source = null
      this.opts.onStatus?.("reconnecting")
      this.#recover()
    }
  }

  // Why the connection ended decides what comes next; see the file comment.
  async #recover() {
    if (this.stopped) return
    let status = 0
    let body
    try {
      const res = await fetch(this.#url({}), { cache: "no-store" })
      status = res.status
      body = await res.json().catch(() => undefined)
    } catch {
      status = 0
    }
    if (this.stopped) return
    if (status === 410) {
      this.opts.onReset?.(body?.error ?? {})
      return
    }
    if (status === 404) {
      this.opts.onGone?.(body?.error ?? {})
      return
    }
    if (status >= 200 && status < 300 && this.delivered) {
      // The server ended a working stream (--sse-max-duration, a shutdown): resume at once.
      this.#open()
      return
    }
    this.timer = setTimeout(() => this.#open(), this.retryMs)
    this.retryMs = Math.min(this.retryMs * 2, k_max_retry_ms)
  }
}

/** The connection badge in the header shows the worst state of the streams followed. */
const states = new Map()
export function reportConnection(id, state) {
  if (state === "stopped") states.delete(id)
  else states.set(id, state)
  const el = document.getElementById("connection")
  if (!el) return
  const all = [...states.values()]
  const shown = all.includes("reconnecting") ? "reconnecting" : all.length ? "live" : "idle"
  el.dataset.state = shown
  el.textContent = shown
}
