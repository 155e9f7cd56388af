#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<harness>/: small valid and near-valid inputs, laid out
as each harness reads them (FuzzedDataProvider takes integers from the end of the input and
strings from the front, a string ending at a backslash followed by another character). Run it
from anywhere after changing a harness's input layout; it rewrites the seed files it names."""
import hashlib
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def fdp_string(s: bytes) -> bytes:
    """A string for ConsumeRandomLengthString: backslashes doubled, ended by a backslash-n."""
    return s.replace(b"\\", b"\\\\") + b"\\n"


def write(harness: str, data: bytes) -> None:
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


OFFSET = b"0123456789abcdef_0000000000000042"
ZERO = b"0000000000000000_0000000000000000"

# ---- request_head: raw HTTP requests
requests = [
    b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /v1/stream/a/b?offset=-1&live=sse HTTP/1.1\r\nHost: 127.0.0.1:4437\r\n\r\n",
    b"GET /v1/stream/a?offset=" + OFFSET + b"&live=long-poll&cursor=123 HTTP/1.1\r\nHost: h\r\n"
    b"If-None-Match: W/\"x\", \"fuzz:0\"\r\n\r\n",
    b"PUT /v1/stream/logs%2Fx HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    b"Stream-TTL: 3600\r\nContent-Length: 7\r\n\r\n[1,2,3]",
    b"PUT /v1/stream/fork HTTP/1.1\r\nHost: h\r\nStream-Forked-From: /v1/stream/a\r\n"
    b"Stream-Fork-Offset: " + ZERO + b"\r\nStream-Expires-At: 2030-01-01T00:00:00Z\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"POST /v1/stream/a HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nProducer-Id: p\r\n"
    b"Producer-Epoch: 0\r\nProducer-Seq: 1\r\nStream-Seq: 0001\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /v1/stream/a HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n[1,2]\r\n0\r\n\r\n",
    b"POST /v1/stream/a HTTP/1.1\r\nHost: h\r\nStream-Closed: true\r\nContent-Length: 0\r\n\r\n",
    b"POST /v1/stream/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST /v1/stream/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /v1/stream/a HTTP/1.1\r\nHost: a@b\r\nHost: c\r\n\r\n",
    b"GET /v1/stream/__ordo/x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
    b"GET /v1/stream/a/../b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /v1/changes?project=p&session=s&types=session.created,command.sent&offset=-1 "
    b"HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n"
    b"{\"type\":\"session.created\",\"project\":\"p\"}",
    b"GET /v1/sessions/demo-3/events?offset=now&live=sse HTTP/1.1\r\nHost: h\r\n\r\n",
    b"DELETE /v1/projects/p HTTP/1.1\r\nHost: h\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
]
for r in requests:
    write("request_head", r)

# ---- offsets: text + mode byte (0 parse, 1 format, 2 cursor)
for text in [OFFSET, ZERO, b"-1", b"now", b"0123456789ABCDEF_0000000000000042",
             b"0123456789abcdef_9999999999999999", b"0123456789abcdef_000000000000004"]:
    write("offsets", text + bytes([0]))
write("offsets", bytes(16) + bytes([1]))
write("offsets", b"\xff" * 16 + bytes([1]))
for cursor in [b"12345", b"007", b"9007199254740991", b""]:
    write("offsets", cursor + bytes([1]) + b"\x00\x00\x00\x00\x00\x00\x0e\x10" + b"\x00\x00\x00\x00\x67\x00\x00\x00" + bytes([2]))

# ---- producer_headers: strings from the front, the flags byte last
def producer(flags: int, fields: list, body: bytes) -> bytes:
    return b"".join(fdp_string(f) for f in fields) + body + bytes([flags])

write("producer_headers", producer(1 | 2 | 4 | 32, [b"writer-1", b"0", b"0", b"text/plain"], b"hi"))
write("producer_headers", producer(1 | 2 | 4 | 32, [b"w", b"3", b"9007199254740991",
                                                     b"application/json"], b"[1,2]") [:-1] + bytes([1 | 2 | 4 | 32 | 64]))
write("producer_headers", producer(1 | 2 | 4 | 32, [b"w", b"01", b"-1", b"text/plain"], b"x"))
write("producer_headers", producer(1 | 2 | 32, [b"w", b"1", b"text/plain"], b"x"))
write("producer_headers", producer(8 | 16, [b"0007", b"true"], b""))
write("producer_headers", producer(1 | 2 | 4 | 8 | 32, [b"", b"1", b"2", b"a", b"text/plain; charset=utf-8"], b"x"))

# ---- json_batch: body + flatten byte
for body in [b"[{\"a\": 1}, [2, 3]]", b"{\"a\":\"\\u00e9\\n\"}", b"[]", b"  1e400 ", b"[1,]",
             b"\"\\ud800\"", b"[" * 40 + b"]" * 40, b"[0.1, -0, 1E+2, true, null, \"x\"]",
             b"{\"a\":{\"b\":[1,{\"c\":\"d\"}]}}", b"[1] [2]"]:
    write("json_batch", body + bytes([1]))
    write("json_batch", body + bytes([0]))

# ---- sse_encoding: payload + mode byte
write("sse_encoding", b"line 1\r\nline 2\rline 3\n" + bytes([0]))
write("sse_encoding", b" leading space\n\nevent: x\ndata: y" + bytes([0]))
write("sse_encoding", b"\x00\xff binary" + bytes([1]))
write("sse_encoding", b"{\"a\":1},[2]" + bytes([2]))
write("sse_encoding", fdp_string(OFFSET) + fdp_string(b"123") + bytes([7]) + bytes([3]))
write("sse_encoding", fdp_string(b"\"\\\n\x01") + bytes([4]) + bytes([3]))
write("sse_encoding", b"keep-alive\r\nevent: sneaky" + bytes([4]))

# ---- session_api: strings (query, If-Match, Idempotency-Key, segment) and body from the front;
# the flags byte, then the route index, last. Route indices follow session_routes().
ROUTES = ["POST /v1/projects", "GET /v1/projects", "GET /v1/projects/{project}",
          "DELETE /v1/projects/{project}", "POST /v1/projects/{project}/sessions",
          "GET /v1/projects/{project}/sessions", "GET /v1/changes/snapshot", "GET /v1/sessions",
          "GET /v1/sessions/{session}", "PATCH /v1/sessions/{session}",
          "POST /v1/sessions/{session}/transition", "POST /v1/sessions/{session}/end",
          "POST /v1/sessions/{session}/heartbeat", "GET /v1/sessions/{session}/snapshot",
          "GET /v1/sessions/{session}/events", "PUT /v1/sessions/{session}/prs",
          "GET /v1/sessions/{session}/prs", "GET /v1/sessions/{session}/ci-brake",
          "POST /v1/sessions/{session}/executions", "GET /v1/sessions/{session}/executions",
          "POST /v1/sessions/{session}/executions/{generation}/finish",
          "POST /v1/sessions/{session}/executions/{generation}/abort",
          "POST /v1/sessions/{session}/commands", "GET /v1/sessions/{session}/commands",
          "GET /v1/sessions/{session}/commands/{command}",
          "POST /v1/sessions/{session}/commands/{command}", "POST /v1/sessions/{session}/rows",
          "GET /v1/sessions/{session}/rows", "GET /v1/sessions/{session}/rows/{row}",
          "PUT /v1/sessions/{session}/rows/{row}"]

PR = {"pr": {"url": "https://github.com/acme/widgets/pull/7", "number": 7,
             "title": "Make widgets faster", "state": "open",
             "review_decision": "review_required", "mergeability": "mergeable",
             "ci_state": "pending", "head_commit": "abc123"},
      "checks": [{"name": "build", "commit": "abc123", "status": "in_progress"},
                 {"name": "test", "commit": "abc123", "status": "failure"}],
      "comments": [{"id": "c-1", "author": "a", "body": "Please add a benchmark",
                    "path": "src/w.cpp", "line": 12}]}


def api(route: str, body=None, query=b"", if_match=None, key=None, segment=None, fresh=False):
    flags = (0x31 if fresh else 0) | (2 if if_match is not None else 0) | \
            (4 if key is not None else 0) | (8 if segment is not None else 0)
    data = fdp_string(query)
    if if_match is not None:
        data += fdp_string(if_match)
    if key is not None:
        data += fdp_string(key)
    if segment is not None:
        data += fdp_string(segment)
    if body is not None:
        data += body if isinstance(body, bytes) else json.dumps(body).encode()
    return data + bytes([flags, ROUTES.index(route)])


seeds = [
    api("POST /v1/projects", {"id": "p2", "name": "Second", "description": "d"}),
    api("GET /v1/projects", query=b"archived=true"),
    api("GET /v1/projects/{project}"),
    api("DELETE /v1/projects/{project}", segment=b"p2"),
    api("POST /v1/projects/{project}/sessions", {"title": "t1", "tags": ["y", "z"],
                                                  "agent_kind": "claude", "model": "m-1"}),
    api("GET /v1/projects/{project}/sessions", query=b"limit=2&state=active"),
    api("GET /v1/changes/snapshot"),
    api("GET /v1/sessions", query=b"project=fuzz&client_state=x&cursor=abc&limit=200"),
    api("GET /v1/sessions/{session}"),
    api("PATCH /v1/sessions/{session}", {"title": None, "agent_kind": "codex"}, if_match=b"1"),
    api("POST /v1/sessions/{session}/transition", {"to": "starting"}, fresh=True),
    api("POST /v1/sessions/{session}/transition", {"to": "active"}),
    api("POST /v1/sessions/{session}/end", {"reason": "completed"}, fresh=True),
    api("POST /v1/sessions/{session}/heartbeat"),
    api("GET /v1/sessions/{session}/snapshot", query=b"rows=10"),
    api("GET /v1/sessions/{session}/events"),
    api("PUT /v1/sessions/{session}/prs", PR),
    api("PUT /v1/sessions/{session}/prs", {"pr": dict(PR["pr"], state="merged")}, fresh=True),
    api("GET /v1/sessions/{session}/prs"),
    api("GET /v1/sessions/{session}/ci-brake", query=b"commits=3"),
    api("POST /v1/sessions/{session}/executions", {}),
    api("GET /v1/sessions/{session}/executions"),
    api("POST /v1/sessions/{session}/executions/{generation}/finish", {"outcome": "completed"}),
    api("POST /v1/sessions/{session}/executions/{generation}/abort", {"reason": "x"}),
    api("POST /v1/sessions/{session}/commands", {"text": "hello"}, key=b"k-1"),
    api("GET /v1/sessions/{session}/commands", query=b"status=pending&after=0&limit=5"),
    api("GET /v1/sessions/{session}/commands/{command}"),
    api("POST /v1/sessions/{session}/commands/{command}", {"status": "delivered"}),
    api("POST /v1/sessions/{session}/rows", {"kind": "user", "body": {"text": "q"}}, key=b"r"),
    api("POST /v1/sessions/{session}/rows", {"kind": "approval_request", "status": "pending",
                                             "body": {"tool": "rm"}}),
    api("GET /v1/sessions/{session}/rows", query=b"after=0&before=9&limit=500"),
    api("GET /v1/sessions/{session}/rows/{row}"),
    api("PUT /v1/sessions/{session}/rows/{row}", {"kind": "assistant", "body": {"text": "a"}}),
    api("PATCH /v1/sessions/{session}", b"{\"title\": ", if_match=b"x"),
    api("GET /v1/sessions/{session}", segment=b"%2e%2e"),
]
for s in seeds:
    write("session_api", s)

# ---- tokens: the input, then a mode byte (0 JWT, 1 scopes + strict byte, 2 tokens file,
# 3 header, 4 glob + path). JWTs are signed with the harness's HS256 secret (fuzz/tokens.cpp).
import base64
import hmac

SECRET = b"ordo-fuzz-hs256-secret-0123456789abcdef"


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def jwt(header: dict, claims: dict, secret: bytes = SECRET) -> bytes:
    signing = b64url(json.dumps(header).encode()) + b"." + b64url(json.dumps(claims).encode())
    return signing + b"." + b64url(hmac.new(secret, signing, hashlib.sha256).digest())


CLAIMS = {"sub": "fuzz", "aud": "ordo", "exp": 4102444800, "scope": "streams:read:chat/** admin"}
write("tokens", jwt({"alg": "HS256", "typ": "JWT"}, CLAIMS) + bytes([0]))
write("tokens", jwt({"alg": "HS256"}, dict(CLAIMS, aud=["x", "ordo"], nbf=1, scope=["admin"])) + bytes([0]))
write("tokens", jwt({"alg": "none"}, CLAIMS)[: -43] + bytes([0]))
write("tokens", jwt({"alg": "EdDSA", "kid": "k"}, CLAIMS) + bytes([0]))
write("tokens", jwt({"alg": "HS256"}, dict(CLAIMS, exp=1)) + bytes([0]))
write("tokens", b"admin streams:write:a/* sessions:read:web-* agent:s-1 metrics:read" + bytes([1]) + bytes([1]))
write("tokens", b"openid  streams:admin:** sessions:admin:x" + bytes([0]) + bytes([1]))
write("tokens", (b'# tokens\n{"id":"3f9c0a1b2c4d","sha256":"' + b"a" * 64 +
                 b'","scopes":"admin","name":"n","created":"2026-12-02T10:00:00Z",'
                 b'"expires":"2027-01-01T10:00:00Z"}\n') + bytes([2]))
write("tokens", b"Bearer ordo_3f9c0a1b2c4d_abc; ordo_token=xyz" + bytes([3]))
write("tokens", fdp_string(b"logs/**/x/*") + b"logs/a/b/x/y" + bytes([4]))

# ---- dispatch: what a client sends on one connection, requests pipelined. The harness creates
# streams f/text, f/json and f/closed, project fz and its session fz-1 before the first input.
def req(method: bytes, target: bytes, headers=(), body=b"") -> bytes:
    head = method + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\n"
    for h in headers:
        head += h + b"\r\n"
    if body or method in (b"POST", b"PUT", b"PATCH"):
        head += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    return head + b"\r\n" + body


JSON = b"Content-Type: application/json"
TEXT = b"Content-Type: text/plain"
dispatch_seeds = [
    req(b"GET", b"/health") + req(b"HEAD", b"/ready") + req(b"GET", b"/metrics"),
    req(b"PUT", b"/v1/stream/f/new", [TEXT, b"Stream-TTL: 60"], b"a") +
    req(b"POST", b"/v1/stream/f/new", [TEXT, b"Producer-Id: p", b"Producer-Epoch: 0",
                                        b"Producer-Seq: 0"], b"b") +
    req(b"GET", b"/v1/stream/f/new?offset=-1") + req(b"HEAD", b"/v1/stream/f/new") +
    req(b"DELETE", b"/v1/stream/f/new"),
    req(b"POST", b"/v1/stream/f/json", [JSON], b"[{\"a\":1},2]") +
    req(b"GET", b"/v1/stream/f/json?offset=-1&live=long-poll"),
    req(b"GET", b"/v1/stream/f/text?offset=now&live=long-poll&cursor=5"),
    req(b"GET", b"/v1/stream/f/text?offset=-1&live=sse") + req(b"GET", b"/health"),
    req(b"GET", b"/v1/stream/f/json?offset=" + ZERO + b"&live=sse"),
    req(b"POST", b"/v1/stream/f/closed", [TEXT], b"late") +
    req(b"GET", b"/v1/stream/f/closed?offset=-1", [b"If-None-Match: \"x\""]),
    req(b"PUT", b"/v1/stream/f/fork", [b"Stream-Forked-From: /v1/stream/f/text",
                                       b"Stream-Fork-Offset: " + ZERO]) +
    req(b"GET", b"/v1/stream/f/fork?offset=-1"),
    req(b"POST", b"/v1/stream/f/text", [TEXT, b"Expect: 100-continue"], b"more") +
    req(b"POST", b"/v1/stream/f/text", [TEXT, b"Transfer-Encoding: chunked"])[:-2] +
    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    req(b"GET", b"/v1/streams") + req(b"GET", b"/v1/changes?offset=-1") +
    req(b"GET", b"/v1/changes?project=fz&types=session.created&offset=-1&live=long-poll"),
    req(b"GET", b"/v1/projects") + req(b"GET", b"/v1/projects/fz/sessions?limit=2") +
    req(b"GET", b"/v1/sessions/fz-1") + req(b"GET", b"/v1/sessions/fz-1/snapshot") +
    req(b"GET", b"/v1/changes/snapshot"),
    req(b"POST", b"/v1/sessions/fz-1/heartbeat", [JSON], b"{}") +
    req(b"POST", b"/v1/sessions/fz-1/commands", [JSON, b"Idempotency-Key: k1"],
        b"{\"kind\":\"prompt\",\"payload\":{\"text\":\"hi\"}}") +
    req(b"GET", b"/v1/sessions/fz-1/commands") +
    req(b"PUT", b"/v1/sessions/fz-1/rows/r1", [JSON], b"{\"kind\":\"message\",\"data\":{}}") +
    req(b"GET", b"/v1/sessions/fz-1/events?offset=-1"),
    req(b"PATCH", b"/v1/sessions/fz-1", [JSON, b"If-Match: \"1\""], b"{\"title\":\"t\"}") +
    req(b"POST", b"/v1/sessions/fz-1/executions", [JSON], b"{}") +
    req(b"PUT", b"/v1/sessions/fz-1/prs", [JSON],
        json.dumps({"pr": {"url": "https://github.com/a/b/pull/1", "state": "open"}}).encode()),
    req(b"GET", b"/") + req(b"GET", b"/ui/session") +
    req(b"POST", b"/ui/sign-in", [JSON], b"{\"token\":\"x\"}"),
    req(b"OPTIONS", b"/v1/stream/f/text", [b"Origin: http://a", b"Access-Control-Request-Method: POST"]),
    req(b"BREW", b"/v1/stream/f/text") + req(b"GET", b"/nowhere"),
    b"GET /v1/stream/f/text HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /v1/stream/f/text HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999\r\n\r\n",
]
for r in dispatch_seeds:
    write("dispatch", r)
