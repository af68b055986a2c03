#!/usr/bin/env bash
# Side-by-side benchmark: maregistry, r-nacos, and a bare hyper server (the HTTP ceiling),
# then the raft mode's own phases (scripts/raft_bench.py -> docs/benchmarks-raft.md) and
# HTTPS against plain HTTP (scripts/tls_bench.py -> docs/benchmarks-tls.md).
# Each phase starts a fresh server pinned to CPU 0 and runs wrk pinned to CPU 1.
# Writes docs/benchmarks.md. A phase with any non-2xx answer or socket error is reported
# as FAILED, not as a number.
#
#   bash scripts/bench.sh            (or: just bench)
#   BENCH_DURATION=5s bash scripts/bench.sh
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=64
OUT=docs/benchmarks.md
PORT=18484
NACOS_PORT=18848
NACOS_GRPC=19848
CEILING_PORT=18999
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[bench] %s\n' "$*" >&2; }

# --- what it needs ---------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
for tool in taskset:util-linux ss:iproute2 curl:curl python3:python3 openssl:openssl; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    log "installing ${tool#*:} (Debian package)"
    apt-get update -qq && apt-get install -y -qq "${tool#*:}" >/dev/null
  fi
done
RNACOS=target/peer/bin/rnacos
if [ ! -x "$RNACOS" ]; then
  log "building r-nacos 0.8.8 once (cargo install rnacos --version 0.8.8 --root target/peer)"
  cargo install rnacos --version 0.8.8 --locked --root target/peer
fi
log "building maregistry and the bench tools (release)"
cargo build --release --bin maregistry --bin bench-ceiling --bin bench-load --bin bench-grpc --bin bench-config --bin bench-grpc-ceiling -q
MAREGISTRY=target/release/maregistry
CEILING=target/release/bench-ceiling
LOAD=target/release/bench-load
GRPC=target/release/bench-grpc
CONFIG=target/release/bench-config
GRPC_PORT=$((PORT + 1000))

# --- helpers -----------------------------------------------------------------------------
ROOT=$(pwd)

server_pid() { # the process listening on a port
  ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

port_free() { # port: refuse to start on a port something already listens on
  if [ -n "$(server_pid "$1")" ]; then
    log "port $1 is already in use by pid $(server_pid "$1"); stop that process first"; exit 1
  fi
}

wait_up() { # url port pid: up, and answered by the process just started
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null -m 1 "$1"; then
      if [ "$(server_pid "$2")" != "$3" ]; then
        log "port $2 is answered by pid $(server_pid "$2"), not by the server just started ($3)"; exit 1
      fi
      return 0
    fi
    sleep 0.1
  done
  log "server at $1 did not come up"; exit 1
}

stop_server() { # stop every server started, and wait until its port is closed
  for pid in "${PIDS[@]:-}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
  for port in $PORT $((PORT + 1)) $NACOS_PORT $CEILING_PORT $((CEILING_PORT + 1)); do
    for _ in $(seq 1 100); do [ -z "$(server_pid $port)" ] && break; sleep 0.1; done
    port_free $port
  done
}

start_maregistry() { # extra flags...
  port_free $PORT
  taskset -c 0 "$MAREGISTRY" --port $PORT --ttl 1h --evict-interval 1h "$@" >"$WORK/maregistry.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$PORT/info" $PORT $!
}

start_rnacos() {
  port_free $NACOS_PORT
  local dir="$WORK/rnacos-$RANDOM"
  mkdir -p "$dir"
  # Started directly (no subshell), so that $! is r-nacos itself; it runs in its own
  # directory in case it writes files beside it.
  cd "$dir"
  RNACOS_HTTP_PORT=$NACOS_PORT RNACOS_HTTP_CONSOLE_PORT=0 RNACOS_GRPC_PORT=$NACOS_GRPC \
    RNACOS_CONFIG_DB_DIR="$dir/db" RNACOS_DATA_DIR="$dir/data" \
    RNACOS_NAMING_INSTANCE_TIMEOUT_SECOND=3600 RNACOS_NAMING_HEALTH_TIMEOUT_SECOND=3600 \
    RUST_LOG=warn taskset -c 0 "$ROOT/$RNACOS" >"$dir/rnacos.log" 2>&1 &
  PIDS+=($!)
  cd "$ROOT"
  wait_up "http://127.0.0.1:$NACOS_PORT/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40warmup&namespaceId=public" $NACOS_PORT $!
  # Its config store (on its raft) takes writes a moment after HTTP answers: wait until a
  # publish is answered `true`, so that no phase starts against a half-ready server.
  for _ in $(seq 1 300); do
    [ "$(curl -s -m 2 "http://127.0.0.1:$NACOS_PORT/nacos/v1/cs/configs" -d 'dataId=bench.ready&group=BENCH_GROUP&content=ready')" = true ] && return 0
    sleep 0.1
  done
  log "r-nacos never took a config write"; exit 1
}

start_ceiling() { # body bytes [port]
  local port=${2:-$CEILING_PORT}
  port_free "$port"
  taskset -c 0 "$CEILING" --port "$port" --body-bytes "$1" >"$WORK/ceiling.$port.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$port/" "$port" $!
}

# Runs wrk; records "rps p99_ms" or "FAILED reason" in $WORK/result.<key>.
run_wrk() { # key, wrk args...
  local key=$1; shift
  local out="$WORK/wrk.$key.txt"
  taskset -c 1 wrk -t1 -c$CONNECTIONS -d"$DURATION" --latency "$@" >"$out" 2>&1
  local rps p99 non2xx errors
  rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.2f", v}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  errors=$(grep -o 'Socket errors:.*' "$out" || true)
  if [ -n "$non2xx" ] || [ -n "$errors" ] || [ -z "$rps" ]; then
    echo "FAILED non-2xx=${non2xx:-0} ${errors:-}" >"$WORK/result.$key"
    log "$key: FAILED (non-2xx=${non2xx:-0} ${errors:-})"
  else
    echo "$rps $p99" >"$WORK/result.$key"
    log "$key: $rps req/s, p99 $p99 ms"
  fi
  sed 's/^/    /' "$out" >"$WORK/raw.$key"
}

instance_json() { # i
  printf '{"scheme":"http","host":"10.0.0.%d","port":8080,"context":"ctx","parameters":{"env":"dev","weight":"100"}}' "$1"
}

# --- phases ------------------------------------------------------------------------------
log "phase find"
start_maregistry
for i in $(seq 1 10); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/reg?service=S" -d "$(instance_json "$i")"; done
FIND_BYTES=$(curl -s "http://127.0.0.1:$PORT/findAll?service=S" | wc -c)
run_wrk find.maregistry "http://127.0.0.1:$PORT/findAll?service=S"
stop_server
start_rnacos
for i in $(seq 1 10); do
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$NACOS_PORT/nacos/v1/ns/instance?serviceName=S&groupName=DEFAULT_GROUP&namespaceId=public&ip=10.0.0.$i&port=8080&ephemeral=true&metadata=%7B%22env%22%3A%22dev%22%2C%22weight%22%3A%22100%22%7D"
done
NACOS_FIND_BYTES=$(curl -s "http://127.0.0.1:$NACOS_PORT/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40S&namespaceId=public&healthyOnly=false" | wc -c)
run_wrk find.rnacos "http://127.0.0.1:$NACOS_PORT/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40S&namespaceId=public&healthyOnly=false"
stop_server
start_ceiling "$FIND_BYTES"
run_wrk find.ceiling "http://127.0.0.1:$CEILING_PORT/findAll?service=S"
stop_server

log "phase register"
start_maregistry
run_wrk register.maregistry -s scripts/wrk/register.lua "http://127.0.0.1:$PORT"
stop_server
start_rnacos
run_wrk register.rnacos -s scripts/wrk/nacos_register.lua "http://127.0.0.1:$NACOS_PORT"
stop_server

log "phase renew"
start_maregistry
"$LOAD" --system maregistry --url "http://127.0.0.1:$PORT" --instances 1000 --services 100 >&2
run_wrk renew.maregistry -s scripts/wrk/renew.lua "http://127.0.0.1:$PORT"
stop_server
start_rnacos
"$LOAD" --system nacos --url "http://127.0.0.1:$NACOS_PORT" --instances 1000 --services 100 >&2
run_wrk renew.rnacos -s scripts/wrk/nacos_beat.lua "http://127.0.0.1:$NACOS_PORT"
stop_server

log "phase renew over 100,000 instances (maregistry: does the registry's size show over HTTP?)"
start_maregistry
"$LOAD" --system maregistry --url "http://127.0.0.1:$PORT" --instances 100000 --services 1000 >&2
run_wrk renew100k.maregistry -s scripts/wrk/renew.lua "http://127.0.0.1:$PORT" -- 100000 1000
stop_server

log "phase memory (100,000 instances over 1,000 services, two metadata entries each)"
rss_after_load() { # system port
  "$LOAD" --system "$1" --url "http://127.0.0.1:$2" --instances 100000 --services 1000 >&2
  sleep 2
  local pid; pid=$(server_pid "$2")
  awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$pid/status"
}
start_maregistry
RSS_MAREGISTRY=$(rss_after_load maregistry $PORT)
COUNT=$(curl -s "http://127.0.0.1:$PORT/snapshot" | python3 -c 'import json,sys; print(sum(len(v) for v in json.load(sys.stdin)["REGISTRY"].values()))')
log "maregistry: $RSS_MAREGISTRY MiB RSS with $COUNT instances"
stop_server
start_rnacos
RSS_RNACOS=$(rss_after_load nacos $NACOS_PORT)
log "r-nacos: $RSS_RNACOS MiB RSS"
stop_server

log "phase nacos (the same Nacos open API requests as r-nacos got above, to maregistry's facade)"
NACOS_LIST="/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40S&namespaceId=public&healthyOnly=false"
start_maregistry
for i in $(seq 1 10); do
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$PORT/nacos/v1/ns/instance?serviceName=S&groupName=DEFAULT_GROUP&namespaceId=public&ip=10.0.0.$i&port=8080&ephemeral=true&metadata=%7B%22env%22%3A%22dev%22%2C%22weight%22%3A%22100%22%7D"
done
FACADE_LIST_BYTES=$(curl -s "http://127.0.0.1:$PORT$NACOS_LIST" | wc -c)
run_wrk nacoslist.maregistry "http://127.0.0.1:$PORT$NACOS_LIST"
stop_server
start_maregistry
run_wrk nacosregister.maregistry -s scripts/wrk/nacos_register.lua "http://127.0.0.1:$PORT"
stop_server
start_maregistry
"$LOAD" --system nacos --url "http://127.0.0.1:$PORT" --instances 1000 --services 100 >&2
run_wrk nacosbeat.maregistry -s scripts/wrk/nacos_beat.lua "http://127.0.0.1:$PORT"
stop_server

log "phase consul (Consul's API beside the seed API, two nodes sharing CPU 0)"
consul_instance() { # i
  printf '{"Name":"C","ID":"c%d","Address":"10.0.0.%d","Port":8080,"Meta":{"env":"dev","weight":"100"}}' "$1" "$1"
}
# Two servers run at once on CPU 0, each driven by its own wrk on CPU 1: the scheduler
# halves CPU 0 between them, so the ratio of their rates is the ratio of their costs per
# request, whatever this machine's speed does meanwhile (it drifts by tens of percent within
# minutes: a ratio of two runs taken one after the other measured the drift as much as the
# servers). Each rate is half a core's. The first pair, the seed API on both, is the control.
PAIR_PORT=$((PORT + 1))
start_fresh_node() { # port: a node with nothing registered
  port_free "$1"
  taskset -c 0 "$MAREGISTRY" --port "$1" --grpc-port off --ttl 1h --evict-interval 1h >"$WORK/maregistry.$1.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$1/info" "$1" $!
}
start_pair_node() { # port: a node with S (seed API) and C (Consul) of 10 instances each
  start_fresh_node "$1"
  for i in $(seq 1 10); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/reg?service=S" -d "$(instance_json "$i")"
    curl -sf -o /dev/null -X PUT "http://127.0.0.1:$1/v1/agent/service/register" -d "$(consul_instance "$i")"
  done
}
# Runs DRIVE_A (against port A) and DRIVE_B (against port B) at once, ROUNDS times, each
# round on fresh servers (START, a function of a port); a drive is a function of a result
# key that runs run_wrk. Records each round's "ratio b_rps a_rps" and, as KEY, the median
# round's.
run_pair() { # key rounds start drive_a drive_b
  local key=$1 rounds=$2 start=$3 drive_a=$4 drive_b=$5 round a b
  for round in $(seq 1 "$rounds"); do
    $start "$PORT"
    $start "$PAIR_PORT"
    $drive_a "$key.a.$round" &
    $drive_b "$key.b.$round"
    wait $!
    stop_server
    a=$(cat "$WORK/result.$key.a.$round"); b=$(cat "$WORK/result.$key.b.$round")
    case "$a $b" in
      *FAILED*) echo "FAILED" >"$WORK/pair.$key.$round" ;;
      *) awk -v a="${a%% *}" -v b="${b%% *}" 'BEGIN { printf "%.3f %d %d\n", b / a, b, a }' >"$WORK/pair.$key.$round" ;;
    esac
    log "$key round $round (ratio, B req/s, A req/s): $(cat "$WORK/pair.$key.$round")"
  done
  if cat "$WORK"/pair."$key".* | grep -q FAILED; then
    echo "FAILED" >"$WORK/pair.$key"
  else
    cat "$WORK"/pair."$key".* | sort -n | sed -n "$(( (rounds + 1) / 2 ))p" >"$WORK/pair.$key"
  fi
  log "$key: median round: $(cat "$WORK/pair.$key")"
}
start_ceiling_node() { # port: the bare server answering /findAll's size on PORT, Consul's on PAIR_PORT
  if [ "$1" = "$PORT" ]; then start_ceiling "$FIND_BYTES" "$1"; else start_ceiling "$CONSUL_HEALTH_BYTES" "$1"; fi
}
start_pair_node "$PORT"
CONSUL_HEALTH_BYTES=$(curl -s "http://127.0.0.1:$PORT/v1/health/service/C" | wc -c)
CONSUL_GZIP_BYTES=$(curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT/v1/health/service/C" | wc -c)
stop_server
find_a() { run_wrk "$1" "http://127.0.0.1:$PORT/findAll?service=S"; }
find_b() { run_wrk "$1" "http://127.0.0.1:$PAIR_PORT/findAll?service=S"; }
health_b() { run_wrk "$1" "http://127.0.0.1:$PAIR_PORT/v1/health/service/C"; }
# py-consul (Python's requests) sends `Accept-Encoding: gzip, deflate` and VictoriaMetrics's
# Consul discovery `gzip`; the npm client and wrk send none.
health_gzip_b() { run_wrk "$1" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PAIR_PORT/v1/health/service/C"; }
reg_a() { run_wrk "$1" -s scripts/wrk/register.lua "http://127.0.0.1:$PORT"; }
consul_reg_b() { run_wrk "$1" -s scripts/wrk/consul_register.lua "http://127.0.0.1:$PAIR_PORT"; }
run_pair consulcontrol 3 start_pair_node find_a find_b
run_pair consulhealthgz 3 start_pair_node find_a health_gzip_b
run_pair consulhealth 3 start_pair_node find_a health_b
# What the bytes alone cost: the bare server answering each size.
run_pair consulceiling 3 start_ceiling_node find_a health_b
run_pair consulreg 3 start_fresh_node reg_a consul_reg_b
log "phase consul blocking queries (10,000 held, idle)"
# Its first line is the figure (head would cut the pipe and fail it under pipefail).
if CONSUL_WAITERS=$(CONSUL=1 python3 scripts/waiters_bench.py 10000 1000 2>&1); then
  CONSUL_WAITERS=$(printf '%s\n' "$CONSUL_WAITERS" | sed -n 1p)
else
  CONSUL_WAITERS="FAILED: $(printf '%s\n' "$CONSUL_WAITERS" | tail -1)"
fi

log "phase grpc (Nacos 2/3 clients: the same gRPC load client to both)"
SECONDS_RUN=${DURATION%s}
grpc_run() { # key system target args...
  local key=$1; shift
  if taskset -c 1 "$GRPC" --target "$@" >"$WORK/grpc.$key.json" 2>"$WORK/grpc.$key.err"; then
    log "$key: $(cat "$WORK/grpc.$key.json")"
  else
    echo '{"failed":true}' >"$WORK/grpc.$key.json"
    log "$key: FAILED ($(tail -1 "$WORK/grpc.$key.err"))"
  fi
}
# Idle connections: memory per connection once all are up, and the server's CPU while
# they are held (10 s).
grpc_idle() { # key port target
  local key=$1 port=$2 target=$3 n=10000
  local pid; pid=$(server_pid "$port")
  local before; before=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  taskset -c 1 "$GRPC" --target "$target" --mode idle --connections $n --seconds 40 >"$WORK/grpc.$key.json" 2>"$WORK/grpc.$key.err" &
  local client=$!
  for _ in $(seq 1 600); do grep -q IDLE-UP "$WORK/grpc.$key.err" 2>/dev/null && break; sleep 0.1; done
  if ! grep -q IDLE-UP "$WORK/grpc.$key.err"; then
    echo "FAILED" >"$WORK/grpc.$key.idle"; kill $client 2>/dev/null || true; wait $client 2>/dev/null || true
    log "$key: FAILED (the connections did not come up)"; return
  fi
  sleep 5
  local after; after=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  local cpu0; cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sleep 10
  local cpu1; cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill $client 2>/dev/null || true; wait $client 2>/dev/null || true
  local tick; tick=$(getconf CLK_TCK)
  awk -v b="$before" -v a="$after" -v n=$n -v c0="$cpu0" -v c1="$cpu1" -v t="$tick" \
    'BEGIN { printf "%.1f %.2f\n", (a - b) / n, (c1 - c0) / t }' >"$WORK/grpc.$key.idle"
  log "$key: $(cut -d' ' -f1 "$WORK/grpc.$key.idle") KiB per connection, $(cut -d' ' -f2 "$WORK/grpc.$key.idle") s of CPU in 10 s"
}
start_maregistry
grpc_run register.maregistry "127.0.0.1:$GRPC_PORT" --mode register --connections 64 --seconds "$SECONDS_RUN"
stop_server
start_maregistry
grpc_run fanout.maregistry "127.0.0.1:$GRPC_PORT" --mode fanout --connections 1000 --rounds 20
stop_server
# 10,000 connections are more than the gRPC listener's default share of the open-file
# limit (half of it less a reserve: 9,872 of 20,000 here).
start_maregistry --grpc-max-connections 12000
grpc_idle idle.maregistry $PORT "127.0.0.1:$GRPC_PORT"
stop_server
start_rnacos
grpc_run register.rnacos "127.0.0.1:$NACOS_GRPC" --mode register --connections 64 --seconds "$SECONDS_RUN"
stop_server
start_rnacos
grpc_run fanout.rnacos "127.0.0.1:$NACOS_GRPC" --mode fanout --connections 1000 --rounds 20
stop_server
start_rnacos
grpc_idle idle.rnacos $NACOS_PORT "127.0.0.1:$NACOS_GRPC"
stop_server

log "phase config (the Nacos config service: the same requests and load clients to both)"
CONFIG_URL="/nacos/v1/cs/configs?dataId=bench.read&group=BENCH_GROUP"
publish_config() { # port: one 1 KiB config to read
  local content; content=$(python3 -c 'print(("key.of.a.setting = a value of some length, as configs have them\n" * 20)[:1024], end="")')
  curl -sf -o /dev/null "http://127.0.0.1:$1/nacos/v1/cs/configs" -d "dataId=bench.read&group=BENCH_GROUP&type=text" \
    --data-urlencode "content=$content"
  # r-nacos has answered a publish `true` before the config read back (its reads are of a
  # cache its raft fills): wait until it does, so that the phase measures reads, not 404s.
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$1$CONFIG_URL" && return 0
    sleep 0.1
  done
  log "the config published for the read phase never read back"; exit 1
}
config_run() { # key args...: bench-config on CPU 1, its JSON in $WORK/config.<key>.json
  local key=$1; shift
  if taskset -c 1 "$CONFIG" "$@" >"$WORK/config.$key.json" 2>"$WORK/config.$key.err"; then
    log "$key: $(cat "$WORK/config.$key.json")"
  else
    echo '{"failed":true}' >"$WORK/config.$key.json"
    log "$key: FAILED ($( (grep -m1 -E 'panicked|Error|error' "$WORK/config.$key.err" || tail -1 "$WORK/config.$key.err") | tr -d '\n'))"
  fi
}
config_rss() { # key port url: 100,000 configs of 1 KiB over HTTP, then the server's VmRSS
  config_run "$1" --mode load --url "$3" --configs 100000 --size 1024 --concurrency 64
  sleep 2
  local pid; pid=$(server_pid "$2")
  # After a load that failed, the RSS is of fewer configs: no figure.
  if grep -q '"failed"' "$WORK/config.$1.json"; then
    echo FAILED >"$WORK/config.$1.rss"
  else
    awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$pid/status" >"$WORK/config.$1.rss"
  fi
  log "$1: $(cat "$WORK/config.$1.rss") MiB RSS"
}
# The gRPC ceiling: a server that only frames canned answers (bench-grpc-ceiling), under
# the same query load: what the load client and the kernel leave for any server here.
port_free $CEILING_PORT
taskset -c 0 target/release/bench-grpc-ceiling --port $CEILING_PORT >"$WORK/grpc-ceiling.log" 2>&1 &
PIDS+=($!)
sleep 1
config_run query.ceiling --mode query --target "127.0.0.1:$CEILING_PORT" --connections 64 --seconds "$SECONDS_RUN"
stop_server
for system in maregistry rnacos; do
  if [ $system = maregistry ]; then http=$PORT; grpc=$GRPC_PORT; start=start_maregistry; else http=$NACOS_PORT; grpc=$NACOS_GRPC; start=start_rnacos; fi
  $start; publish_config $http
  run_wrk cfgread.$system "http://127.0.0.1:$http$CONFIG_URL"
  stop_server
  $start; run_wrk cfgpublish.$system -s scripts/wrk/config_publish.lua "http://127.0.0.1:$http"; stop_server
  $start; config_run query.$system --mode query --target "127.0.0.1:$grpc" --connections 64 --seconds "$SECONDS_RUN"; stop_server
  $start; config_run publish.$system --mode publish --target "127.0.0.1:$grpc" --connections 64 --seconds "$SECONDS_RUN"; stop_server
  $start; config_run fanout.$system --mode fanout --target "127.0.0.1:$grpc" --connections 1000 --rounds 20; stop_server
  $start; config_run longpoll.$system --mode longpoll --url "http://127.0.0.1:$http" --connections 1000 --rounds 10; stop_server
  $start; config_rss memory.$system $http "http://127.0.0.1:$http"; stop_server
done

log "phase raft (scripts/raft_bench.py: 3 durable nodes; writes docs/benchmarks-raft.md)"
python3 scripts/raft_bench.py >&2

log "phase tls (scripts/tls_bench.py: HTTPS against plain HTTP; writes docs/benchmarks-tls.md)"
python3 scripts/tls_bench.py >&2

# --- report ------------------------------------------------------------------------------
cell() { # key -> "rps" or FAILED
  local r; r=$(cat "$WORK/result.$1")
  case "$r" in FAILED*) echo "FAILED" ;; *) echo "${r%% *}" ;; esac
}
p99() { local r; r=$(cat "$WORK/result.$1"); case "$r" in FAILED*) echo "–" ;; *) echo "${r##* }" ;; esac; }
gj() { # key dotted.field: a figure of bench-grpc's JSON, or FAILED
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
if d.get("failed"): print("FAILED"); sys.exit()
for k in sys.argv[2].split("."): d=d[k]
print(round(d, 1) if isinstance(d, float) else d)' "$WORK/grpc.$1.json" "$2"
}
idle() { local r; r=$(cat "$WORK/grpc.$1.idle"); case "$r" in FAILED*) echo "FAILED" ;; *) echo "${r% *} KiB, ${r#* } s" ;; esac; }
cj() { # key dotted.field: a figure of bench-config's JSON, or FAILED
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
if d.get("failed"): print("FAILED"); sys.exit()
for k in sys.argv[2].split("."): d=d[k]
print(round(d, 1) if isinstance(d, float) else d)' "$WORK/config.$1.json" "$2"
}
crss() { cat "$WORK/config.$1.rss" 2>/dev/null || echo FAILED; }
pair() { # key field: a field of run_pair's median round (1 ratio, 2 B req/s, 3 A req/s), or FAILED
  local r; r=$(cat "$WORK/pair.$1")
  case "$r" in FAILED*) echo "FAILED" ;; *) echo "$r" | awk -v f="$2" '{ printf (f == 1 ? "%.2f" : "%s"), $f }' ;; esac
}
ratio() { # a b
  case "$1$2" in *FAILED*|*–*) echo "–" ;; *) awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }' ;; esac
}

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`bash scripts/bench.sh\` (\`just bench\`) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`. Machine: $(nproc) cores, $CPU."
  echo
  echo "Each phase starts a fresh server pinned to CPU 0 (\`taskset -c 0\`) and runs"
  echo "\`wrk -t1 -c$CONNECTIONS -d$DURATION --latency\` pinned to CPU 1. A phase with any non-2xx"
  echo "answer or socket error would show FAILED instead of a number. Ratios are what count;"
  echo "absolute numbers vary between machines."
  echo
  echo "| phase | maregistry req/s | p99 ms | r-nacos req/s | p99 ms | ceiling req/s | maregistry / r-nacos | maregistry / ceiling |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "| find (10 instances) | $(cell find.maregistry) | $(p99 find.maregistry) | $(cell find.rnacos) | $(p99 find.rnacos) | $(cell find.ceiling) | $(ratio "$(cell find.maregistry)" "$(cell find.rnacos)") | $(ratio "$(cell find.maregistry)" "$(cell find.ceiling)") |"
  echo "| register (new instance each) | $(cell register.maregistry) | $(p99 register.maregistry) | $(cell register.rnacos) | $(p99 register.rnacos) | | $(ratio "$(cell register.maregistry)" "$(cell register.rnacos)") | |"
  echo "| renew (1,000 known instances) | $(cell renew.maregistry) | $(p99 renew.maregistry) | $(cell renew.rnacos) | $(p99 renew.rnacos) | | $(ratio "$(cell renew.maregistry)" "$(cell renew.rnacos)") | |"
  echo "| renew (100,000 known instances) | $(cell renew100k.maregistry) | $(p99 renew100k.maregistry) | | | | | |"
  echo
  echo "| memory | maregistry | r-nacos | maregistry / r-nacos |"
  echo "|---|---|---|---|"
  echo "| RSS after 100,000 instances (1,000 services, 2 metadata entries each) | $RSS_MAREGISTRY MiB | $RSS_RNACOS MiB | $(ratio "$RSS_MAREGISTRY" "$RSS_RNACOS") |"
  echo
  echo "The raft mode (3 durable nodes: write-to-visible latency, register through raft, renew on"
  echo "the leader, cold restart with 100,000 instances) is in [benchmarks-raft.md](benchmarks-raft.md),"
  echo "written by the same run."
  echo
  echo "Answer sizes: maregistry \`/findAll\` $FIND_BYTES bytes (the ceiling server answers the same size),"
  echo "r-nacos instance list $NACOS_FIND_BYTES bytes."
  echo
  echo "The Nacos open API, the same requests to both (r-nacos's figures are its rows above):"
  echo
  echo "| Nacos request | maregistry req/s | p99 ms | r-nacos req/s | maregistry / r-nacos |"
  echo "|---|---|---|---|---|"
  echo "| \`GET instance/list\` (10 instances; maregistry $FACADE_LIST_BYTES bytes, r-nacos $NACOS_FIND_BYTES bytes) | $(cell nacoslist.maregistry) | $(p99 nacoslist.maregistry) | $(cell find.rnacos) | $(ratio "$(cell nacoslist.maregistry)" "$(cell find.rnacos)") |"
  echo "| \`POST instance\` (a new instance each) | $(cell nacosregister.maregistry) | $(p99 nacosregister.maregistry) | $(cell register.rnacos) | $(ratio "$(cell nacosregister.maregistry)" "$(cell register.rnacos)") |"
  echo "| \`PUT instance/beat\` (1,000 known instances) | $(cell nacosbeat.maregistry) | $(p99 nacosbeat.maregistry) | $(cell renew.rnacos) | $(ratio "$(cell nacosbeat.maregistry)" "$(cell renew.rnacos)") |"
  echo
  echo "Consul's HTTP API beside the seed API (10 instances with two metadata entries each;"
  echo "Consul's answer $CONSUL_HEALTH_BYTES bytes with the node and checks, $CONSUL_GZIP_BYTES gzipped; the seed's $FIND_BYTES"
  echo "bytes). Two servers run at once on CPU 0, each driven by its own wrk on CPU 1: the"
  echo "scheduler halves the core between them, so each rate is half a core's and their ratio is"
  echo "the ratio of their costs per request, unmoved by this machine's drift. Three rounds on"
  echo "fresh servers; each row is the median round. The first row, the seed API on both, is the"
  echo "control:"
  echo
  echo "| pair (B beside A) | B req/s | A req/s | B / A |"
  echo "|---|---|---|---|"
  echo "| control: \`GET /findAll?service=S\` beside itself | $(pair consulcontrol 2) | $(pair consulcontrol 3) | $(pair consulcontrol 1) |"
  echo "| \`GET /v1/health/service/C\` as Consul's clients send it (\`Accept-Encoding: gzip\`) beside \`GET /findAll?service=S\` | $(pair consulhealthgz 2) | $(pair consulhealthgz 3) | $(pair consulhealthgz 1) |"
  echo "| \`GET /v1/health/service/C\` without gzip beside \`GET /findAll?service=S\` | $(pair consulhealth 2) | $(pair consulhealth 3) | $(pair consulhealth 1) |"
  echo "| the bare server (\`bench-ceiling\`) answering $CONSUL_HEALTH_BYTES bytes beside $FIND_BYTES bytes: what the bytes alone cost | $(pair consulceiling 2) | $(pair consulceiling 3) | $(pair consulceiling 1) |"
  echo "| \`PUT /v1/agent/service/register\` beside \`POST /reg\` (a new instance each) | $(pair consulreg 2) | $(pair consulreg 3) | $(pair consulreg 1) |"
  echo
  echo "Blocking queries (\`CONSUL=1 python3 scripts/waiters_bench.py 10000 1000\`): $CONSUL_WAITERS"
  echo
  echo "Nacos 2/3 clients over gRPC, the same load client (\`bench-grpc\`, pinned to CPU 1) to both:"
  echo
  echo "| gRPC | maregistry | r-nacos | maregistry / r-nacos |"
  echo "|---|---|---|---|"
  echo "| register (64 connections, a new instance in a new service each), per second | $(gj register.maregistry per_second) | $(gj register.rnacos per_second) | $(ratio "$(gj register.maregistry per_second)" "$(gj register.rnacos per_second)") |"
  echo "| register latency p50 / p99 ms | $(gj register.maregistry latency.p50_ms) / $(gj register.maregistry latency.p99_ms) | $(gj register.rnacos latency.p50_ms) / $(gj register.rnacos latency.p99_ms) | |"
  echo "| push to 1,000 subscribers, each delivery p50 / p99 / max ms (20 changes) | $(gj fanout.maregistry delivery.p50_ms) / $(gj fanout.maregistry delivery.p99_ms) / $(gj fanout.maregistry delivery.max_ms) | $(gj fanout.rnacos delivery.p50_ms) / $(gj fanout.rnacos delivery.p99_ms) / $(gj fanout.rnacos delivery.max_ms) | |"
  echo "| 10,000 idle connections: KiB each, CPU seconds in 10 s | $(idle idle.maregistry) | $(idle idle.rnacos) | |"
  echo
  echo "## Configs"
  echo
  echo "The Nacos config service, the same requests and load clients to both (1 KiB contents;"
  echo "wrk and \`bench-config\` pinned to CPU 1, the server to CPU 0):"
  echo
  echo "| configs | maregistry | r-nacos | maregistry / r-nacos |"
  echo "|---|---|---|---|"
  echo "| v1 \`GET /nacos/v1/cs/configs\` (wrk -c$CONNECTIONS), req/s | $(cell cfgread.maregistry) (p99 $(p99 cfgread.maregistry) ms) | $(cell cfgread.rnacos) (p99 $(p99 cfgread.rnacos) ms) | $(ratio "$(cell cfgread.maregistry)" "$(cell cfgread.rnacos)") |"
  echo "| v1 \`POST /nacos/v1/cs/configs\`, a new config each (wrk -c$CONNECTIONS), req/s | $(cell cfgpublish.maregistry) (p99 $(p99 cfgpublish.maregistry) ms) | $(cell cfgpublish.rnacos) (p99 $(p99 cfgpublish.rnacos) ms) | $(ratio "$(cell cfgpublish.maregistry)" "$(cell cfgpublish.rnacos)") |"
  echo "| gRPC \`ConfigQueryRequest\` (64 connections), per second | $(cj query.maregistry per_second) (p99 $(cj query.maregistry latency.p99_ms) ms) | $(cj query.rnacos per_second) (p99 $(cj query.rnacos latency.p99_ms) ms) | $(ratio "$(cj query.maregistry per_second)" "$(cj query.rnacos per_second)") |"
  echo "| the same queries to the gRPC ceiling (\`bench-grpc-ceiling\`: canned answers, no work), per second | $(cj query.ceiling per_second) (p99 $(cj query.ceiling latency.p99_ms) ms); maregistry at $(ratio "$(cj query.maregistry per_second)" "$(cj query.ceiling per_second)") of it | | ceiling / r-nacos $(ratio "$(cj query.ceiling per_second)" "$(cj query.rnacos per_second)") |"
  echo "| gRPC \`ConfigPublishRequest\`, a new config each (64 connections), per second | $(cj publish.maregistry per_second) (p99 $(cj publish.maregistry latency.p99_ms) ms) | $(cj publish.rnacos per_second) (p99 $(cj publish.rnacos latency.p99_ms) ms) | $(ratio "$(cj publish.maregistry per_second)" "$(cj publish.rnacos per_second)") |"
  echo "| one publish pushed to 1,000 listening gRPC connections, each delivery p50 / p99 / max ms (20 publishes) | $(cj fanout.maregistry delivery.p50_ms) / $(cj fanout.maregistry delivery.p99_ms) / $(cj fanout.maregistry delivery.max_ms) | $(cj fanout.rnacos delivery.p50_ms) / $(cj fanout.rnacos delivery.p99_ms) / $(cj fanout.rnacos delivery.max_ms) | |"
  echo "| one publish answering 1,000 v1 long polls, each answer p50 / p99 / max ms (10 publishes) | $(cj longpoll.maregistry delivery.p50_ms) / $(cj longpoll.maregistry delivery.p99_ms) / $(cj longpoll.maregistry delivery.max_ms) | $(cj longpoll.rnacos delivery.p50_ms) / $(cj longpoll.rnacos delivery.p99_ms) / $(cj longpoll.rnacos delivery.max_ms) | |"
  echo "| RSS after 100,000 configs of 1 KiB (published over HTTP) | $(crss memory.maregistry) MiB | $(crss memory.rnacos) MiB | $(ratio "$(crss memory.maregistry)" "$(crss memory.rnacos)") |"
  echo
  echo "Durable config publishes through 3 raft nodes against etcd puts of the same content are in"
  echo "[benchmarks-raft.md](benchmarks-raft.md)."
  echo
  echo "## Commands"
  echo
  echo '```sh'
  echo "taskset -c 0 target/release/maregistry --port $PORT --ttl 1h --evict-interval 1h   # gRPC on $GRPC_PORT"
  echo "RNACOS_HTTP_PORT=$NACOS_PORT RNACOS_HTTP_CONSOLE_PORT=0 RNACOS_GRPC_PORT=$NACOS_GRPC RNACOS_CONFIG_DB_DIR=\$TMP/db RNACOS_DATA_DIR=\$TMP/data \\"
  echo "  RNACOS_NAMING_INSTANCE_TIMEOUT_SECOND=3600 RNACOS_NAMING_HEALTH_TIMEOUT_SECOND=3600 taskset -c 0 target/peer/bin/rnacos"
  echo "taskset -c 0 target/release/bench-ceiling --port $CEILING_PORT --body-bytes $FIND_BYTES"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency 'http://127.0.0.1:$PORT/findAll?service=S'"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency 'http://127.0.0.1:$NACOS_PORT/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40S&namespaceId=public&healthyOnly=false'"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk/register.lua http://127.0.0.1:$PORT"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk/nacos_register.lua http://127.0.0.1:$NACOS_PORT"
  echo "target/release/bench-load --system maregistry --url http://127.0.0.1:$PORT --instances 1000 --services 100"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk/renew.lua http://127.0.0.1:$PORT"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk/nacos_beat.lua http://127.0.0.1:$NACOS_PORT"
  echo "target/release/bench-load --system maregistry --url http://127.0.0.1:$PORT --instances 100000 --services 1000"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk/renew.lua http://127.0.0.1:$PORT -- 100000 1000"
  echo "target/release/bench-load --system maregistry --url http://127.0.0.1:$PORT --instances 100000 --services 1000   # then VmRSS"
  echo "taskset -c 1 target/release/bench-grpc --target 127.0.0.1:$GRPC_PORT --mode register --connections 64 --seconds $SECONDS_RUN   # r-nacos: 127.0.0.1:$NACOS_GRPC"
  echo "taskset -c 1 target/release/bench-grpc --target 127.0.0.1:$GRPC_PORT --mode fanout --connections 1000 --rounds 20"
  echo "taskset -c 1 target/release/bench-grpc --target 127.0.0.1:$GRPC_PORT --mode idle --connections 10000 --seconds 40   # the node with --grpc-max-connections 12000; VmRSS before and after, utime+stime over 10 s"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency 'http://127.0.0.1:$PORT$CONFIG_URL'   # after one 1 KiB publish"
  echo "taskset -c 1 wrk -t1 -c$CONNECTIONS -d$DURATION --latency -s scripts/wrk/config_publish.lua http://127.0.0.1:$PORT"
  echo "taskset -c 1 target/release/bench-config --mode query --target 127.0.0.1:$GRPC_PORT --connections 64 --seconds $SECONDS_RUN   # and --mode publish"
  echo "taskset -c 0 target/release/bench-grpc-ceiling --port $CEILING_PORT   # the same query load against it"
  echo "taskset -c 1 target/release/bench-config --mode fanout --target 127.0.0.1:$GRPC_PORT --connections 1000 --rounds 20"
  echo "taskset -c 1 target/release/bench-config --mode longpoll --url http://127.0.0.1:$PORT --connections 1000 --rounds 10"
  echo "taskset -c 1 target/release/bench-config --mode load --url http://127.0.0.1:$PORT --configs 100000 --size 1024   # then VmRSS"
  echo '```'
  echo
  if [ -f docs/benchmarks-notes.md ]; then cat docs/benchmarks-notes.md; echo; fi
  echo "## Raw wrk output"
  for key in find.maregistry find.rnacos find.ceiling register.maregistry register.rnacos renew.maregistry renew.rnacos renew100k.maregistry nacoslist.maregistry nacosregister.maregistry nacosbeat.maregistry cfgread.maregistry cfgread.rnacos cfgpublish.maregistry cfgpublish.rnacos; do
    echo
    echo "### $key"
    echo
    cat "$WORK/raw.$key"
  done
} >"$OUT"
log "wrote $OUT"
