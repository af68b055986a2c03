#!/usr/bin/env bash
# A raft node under an open-file limit of 300, flooded 20 s (scripts/fd_flood.py) while
# bench-grpc registers over 8 gRPC connections (a snapshot every 10 entries): does it
# stay up? Prints EXITED or ALIVE, the snapshots written, the EMFILE lines of its log.
#   bash scripts/fd_flood.sh target/release/maregistry
cd "$(dirname "$0")/.."
BIN=$1; P=28484; G=29484; D=$(mktemp -d)
ulimit -n 4096
prlimit --nofile=300:300 $BIN --port $P --grpc-port $G --data-dir $D --raft-snapshot-every 10 > $D/log 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$P/leader && break; sleep 0.1; done; sleep 2
for i in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$P/reg?service=kept" -d "{\"scheme\":\"http\",\"host\":\"10.9.0.1\",\"port\":$((1000+i)),\"context\":\"\"}"; done
target/release/bench-grpc --target 127.0.0.1:$G --mode register --connections 8 --seconds 20 > $D/grpc.json 2>$D/grpc.err &
sleep 1
python3 scripts/fd_flood.py $P $G 20 &
FL=$!
for s in $(seq 1 25); do sleep 1; kill -0 $PID 2>/dev/null || { echo "EXITED after ${s}s"; break; }; done
wait $FL
kill -0 $PID 2>/dev/null && echo "ALIVE" 
echo "snapshots: $(grep -c 'raft snapshot written' $D/log); EMFILE lines: $(grep -c 'Too many open files' $D/log)"; grep -i "error\|fatal\|panic" $D/log | grep -v "accept" | head -5
echo "after: /services: $(curl -s -m 5 http://127.0.0.1:$P/services | head -c 200)"
cat $D/grpc.json | head -c 200; echo
kill -9 $PID 2>/dev/null; rm -rf $D
