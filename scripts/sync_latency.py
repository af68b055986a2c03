#!/usr/bin/env python3
"""Measures the time from a registration on the leader to its visibility on the follower.

Starts two release nodes on loopback with the given --cluster-interval, waits for a leader,
then N times: registers a new instance on the leader and polls the follower's /findAll
every 5 ms until it lists it. Prints each delay and min/median/max.

    python3 scripts/sync_latency.py 5s 8
    python3 scripts/sync_latency.py 500ms 20
"""
import json
import random
import statistics
import subprocess
import sys
import time
import urllib.request

BIN = "target/release/maregistry"


def call(url, body=None):
    data = body.encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as r:
        return json.loads(r.read())


def seconds(duration):
    if duration.endswith("ms"):
        return int(duration[:-2]) / 1000
    return int(duration[:-1]) * {"s": 1, "m": 60}[duration[-1]]


def main():
    interval = sys.argv[1] if len(sys.argv) > 1 else "5s"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    ports = [18081, 18082]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    procs = [
        subprocess.Popen([BIN, "--port", str(p), "--server-list", ",".join(urls), "--cluster-interval", interval],
                         stderr=subprocess.DEVNULL)
        for p in ports
    ]
    try:
        deadline = time.time() + 60
        leader = None
        while time.time() < deadline:
            try:
                a, b = call(urls[0] + "/leader"), call(urls[1] + "/leader")
                if a and b and a["url"] == b["url"]:
                    leader = a["url"]
                    break
            except Exception:
                pass
            time.sleep(0.05)
        assert leader, "no leader"
        follower = [u for u in urls if u != leader][0]
        delays = []
        for i in range(rounds):
            # Start at a random phase of the interval, as a real client would.
            time.sleep(random.random() * seconds(interval))
            body = json.dumps({"scheme": "http", "host": "10.0.0.1", "port": 1000 + i})
            t0 = time.perf_counter()
            call(f"{leader}/reg?service=latency", body)
            while True:
                listed = call(f"{follower}/findAll?service=latency")
                if any(x["port"] == 1000 + i for x in listed):
                    break
                time.sleep(0.005)
            delays.append((time.perf_counter() - t0) * 1000)
            print(f"round {i + 1}: {delays[-1]:.0f} ms", flush=True)
        print(f"interval {interval}, {rounds} rounds: min {min(delays):.0f} ms, "
              f"median {statistics.median(delays):.0f} ms, max {max(delays):.0f} ms")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()
