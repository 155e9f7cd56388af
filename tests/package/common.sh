# Helpers of the packaging tests (sourced): fail with a message, and start an installed ordo
# with a config file and check /health.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# serve_and_check BINARY CONFIG DATA_DIR LOG [LAUNCHER...]: starts `BINARY serve --config CONFIG`
# with the data directory and a free port given by flag, waits for its start-up line, checks that
# /health answers 200, stops it with SIGTERM and expects exit code 0.
serve_and_check() {
  binary=$1 config=$2 data=$3 log=$4
  shift 4
  "$@" "$binary" serve --config "$config" --data-dir "$data" --port 0 >"$log" 2>&1 &
  pid=$!
  port=
  for _ in $(seq 1 150); do
    port=$(sed -n 's/.*listening address=[^ ]* port=\([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "ordo exited before listening"; }
    sleep 0.1
  done
  [ -n "$port" ] || { kill "$pid"; cat "$log" >&2; fail "ordo did not start"; }
  node -e 'fetch(process.argv[1]).then(async (r) => {
      const body = await r.text()
      if (r.status !== 200 || !body.includes("ok")) { console.error(r.status, body); process.exit(1) }
    }, (e) => { console.error(e); process.exit(1) })' "http://127.0.0.1:$port/health" ||
    { kill "$pid"; cat "$log" >&2; fail "/health did not answer 200"; }
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$log" >&2; fail "ordo exited with $rc on SIGTERM"; }
  echo "ok: $binary serves /health with $config (port $port)"
}
