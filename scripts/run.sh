#!/usr/bin/env bash
# `make run`: the daemon on its embedded SQLite with a paper agent attached, in the foreground.
# Ctrl-C stops both. State lives in $STATE_DIR (default ./var).
set -euo pipefail
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8787}
STATE=${STATE_DIR:-./var}
URL="http://$HOST:$PORT"
mkdir -p "$STATE"

"$BIN/signalosd" --host "$HOST" --port "$PORT" --state-dir "$STATE" &
daemon=$!
agent=""
alive() { kill -0 "$daemon" 2>/dev/null || { [ -n "$agent" ] && kill -0 "$agent" 2>/dev/null; }; }
stop() {  # EXIT/TERM: ask both to stop (a second signal would force them)
    trap - EXIT INT TERM
    [ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null || true
    kill -TERM "$daemon" 2>/dev/null || true
    wait || true
}
interrupted() {  # Ctrl-C reached the whole process group: give them time to stop cleanly
    trap - INT
    for _ in $(seq 1 150); do alive || break; sleep 0.1; done
    stop
}
trap stop EXIT TERM
trap interrupted INT

ready=""
for _ in $(seq 1 150); do
    if ! kill -0 "$daemon" 2>/dev/null; then
        echo "make run: signalosd exited; see its messages above" >&2
        exit 1
    fi
    # ready: our daemon answers (on its socket, or to its admin token), not just anyone on the port
    if "$BIN/python" scripts/ready.py "$STATE" "$URL" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[ -n "$ready" ] || { echo "make run: signalosd is not ready after 15 s" >&2; exit 1; }

if [ ! -s "$STATE/agent.token" ]; then
    (umask 077 && "$BIN/signalosd" token --state-dir "$STATE" create --account default \
        --role agent --label "paper agent (make run)" >"$STATE/agent.token")
fi
"$BIN/signalos" agent --broker paper --url "$URL" --token-file "$STATE/agent.token" \
    --state-dir "$STATE/agent" &
agent=$!

cat <<MSG

  SignalOS is running: daemon on $URL with a paper agent attached.
  Dashboard: $URL/  (sign in with the token in $STATE/admin.token)
  Admin token: $STATE/admin.token   (agent token: $STATE/agent.token)
  Try:  curl -s -H "Authorization: Bearer \$(cat $STATE/admin.token)" $URL/api/system/health
  Ctrl-C stops both.

MSG
wait "$daemon"
