// A Server-Sent Events reader for the black-box suites, over node:http (fetch cannot tell a
// clean end of a chunked response from a cut one).
import http from "node:http"

// One SSE block ("event: x\ndata:..."); null for a comment-only block.
export function parseEvent(block) {
  let event = null
  const data = []
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue
    if (line.startsWith("event:")) event = line.slice(6).trim()
    else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5))
  }
  if (event === null && data.length === 0) return null
  const text = data.join("\n")
  return { event, data: event === "control" ? JSON.parse(text) : text }
}

// An SSE reader over node:http. `ended` resolves with "end" when the response finished cleanly
// (terminating chunk), otherwise with how it broke.
export function openSse(url, agent) {
  const events = []
  let comments = 0
  let onControl
  const firstControl = new Promise((r) => (onControl = r))
  let req
  const ended = new Promise((resolve) => {
    req = http.get(url, { agent }, (res) => {
      res.setEncoding("utf8")
      let buffer = ""
      res.on("data", (chunk) => {
        buffer += chunk
        let i
        while ((i = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, i)
          buffer = buffer.slice(i + 2)
          const ev = parseEvent(block)
          if (!ev) {
            comments++
            continue
          }
          events.push(ev)
          if (ev.event === "control") onControl(ev.data)
        }
      })
      res.on("end", () => resolve(res.complete ? "end" : "incomplete"))
      res.on("error", (e) => resolve(`error: ${e.message}`))
    })
    req.on("error", (e) => resolve(`error: ${e.message}`))
  })
  return {
    events,
    firstControl,
    ended,
    comments: () => comments,
    destroy: () => req.destroy(),
  }
}
