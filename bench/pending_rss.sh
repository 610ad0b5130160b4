#!/usr/bin/env bash
# Gateway memory with N messages awaiting receipts (issue: RSS <= 300 MB with 1,000,000 awaiting).
#
#   bash bench/pending_rss.sh [N=1000000] [MAX_SECONDS=600]
#
# Starts `smppgw sim` that never sends receipts (--no-receipt-fraction 1), `smppgw run` on a temporary SQLite
# file, and `smppgw loadtest` pushing N single-segment messages through the gateway; then reads the gateway's
# VmRSS / VmHWM from /proc and how many messages are open in its store. Every process is bounded and killed.
set -euo pipefail
N=${1:-1000000}
MAX_SECONDS=${2:-600}
BIN=$(dirname "$(command -v python)")
[ -x "$BIN/smppgw" ] || BIN=/work/venv/bin
DIR=$(mktemp -d /tmp/smppgw-rss-XXXX)
port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SIM_PORT=$(port); GW_PORT=$(port); HTTP_PORT=$(port)
cat > "$DIR/gw.toml" <<TOML
[smpp_server]
listen = "127.0.0.1:$GW_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[store]
path = "$DIR/gw.sqlite3"
[log]
level = "warning"
format = "json"
[[accounts]]
system_id = "rss"
password = "rss"
rate = 10000000.0
window = 1000
[[connectors]]
name = "sim"
port = $SIM_PORT
system_id = "gateway"
password = "gateway"
binds = 2
window = 500
rate = 10000000.0
[routing]
default = "sim"
TOML
cleanup() { kill "$GW" "$SIM" 2>/dev/null || true; }
trap cleanup EXIT
"$BIN/smppgw" sim --listen "127.0.0.1:$SIM_PORT" --account gateway:gateway --no-receipt-fraction 1 --quiet \
  --duration "$MAX_SECONDS" > "$DIR/sim.log" 2>&1 &
SIM=$!
sleep 1
"$BIN/smppgw" run --config "$DIR/gw.toml" > "$DIR/gw.log" 2>&1 &
GW=$!
for _ in $(seq 50); do curl -sf "127.0.0.1:$HTTP_PORT/readyz" > /dev/null && break; sleep 0.2; done
START=$(date +%s)
"$BIN/smppgw" loadtest --target "127.0.0.1:$GW_PORT" --system-id rss --password rss --count "$N" --rate 0 \
  --window 500 --binds 2 --mix latin=100 --receipt-timeout 1 --max-seconds "$MAX_SECONDS" --json > "$DIR/lt.json" 2> "$DIR/lt.err" || true
ELAPSED=$(( $(date +%s) - START ))
sleep 2
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$GW/status"); HWM=$(awk '/VmHWM/ {print $2}' "/proc/$GW/status")
kill -TERM "$GW"; wait "$GW" 2>/dev/null || true
OPEN=$(python -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from open_messages').fetchone()[0])" "$DIR/gw.sqlite3")
ACKED=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['submits']['acknowledged'])" "$DIR/lt.json")
echo "messages acknowledged by the gateway: $ACKED in ${ELAPSED}s; open (awaiting receipts) in its store: $OPEN"
echo "gateway VmRSS $((RSS / 1024)) MB, peak VmHWM $((HWM / 1024)) MB ($(python -c "print(round($RSS / max($OPEN, 1) * 1024))") bytes of RSS per awaiting message, baseline included)"
rm -rf "$DIR"
