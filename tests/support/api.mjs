// HTTP helpers the black-box suites share: one request with its body read and parsed, and the
// assertions every JSON answer and every JSON error must pass.
import { expect } from "vitest"

/**
 * One request to `base + path`. Objects and arrays are sent as JSON (with Content-Type:
 * application/json unless a Content-Type is given); strings are sent as they are, so malformed
 * JSON can be sent byte for byte. Redirects are not followed.
 * @returns {Promise<{status: number, headers: Headers, text: string, json: any, what: string}>}
 */
export async function request(base, method, path, { headers = {}, body, signal } = {}) {
  const init = { method, headers: { ...headers }, redirect: "manual", signal }
  if (body !== undefined) {
    const text = typeof body === "string" ? body : JSON.stringify(body)
    init.body = Buffer.from(text)
    if (!Object.keys(init.headers).some((k) => k.toLowerCase() === "content-type")) {
      init.headers["Content-Type"] = "application/json"
    }
  }
  const res = await fetch(base + path, init)
  const text = Buffer.from(await res.arrayBuffer()).toString("utf8")
  let json
  try {
    json = text.length ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json, what: `${method} ${path}` }
}

/** What a failed assertion prints about a response. */
export const ctx = (res) => `${res.what} -> ${res.status} ${res.text.slice(0, 400)}`

/** Asserts a successful JSON answer with the given status; returns the body. */
export function expectOk(res, status = 200) {
  expect(res.status, ctx(res)).toBe(status)
  expect(res.headers.get("content-type"), ctx(res)).toBe("application/json")
  expect(res.json, ctx(res)).toBeDefined()
  return res.json
}

/** Asserts `{"error":{"code","message",...}}` with the status and code; returns the error. */
export function expectError(res, status, code) {
  expect(res.status, ctx(res)).toBe(status)
  expect(res.headers.get("content-type"), ctx(res)).toBe("application/json")
  expect(res.json, ctx(res)).toBeDefined()
  expect(Object.keys(res.json), ctx(res)).toEqual(["error"])
  const error = res.json.error
  expect(typeof error, ctx(res)).toBe("object")
  expect(error.code, ctx(res)).toBe(code)
  expect(typeof error.message, ctx(res)).toBe("string")
  expect(error.message.trim().length, ctx(res)).toBeGreaterThan(0)
  return error
}
