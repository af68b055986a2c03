#!/usr/bin/env python3
"""The scale benchmark (issue 20): memory and time of a registry of 100,000 and 1,000,000
instances, writes docs/benchmarks-scale.md. Not in CI (minutes per size).

Per size N (instances in N/100 services, two metadata entries each, `bench-load`):
  1. snapshot mode, one node: load time, RSS 3 s and 13 s after, peak RSS (VmHWM); renew
     and `/findAll` throughput with wrk and the rate of 50,000 new registrations (the cost
     per operation against the smallest size); `/findAll` of a 10,000-instance service
     against a bare hyper server (bench-ceiling) answering as many bytes; a whole
     `/snapshot` fetched as a follower does (gzip), then plain: size, time, peak RSS after.
  2. raft, one durable node: load time, steady RSS, data dir size; then `kill -9` and a
     restart: time to `/ready` and to the same version, peak RSS of the restarted
     process (VmHWM), its RSS right after and 10 s later.
  3. raft join: a second node started with `--join` and added through `/cluster/join`:
     time until it holds the same version, its peak RSS and its RSS 10 s later.
  4. raft, 3 durable nodes: N registrations through the leader, the time, and each
     node's RSS and peak once all hold them.

Memory comes from /proc/PID/status (VmRSS, VmHWM). Run it on a quiet machine:

    cargo build --release --bin maregistry --bin bench-load --bin bench-ceiling
    python3 scripts/scale_bench.py                       (1k, 100k and 1M)
    SCALE_SIZES=100000 python3 scripts/scale_bench.py    (one size)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

# The process handling and waiting of the raft benchmark (this directory is on the path).
from raft_bench import BIN, LOAD, Nodes, call, wait, write_keeping

OUT = "docs/benchmarks-scale.md"
CEILING = "target/release/bench-ceiling"
# The instances of the one large service whose /findAll is measured against the ceiling.
BIG = 10_000
# New instances registered into the loaded registry, for the cost of a registration.
ADDED = 50_000
NOTES = "## Notes"
SIZES = [int(s) for s in os.environ.get("SCALE_SIZES", "1000,100000,1000000").split(",")]
WRK_DURATION = os.environ.get("SCALE_WRK_DURATION", "5s")
PORTS = [18901, 18902]
THREE = [18911, 18912, 18913]
KEEP = ["--ttl", "1h", "--evict-interval", "1h", "--grpc-port", "off"]


def url(port):
    return f"http://127.0.0.1:{port}"


def get(u, timeout=5, gzip_ok=False):
    request = urllib.request.Request(u, headers={"Accept-Encoding": "gzip"} if gzip_ok else {})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return r.status, r.read()


def info(u):
    return call(u + "/info")


def memory(pid):
    """(VmRSS, VmHWM) in MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def load(u, n, port=8080, services=None):
    """Seconds to register N instances in N/100 services (of `port`: another one than an
    earlier load's adds new instances beside its)."""
    t0 = time.perf_counter()
    subprocess.run([LOAD, "--system", "maregistry", "--url", u, "--instances", str(n),
                    "--services", str(services or max(1, n // 100)), "--port", str(port)],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def big_service(u, count=BIG):
    """Registers `count` instances in one service (bench.Big) through /batch."""
    for start in range(0, count, 500):
        ops = [{"op": "reg", "service": "bench.Big",
                "instance": {"scheme": "http", "host": f"10.200.{i // 256 % 256}.{i % 256}", "port": 8080,
                             "context": "c", "parameters": {"env": "bench", "weight": "100"}}}
               for i in range(start, min(count, start + 500))]
        request = urllib.request.Request(u + "/batch", data=json.dumps(ops).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()


def ceiling(body_bytes):
    """Requests per second of the bare hyper server (bench-ceiling) answering a body of
    `body_bytes`, under the same wrk."""
    port = PORTS[1]
    server = subprocess.Popen([CEILING, "--port", str(port), "--body-bytes", str(body_bytes)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait("the ceiling server", lambda: get(url(port) + "/findAll")[0] == 200)
        return wrk(url(port), "/findAll?service=bench.Big")
    finally:
        server.kill()
        server.wait()


def settle(pid, seconds=3.0):
    time.sleep(seconds)
    return memory(pid)


def wrk(u, path, script=None, args=()):
    """Requests per second of wrk -t1 -c64 (server and wrk share the cores)."""
    cmd = ["wrk", "-t1", "-c64", "-d" + WRK_DURATION]
    if script:
        cmd += ["-s", script]
    cmd.append(u + path)
    if args:
        cmd += ["--"] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"scale_bench: wrk {path} had errors: {out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def snapshot_mode(nodes, n):
    port = PORTS[0]
    pid = nodes.start(port, KEEP).pid
    u = url(port)
    wait("the node", lambda: info(u))
    loaded = load(u, n)
    rss, hwm = settle(pid)
    later_rss, _ = settle(pid, 10)
    # Per-operation cost against the registry's size: heartbeats of loaded instances (of
    # at most 10,000 of them, each in its service as bench-load placed it), and the list of
    # one 100-instance service (10 at 1,000 instances).
    services = max(1, n // 100)
    renew = wrk(u, "/", "scripts/wrk/renew.lua", (min(n, 10_000), services)) if shutil.which("wrk") else None
    find = wrk(u, "/findAll?service=bench.Service0") if shutil.which("wrk") else None
    # As a follower asks (gzip, a whole snapshot), then as a backup tool might (plain).
    t0 = time.perf_counter()
    _, zipped = get(u + "/snapshot?since=0&wait=0s", timeout=120, gzip_ok=True)
    fetch_gzip = time.perf_counter() - t0
    if zipped[:2] != b"\x1f\x8b":
        sys.exit("scale_bench: /snapshot did not answer gzip")
    _, hwm_gzip = memory(pid)
    t0 = time.perf_counter()
    _, body = get(u + "/snapshot", timeout=120)
    fetch = time.perf_counter() - t0
    _, hwm_plain = memory(pid)
    # After the peaks above (what follows adds instances, and 64 answers of a large list
    # in flight raise the peak): a registration, of new instances (another port) into the
    # loaded registry, spread over its services.
    register = ADDED / load(u, ADDED, port=9090, services=services)
    # One service of 10,000 instances: its list against a bare hyper server answering
    # the same number of bytes.
    big_service(u)
    _, big = get(u + "/findAll?service=bench.Big")
    big_find = wrk(u, "/findAll?service=bench.Big") if shutil.which("wrk") else None
    big_ceiling = ceiling(len(big)) if shutil.which("wrk") else None
    nodes.kill(port)
    return {"load": loaded, "rss": rss, "hwm": hwm, "later_rss": later_rss, "renew": renew, "find": find,
            "register": register, "big_bytes": len(big), "big_find": big_find, "big_ceiling": big_ceiling,
            "hwm_after_gzip": hwm_gzip, "hwm_after_plain": hwm_plain,
            "snapshot_bytes": len(body), "snapshot_gzip": len(zipped), "snapshot_fetch": fetch,
            "snapshot_fetch_gzip": fetch_gzip}


def raft(nodes, n):
    a, b = PORTS
    data = os.path.join(nodes.work, f"raft-{n}")
    args_a = ["--data-dir", os.path.join(data, "a"), "--my-url", url(a)] + KEEP
    pid = nodes.start(a, args_a).pid
    wait("the raft node to lead", lambda: info(url(a))["leader"])
    loaded = load(url(a), n)
    version = info(url(a))["version"]
    rss, hwm = settle(pid)
    later_rss, _ = settle(pid, 10)
    size = du(os.path.join(data, "a"))

    nodes.kill(a)
    t0 = time.perf_counter()
    pid = nodes.start(a, args_a).pid
    wait("the restarted node to be ready", lambda: get(url(a) + "/ready", timeout=1)[0] == 200)
    ready = time.perf_counter() - t0
    wait("the restarted node at the same version", lambda: info(url(a))["version"] >= version)
    same = time.perf_counter() - t0
    restart_rss, restart_hwm = memory(pid)
    later_rss, later_hwm = settle(pid, 10)

    args_b = ["--data-dir", os.path.join(data, "b"), "--my-url", url(b), "--join"] + KEEP
    pid_b = nodes.start(b, args_b).pid
    wait("the new node", lambda: info(url(b)))
    t0 = time.perf_counter()
    request = urllib.request.Request(f"{url(a)}/cluster/join?url={url(b)}", data=b"", method="POST")
    urllib.request.urlopen(request, timeout=120).read()
    wait("the new node to hold every instance", lambda: info(url(b))["version"] >= version)
    joined = time.perf_counter() - t0
    join_rss, join_hwm = memory(pid_b)
    join_later_rss, join_later_hwm = settle(pid_b, 10)
    _, leader_hwm = memory(pid)
    nodes.kill(b)
    nodes.kill(a)
    return {"load": loaded, "rss": rss, "hwm": hwm, "later_rss": later_rss, "data_dir": size,
            "ready": ready, "same_version": same, "restart_rss": restart_rss, "restart_hwm": later_hwm,
            "restart_later_rss": later_rss,
            "joined": joined, "join_rss": join_rss, "join_hwm": join_later_hwm, "join_later_rss": join_later_rss,
            "leader_hwm_after_join": leader_hwm}


def three_nodes(nodes, n):
    """Three durable raft nodes; N registrations through the leader: the time, and each
    node's RSS and peak after."""
    urls = [url(p) for p in THREE]
    data = os.path.join(nodes.work, f"three-{n}")
    pids = [nodes.start(p, ["--data-dir", os.path.join(data, str(p)), "--my-url", url(p),
                            "--server-list", ",".join(urls)] + KEEP).pid for p in THREE]

    def leader():
        names = {info(u)["url"] for u in urls if info(u)["leader"]}
        return names.pop() if len(names) == 1 else None
    lead = wait("a leader of three", leader)
    loaded = load(lead, n)
    version = info(lead)["version"]
    wait("every node at the leader's version", lambda: all(info(u)["version"] >= version for u in urls), limit=600)
    time.sleep(3)
    memories = [memory(pid) for pid in pids]
    for p in THREE:
        nodes.kill(p)
    return {"load": loaded, "rss": [m[0] for m in memories], "hwm": [m[1] for m in memories]}


def table(results):
    def mib(v):
        return f"{v:.0f} MiB"

    def secs(v):
        return f"{v:.2f} s"

    def mb(v):
        return f"{v / 1e6:.1f} MB"

    sizes = list(results)
    first = results[sizes[0]]

    def rate(value, base):
        if value is None:
            return "no wrk"
        cost = f" ({base / value:.2f}× the cost per op)" if base and value != base else ""
        return f"{value:,.0f}/s{cost}"

    head = "| measure | " + " | ".join(f"{n:,}" for n in sizes) + " |"
    rule = "|---|" + "---|" * len(sizes)
    rows = [
        ("snapshot mode: load (bench-load, 64 connections)", lambda r: secs(r["snap"]["load"])),
        ("snapshot mode: RSS 3 s / 13 s after the load, peak (VmHWM)",
         lambda r: f'{mib(r["snap"]["rss"])} / {mib(r["snap"]["later_rss"])}, {mib(r["snap"]["hwm"])}'),
        ("snapshot mode: renew, wrk -t1 -c64 (per-op cost against the smallest size)",
         lambda r: rate(r["snap"]["renew"], first["snap"]["renew"])),
        ("snapshot mode: `/findAll` of one 100-instance service",
         lambda r: rate(r["snap"]["find"], first["snap"]["find"])),
        (f"snapshot mode: register {ADDED:,} new instances (bench-load, 64 connections)",
         lambda r: rate(r["snap"]["register"], first["snap"]["register"])),
        (f"snapshot mode: `/findAll` of one {BIG:,}-instance service (answer size)",
         lambda r: f'{rate(r["snap"]["big_find"], None)} ({mb(r["snap"]["big_bytes"])})'),
        ("bare hyper answering that many bytes (bench-ceiling); maregistry's share",
         lambda r: f'{rate(r["snap"]["big_ceiling"], None)}; '
                   + (f'**{r["snap"]["big_find"] / r["snap"]["big_ceiling"]:.2f}×**' if r["snap"]["big_ceiling"] else "no wrk")),
        ("snapshot mode: a whole `/snapshot` as a follower asks for it (gzip): size, time",
         lambda r: f'{mb(r["snap"]["snapshot_gzip"])}, {secs(r["snap"]["snapshot_fetch_gzip"])}'),
        ("snapshot mode: peak RSS after serving it", lambda r: mib(r["snap"]["hwm_after_gzip"])),
        ("snapshot mode: `/snapshot` plain: size, time",
         lambda r: f'{mb(r["snap"]["snapshot_bytes"])}, {secs(r["snap"]["snapshot_fetch"])}'),
        ("snapshot mode: peak RSS after serving that too", lambda r: mib(r["snap"]["hwm_after_plain"])),
        ("raft, 1 durable node: load", lambda r: secs(r["raft"]["load"])),
        ("raft: RSS 3 s / 13 s after the load, peak",
         lambda r: f'{mib(r["raft"]["rss"])} / {mib(r["raft"]["later_rss"])}, {mib(r["raft"]["hwm"])}'),
        ("raft: data dir", lambda r: mb(r["raft"]["data_dir"])),
        ("raft: `kill -9`, restart to `/ready` / to the same version",
         lambda r: f'{secs(r["raft"]["ready"])} / {secs(r["raft"]["same_version"])}'),
        ("raft: restarted node's peak RSS (VmHWM) / RSS at ready / 10 s later",
         lambda r: f'**{mib(r["raft"]["restart_hwm"])}** ({r["raft"]["restart_hwm"] / r["raft"]["later_rss"]:.2f}x the loaded node at 13 s) / '
                   f'{mib(r["raft"]["restart_rss"])} / {mib(r["raft"]["restart_later_rss"])}'),
        ("raft: a node `--join`s: holds every instance after", lambda r: secs(r["raft"]["joined"])),
        ("raft: joined node's peak RSS / 10 s later",
         lambda r: f'**{mib(r["raft"]["join_hwm"])}** ({r["raft"]["join_hwm"] / r["raft"]["later_rss"]:.2f}x) / '
                   f'{mib(r["raft"]["join_later_rss"])}'),
        ("raft: the leader's peak RSS after sending it", lambda r: mib(r["raft"]["leader_hwm_after_join"])),
        ("raft, 3 nodes: load through the leader", lambda r: secs(r["three"]["load"])),
        ("raft, 3 nodes: RSS / peak of each after",
         lambda r: ", ".join(f"{mib(a)} / {mib(b)}" for a, b in zip(r["three"]["rss"], r["three"]["hwm"]))),
    ]
    lines = [head, rule] + [f"| {name} | " + " | ".join(f(results[n]) for n in sizes) + " |" for name, f in rows]
    return "\n".join(lines)


def main():
    for path in (BIN, LOAD, CEILING):
        if not os.path.exists(path):
            sys.exit(f"scale_bench: {path} is missing: "
                     "cargo build --release --bin maregistry --bin bench-load --bin bench-ceiling")
    nodes = Nodes()
    results = {}
    try:
        for n in SIZES:
            print(f"[scale] {n:,}: snapshot mode", file=sys.stderr)
            snap = snapshot_mode(nodes, n)
            print(f"[scale] {n:,}: {snap}", file=sys.stderr)
            print(f"[scale] {n:,}: raft", file=sys.stderr)
            r = raft(nodes, n)
            print(f"[scale] {n:,}: {r}", file=sys.stderr)
            print(f"[scale] {n:,}: raft, 3 nodes", file=sys.stderr)
            three = three_nodes(nodes, n)
            print(f"[scale] {n:,}: {three}", file=sys.stderr)
            results[n] = {"snap": snap, "raft": r, "three": three}
    finally:
        nodes.cleanup()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = f"""# Scale (`scripts/scale_bench.py`)

Release build, loopback, one node per role on this machine (2 cores, nothing pinned), each
instance with two metadata entries, 100 instances per service. Commit `{commit}`. RSS and
VmHWM from /proc/PID/status; a peak's ratio is to the loaded node's RSS 13 s after its load.

{table(results)}
"""
    # What a reader needs beside the figures (the run before a change, what is left) is
    # written by hand under "## Notes" and kept.
    write_keeping(OUT, text, NOTES)
    print(text)


if __name__ == "__main__":
    main()
