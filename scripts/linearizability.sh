#!/usr/bin/env bash
# The linearizability runs of the test suite (bins/maregistry/tests/all/linearizability.rs),
# longer and repeated: 3 nodes (the leader cut off, a one-way cut, a follower cut off) and 5
# nodes (the leader cut off alone and with one follower, the cuts dropping what crosses
# them), every history checked per instance, every election timed.
#
#   scripts/linearizability.sh                 (5 rounds of 40 s runs)
#   ROUNDS=20 SECS=60 scripts/linearizability.sh
#
# Stops at the first run that fails, with its output; prints each run's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
secs=${SECS:-40}
case "$rounds$secs" in
  *[!0-9]*) echo "linearizability.sh: ROUNDS and SECS are whole numbers" >&2; exit 2 ;;
esac
cargo test --release -p maregistry --test all --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for round in $(seq 1 "$rounds"); do
  if ! MAREGISTRY_LIN_SECS=$secs cargo test --release -q -p maregistry --test all -- \
      linearizability:: --test-threads 1 --nocapture >"$log" 2>&1; then
    cat "$log"
    echo "linearizability.sh: round $round of $rounds failed" >&2
    exit 1
  fi
  grep -oE '[0-9]+ nodes: .*' "$log" | sed "s/^/round $round: /"
done
echo "linearizability.sh: $rounds rounds of ${secs} s runs, all linearizable"
