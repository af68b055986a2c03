#!/usr/bin/env bash
# The one installer of what the tests need beyond Rust. `.ci/run` calls it first; the tests
# call it again (through tests' support code) and find everything in place.
#
#   scripts/test-deps.sh python    a venv with tests/deps/requirements.lock; prints its dir
#   scripts/test-deps.sh python-nacos3   a venv with tests/deps/nacos3.lock; prints its dir
#   scripts/test-deps.sh node      node_modules from tests/deps/package-lock.json; prints its dir
#   scripts/test-deps.sh browser   Debian's chromium and chromium-driver; prints chromedriver's path
#   scripts/test-deps.sh scraper   Debian's victoria-metrics (consul_sd_configs); prints its path
#   scripts/test-deps.sh all       all of the above (CI)
#   scripts/test-deps.sh lock      regenerates both locks from tests/deps/requirements.in and
#                                  tests/deps/package.json (needs the PyPI and npm registries)
#
# Everything goes under target/test-deps/ (or $CARGO_TARGET_DIR/test-deps), never into the
# system Python or a global node_modules. Each install lives in a directory named by the hash
# of its lock (and the interpreter's version), so a changed lock installs afresh, a clean
# clone starts from the lock exactly as a fresh machine does, and a second run installs
# nothing. Installs are all-or-nothing (a `.complete` marker is written last) and serialised
# by a file lock, so tests that ask at once install once.
#
# Debian's packages are not pinned to a version: Debian's archive serves only the current
# build of chromium (security fixes replace it), so a pinned version would stop installing
# the day a fix ships. The console test uses only the WebDriver protocol, which both keep.
#
# On failure the last line on stderr names what is missing and the command to run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
locks="$repo/tests/deps"
deps="${CARGO_TARGET_DIR:-$repo/target}/test-deps"
# uv writes the Python lock; pinned so that a regenerated lock reads the same.
UV=uv==0.13.9

fail() {
  printf 'test-deps: %s\n' "$*" >&2
  exit 1
}

# The first 16 hex digits of the sha256 of stdin.
digest() { sha256sum | cut -c1-16; }

# Runs "$@" with its output in $log; on failure shows the log's tail and fails with $1.
logged() {
  local what="$1" log="$2"
  shift 2
  if ! "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "$what (the log: $log)"
  fi
}

# Keeps only the newest install of a kind: removes the other `$prefix-*` dirs.
prune() {
  local keep="$1" prefix="$2" old rest
  for old in "$deps/$prefix"-*; do
    rest="${old#"$deps/$prefix"-}"
    # Only this kind's installs (py-requirements-<key>, not py-requirements-x-<key>).
    [ -e "$old" ] && [ "$old" != "$keep" ] && [ "${rest#*-}" = "$rest" ] && rm -rf "$old"
  done
  return 0
}

# A venv from tests/deps/$1.lock (requirements.lock: schemathesis and the 1.x clients;
# nacos3.lock: nacos-sdk-python 3.x, which shares the 1.x client's package name and so needs
# a venv of its own); prints its dir.
python_env() {
  local name="$1" lock="$locks/$1.lock" prefix="py-$1"
  command -v python3 >/dev/null 2>&1 \
    || fail "python: python3 is missing; install Python 3 with its venv module, then run scripts/test-deps.sh python"
  local version key dir log
  version="$(python3 -c 'import sys; print(sys.version)')"
  key="$({ cat "$lock" "$locks/build.lock"; echo "$version"; } | digest)"
  dir="$deps/$prefix-$key"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    log="$dir/install.log"
    logged "python: python3 -m venv failed; install Python 3's venv module (Debian: python3-venv), then run scripts/test-deps.sh python" \
      "$log" python3 -m venv "$dir/venv"
    # Every file checked against the lock's hashes, nothing that the lock does not name.
    # Wheels only, but for the packages published only as source (nacos3.lock): those are
    # built with the pinned tools of build.lock, installed first, not fetched unpinned.
    local binaries=(--only-binary :all:)
    if [ "$name" = nacos3 ]; then
      logged "python: installing tests/deps/build.lock failed; run scripts/test-deps.sh python (needs the PyPI registry)" \
        "$log" "$dir/venv/bin/python" -m pip install --disable-pip-version-check --no-input \
        --require-hashes --only-binary :all: --no-deps -r "$locks/build.lock"
      binaries=(--prefer-binary --no-build-isolation)
    fi
    logged "python: installing tests/deps/$name.lock failed; run scripts/test-deps.sh python (needs the PyPI registry)" \
      "$log" "$dir/venv/bin/python" -m pip install --disable-pip-version-check --no-input \
      --require-hashes "${binaries[@]}" --no-deps -r "$lock"
    logged "python: the tools of tests/deps/$name.lock do not start; run scripts/test-deps.sh python" \
      "$log" "$dir/venv/bin/python" -c "$(imports "$name")"
    touch "$dir/.complete"
    prune "$dir" "$prefix"
  fi
  echo "$dir/venv"
}

# What a venv must be able to import.
imports() {
  case "$1" in
    requirements) echo 'import schemathesis.cli, nacos, py_eureka_client' ;;
    nacos3) echo 'import v2.nacos' ;;
  esac
}

node_env() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || fail "node: node or npm is missing; install Node.js with npm (Debian: nodejs npm), then run scripts/test-deps.sh node"
  local key dir log
  key="$({ cat "$locks/package-lock.json"; node --version; } | digest)"
  dir="$deps/npm-$key"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    log="$dir/install.log"
    cp "$locks/package.json" "$locks/package-lock.json" "$dir/"
    # `npm ci` installs exactly the lock (integrity-checked) and fails if it disagrees with
    # package.json; scripts of packages do not run.
    logged "node: npm ci of tests/deps/package-lock.json failed; run scripts/test-deps.sh node (needs the npm registry)" \
      "$log" npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts
    touch "$dir/.complete"
    prune "$dir" npm
  fi
  echo "$dir/node_modules"
}

# Installs Debian packages ($3...) unless $2 is there already; $1 names the kind in errors.
debian() {
  local kind="$1" wanted="$2"
  shift 2
  [ -x "$wanted" ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
      || fail "$kind: $* missing and installing needs root; run: sudo apt-get install -y $*"
    sudo="sudo -n"
  fi
  mkdir -p "$deps"
  local log="$deps/apt.log"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q "$@" >>"$log" 2>&1; then
    logged "$kind: apt-get install $* failed; run scripts/test-deps.sh $kind (needs Debian's package archive)" \
      "$log" bash -c "$sudo apt-get update -q && $sudo apt-get install -y -q $*"
  fi
  [ -x "$wanted" ] || fail "$kind: $wanted is still missing after apt-get; run: apt-get install -y $*"
}

browser() {
  [ -x /usr/bin/chromium ] || debian browser /usr/bin/chromium chromium chromium-driver
  debian browser /usr/bin/chromedriver chromium chromium-driver
  echo /usr/bin/chromedriver
}

# Debian's VictoriaMetrics: a Prometheus-compatible scraper with consul_sd_configs (Debian
# builds its prometheus without Consul discovery).
scraper() {
  debian scraper /usr/bin/victoria-metrics victoria-metrics
  echo /usr/bin/victoria-metrics
}

# Regenerates both locks; run after changing tests/deps/requirements.in or package.json.
lock() {
  local tools="$deps/tools"
  if [ ! -x "$tools/bin/uv" ]; then
    python3 -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "$UV"
  fi
  local name out
  for name in requirements nacos3 build; do
    out="$(mktemp)"
    "$tools/bin/uv" pip compile --quiet --python-version 3.11 --generate-hashes \
      --custom-compile-command "scripts/test-deps.sh lock" \
      "$locks/$name.in" -o "$out"
    {
      echo "# The Python side of the tests, locked with hashes: made by $UV from $name.in,"
      echo "# installed by scripts/test-deps.sh with pip --require-hashes --only-binary :all: into"
      echo "# target/test-deps/. The direct pins and why, as $name.in gives them:"
      echo "#"
      sed -e 's/^# \{0,1\}/#   /' -e 's/^\([^#]\)/#   \1/' -e 's/ *$//' "$locks/$name.in"
      echo "#"
      cat "$out"
    } >"$locks/$name.lock"
    rm -f "$out"
  done
  # Only writes package-lock.json from package.json's exact pins (nothing is installed);
  # tests and CI install with `npm ci` from that lock.
  (cd "$locks" && npm install --package-lock-only --no-audit --no-fund --ignore-scripts >/dev/null)
  echo "regenerated tests/deps/*.lock and tests/deps/package-lock.json" >&2
}

with_lock() {
  mkdir -p "$deps"
  exec 9>"$deps/.lock"
  flock -w 900 9 || fail "another install holds $deps/.lock for 15 minutes; remove it if nothing runs"
  "$@"
}

case "${1:-}" in
  python) with_lock python_env requirements ;;
  python-nacos3) with_lock python_env nacos3 ;;
  node) with_lock node_env ;;
  browser) with_lock browser ;;
  scraper) with_lock scraper ;;
  all)
    with_lock python_env requirements >/dev/null
    python_env nacos3 >/dev/null
    node_env >/dev/null
    browser >/dev/null
    scraper >/dev/null
    printf 'test-deps: ready in %s (python, node) and %s, %s\n' "$deps" \
      "$(/usr/bin/chromium --version)" "$("$(python_env requirements)/bin/python" -m schemathesis.cli --version)" >&2
    ;;
  lock) with_lock lock ;;
  *)
    echo "usage: scripts/test-deps.sh python|python-nacos3|node|browser|scraper|all|lock" >&2
    exit 2
    ;;
esac
