# Source this file. Starts the local API fakes under tests/fakes/ on free ports.
#
#   start_fake NAME LOGFILE [args...]   starts tests/fakes/NAME/server.js; sets FAKE_URL and
#                                       FAKE_PID (call it in the shell itself, not in $(...))
FAKES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../fakes" && pwd)

start_fake() {
  local name=$1 log=$2; shift 2
  node "$FAKES_DIR/$name/server.js" --port 0 "$@" >"$log" 2>&1 &
  FAKE_PID=$!
  FAKE_URL=""
  for _ in $(seq 200); do
    FAKE_URL=$(sed -n 's/^.* listening on \(http[^ ]*\).*$/\1/p' "$log" | head -n 1)
    [ -n "$FAKE_URL" ] && return 0
    kill -0 "$FAKE_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  return 1
}
