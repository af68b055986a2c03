#!/usr/bin/env python3
"""The raft mode's benchmark (issue 8): writes docs/benchmarks-raft.md.

Phases, each on fresh release nodes on loopback with fresh data dirs:
  1. visibility: 3 raft nodes; N writes to the leader one at a time, each polled on both
     followers every 1 ms until listed; p50/p90/p99/max of the slower follower. The
     snapshot mode's figure at its default interval comes from scripts/sync_latency.py.
  2. register throughput through raft with fsync: wrk -c64 register.lua on the leader of
     3 nodes (the three share the machine's cores with wrk: no pinning), and on one durable
     node pinned to CPU 0 with wrk on CPU 1 (the layout of scripts/bench.sh).
  3. renew on a raft leader vs the snapshot mode: one node pinned to CPU 0, 1,000
     instances loaded, wrk renew.lua on CPU 1.
  4. cold restart: one durable node loaded with 100,000 instances, kill -9, restart; time
     until /info answers with the same version.
  5. a follower down while 100,000 instances are registered catches up by snapshot install.
  6. etcd side by side: 3 raft nodes and 3 etcd 3.4 members (Debian's etcd-server, installed
     when missing), wrk -c64 on each leader, registrations against puts of the same record
     (scripts/wrk/register.lua, etcd_put.lua), then config publishes of 1 KiB against puts
     of the same content (config_publish.lua, etcd_config_put.lua), two alternating rounds.
     Each pair of scripts costs wrk the same per request (built once in init, or put
     together from a fixed part and the key alike), so wrk is never what one side is
     measured by.

    python3 scripts/raft_bench.py            (needs wrk; builds nothing: run
                                              cargo build --release --bin maregistry --bin bench-load first)
    RAFT_BENCH_WRITES=200 RAFT_BENCH_DURATION=10s python3 scripts/raft_bench.py
    RAFT_BENCH_ONLY=etcd python3 scripts/raft_bench.py   (phase 6 only; prints, writes nothing)
"""
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = "target/release/maregistry"
LOAD = "target/release/bench-load"
WRITES = int(os.environ.get("RAFT_BENCH_WRITES", "200"))
DURATION = os.environ.get("RAFT_BENCH_DURATION", "10s")
OUT = "docs/benchmarks-raft.md"
FAILOVER_HEADING = "## Failover (`scripts/failover_bench.py`)"
PORTS = [18801, 18802, 18803]


def call(url, body=None, timeout=10):
    data = body.encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=timeout) as r:
        return json.loads(r.read())


def wait(what, check, limit=120):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.05)
    sys.exit(f"raft_bench: timed out waiting for {what}")


class Nodes:
    """Release maregistry processes; stopped (SIGKILL) on exit."""

    def __init__(self):
        self.procs = {}
        self.work = tempfile.mkdtemp(prefix="raft-bench-")

    def start(self, port, args, cpu=None):
        cmd = [BIN, "--port", str(port)] + args
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu)] + cmd
        log = open(os.path.join(self.work, f"{port}.log"), "ab")
        self.procs[port] = subprocess.Popen(cmd, stderr=log, stdout=subprocess.DEVNULL)
        return self.procs[port]

    def kill(self, port):
        p = self.procs.pop(port, None)
        if p:
            p.kill()
            p.wait()

    def stop_all(self):
        for port in list(self.procs):
            self.kill(port)

    def cleanup(self):
        self.stop_all()
        shutil.rmtree(self.work, ignore_errors=True)


def write_keeping(path, text, heading):
    """Writes `text` to `path`, keeping what the file had from `heading` on (a section
    written by hand or by another script)."""
    kept = ""
    if os.path.exists(path):
        old = open(path).read()
        at = old.find(heading)
        kept = old[at:] if at >= 0 else ""
    with open(path, "w") as f:
        f.write(text + ("\n" + kept if kept else ""))


def leader_of(urls):
    def agreed():
        leaders = {call(u + "/leader")["url"] for u in urls}
        (leader,) = leaders
        return leader if call(leader + "/info")["leader"] else None
    return wait("a leader", agreed)


def raft_cluster(nodes, phase, extra=()):
    """Three raft nodes on fresh data dirs of their own for `phase`."""
    urls = [f"http://127.0.0.1:{p}" for p in PORTS]
    for p in PORTS:
        nodes.start(p, ["--data-dir", os.path.join(nodes.work, phase, str(p)), "--server-list", ",".join(urls),
                        "--ttl", "1h", "--evict-interval", "1h"] + list(extra))
    return urls, leader_of(urls)


def wrk(url, script, args=(), cpu=None):
    cmd = ["wrk", "-t1", "-c64", "-d" + DURATION, "--latency", "-s", script, url]
    if args:
        cmd += ["--"] + list(args)
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if "Non-2xx" in out or "Socket errors" in out:
        return f"FAILED ({out.strip().splitlines()[-3:]})", out
    return rps, out


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def visibility(nodes):
    urls, leader = raft_cluster(nodes, "visibility")
    followers = [u for u in urls if u != leader]
    conns = {u: http.client.HTTPConnection("127.0.0.1", int(u.rsplit(":", 1)[1])) for u in urls}

    def get(u, path):
        c = conns[u]
        c.request("GET", path)
        return json.loads(c.getresponse().read())

    def post(u, path, body):
        c = conns[u]
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status

    delays = []
    for i in range(WRITES):
        port = 1000 + i
        body = json.dumps({"scheme": "http", "host": "10.0.0.1", "port": port})
        t0 = time.perf_counter()
        post(leader, "/reg?service=latency", body)
        for f in followers:
            while not any(x["port"] == port for x in get(f, "/findAll?service=latency")):
                time.sleep(0.001)
        delays.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)
    nodes.stop_all()
    return delays


def snapshot_mode_visibility():
    out = subprocess.run([sys.executable, "scripts/sync_latency.py", "5s", "8"], capture_output=True, text=True,
                         check=True).stdout
    return out.strip().splitlines()[-1]


def register(nodes):
    urls, leader = raft_cluster(nodes, "register")
    three, _ = wrk(leader, "scripts/wrk/register.lua")
    entries = call(leader + "/info")
    nodes.stop_all()
    one_dir = os.path.join(nodes.work, "one-register")
    nodes.start(PORTS[0], ["--data-dir", one_dir, "--ttl", "1h", "--evict-interval", "1h"], cpu=0)
    leader_of([f"http://127.0.0.1:{PORTS[0]}"])
    one, _ = wrk(f"http://127.0.0.1:{PORTS[0]}", "scripts/wrk/register.lua", cpu=1)
    nodes.stop_all()
    return three, one, entries


ETCD_PORTS = [(12379, 12380), (22379, 22380), (32379, 32380)]


def etcd_cluster(work, round_no):
    """Three etcd members on loopback with fresh data dirs (defaults: heartbeat 100 ms,
    election 1 s, every write fsynced); answers the processes and the leader's client url."""
    cluster = ",".join(f"e{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ETCD_PORTS))
    procs = []
    for i, (client, peer) in enumerate(ETCD_PORTS):
        cmd = ["etcd", "--name", f"e{i}", "--data-dir", os.path.join(work, f"etcd-{round_no}-{i}"),
               "--listen-client-urls", f"http://127.0.0.1:{client}",
               "--advertise-client-urls", f"http://127.0.0.1:{client}",
               "--listen-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
               "--initial-cluster", cluster, "--initial-cluster-state", "new", "--log-level", "error"]
        log = open(os.path.join(work, f"etcd-{i}.log"), "ab")
        procs.append(subprocess.Popen(cmd, stderr=log, stdout=subprocess.DEVNULL))

    def leader():
        for client, _ in ETCD_PORTS:
            status = call(f"http://127.0.0.1:{client}/v3/maintenance/status", body="{}")
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return f"http://127.0.0.1:{client}"
        return None
    return procs, wait("an etcd leader", leader)


def wrk_p99(out):
    """wrk --latency's 99% line, in ms."""
    match = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# What each side of the etcd comparison runs: maregistry's wrk script, etcd's, the row's words.
ETCD_PAIRS = [
    ("scripts/wrk/register.lua", "scripts/wrk/etcd_put.lua",
     "register through raft, 3 nodes, wrk -c64 on the leader, against 3 etcd 3.4 members (`etcd-server`), "
     "a put of the same record on theirs"),
    ("scripts/wrk/config_publish.lua", "scripts/wrk/etcd_config_put.lua",
     "publish a new 1 KiB config through raft (`POST /nacos/v1/cs/configs`), 3 nodes, against a put of the "
     "same content under a new key on 3 etcd members"),
]


def etcd_side_by_side(nodes):
    """etcd 3.4 (Debian's etcd-server), the store a team would use instead of a registry's
    own raft: 3 members against 3 raft nodes, the same wrk layout (-c64 on the leader, all
    sharing the cores), for each pair of ETCD_PAIRS. Two alternating rounds, each side on
    fresh data dirs."""
    if shutil.which("etcd") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "etcd-server"], check=True, capture_output=True)
    rounds = []
    for round_no in range(2):
        for pair_no, (ours_script, theirs_script, words) in enumerate(ETCD_PAIRS):
            phase = f"etcd-round-{round_no}-{pair_no}"
            urls, leader = raft_cluster(nodes, phase)
            ours, out = wrk(leader, ours_script)
            ours_p99 = wrk_p99(out)
            nodes.stop_all()
            procs, etcd_leader = etcd_cluster(nodes.work, f"{round_no}-{pair_no}")
            try:
                theirs, out = wrk(etcd_leader, theirs_script)
                theirs_p99 = wrk_p99(out)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            print(f"[raft-bench] round {round_no + 1}, {ours_script}: {ours} req/s p99 {ours_p99} ms; "
                  f"{theirs_script}: {theirs} req/s p99 {theirs_p99} ms", file=sys.stderr)
            rounds.append((round_no + 1, words, ours, ours_p99, theirs, theirs_p99))
    return rounds


def renew(nodes):
    url = f"http://127.0.0.1:{PORTS[0]}"
    results = {}
    for mode, args in [("snapshot", []), ("raft", ["--data-dir", os.path.join(nodes.work, "renew")])]:
        nodes.start(PORTS[0], args + ["--ttl", "1h", "--evict-interval", "1h"], cpu=0)
        leader_of([url])
        subprocess.run([LOAD, "--system", "maregistry", "--url", url, "--instances", "1000", "--services", "100"],
                       check=True, capture_output=True)
        results[mode], _ = wrk(url, "scripts/wrk/renew.lua", cpu=1)
        nodes.stop_all()
    return results


def cold_restart(nodes):
    url = f"http://127.0.0.1:{PORTS[0]}"
    args = ["--data-dir", os.path.join(nodes.work, "restart"), "--ttl", "1h", "--evict-interval", "1h"]
    nodes.start(PORTS[0], args)
    leader_of([url])
    t0 = time.time()
    subprocess.run([LOAD, "--system", "maregistry", "--url", url, "--instances", "100000", "--services", "1000"],
                   check=True, capture_output=True)
    load_seconds = time.time() - t0
    version = call(url + "/info")["version"]
    nodes.kill(PORTS[0])
    t0 = time.perf_counter()
    nodes.start(PORTS[0], args)
    wait("the restarted node", lambda: call(url + "/info", timeout=1)["version"] == version, limit=300)
    answering = (time.perf_counter() - t0) * 1000
    wait("the restarted node to lead", lambda: call(url + "/info", timeout=1)["leader"], limit=300)
    leading = (time.perf_counter() - t0) * 1000
    count = sum(len(v) for v in call(url + "/snapshot", timeout=60)["REGISTRY"].values())
    nodes.stop_all()
    return load_seconds, version, answering, leading, count


def snapshot_install(nodes):
    """A follower down while 100,000 instances are registered (the log compacted past it)
    catches up by one snapshot install; time from its restart until it lists them all."""
    urls, leader = raft_cluster(nodes, "install", extra=["--raft-snapshot-every", "1000"])
    behind = next(u for u in urls if u != leader)
    port = int(behind.rsplit(":", 1)[1])
    args = list(nodes.procs[port].args[3:])
    nodes.kill(port)
    subprocess.run([LOAD, "--system", "maregistry", "--url", leader, "--instances", "100000", "--services", "1000"],
                   check=True, capture_output=True)
    version = call(leader + "/info")["version"]
    t0 = time.perf_counter()
    nodes.start(port, args)
    wait("the follower to catch up", lambda: call(behind + "/info", timeout=2)["version"] == version, limit=300)
    caught_up = (time.perf_counter() - t0) * 1000
    with open(os.path.join(nodes.work, f"{port}.log"), "rb") as f:
        installed = b"installed a raft snapshot" in f.read()
    count = sum(len(v) for v in call(behind + "/snapshot", timeout=60)["REGISTRY"].values())
    nodes.stop_all()
    return caught_up, installed, count


def main():
    nodes = Nodes()
    if os.environ.get("RAFT_BENCH_ONLY") == "etcd":
        try:
            etcd_side_by_side(nodes)
        finally:
            nodes.cleanup()
        return
    try:
        print("[raft-bench] visibility", file=sys.stderr)
        delays = visibility(nodes)
        print("[raft-bench] snapshot mode visibility (sync_latency.py 5s 8)", file=sys.stderr)
        snapshot_line = snapshot_mode_visibility()
        print("[raft-bench] register", file=sys.stderr)
        three, one, info = register(nodes)
        print("[raft-bench] renew", file=sys.stderr)
        renews = renew(nodes)
        print("[raft-bench] cold restart", file=sys.stderr)
        load_seconds, version, answering, leading, count = cold_restart(nodes)
        print("[raft-bench] snapshot install", file=sys.stderr)
        caught_up, installed, installed_count = snapshot_install(nodes)
        print("[raft-bench] etcd side by side", file=sys.stderr)
        etcd_rounds = etcd_side_by_side(nodes)
    finally:
        nodes.cleanup()

    def fmt(v):
        return f"{v:,.0f}" if isinstance(v, float) else str(v)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    ratio = renews["raft"] / renews["snapshot"] if all(isinstance(v, float) for v in renews.values()) else None
    lines = [
        "# Raft mode benchmarks",
        "",
        f"Produced by `python3 scripts/raft_bench.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"commit `{commit}`, {os.cpu_count()} cores. Release builds on loopback, fresh data dirs on the "
        "machine's disk, default raft timings (heartbeat 250 ms, election 1–1.25 s), every log append fsynced.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| write → visible on both followers, 3 nodes, {len(delays)} writes one at a time | "
        f"p50 {percentile(delays, 50):.1f} ms, p90 {percentile(delays, 90):.1f} ms, "
        f"p99 {percentile(delays, 99):.1f} ms, max {max(delays):.1f} ms |",
        f"| the same in snapshot mode, 2 nodes, default `--cluster-interval 5s` (`scripts/sync_latency.py 5s 8`) | "
        f"{snapshot_line} |",
        f"| register through raft, 3 nodes + wrk sharing {os.cpu_count()} cores, wrk -c64 on the leader | "
        f"{fmt(three)} req/s ({info['version']:,} registrations in {info['applied']:,} log entries) |",
        f"| register through raft, 1 durable node on CPU 0, wrk -c64 on CPU 1 | {fmt(one)} req/s |",
        f"| renew, 1,000 instances, 1 node on CPU 0, wrk -c64 on CPU 1: snapshot mode | {fmt(renews['snapshot'])} req/s |",
        f"| renew, the same on a raft leader (renewals are not logged) | {fmt(renews['raft'])} req/s"
        + (f" ({ratio:.2f}× the snapshot mode)" if ratio else "") + " |",
        f"| cold restart after `kill -9`, {count:,} instances (loaded in {load_seconds:.1f} s through raft), "
        f"registry version {version:,} | answering with all data {answering:,.0f} ms after the start; leading "
        f"{leading:,.0f} ms after |",
        f"| a follower down while 100,000 instances were registered (`--raft-snapshot-every 1000`: the log "
        f"was compacted past it), restarted | {'one snapshot install' if installed else 'log replay (no install seen)'}"
        f" of {installed_count:,} instances; all there {caught_up:,.0f} ms after its start |",
    ]
    for round_no, words, ours, ours_p99, theirs, theirs_p99 in etcd_rounds:
        versus = f" ({ours / theirs:.2f}×)" if isinstance(ours, float) and isinstance(theirs, float) else ""
        lines.append(
            f"| round {round_no}: {words} | {fmt(ours)} req/s, p99 {ours_p99} ms; etcd "
            f"{fmt(theirs)} req/s, p99 {theirs_p99} ms{versus} |")
    lines += [
        "",
        "The etcd rounds before issue 29 (2.96× and 2.87× for registrations) were measured with an "
        "`etcd_put.lua` that base64-encoded every request in Lua: wrk, not etcd, ran out of CPU (against "
        "the same 3 members it drew 4.3k puts/s with wrk at 54% of a core; requests built once in `init`, "
        "6.7k at 27%). Each pair of scripts now costs wrk the same per request, and the rows above are "
        "measured that way.",
        "",
        "Write-to-visible delays (ms), in order: " + ", ".join(f"{d:.1f}" for d in delays[:50])
        + (" …" if len(delays) > 50 else ""),
        "",
    ]
    # The failover section is scripts/failover_bench.py's (it needs root): kept as it is.
    write_keeping(OUT, "\n".join(lines), FAILOVER_HEADING)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
