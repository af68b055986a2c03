#!/usr/bin/env bash
# A/B of two maregistry builds on this machine: wrk on /findAll, renew and register (the
# lua scripts of bench.sh) and bench-grpc register, A and B alternating, ROUNDS rounds of D
# each; the server pinned to CPU 0, the load to CPU 1. Prints each round, then the medians.
#
#   ROUNDS=6 D=5s bash scripts/ab_bench.sh OLD_BINARY NEW_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${ROUNDS:-6} D=${D:-5s} PORT=18484 GRPC_PORT=19484
GRPC=target/release/bench-grpc
OUT=$(mktemp)
instance() { printf '{"scheme":"http","host":"10.0.0.%d","port":8080,"context":"ctx","parameters":{"env":"dev","weight":"100"}}' "$1"; }
start() {
  if ss -ltn | grep -qE ":($PORT|$GRPC_PORT) "; then echo "port $PORT or $GRPC_PORT is taken" >&2; exit 1; fi
  taskset -c 0 "$1" --port $PORT --grpc-port $GRPC_PORT --ttl 1h --evict-interval 1h >/dev/null 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/info" && return; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
rps() { awk '/^Requests\/sec:/ {printf "%d", $2}'; }
for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ $side = B ] && bin=$B
    start "$bin"
    for i in $(seq 1 10); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/reg?service=S" -d "$(instance "$i")"; done
    find=$(taskset -c 1 wrk -t1 -c64 -d"$D" "http://127.0.0.1:$PORT/findAll?service=S" | rps)
    stop; start "$bin"
    renew=$(taskset -c 1 wrk -t1 -c64 -d"$D" -s scripts/wrk/renew.lua "http://127.0.0.1:$PORT" | rps)
    stop; start "$bin"
    register=$(taskset -c 1 wrk -t1 -c64 -d"$D" -s scripts/wrk/register.lua "http://127.0.0.1:$PORT" | rps)
    stop; start "$bin"
    grpc=$(taskset -c 1 "$GRPC" --target "127.0.0.1:$GRPC_PORT" --mode register --connections 64 --seconds "${D%s}" 2>/dev/null |
      python3 -c 'import json,sys; print(int(json.load(sys.stdin)["per_second"]))')
    stop
    echo "$side find $find renew $renew register $register grpc $grpc" | tee -a "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
for i, phase in enumerate(["find", "renew", "register", "grpc"]):
    a = statistics.median(int(r[2 + 2 * i]) for r in rows if r[0] == "A")
    b = statistics.median(int(r[2 + 2 * i]) for r in rows if r[0] == "B")
    print(f"{phase}\tA {a:.0f}\tB {b:.0f}\t{(b / a - 1) * 100:+.1f}%")
PY
rm -f "$OUT"
