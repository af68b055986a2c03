# The steps CI runs (.ci/run), one by one, plus running a node, a local cluster, and the benchmark.

default: ci

fmt:
    cargo fmt --all

lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

test:
    cargo test --workspace

# What the tests need beyond Rust (tests/deps/), into target/test-deps/; the tests call it too.
test-deps:
    bash scripts/test-deps.sh all

# Regenerate tests/deps/requirements.lock and package-lock.json after changing their inputs.
lock-test-deps:
    bash scripts/test-deps.sh lock

doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Everything CI checks.
ci:
    bash .ci/run

# One in-memory node on 127.0.0.1:8484.
run *ARGS:
    cargo run --release --bin maregistry -- {{ARGS}}

# Three local nodes on 8081..8083 (Ctrl-C stops all three).
cluster:
    cargo build --release --bin maregistry
    trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
    for port in 8081 8082 8083; do \
      ./target/release/maregistry --port $port --cluster-interval 1s \
        --server-list http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 & \
    done; wait

# Three local durable (raft) nodes on 8081..8083, data in ./data (Ctrl-C stops all three).
raft-cluster:
    cargo build --release --bin maregistry
    trap 'kill $(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
    for port in 8081 8082 8083; do \
      ./target/release/maregistry --port $port --data-dir data/$port \
        --server-list http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 & \
    done; wait

# Two nodes in one process; prints what it sees.
example:
    cargo run --example two_node

# The side-by-side benchmark (see docs/benchmarks.md).
bench:
    bash scripts/bench.sh
