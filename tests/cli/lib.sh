# Shared by the command-line tests: `source lib.sh PATH/TO/expo` sets $expo (absolute), $py, a
# temporary $work folder removed at exit, and the check/expect_error/finish helpers.
expo="$(cd "$(dirname "${1:-build/expo}")" && pwd)/$(basename "${1:-build/expo}")"
py=/usr/bin/python3
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
passed=0
failed=0
# Both keep the command's output in $work/last.out and $work/last.err for later checks.
check() {  # check NAME COMMAND...: the command must succeed
  local name="$1"; shift
  if "$@" >"$work/out" 2>"$work/err"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name"; sed 's/^/  | /' "$work/out" "$work/err" | head -30; fi
  cp "$work/out" "$work/last.out"; cp "$work/err" "$work/last.err"
}
expect_error() {  # expect_error NAME PATTERN COMMAND...: non-zero exit, PATTERN in stderr
  local name="$1" pattern="$2"; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local status=$?
  cp "$work/out" "$work/last.out"; cp "$work/err" "$work/last.err"
  if [ $status -eq 0 ]; then
    failed=$((failed + 1)); echo "FAIL: $name (exit 0)"; return; fi
  if grep -qE -- "$pattern" "$work/err"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name (no /$pattern/ in stderr)"; sed 's/^/  | /' "$work/err" | head -20; fi
}
check_prints() {  # check_prints NAME EXPECTED COMMAND...: succeeds and prints EXPECTED exactly
  local name="$1" expected="$2"; shift 2
  if "$@" >"$work/out" 2>"$work/err" && [ "$(cat "$work/out")" = "$expected" ]; then
    passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: $name"; echo "  want: $expected"
    sed 's/^/  | /' "$work/out" "$work/err" | head -20; fi
}
skipped() {  # skipped WHAT: a part that cannot run here; in CI (CI=true) that is a failure
  if [ "${CI:-}" = "true" ]; then
    failed=$((failed + 1)); echo "FAIL: skipped in CI: $1"
  else
    echo "skipped: $1"
  fi
}
write_sparse_pair() {  # write_sparse_pair DIR: DIR/sft and DIR/aligned, one tensor of 160M BF16
  # zeros each (320 MB, sparse on disk): an extrapolation slow enough to interrupt or kill
  $py - "$1" <<'PY'
import json, os, struct, sys
n = 160 * 1024 * 1024
for name in ("sft", "aligned"):
    folder = os.path.join(sys.argv[1], name)
    os.makedirs(folder, exist_ok=True)
    h = json.dumps({"w": {"dtype": "BF16", "shape": [n], "data_offsets": [0, 2 * n]}}).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + 2 * n)
PY
}
finish() {  # prints the tally; exits non-zero on any failure
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
# start_server LOG COMMAND...: runs a server (expo serve, or a test server) in the background
# and sets $port and $server_pid once it prints its "listening on" line (within 30 s); a
# server that exits or stays silent is a failure.
start_server() {
  local log="$1"; shift
  "$@" 2>"$log" &
  server_pid=$!
  for _ in $(seq 300); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && return 0
    kill -0 $server_pid 2>/dev/null || break
    sleep 0.1
  done
  failed=$((failed + 1)); echo "FAIL: $* did not start"; sed 's/^/  | /' "$log" | head -20
  return 1
}
