// The stream browser: every stream clients created (GET /v1/streams), and one stream's
// metadata (HEAD) and messages, followed live from its start.
import { call, get, streamUrl, enc } from "./api.js"
import { LiveStream, reportConnection } from "./live.js"
import { h, clear, time } from "./dom.js"

const k_max_shown = 1000

export function streamsView() {
  const body = h("tbody", { id: "streams" })
  const notice = h("p", { class: "notice", hidden: true })
  const prefix = h("input", { name: "prefix", placeholder: "path prefix" })
  const load = async () => {
    try {
      const q = prefix.value ? `?prefix=${enc(prefix.value)}` : ""
      const { streams } = await get(`/v1/streams${q}`)
      clear(body)
      for (const s of streams) {
        body.append(
          h(
            "tr",
            { dataset: { stream: s.path } },
            h("td", {}, h("a", { href: `#/streams/${enc(s.path)}` }, s.path)),
            h("td", {}, s.content_type),
            h("td", {}, h("code", {}, s.next_offset)),
            h("td", {}, s.deleted ? "deleted" : s.closed ? "closed" : "open"),
            h("td", {}, time(s.created_at)),
          ),
        )
      }
      if (!streams.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No streams.")))
      notice.hidden = true
    } catch (e) {
      notice.hidden = false
      notice.textContent = `Could not list streams: ${e.message}`
    }
  }
  const form = h("form", { class: "filters" }, prefix, h("button", { type: "submit" }, "Filter"), h("button", { type: "button", onclick: load }, "Refresh"))
  form.addEventListener("submit", (e) => {
    e.preventDefault()
    load()
  })
  load()
  return {
    el: h(
      "div",
      {},
      h("h2", {}, "Streams"),
      form,
      notice,
      h("table", {}, h("thead", {}, h("tr", {}, ["Path", "Content type", "Next offset", "State", "Created"].map((t) => h("th", {}, t)))), body),
    ),
    stop() {},
  }
}

export function streamView(path) {
  const meta = h("dl", { class: "facts", id: "stream-meta" })
  const list = h("ol", { class: "messages", id: "messages" })
  const notice = h("p", { class: "notice", hidden: true })
  const fromStart = h("input", { type: "checkbox", name: "from-start", checked: true })
  let stream = null
  let stopped = false
  // Unchecked: only what is appended from now on.
  fromStart.addEventListener("change", () => {
    stream?.stop()
    clear(list)
    start()
  })

  function showMeta(headers) {
    clear(meta)
    const facts = [
      ["Content type", headers.get("Content-Type")],
      ["Next offset", headers.get("Stream-Next-Offset")],
      ["Closed", headers.get("Stream-Closed") === "true" ? "yes" : "no"],
      ["TTL", headers.get("Stream-TTL") ? `${headers.get("Stream-TTL")} s` : "—"],
      ["Expires", headers.get("Stream-Expires-At") ?? "—"],
    ]
    for (const [k, v] of facts) meta.append(h("dt", {}, k), h("dd", {}, v))
  }

  async function start() {
    try {
      const head = await call("HEAD", streamUrl(path))
      if (stopped) return
      showMeta(head.headers)
      const type = (head.headers.get("Content-Type") ?? "").toLowerCase()
      const encoding = type.startsWith("application/json") ? "json" : type.startsWith("text/") ? "text" : "base64"
      stream = new LiveStream(streamUrl(path), {
        offset: fromStart.checked ? "-1" : "now",
        encoding,
        onData: (messages, offset) => {
          for (const m of messages) {
            list.append(h("li", { dataset: { offset } }, h("pre", {}, typeof m === "string" ? m : JSON.stringify(m))))
          }
          while (list.children.length > k_max_shown) list.firstElementChild.remove()
          meta.querySelectorAll("dd")[1].textContent = offset
        },
        onReset: () => {
          clear(list)
          stream?.stop()
          start()
        },
        onGone: (err) => {
          notice.hidden = false
          notice.textContent = `The stream is gone (${err.code ?? "404"}).`
        },
        onClosed: () => {
          meta.querySelectorAll("dd")[2].textContent = "yes"
        },
        onStatus: (st) => reportConnection("stream", st),
      }).start()
    } catch (e) {
      notice.hidden = false
      notice.textContent = `Could not open ${path}: ${e.message}`
    }
  }

  start()
  return {
    el: h("div", {}, h("p", {}, h("a", { href: "#/streams" }, "← Streams")), h("h2", {}, path), meta, notice, h("h3", {}, "Messages"), h("label", { class: "muted" }, fromStart, " from the start (else only new ones)"), list),
    stop() {
      stopped = true
      stream?.stop()
      reportConnection("stream", "stopped")
    },
  }
}
