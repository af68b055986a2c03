#!/usr/bin/env python3
"""Snapshot-mode replication: how fast and how small one change reaches the followers.

Starts three release nodes (snapshot mode) on loopback, loads INSTANCES instances through
/batch on the leader (SERVICES services of equal size), waits until both followers hold the
leader's checksum, then ROUNDS times: opens a blocking query on each follower
(/version?service=S&since=V&wait=10s), registers one new instance of S on the leader, and
records the time from sending the registration to each follower's answer. It then
measures what one follower poll for one change carries (/snapshot?since=V-1 with gzip, as
a follower asks it) and checks, from a follower's debug log, that a follower paused
(SIGSTOP) while 10 changes happen catches up with a delta.

    python3 scripts/replication_bench.py [INSTANCES] [SERVICES] [ROUNDS]
"""
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN = "target/release/maregistry"


def request(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def inst(host, port):
    return {"scheme": "http", "host": host, "port": port, "context": "bench",
            "parameters": {"zone": "eu-1", "weight": "100"}}


def checksum(port):
    _, _, body = request(port, "GET", "/snapshot?since=18446744073709551615&wait=0s")
    return json.loads(body)["CHECKSUM"]


def main():
    instances = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    ports = [18281, 18282, 18283]
    urls = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    work = tempfile.mkdtemp(prefix="repl-")
    env = dict(os.environ, RUST_LOG="info,registry_cluster=debug")
    procs = [subprocess.Popen([BIN, "--port", str(p), "--server-list", urls, "--ttl", "1h",
                               "--evict-interval", "1h", "--cluster-interval", "1s"],
                              stderr=open(os.path.join(work, f"{p}.log"), "w"), env=env)
             for p in ports]
    try:
        deadline = time.time() + 60
        leader = None
        while time.time() < deadline and leader is None:
            try:
                seen = {json.loads(request(p, "GET", "/leader")[2] or b"null")["url"] for p in ports}
                if len(seen) == 1:
                    leader = seen.pop()
            except Exception:
                time.sleep(0.1)
        assert leader, "no leader"
        lport = int(leader.rsplit(":", 1)[1])
        followers = [p for p in ports if p != lport]
        per = instances // services
        batch = []
        for i in range(instances):
            svc = f"bench.svc{i % services}"
            batch.append({"op": "reg", "service": svc, "instance": inst(f"10.{i // 65000}.{(i // 250) % 260}.{i % 250}", 1000 + i % 60000)})
            if len(batch) == 1000:
                status, _, body = request(lport, "POST", "/batch", json.dumps(batch))
                assert status == 200, body[:200]
                batch = []
        if batch:
            request(lport, "POST", "/batch", json.dumps(batch))
        t0 = time.time()
        while not all(checksum(f) == checksum(lport) for f in followers):
            time.sleep(0.05)
        print(f"{instances} instances in {services} services ({per} each) on the leader; "
              f"followers equal {time.time() - t0:.1f} s after the last batch")

        delays = []
        for r in range(rounds):
            service = f"bench.svc{r % services}"
            _, hdrs, _ = request(lport, "GET", f"/version?service={service}")
            since = int(hdrs["x-maregistry-version"])
            results = {}

            def wait(port):
                request(port, "GET", f"/version?service={service}&since={since}&wait=10s")
                results[port] = time.perf_counter()

            threads = [threading.Thread(target=wait, args=(p,)) for p in followers]
            for t in threads:
                t.start()
            time.sleep(0.02)  # the blocking queries are in place
            sent = time.perf_counter()
            request(lport, "POST", f"/reg?service={service}", json.dumps(inst("10.250.0.1", 2000 + r)))
            # (each round adds one instance to a different service)
            for t in threads:
                t.join()
            delays.extend((results[p] - sent) * 1000 for p in followers)
        delays.sort()
        p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
        print(f"one registration to every follower, {len(delays)} follower-arrivals: "
              f"p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {delays[-1]:.1f} ms")

        # What a follower's poll carries for that one change.
        service = f"bench.svc{(rounds + 1) % services}"
        version = json.loads(request(lport, "GET", "/info")[2])["version"]
        request(lport, "POST", f"/reg?service={service}", json.dumps(inst("10.250.0.2", 7)))
        status, hdrs, body = request(lport, "GET", f"/snapshot?since={version}&wait=0s",
                                     headers={"Accept-Encoding": "gzip"})
        head = sum(len(k) + len(v) + 4 for k, v in hdrs.items()) + len("HTTP/1.1 200 OK\r\n\r\n")
        print(f"one change, as a follower fetches it: body {len(body)} bytes on the wire "
              f"({hdrs.get('content-encoding', 'identity')}), response head {head} bytes, "
              f"total {len(body) + head} bytes (a service of {per + 2} instances)")

        # A follower 10 changes behind.
        follower = followers[0]
        log_path = os.path.join(work, f"{follower}.log")
        before = open(log_path).read().count("synced the leader's whole snapshot")
        deltas_before = open(log_path).read().count("applied the leader's delta")
        proc = procs[ports.index(follower)]
        proc.send_signal(signal.SIGSTOP)
        for k in range(10):
            request(lport, "POST", f"/reg?service=bench.svc{k}", json.dumps(inst("10.251.0.1", 3000 + k)))
        proc.send_signal(signal.SIGCONT)
        deadline = time.time() + 30
        while checksum(follower) != checksum(lport) and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        text = open(log_path).read()
        whole = text.count("synced the leader's whole snapshot") - before
        deltas = text.count("applied the leader's delta") - deltas_before
        print(f"a follower 10 changes behind caught up with {deltas} delta(s) and {whole} whole snapshot(s); "
              f"checksum equal: {checksum(follower) == checksum(lport)}")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
