#!/usr/bin/env bash
# Soak test (not in CI): 3 nodes, 60 s of churn through random nodes, in both cluster modes.
# Checks zero 5xx, checksum-equal registries within 1 s of the churn stopping, and RSS flat
# (+-10%, 10-second means) between the 20th and the last second. See scripts/soak.py.
#
#   bash scripts/soak.sh            (SOAK_SECONDS=60 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${SOAK_SECONDS:-60}
cargo build --release --bin maregistry -q
status=0
for mode in snapshot raft; do
  echo "== $mode mode"
  python3 scripts/soak.py "$mode" "$SECONDS_" || status=1
done
exit $status
