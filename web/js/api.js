// The session API and stream reads over fetch. Every call resolves to the parsed JSON answer or
// throws an ApiError carrying the server's error code and message.

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(`${code}: ${message}`)
    this.status = status
    this.code = code
    this.body = body
  }
}

export async function call(method, path, { body, headers = {} } = {}) {
  // X-Ordo-Request: with a sign-in cookie, the server changes nothing without it (auth.js).
  const init = { method, headers: { "X-Ordo-Request": "1", ...headers }, cache: "no-store" }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers["Content-Type"] = "application/json"
  }
  let res
  try {
    res = await fetch(path, init)
  } catch (e) {
    throw new ApiError(0, "unreachable", `the server did not answer (${e.message})`)
  }
  const text = await res.text()
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  if (!res.ok) {
    const err = json?.error ?? {}
    throw new ApiError(res.status, err.code ?? `http_${res.status}`, err.message ?? text, json)
  }
  return { json, headers: res.headers, status: res.status }
}

export const get = async (path) => (await call("GET", path)).json

export function enc(segment) {
  return encodeURIComponent(segment)
}

/** /v1/stream/a/b for path "a/b", each segment encoded. */
export function streamUrl(path) {
  return "/v1/stream/" + path.split("/").map(enc).join("/")
}
