#!/usr/bin/env python3
"""TLS against plain HTTP on the same machine (issue 21), writes docs/benchmarks-tls.md.
Not in CI.

One release node at a time, plain then TLS (a CA and a certificate made here with
openssl), 10 instances of one service registered first; then, with wrk -t1 -c64:
  - keep-alive `/findAll` of the service, and keep-alive renew of its instances;
  - new connections: every request on a connection of its own (`Connection: close`). wrk
    keeps each connection's TLS session and resumes it, so over TLS each one is a resumed
    handshake (TLS 1.3 PSK with an X25519 exchange);
  - over TLS only, full handshakes: FULL_CLIENTS `openssl s_time -new` clients on core 1,
    each a new session, one `/findAll` per connection: full handshakes per second and the
    node's CPU per handshake.
The node runs on core 0 and wrk on core 1 (taskset, as scripts/bench.sh pins them), so
that wrk's own TLS work does not take the node's CPU; TLS_BENCH_ROUNDS alternating rounds
(5 by default; each phase's median row is the one to read, as single rounds on a shared
machine move by a tenth or more).

Two layouts. "Whole core": the node may use all of core 0; over TLS, wrk's core runs out
first (wrk's TLS costs it more than the node's costs the node), so the req/s ratio is
partly wrk's. "Node-bound": the node also gets only TLS_BENCH_NODE_CPU of core 0 (0.5 by
default; a CPU cgroup, which needs root: cgroup v2 with the cpu controller, or v1's cpu
hierarchy), so that wrk has room to spare and the node's throughput is what is measured.

    cargo build --release --bin maregistry
    python3 scripts/tls_bench.py
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl
import statistics
import resource

from raft_bench import write_keeping

BIN = "target/release/maregistry"
OUT = "docs/benchmarks-tls.md"
PORT = 18871
DURATION = os.environ.get("TLS_BENCH_DURATION", "10s")
if not re.fullmatch(r"[1-9]\d*s", DURATION):
    sys.exit(f"tls_bench: TLS_BENCH_DURATION is whole seconds, like 10s, not {DURATION!r}")
ROUNDS = int(os.environ.get("TLS_BENCH_ROUNDS", "5"))
SERVICE = "bench.Service0"
NODE_CPU = float(os.environ.get("TLS_BENCH_NODE_CPU", "0.5"))
FULL_CLIENTS = 4
CGROUP_NAME = "maregistry-tls-bench"


def certificates(work):
    """A CA and a certificate for 127.0.0.1 it signed: (ca, cert, key)."""
    ca, ca_key = os.path.join(work, "ca.pem"), os.path.join(work, "ca-key.pem")
    cert, key, csr = (os.path.join(work, n) for n in ("node.pem", "node-key.pem", "node.csr"))
    ext = os.path.join(work, "node.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth, clientAuth\n")
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "30", "-subj", "/CN=bench CA", "-keyout", ca_key, "-out", ca)
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=node", "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "30", "-extfile", ext, "-out", cert)
    return ca, cert, key


def cpu_cgroup():
    """A CPU cgroup holding at most NODE_CPU of one core, as (its cgroup.procs file, its
    removal), or None where none can be made (not root, no cpu controller)."""
    period = 10_000  # µs: short, so that the node is throttled often and briefly
    quota = int(period * NODE_CPU)
    def made(path, settings):
        try:
            os.makedirs(path, exist_ok=True)
            for name, value in settings:
                with open(os.path.join(path, name), "w") as f:
                    f.write(value)
            return os.path.join(path, "cgroup.procs"), lambda: os.rmdir(path)
        except OSError:
            try:
                os.rmdir(path)  # made, but not usable: leave nothing behind
            except OSError:
                pass
            return None

    v2 = "/sys/fs/cgroup"
    try:
        has_cpu = "cpu" in open(os.path.join(v2, "cgroup.controllers")).read().split()
    except OSError:
        has_cpu = False
    if has_cpu:
        cgroup = made(os.path.join(v2, CGROUP_NAME), [("cpu.max", f"{quota} {period}")])
        if cgroup:
            return cgroup
    return made(os.path.join("/sys/fs/cgroup/cpu", CGROUP_NAME),
                [("cpu.cfs_period_us", str(period)), ("cpu.cfs_quota_us", str(quota))])


def start(args, scheme, context, cgroup=None):
    node = subprocess.Popen(["taskset", "-c", "0", BIN, "--port", str(PORT), "--grpc-port", "off", "--ttl", "1h"] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if cgroup:
        # Moves every thread of the node, and those it starts later.
        with open(cgroup, "w") as f:
            f.write(str(node.pid))
    base = f"{scheme}://127.0.0.1:{PORT}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/info", timeout=1, context=context).read()
            break
        except Exception:
            if time.time() > deadline:
                node.kill()
                sys.exit("tls_bench: the node did not start")
            time.sleep(0.05)
    for port in range(8080, 8090):
        body = json.dumps({"scheme": "http", "host": "10.0.0.1", "port": port, "context": "c",
                           "parameters": {"env": "bench", "weight": "100"}}).encode()
        urllib.request.urlopen(urllib.request.Request(f"{base}/reg?service={SERVICE}", data=body),
                               timeout=5, context=context).read()
    return node, base


def cpu_seconds(pid):
    """User and system CPU time of process `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url, pid, script=None, close=False):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d" + DURATION, "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    before, wrk_before = cpu_seconds(pid), children_cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - before
    # wrk is the only child reaped in between: the node is waited for after its phase.
    wrk_cpu = children_cpu_seconds() - wrk_before
    if "Non-2xx" in out:
        sys.exit(f"tls_bench: wrk {url} had errors: {out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total, took, unit = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out).groups()
    total, seconds = int(total), float(took) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return (rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else None, cpu / total * 1e6,
            wrk_cpu / seconds * 100)


def children_cpu_seconds():
    """User and system CPU time of this script's reaped children, in seconds."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def full_handshakes(pid):
    """FULL_CLIENTS `openssl s_time -new` clients at once, each making a new TLS session per
    connection and fetching `/findAll` on it: (handshakes/s, the node's CPU µs per handshake,
    the clients' CPU as % of one core)."""
    seconds = int(DURATION[:-1])
    cmd = ["taskset", "-c", "1", "openssl", "s_time", "-connect", f"127.0.0.1:{PORT}", "-new",
           "-time", str(seconds), "-www", f"/findAll?service={SERVICE}"]
    before, clients_before, started = cpu_seconds(pid), children_cpu_seconds(), time.time()
    clients = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for _ in range(FULL_CLIENTS)]
    outs = [client.communicate()[0] for client in clients]
    wall, cpu = time.time() - started, cpu_seconds(pid) - before
    clients_cpu = children_cpu_seconds() - clients_before
    total = 0
    for out in outs:
        found = re.search(r"(\d+) connections in \d+ real seconds, (\d+) bytes read per connection", out)
        # The answer to `/findAll` of the 10 instances is over 1,000 bytes with its head.
        if not found or int(found.group(2)) < 1000:
            sys.exit(f"tls_bench: openssl s_time did not get the answers: {out}")
        total += int(found.group(1))
    return total / wall, cpu / total * 1e6, clients_cpu / wall * 100


RENEW = """
local body = '{"scheme":"http","host":"10.0.0.1","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
request = function()
  return wrk.format("POST", "/renew?service=bench.Service0", {["Content-Type"] = "application/json"}, body)
end
"""


def phase(args, scheme, context, renew, cgroup=None):
    node, base = start(args, scheme, context, cgroup)
    try:
        result = {
            "find": wrk(f"{base}/findAll?service={SERVICE}", node.pid),
            "renew": wrk(base + "/", node.pid, renew),
        }
        if not cgroup:
            result["new"] = wrk(f"{base}/findAll?service={SERVICE}", node.pid, close=True)
            if scheme == "https":
                result["full"] = full_handshakes(node.pid)
        return result
    finally:
        node.kill()
        node.wait()


def table(rounds, phases):
    rows = []
    for label, key_ in phases:
        for i, (plain, tls) in enumerate(rounds, 1):
            (p, pp, pc, pw), (t, tp, tc, tw) = plain[key_], tls[key_]
            rows.append(f"| {label}, round {i} | {p:,.0f} | {pp:.2f} | {pc:.1f} | {pw:.0f}% | {t:,.0f} | {tp:.2f} "
                        f"| {tc:.1f} | {tw:.0f}% | {t / p:.2f}× | {pc / tc:.2f}× |")
        by_rate = statistics.median(tls[key_][0] / plain[key_][0] for plain, tls in rounds)
        by_cpu = statistics.median(plain[key_][2] / tls[key_][2] for plain, tls in rounds)
        rows.append(f"| {label}, **median of {len(rounds)}** | | | | | | | | | **{by_rate:.2f}×** | **{by_cpu:.2f}×** |")
    return ("| phase | plain req/s | p99 ms | CPU µs | wrk CPU | TLS req/s | p99 ms | CPU µs | wrk CPU "
            "| TLS / plain req/s | TLS / plain capacity |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def full_table(runs):
    rows = [f"| round {i} | {rate:,.0f} | {cpu:.0f} | {clients:.0f}% |" for i, (rate, cpu, clients) in enumerate(runs, 1)]
    rows.append(f"| **median of {len(runs)}** | **{statistics.median(r[0] for r in runs):,.0f}** "
                f"| **{statistics.median(r[1] for r in runs):.0f}** | |")
    return ("| round | full handshakes/s | node CPU µs per handshake | clients' CPU |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n")


def main():
    if not os.path.exists(BIN):
        sys.exit(f"tls_bench: {BIN} is missing: cargo build --release --bin maregistry")
    work = tempfile.mkdtemp(prefix="tls-bench-")
    ca, cert, key = certificates(work)
    renew = os.path.join(work, "renew.lua")
    with open(renew, "w") as f:
        f.write(RENEW)
    context = ssl.create_default_context(cafile=ca)
    tls_args = ["--tls-cert", cert, "--tls-key", key]
    rounds = []
    for _ in range(ROUNDS):
        plain = phase([], "http", None, renew)
        tls = phase(tls_args, "https", context, renew)
        rounds.append((plain, tls))
        print(f"[tls] plain {plain} tls {tls}", file=sys.stderr)
    keep_alive = (("keep-alive `/findAll` (10 instances)", "find"), ("keep-alive renew", "renew"))
    bound = cpu_cgroup()
    if bound:
        procs, remove = bound
        bound_rounds = []
        try:
            for _ in range(ROUNDS):
                plain = phase([], "http", None, renew, procs)
                tls = phase(tls_args, "https", context, renew, procs)
                bound_rounds.append((plain, tls))
                print(f"[tls, node-bound] plain {plain} tls {tls}", file=sys.stderr)
        finally:
            remove()
        node_bound = f"""
## Node-bound: the node gets {NODE_CPU:g} of core 0

The same, but the node is held to {NODE_CPU:g} of its core (a CPU cgroup: {NODE_CPU * 10:g} ms of
every 10 ms), so that wrk on core 1 has room to spare and the rate is the node's. Keep-alive
phases only.

""" + table(bound_rounds, keep_alive)
    else:
        node_bound = "\n(Node-bound layout not run: no CPU cgroup could be made; it needs root.)\n"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = f"""# TLS against plain HTTP (`scripts/tls_bench.py`)

Release build, one node, loopback; the node on core 0, wrk (`wrk -t1 -c64 -d{DURATION}`) on
core 1; commit `{commit}`. The TLS node serves an ECDSA P-256 certificate (openssl, made by
the script); wrk negotiates TLS 1.3. {ROUNDS} alternating rounds.
Over TLS, the last row is one resumed handshake per request (wrk resumes its sessions); full
handshakes have a table of their own. "CPU µs" is the node's CPU time (user
and system, /proc/PID/stat) per request; "wrk CPU" is wrk's CPU time (getrusage of the
reaped child) over the run's wall time, 100% being its whole core. Over TLS wrk's own core
can run out before the node's, so the last column, plain CPU per request over TLS CPU per
request, is the share of its plain capacity the node keeps over TLS.

## Whole core: the node may use all of core 0

""" + table(rounds, keep_alive + (("a new connection per request (`Connection: close`)", "new"),)) + f"""
## Full handshakes: {FULL_CLIENTS} `openssl s_time -new` clients on core 1

wrk resumes its TLS sessions, so its new-connection row above is a resumed handshake per
request. Here each connection is a new session, a full TLS 1.3 handshake (the node signs
with its P-256 key), then one `/findAll`; the clients' own handshake work fills their core
first.

""" + full_table([tls["full"] for _, tls in rounds]) + node_bound
    # What a reader needs beside the figures is written by hand under "## Notes" and kept.
    write_keeping(OUT, text, "## Notes")
    print(text)


if __name__ == "__main__":
    main()
