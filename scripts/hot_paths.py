#!/usr/bin/env python3
"""Instructions per request on the hot paths, counted by callgrind (repeatable to the
instruction, whatever else the machine does).

    python3 scripts/hot_paths.py [BINARY ...]
    HOT_PATHS_ARGS="--grpc-port off" python3 scripts/hot_paths.py ...   (extra node flags)
    HOT_PATHS_TLS=cert.pem:key.pem python3 scripts/hot_paths.py ...     (the same over HTTPS)
    HOT_PATHS_KEEP=dir python3 scripts/hot_paths.py ...                 (keep the callgrind files)
    HOT_PATHS_ONLY=health python3 scripts/hot_paths.py ...              (only those requests)

For each binary (default: target/release/maregistry) and each request below, runs the node
under `valgrind --tool=callgrind` twice, once with N keep-alive requests from one client and
once with none (the same start, set-up and stop), and prints (Ir(N) - Ir(0)) / N. The
requests carry no Accept-Encoding, as wrk sends them. Needs valgrind.

A second figure leaves out the runtime's own work (the functions `TIMERS` matches, from
callgrind_annotate: tokio's scheduler, timer wheel and parking, reading the clock, and the
`pow` its scheduler calls from task polls). Much of it grows with the run's wall time, not
with the requests: the first figure of one binary moved up to 7% between runs, the second
about 1%. The second is the request path as this crate writes it; the runtime's share
(some of which is per request) is in the first.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

N = 2000
SERVICE = "com.bench.Hot"
# "CERT:KEY": the node serves HTTPS with them and the client speaks TLS (not verified).
TLS = os.environ.get("HOT_PATHS_TLS")
KEEP = os.environ.get("HOT_PATHS_KEEP")
# The runtime's own work (scheduler, timers, parking, the clock): mostly counted by wall
# time, not by request.
TIMERS = re.compile(r"tokio::runtime::(time|scheduler|park)|tokio::time::|Timespec|clock_gettime|"
                    r"__ieee754_pow|park_timeout|park_internal|Sleep as core::future|epoll_wait|futex",
                    re.I)


def connect(port):
    if TLS:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=30,
                                           context=ssl._create_unverified_context())
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def instance(port):
    return json.dumps({"scheme": "http", "host": "10.0.0.1", "port": port, "context": "ctx",
                       "parameters": {"env": "bench", "zone": "z1"}})


# The set-up of the Consul reads: 10 instances registered through Consul's agent API.
CONSUL = "consul"


def consul_instance(i):
    return json.dumps({"Name": SERVICE, "ID": f"c{i}", "Address": "10.0.0.1", "Port": 8000 + i,
                       "Meta": {"env": "bench", "zone": "z1"}})


# name -> (method, path, body, set-up: how many instances are registered first, or CONSUL;
# then optional headers); a path or body may be a function of the request's number.
# HOT_PATHS_ONLY=text runs only the requests whose name holds it.
REQUESTS = {
    "GET /findAll (10 instances)": ("GET", f"/findAll?service={SERVICE}", None, 10),
    "POST /renew (known instance)": ("POST", f"/renew?service={SERVICE}", instance(8000), 10),
    "POST /reg (known, same parameters)": ("POST", f"/reg?service={SERVICE}", instance(8000), 10),
    # Every request a new instance, 100 to a service.
    "POST /reg (new instance)": ("POST", lambda i: f"/reg?service={SERVICE}{i // 100}",
                                 lambda i: instance(20000 + i), 10),
    # Consul's read of the same 10 instances (registered through Consul), plain and as Go's,
    # Python's and Java's clients ask for it.
    "GET /v1/health/service (10 instances)": ("GET", f"/v1/health/service/{SERVICE}", None, CONSUL),
    "GET /v1/health/service, gzip": ("GET", f"/v1/health/service/{SERVICE}", None, CONSUL,
                                     {"Accept-Encoding": "gzip"}),
    # Every request a new instance through Consul's agent API, 100 to a service.
    "PUT /v1/agent/service/register (new instance)": (
        "PUT", "/v1/agent/service/register",
        lambda i: json.dumps({"Name": f"{SERVICE}{i // 100}", "ID": f"n{i}", "Address": "10.0.0.2",
                              "Port": 20000 + i, "Meta": {"env": "bench", "zone": "z1"}}), CONSUL),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, label, request, count):
    method, path, body, setup = request[:4]
    headers = request[4] if len(request) > 4 else {}
    port = free_port()
    out = tempfile.mktemp(prefix="callgrind.")
    tls = ["--tls-cert", TLS.split(":")[0], "--tls-key", TLS.split(":")[1]] if TLS else []
    node = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
         "--port", str(port)] + tls + os.environ.get("HOT_PATHS_ARGS", "").split(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"})
    try:
        deadline = time.time() + 60
        while True:
            try:
                conn = connect(port)
                conn.request("GET", "/health")
                conn.getresponse().read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        for i in range(10 if setup == CONSUL else setup):
            if setup == CONSUL:
                conn.request("PUT", "/v1/agent/service/register", consul_instance(i))
            else:
                conn.request("POST", f"/reg?service={SERVICE}", instance(8000 + i),
                             {"Content-Type": "application/json"})
            conn.getresponse().read()
        for i in range(count):
            conn.request(method, path(i) if callable(path) else path, body(i) if callable(body) else body,
                         {**headers, "Content-Type": "application/json"} if body else headers)
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
        conn.close()
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=120)
    text = open(out).read()
    if KEEP:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")
        shutil.copy(out, os.path.join(KEEP, f"{os.path.basename(binary)}.{slug}.{count}.{'tls' if TLS else 'plain'}"))
    timers = timer_part(out)
    os.unlink(out)
    total = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    return int(total.group(1)), timers


def timer_part(out):
    """The instructions of the functions `TIMERS` matches (exclusive), from callgrind_annotate."""
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", out],
                               capture_output=True, text=True).stdout
    part = 0
    for line in annotated.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
        if m and m.group(2) != "PROGRAM TOTALS" and TIMERS.search(m.group(2)):
            part += int(m.group(1).replace(",", ""))
    return part


def main():
    binaries = sys.argv[1:] or ["target/release/maregistry"]
    only = os.environ.get("HOT_PATHS_ONLY", "")
    requests = {name: r for name, r in REQUESTS.items() if only in name}
    results = {}
    for binary in binaries:
        for name, request in requests.items():
            idle, idle_timers = run(binary, name, request, 0)
            busy, busy_timers = run(binary, name, request, N)
            all_of_it = (busy - idle) / N
            request_path = all_of_it - (busy_timers - idle_timers) / N
            results[(binary, name)] = (all_of_it, request_path)
            print(f"{binary}\t{name}\t{all_of_it:,.0f}\t(request path {request_path:,.0f})", flush=True)
    if len(binaries) > 1:
        for column, title in [(0, "all of it"), (1, "the request path (without the runtime's own work)")]:
            print(f"\n{title}\nrequest\t" + "\t".join(binaries) + "\tchange (last vs first)")
            for name in requests:
                row = [results[(b, name)][column] for b in binaries]
                print(f"{name}\t" + "\t".join(f"{v:,.0f}" for v in row) + f"\t{(row[-1] / row[0] - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
