#!/usr/bin/env python3
"""10,000 blocking queries waiting on one node: what they cost, and who a change wakes.

Starts a release node, registers one instance in each of SERVICES services, opens WAITERS
connections each holding /findAll?service=S&since=V&wait=5m (spread over the services),
then reports the node's RSS before and with the waiters, its CPU time over 10 idle
seconds, and how many waiters one registration answers.

    python3 scripts/waiters_bench.py [WAITERS] [SERVICES]
    IDLE=1 python3 scripts/waiters_bench.py      (the same connections, idle: no request)
    CONSUL=1 python3 scripts/waiters_bench.py    (Consul's: registered through the agent
                                                  API, each waiter a blocking
                                                  /v1/health/service/S?index=V&wait=5m)
"""
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request

BIN = "target/release/maregistry"
PORT = 18381


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CONSUL = bool(os.environ.get("CONSUL"))


def post(path, body, method="POST"):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=body.encode(), method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def register(service, host, port):
    """One instance of `service`, through the seed API or (CONSUL) Consul's agent API."""
    if CONSUL:
        body = {"Name": service, "ID": f"{service}-{host}-{port}", "Address": host, "Port": port}
        post("/v1/agent/service/register", json.dumps(body), method="PUT")
    else:
        post(f"/reg?service={service}", json.dumps({"scheme": "http", "host": host, "port": port}))


def blocking_read(service, since):
    if CONSUL:
        return f"/v1/health/service/{service}?index={since}&wait=5m"
    return f"/findAll?service={service}&since={since}&wait=5m"


async def waiter(service, since, answered):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    if os.environ.get("IDLE"):
        await asyncio.sleep(3600)
    writer.write(f"GET {blocking_read(service, since)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    answered.append((service, time.time()))
    writer.close()
    return head


async def main():
    waiters = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc = subprocess.Popen([BIN, "--port", str(PORT), "--ttl", "1h", "--evict-interval", "1h",
                             "--max-connections", str(waiters + 100), "--grpc-port", "off"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/info", timeout=1).read()
                break
            except Exception:
                time.sleep(0.05)
        versions = {}
        for i in range(services):
            register(f"w.svc{i}", "10.0.0.1", 1000 + i)
            versions[f"w.svc{i}"] = i + 1
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        answered = []
        tasks = []
        for i in range(waiters):
            svc = f"w.svc{i % services}"
            tasks.append(asyncio.create_task(waiter(svc, versions[svc], answered)))
            if i % 500 == 499:
                await asyncio.sleep(0.05)
        await asyncio.sleep(2)
        with_waiters = rss_kib(proc.pid)
        cpu0 = cpu_seconds(proc.pid)
        await asyncio.sleep(10)
        idle_cpu = cpu_seconds(proc.pid) - cpu0
        kind = "Consul blocking queries" if CONSUL else "waiters"
        print(f"{waiters} {kind} over {services} services: RSS {before} KiB before, {with_waiters} KiB with them "
              f"(+{(with_waiters - before) / waiters * 1024:.0f} bytes per waiter); "
              f"CPU over 10 idle seconds: {idle_cpu:.2f} s; answered while idle: {len(answered)}")
        sent = time.time()
        await asyncio.get_running_loop().run_in_executor(None, register, "w.svc7", "10.0.0.2", 7)
        await asyncio.sleep(1)
        woken = [s for s, _ in answered]
        latest = max((t for _, t in answered), default=sent)
        print(f"one registration in w.svc7 answered {len(woken)} waiters "
              f"(all of w.svc7: {set(woken) == {'w.svc7'}}; expected {waiters // services}), "
              f"the last {1000 * (latest - sent):.1f} ms after the write was sent")
        for t in tasks:
            t.cancel()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
