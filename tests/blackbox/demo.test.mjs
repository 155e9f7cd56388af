// `ordo demo` against a real server: it must produce the session it promises (a user request,
// assistant messages streamed into one row each, tool calls updated in place, an approval
// request that was pending and then approved, a PR whose CI failed and then passed), answer a
// command sent to the session while it runs, and fail with the client commands' exit codes.
import { afterAll, beforeAll, describe, expect, test } from "vitest"
import { spawn, spawnSync } from "node:child_process"
import { ordoBinary, startOrdo } from "../support/ordo_server.mjs"
import { expectOk, request } from "../support/api.mjs"

let server
beforeAll(async () => {
  server = await startOrdo({ args: ["--heartbeat-timeout", "1h", "--detach-timeout", "2h"] })
})
afterAll(async () => {
  await server?.stop()
  server?.cleanup()
})

const fast = ["--step-delay", "0", "--chunk-delay", "0", "--approval-delay", "0"]
const api = (method, path, body) => request(server.url, method, path, { body })

function demo(args, env = {}) {
  const r = spawnSync(ordoBinary(), ["demo", ...args], {
    env: { ...process.env, ORDO_URL: server.url, ...env },
    timeout: 60000,
  })
  return { status: r.status, out: r.stdout.toString(), err: r.stderr.toString() }
}

/** Every event of a session's stream, from the start. */
async function events(id) {
  return expectOk(await api("GET", `/v1/sessions/${id}/events?offset=-1`))
}

describe("ordo demo", () => {
  test("drives a complete session: streamed rows, tool calls, an approval, a PR whose CI fails then passes", async () => {
    const r = demo(fast)
    expect(r.status, r.err).toBe(0)
    const id = r.out.match(/^session (\S+) \(watch it at (\S+)\)$/m)?.[1]
    expect(id, r.out).toBe("demo-1")
    expect(r.out).toContain(`${server.url}/#/session/demo-1`)

    const session = expectOk(await api("GET", `/v1/sessions/${id}`))
    expect(session).toMatchObject({ project: "demo", state: "suspended", client_state: "idle", agent_kind: "ordo-demo", active_execution: null })
    expect(session.branch).toMatch(/^fix\/login-redirect-[0-9a-f]{4}$/)
    const { executions } = expectOk(await api("GET", `/v1/sessions/${id}/executions`))
    expect(executions.map((e) => e.finish_reason)).toEqual(["completed"])

    const { rows } = expectOk(await api("GET", `/v1/sessions/${id}/rows?limit=500`))
    const byId = Object.fromEntries(rows.map((row) => [row.row_id, row]))
    expect(rows.map((row) => row.sequence)).toEqual(rows.map((_, i) => i + 1))
    expect(rows[0]).toMatchObject({ row_id: "user-1", kind: "user" })
    for (const msg of ["msg-1", "msg-2", "msg-3", "msg-4"]) {
      expect(byId[msg]).toMatchObject({ kind: "assistant", status: "complete" })
      expect(byId[msg].revision, `${msg} was streamed through updates`).toBeGreaterThan(2)
    }
    for (const tool of ["tool-1", "tool-2", "tool-3", "tool-4"]) {
      expect(byId[tool]).toMatchObject({ kind: "tool_call", status: "complete", revision: 2 })
      expect(byId[`${tool}-result`]).toMatchObject({ kind: "tool_result", status: "complete" })
      expect(byId[`${tool}-result`].sequence).toBe(byId[tool].sequence + 1)
    }
    expect(byId["approval-1"]).toMatchObject({ kind: "approval_request", status: "approved", revision: 2 })
    expect(byId["approval-1-response"]).toMatchObject({ kind: "approval_response", status: "approved" })
    expect(rows.every((row) => row.status === "complete" || row.status === "approved")).toBe(true)

    // The stream shows each step: the message growing in place, the approval pending first.
    const evs = await events(id)
    const msg1 = evs.filter((e) => e.type.startsWith("row.") && e.data.row.row_id === "msg-1")
    expect(msg1[0].type).toBe("row.appended")
    expect(msg1[0].data.row.status).toBe("in_progress")
    const lengths = msg1.map((e) => e.data.row.body.text.length)
    expect(lengths).toEqual([...lengths].sort((a, b) => a - b))
    expect(new Set(msg1.map((e) => e.data.row.sequence)).size).toBe(1)
    const approval = evs.filter((e) => e.type.startsWith("row.") && e.data.row.row_id === "approval-1")
    expect(approval.map((e) => e.data.row.status)).toEqual(["pending", "approved"])

    // The PR: CI failed on the first commit, passed on the second; the brake stays off.
    const { prs } = expectOk(await api("GET", `/v1/sessions/${id}/prs`))
    expect(prs).toHaveLength(1)
    const [pr] = prs
    expect(pr).toMatchObject({ number: 101, state: "open", ci_state: "passing", review_decision: "approved" })
    const commits = [...new Set(pr.checks.map((c) => c.commit))]
    expect(commits).toHaveLength(2)
    expect(pr.head_commit).toBe(commits[1])
    const status = (name, commit) => pr.checks.find((c) => c.name === name && c.commit === commit)?.status
    expect([status("lint", commits[0]), status("test", commits[0])]).toEqual(["success", "failure"])
    expect([status("lint", commits[1]), status("test", commits[1])]).toEqual(["success", "success"])
    const ciStates = evs.filter((e) => e.type === "pr.updated" && e.data.changes.ci_state).map((e) => e.data.changes.ci_state)
    expect(ciStates).toEqual(["failing", "pending", "passing"])
    expect(expectOk(await api("GET", `/v1/sessions/${id}/ci-brake`)).brake).toBe(false)
  })

  test("a second run makes a new session in the same project", () => {
    const r = demo(fast)
    expect(r.status, r.err).toBe(0)
    expect(r.out).toMatch(/^session demo-2 /m)
  })

  test("a command sent while it runs is delivered, shown as the user's message and done", async () => {
    const child = spawn(ordoBinary(), ["demo", "--project", "live", "--step-delay", "150ms", "--chunk-delay", "0", "--approval-delay", "0"], {
      env: { ...process.env, ORDO_URL: server.url },
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => (out += d))
    child.stderr.on("data", (d) => (err += d))
    const exited = new Promise((r) => child.on("exit", (code) => r(code)))
    const until = Date.now() + 10000
    while (!/^session /m.test(out) && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    const id = out.match(/^session (\S+)/m)?.[1]
    expect(id, out).toBe("live-1")
    const sent = await request(server.url, "POST", `/v1/sessions/${id}/commands`, {
      headers: { "Idempotency-Key": "test-1" },
      body: { type: "user_message", text: "Please also update the changelog" },
    })
    expect(sent.status).toBe(202)
    expect(await exited, `${out}\n${err}`).toBe(0)
    const command = expectOk(await api("GET", `/v1/sessions/${id}/commands/${sent.json.id}`))
    expect(command).toMatchObject({ status: "done", result: { acknowledged: true } })
    const { rows } = expectOk(await api("GET", `/v1/sessions/${id}/rows?limit=500`))
    const answered = rows.filter((row) => row.kind === "user" && row.body.command === sent.json.id)
    expect(answered).toHaveLength(1)
    expect(answered[0].body.text).toBe("Please also update the changelog")
    expect(out).toContain(`answered command ${sent.json.id}`)
  })

  test("an approval command answers the pending request: denied, the agent skips the test run", async () => {
    const child = spawn(ordoBinary(), ["demo", "--project", "deny", "--step-delay", "0", "--chunk-delay", "0", "--approval-delay", "30s"], {
      env: { ...process.env, ORDO_URL: server.url },
    })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    const exited = new Promise((r) => child.on("exit", (code) => r(code)))
    const until = Date.now() + 15000
    for (;;) {
      const res = await api("GET", "/v1/sessions/deny-1/rows/approval-1")
      if (res.status === 200 && res.json.status === "pending") break
      if (Date.now() > until) throw new Error(`the approval request never came:\n${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(expectOk(await api("GET", "/v1/sessions/deny-1")).client_state).toBe("requires_action")
    const sent = await request(server.url, "POST", "/v1/sessions/deny-1/commands", {
      headers: { "Idempotency-Key": "approval-approval-1" },
      body: { type: "approval", row_id: "approval-1", decision: "denied" },
    })
    expect(sent.status).toBe(202)
    const started = Date.now()
    expect(await exited, out).toBe(0)
    // It did not wait for --approval-delay.
    expect(Date.now() - started).toBeLessThan(15000)
    expect(out).toContain(`approval-1 denied by command ${sent.json.id}`)

    const { rows } = expectOk(await api("GET", "/v1/sessions/deny-1/rows?limit=500"))
    const byId = Object.fromEntries(rows.map((row) => [row.row_id, row]))
    expect(byId["approval-1"].status).toBe("denied")
    expect(byId["approval-1-response"]).toMatchObject({ status: "denied", body: { text: "denied from a command" } })
    expect(byId["tool-3"]).toBeUndefined()
    expect(byId["msg-2b"]).toMatchObject({ kind: "assistant", status: "complete" })
    const command = expectOk(await api("GET", `/v1/sessions/deny-1/commands/${sent.json.id}`))
    expect(command).toMatchObject({ status: "done", result: { decision: "denied" } })
    expect(rows.some((row) => row.kind === "user" && row.body.command === sent.json.id)).toBe(false)
  })

  test("an approval command with another decision fails, saying why; nobody answering approves", async () => {
    const child = spawn(ordoBinary(), ["demo", "--project", "odd", "--step-delay", "0", "--chunk-delay", "0", "--approval-delay", "1s"], {
      env: { ...process.env, ORDO_URL: server.url },
    })
    const exited = new Promise((r) => child.on("exit", (code) => r(code)))
    const until = Date.now() + 15000
    while ((await api("GET", "/v1/sessions/odd-1/rows/approval-1")).status !== 200) {
      if (Date.now() > until) throw new Error("the approval request never came")
      await new Promise((r) => setTimeout(r, 50))
    }
    const sent = await request(server.url, "POST", "/v1/sessions/odd-1/commands", {
      headers: { "Idempotency-Key": "odd" },
      body: { type: "approval", row_id: "approval-1", decision: "maybe" },
    })
    expect(await exited).toBe(0)
    const command = expectOk(await api("GET", `/v1/sessions/odd-1/commands/${sent.json.id}`))
    expect(command).toMatchObject({ status: "failed", result: { error: "decision must be approved or denied" } })
    const response = expectOk(await api("GET", "/v1/sessions/odd-1/rows/approval-1-response"))
    expect(response).toMatchObject({ status: "approved", body: { text: "approved automatically after 1s" } })
  })

  test("failures: no server exits 4, a bad duration 2, an archived project 1 with its code", async () => {
    const away = demo(fast, { ORDO_URL: "http://127.0.0.1:1" })
    expect(away.status).toBe(4)
    expect(away.err).toMatch(/^ordo: connection_failed: /m)

    const usage = demo(["--step-delay", "soon"])
    expect(usage.status).toBe(2)

    expectOk(await api("POST", "/v1/projects", { id: "old", name: "Old" }), 201)
    expectOk(await api("DELETE", "/v1/projects/old"))
    const archived = demo(["--project", "old", ...fast])
    expect(archived.status).toBe(1)
    expect(archived.err).toMatch(/^ordo: project_archived: /m)
  })
})
