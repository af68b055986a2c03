#!/usr/bin/env python3
"""Soak: 3 nodes, churn through random nodes, then convergence, memory and error checks.

Starts three release nodes on loopback (snapshot or raft mode), waits for a leader, then
for DURATION seconds runs churn from several threads, each request to a random node:
registrations, unregistrations, heartbeats of live instances, and instances registered once
and left to expire (--ttl 5s). Every second it samples each node's RSS. Afterwards it
polls every node's registry checksum (/snapshot?since=<max>&wait=0s) until all three agree.

Checks (exit 1 on any failure):
  - zero 5xx answers and zero failed requests during the churn;
  - all nodes hold checksum-equal registries within 1 s of the churn stopping;
  - each node's RSS flat: the mean over seconds 11-20 and over the last 10 seconds
    within +-10% of each other (single samples swing by several MiB under churn).

    python3 scripts/soak.py snapshot 60
    python3 scripts/soak.py raft 60
"""
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN = "target/release/maregistry"
SERVICES = [f"soak.svc{i}" for i in range(200)]
THREADS = 6


def instance(host, port):
    return json.dumps({"scheme": "http", "host": host, "port": port, "context": "soak",
                       "parameters": {"zone": "z" + str(port % 3)}})


class Conn:
    """One keep-alive connection per node for a thread."""

    def __init__(self, ports):
        self.conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports}

    def call(self, port, method, path, body=None):
        c = self.conns[port]
        try:
            c.request(method, path, body=body, headers={"Accept-Encoding": "identity"})
            r = c.getresponse()
            data = r.read()
            return r.status, data
        except Exception:
            c.close()
            return None, b""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_leader(ports, limit=60):
    c = Conn(ports)
    deadline = time.time() + limit
    while time.time() < deadline:
        leaders = []
        for p in ports:
            status, body = c.call(p, "GET", "/leader")
            leaders.append(json.loads(body)["url"] if status == 200 and body and body != b"null" else None)
        if leaders[0] and all(l == leaders[0] for l in leaders):
            return leaders[0]
        time.sleep(0.1)
    raise SystemExit("no leader")


def checksums(conn, ports):
    out = []
    for p in ports:
        # A `since` above any version: an empty delta, with the whole registry's checksum.
        status, body = conn.call(p, "GET", "/snapshot?since=18446744073709551615&wait=0s")
        out.append(json.loads(body)["CHECKSUM"] if status == 200 else None)
    return out


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "snapshot"
    duration = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    ports = [18181, 18182, 18183]
    urls = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    data = tempfile.mkdtemp(prefix="soak-")
    procs = []
    for p in ports:
        args = [BIN, "--port", str(p), "--server-list", urls, "--ttl", "5s", "--evict-interval", "1s"]
        if mode == "raft":
            args += ["--data-dir", os.path.join(data, str(p))]
        else:
            args += ["--cluster-interval", "1s"]
        env = dict(os.environ, RUST_LOG="info,registry_cluster=debug")
        procs.append(subprocess.Popen(args, stderr=open(os.path.join(data, f"{p}.log"), "w"), env=env))
    try:
        wait_leader(ports)
        stats = {"requests": 0, "5xx": 0, "failed": 0, "other": {}}
        lock = threading.Lock()
        stop = threading.Event()

        def churn(seed):
            rng = random.Random(seed)
            conn = Conn(ports)
            live = set()
            n = 0
            while not stop.is_set():
                port = rng.choice(ports)
                kind = rng.random()
                svc = rng.choice(SERVICES)
                if kind < 0.35 or not live:
                    inst = (svc, f"10.{seed}.{rng.randrange(250)}.{rng.randrange(250)}", rng.randrange(1, 200))
                    req = ("POST", f"/reg?service={inst[0]}", instance(inst[1], inst[2]))
                    if rng.random() < 0.7:
                        live.add(inst)  # the rest are left to expire
                elif kind < 0.5:
                    inst = rng.choice(sorted(live))
                    live.discard(inst)
                    req = ("POST", f"/unreg?service={inst[0]}", instance(inst[1], inst[2]))
                else:
                    inst = rng.choice(sorted(live))
                    req = ("POST", f"/renew?service={inst[0]}", instance(inst[1], inst[2]))
                status, _ = conn.call(port, *req)
                n += 1
                with lock:
                    stats["requests"] += 1
                    if status is None:
                        stats["failed"] += 1
                    elif status >= 500:
                        stats["5xx"] += 1
                    elif status != 200:
                        stats["other"][status] = stats["other"].get(status, 0) + 1
                if len(live) > 400:  # keep the live set bounded: renew-only phase
                    for inst in rng.sample(sorted(live), 200):
                        live.discard(inst)
                        conn.call(port, "POST", f"/unreg?service={inst[0]}", instance(inst[1], inst[2]))

        threads = [threading.Thread(target=churn, args=(i + 1,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        rss = {p.pid: [] for p in procs}
        started = time.time()
        while time.time() - started < duration:
            time.sleep(1)
            for p in procs:
                rss[p.pid].append(rss_kib(p.pid))
        stop.set()
        for t in threads:
            t.join()
        stopped = time.time()
        conn = Conn(ports)
        converged = None
        while time.time() - stopped < 30:
            sums = checksums(conn, ports)
            if sums[0] and all(s == sums[0] for s in sums):
                converged = time.time() - stopped
                break
            time.sleep(0.01)
        ok = True
        print(f"mode={mode} duration={duration}s requests={stats['requests']} "
              f"rate={stats['requests'] / duration:.0f}/s 5xx={stats['5xx']} failed={stats['failed']} "
              f"other={stats['other']}")
        print(f"checksum-equal {converged * 1000:.0f} ms after the churn stopped" if converged is not None
              else "checksums did NOT converge within 30 s")
        for p in procs:
            series = rss[p.pid]
            # RSS moves by several MiB from second to second under churn (the allocator
            # returns freed pages at once): compare 10-second means, the one ending at the
            # 20th second and the last one, so that a trend shows and a swing does not.
            early = statistics.mean(series[10:20])
            late = statistics.mean(series[-10:])
            change = (late - early) / early * 100
            marks = " ".join(str(series[i]) for i in range(9, len(series), 10))
            print(f"node pid {p.pid}: mean RSS {early:.0f} KiB over seconds 11-20, {late:.0f} KiB over the last 10 "
                  f"({change:+.1f}%); at every 10th second: {marks}")
            ok &= abs(change) <= 10
        for p in ports:
            with open(os.path.join(data, f"{p}.log")) as f:
                text = f.read()
            print(f"node :{p} log: {text.count('applied the leader') } deltas applied, "
                  f"{text.count('whole snapshot')} whole-snapshot syncs, "
                  f"{text.count('did not fit')} deltas that did not fit, {text.count(' ERROR ')} errors")
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
