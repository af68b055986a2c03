#!/usr/bin/env python3
"""Raft failover, measured (issues 19 and 33): 3 (or FAILOVER_NODES) release nodes with
default raft timings, each in a network namespace of its own on one bridge, so that a node
can be cut off for real.

Events, one at a time, each on a healthy cluster with a writer per node registering
continuously (every write a new instance, 8 s client timeout):
  kill     kill -9 of the leader; restarted on its data dir afterwards
  pause    SIGSTOP of the leader for 4 s, then SIGCONT
  cut      the leader's link down for 4 s, then up: also the time until all the nodes
           agree on a leader again
  cutpair  the leader and one follower moved onto a bridge of their own for 4 s (they
           still reach each other, not the rest), then back
  isolate  a follower's link down for 10 s, then up: must cause no election
For kill, pause, cut and cutpair: the time from the fault to the first write acknowledged through a
surviving node (sent after the fault), and to a surviving node saying it leads. For
isolate: the term and leader before and after. Over the whole run: the longest any write
was held, against --write-timeout.

    sudo python3 scripts/failover_bench.py            (root: it makes namespaces; needs
                                                       target/release/maregistry)
    FAILOVER_EVENTS=20 python3 scripts/failover_bench.py --out docs/benchmarks-raft.md
    FAILOVER_KEEP=1 RUST_LOG=info,registry_raft=debug python3 scripts/failover_bench.py   (keeps the logs)
    FAILOVER_KINDS=kill,pause,cut,isolate python3 scripts/failover_bench.py   (the kinds to run)
    FAILOVER_BIN=/tmp/old/maregistry python3 scripts/failover_bench.py   (another build)
    FAILOVER_NODES=5 python3 scripts/failover_bench.py --out docs/benchmarks-raft.md
                                         (5 nodes; its own section; kinds: all five)

Prints a markdown section; with --out FILE, puts it in FILE in place of the one there
(up to the next '## ' heading), or at the end (docs/benchmarks-raft.md: scripts/raft_bench.py
keeps the failover sections, the last of that file, when it rewrites the rest).
"""
import argparse
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

BIN = os.path.abspath(os.environ.get("FAILOVER_BIN", "target/release/maregistry"))
N = int(os.environ.get("FAILOVER_NODES", "3"))
# The 3-node section keeps the heading scripts/raft_bench.py looks for.
HEADING = "## Failover (`scripts/failover_bench.py`)" if N == 3 else \
    f"## Failover, {N} nodes (`FAILOVER_NODES={N} scripts/failover_bench.py`)"
EVENTS = int(os.environ.get("FAILOVER_EVENTS", "20"))
KINDS = os.environ.get("FAILOVER_KINDS", "kill,pause,cut,isolate" if N == 3 else
                       "kill,pause,cut,cutpair,isolate").split(",")
PORT = 8484
NET = "10.77.0"
CLIENT_TIMEOUT = 8.0


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Net:
    """A bridge in this namespace and one namespace per node, `10.77.0.i` each; a second
    bridge, with no address here, where a group of nodes is moved to cut it off from the
    rest (and from the writers)."""

    def __init__(self):
        self.down()
        sh("ip", "link", "add", "mrbr", "type", "bridge")
        sh("ip", "addr", "add", f"{NET}.254/24", "dev", "mrbr")
        sh("ip", "link", "set", "mrbr", "up")
        sh("ip", "link", "add", "mrbr2", "type", "bridge")
        sh("ip", "link", "set", "mrbr2", "up")
        for i in range(1, N + 1):
            ns, veth = f"mr{i}", f"mrv{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", "mrbr")
            sh("ip", "link", "set", veth, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{NET}.{i}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def cut(self, i, cut):
        sh("ip", "link", "set", f"mrv{i}", "down" if cut else "up")

    def apart(self, group, apart):
        """Moves the nodes of `group` onto the second bridge (or back)."""
        for i in group:
            sh("ip", "link", "set", f"mrv{i}", "master", "mrbr2" if apart else "mrbr")

    @staticmethod
    def down():
        for i in range(1, N + 1):
            sh("ip", "netns", "del", f"mr{i}", check=False)
            sh("ip", "link", "del", f"mrv{i}", check=False)
        sh("ip", "link", "del", "mrbr", check=False)
        sh("ip", "link", "del", "mrbr2", check=False)


def url(i):
    return f"http://{NET}.{i}:{PORT}"


class Nodes:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="failover-")
        self.procs = {}
        self.urls = [url(i) for i in range(1, N + 1)]

    def start(self, i):
        args = ["ip", "netns", "exec", f"mr{i}", BIN, "--bind", f"{NET}.{i}", "--port", str(PORT),
                "--my-url", url(i), "--server-list", ",".join(self.urls),
                "--data-dir", os.path.join(self.work, str(i)), "--ttl", "1h", "--evict-interval", "1h",
                "--grpc-port", "off"]
        log = open(os.path.join(self.work, f"{i}.log"), "ab")
        # A session of its own: run in the background, this script's process group is
        # orphaned, and the kernel hangs up (SIGHUP) every member of an orphaned group that
        # holds a stopped process when another member exits. A SIGSTOPped node would take
        # the others with it.
        self.procs[i] = subprocess.Popen(args, stderr=log, stdout=subprocess.DEVNULL, start_new_session=True)

    def kill(self, i):
        p = self.procs.pop(i)
        p.kill()
        p.wait()

    def signal(self, i, sig):
        self.procs[i].send_signal(sig)

    def cleanup(self):
        for p in self.procs.values():
            p.kill()
            p.wait()
        if os.environ.get("FAILOVER_KEEP"):
            print(f"[failover] the nodes' logs are in {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def get(u, path, timeout=1.0):
    host, port = u[len("http://"):].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        c.close()


def info(u):
    try:
        status, body = get(u, "/info", 0.5)
        return body if status == 200 else None
    except Exception:
        return None


def wait(what, check, limit=60.0, on_timeout=lambda: []):
    deadline = time.time() + limit
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    why = "; ".join(on_timeout())
    sys.exit(f"failover_bench: timed out waiting for {what}" + (f" ({why})" if why else ""))


def agreed(urls):
    """The leader every node of `urls` names and that says it leads, with its term."""
    infos = [info(u) for u in urls]
    if any(i is None for i in infos):
        return None
    leaders = set()
    for u in urls:
        try:
            status, body = get(u, "/leader", 0.5)
        except Exception:
            return None
        if status != 200 or not body:
            return None
        leaders.add(body["url"])
    if len(leaders) != 1:
        return None
    (leader,) = leaders
    lead = info(leader)
    return (leader, lead["term"]) if lead and lead.get("leader") else None


class Writers:
    """One thread per node, registering a new instance after another."""

    def __init__(self, urls):
        self.urls = urls
        self.log = []  # (node, sent, done, status, sent to a node under a fault)
        self.faulted = set()
        self.lock = threading.Lock()
        self.stopping = False
        self.port = 0
        self.threads = [threading.Thread(target=self.run, args=(u,), daemon=True) for u in urls]
        for t in self.threads:
            t.start()

    def next_port(self):
        with self.lock:
            self.port += 1
            return 1 + self.port % 60000, self.port // 60000

    def run(self, u):
        host, port = u[len("http://"):].split(":")
        conn = None
        while not self.stopping:
            p, host_n = self.next_port()
            body = json.dumps({"scheme": "http", "host": f"10.1.{host_n % 250}.{host_n // 250 % 250}",
                               "port": p, "context": ""})
            sent = time.time()
            faulted = u in self.faulted
            status = 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT)
                conn.request("POST", "/reg?service=failover", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                status = r.status
            except Exception:
                if conn is not None:
                    conn.close()
                conn = None
            done = time.time()
            # A write in flight to the node when it was paused or cut off is held by it.
            faulted = faulted or u in self.faulted
            with self.lock:
                self.log.append((u, sent, done, status, faulted))
            if status != 200:
                time.sleep(0.02)

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(5)


def first_ack(writers, survivors, t0, start, limit=15.0):
    """The first write sent after `t0` (at or after `start` in the log) and acknowledged by
    a survivor. Scans only what is new, and not too often: the writers share the lock (and
    Python's one interpreter lock) with this loop."""
    deadline = t0 + limit
    seen = start
    first = None
    while time.time() < deadline:
        with writers.lock:
            new = writers.log[seen:]
        seen += len(new)
        for (u, sent, done, status, _) in new:
            if u in survivors and sent >= t0 and status == 200:
                first = done if first is None else min(first, done)
        if first is not None:
            return first - t0
        time.sleep(0.05)
    with writers.lock:
        after = [(u, status) for (u, sent, _, status, _) in writers.log[start:] if sent >= t0]
    counts = {}
    for u, status in after:
        counts[(u, status)] = counts.get((u, status), 0) + 1
    print(f"[failover] no write acknowledged by {survivors} in {limit} s; sent after the fault: {counts}",
          file=sys.stderr)
    return None


def first_leader(survivors, old_term, t0, limit=15.0):
    deadline = t0 + limit
    while time.time() < deadline:
        for u in survivors:
            i = info(u)
            if i and i.get("leader") and i.get("term", 0) > old_term:
                return time.time() - t0
        time.sleep(0.02)
    return None


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(values):
    ok = [v for v in values if v is not None]
    if not ok:
        return "none"
    missing = len(values) - len(ok)
    text = (f"p50 {pct(ok, 50):.2f} s, p99 {pct(ok, 99):.2f} s, max {max(ok):.2f} s "
            f"(n={len(ok)})")
    return text + (f", **{missing} never**" if missing else "")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("failover_bench: needs root (network namespaces)")
    # Stopped by a signal, it still removes its namespaces and nodes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("failover_bench: terminated"))
    net = Net()
    nodes = Nodes()
    results = {"kill": [], "kill_leader": [], "pause": [], "pause_leader": [], "cut": [], "cut_leader": [],
               "cutpair": [], "cutpair_leader": [], "heal": [], "isolate": [], "rejoin_elections": 0}
    try:
        for i in range(1, N + 1):
            nodes.start(i)
        def gone():
            # A node that exited on its own: say how, where the logs do not.
            return [f"node {i} exited with {p.returncode}" for i, p in nodes.procs.items() if p.poll() is not None]
        urls = nodes.urls
        wait("a leader", lambda: agreed(urls))
        writers = Writers(urls)
        for event in range(EVENTS):
            for kind in KINDS:
                leader, term = wait("a healthy cluster", lambda: agreed(urls))
                time.sleep(0.5)
                index = urls.index(leader) + 1
                if kind == "isolate":
                    follower = next(i for i in range(1, N + 1) if i != index)
                    writers.faulted = {url(follower)}
                    net.cut(follower, True)
                    time.sleep(10)
                    net.cut(follower, False)
                    time.sleep(3)
                    after = wait("a leader after the heal", lambda: agreed(urls))
                    writers.faulted = set()
                    results["isolate"].append((term, after[1], leader == after[0]))
                    print(f"[failover] isolate {event}: term {term} -> {after[1]}, same leader "
                          f"{leader == after[0]}", file=sys.stderr)
                    continue
                # The leader, and for cutpair the node after it.
                group = [index] + ([index % N + 1] if kind == "cutpair" else [])
                survivors = [u for u in urls if urls.index(u) + 1 not in group]
                writers.faulted = {url(i) for i in group}
                with writers.lock:
                    start = len(writers.log)
                if kind == "kill":
                    t0 = time.time()
                    nodes.kill(index)
                elif kind == "pause":
                    t0 = time.time()
                    nodes.signal(index, signal.SIGSTOP)
                elif kind == "cutpair":
                    net.apart(group, True)
                    t0 = time.time()
                else:
                    # From when the cut is in place: a write that the leader acknowledged
                    # while the filters were going in does not count as a failover.
                    net.cut(index, True)
                    t0 = time.time()
                lead = first_leader(survivors, term, t0)
                ack = first_ack(writers, survivors, t0, start)
                results[kind].append(ack)
                results[kind + "_leader"].append(lead)
                print(f"[failover] {kind} {event}: leader after {lead}, first write after {ack}",
                      file=sys.stderr)
                if kind == "kill":
                    nodes.start(index)
                elif kind == "pause":
                    time.sleep(max(0.0, 4.0 - (time.time() - t0)))
                    nodes.signal(index, signal.SIGCONT)
                elif kind == "cutpair":
                    time.sleep(max(0.0, 4.0 - (time.time() - t0)))
                    net.apart(group, False)
                else:
                    time.sleep(max(0.0, 4.0 - (time.time() - t0)))
                    net.cut(index, False)
                healed = time.time()
                settled = wait("the cluster whole again", lambda: agreed(urls), on_timeout=gone)
                if kind == "cut":
                    results["heal"].append(time.time() - healed)
                writers.faulted = set()
                time.sleep(2)
                final = wait("the cluster whole again", lambda: agreed(urls))
                if final[1] != settled[1]:
                    results["rejoin_elections"] += 1
        writers.stop()
        # Writes to a node that is killed or paused are not answered by it at all.
        others = [w for w in writers.log if not w[4]]
        held = max(done - sent for (_, sent, done, _, _) in others)
        unanswered = sum(1 for w in others if w[3] == 0)
        writes = len(writers.log)
        acked = sum(1 for w in writers.log if w[3] == 200)
    finally:
        nodes.cleanup()
        Net.down()

    isolations = results["isolate"]
    moved = sum(1 for before, after, same in isolations if after != before or not same)
    rows = {
        "kill": "`kill -9` of the leader",
        "pause": "SIGSTOP of the leader (4 s)",
        "cut": "the leader's link down (4 s)",
        "cutpair": "the leader and one follower cut off together (4 s)",
    }
    table = "\n".join(f"| {rows[k]} | {summary(results[k])} | {summary(results[k + '_leader'])} |"
                      for k in KINDS if k in rows)
    checks = []
    if "isolate" in KINDS:
        checks.append(f"| a follower cut off for 10 s, then healed | {len(isolations) - moved} of "
                      f"{len(isolations)} with the same leader in the same term (no election) |")
    if "cut" in KINDS:
        checks.append(f"| the old leader's link back up: all {N} name one leader after | {summary(results['heal'])} |")
    faults = len([k for k in KINDS if k != "isolate"])
    text = f"""{HEADING}

{N} release nodes, default raft timings (`--raft-heartbeat 250ms --raft-election 1s`,
`--write-timeout 5s`), each in its own network namespace on one bridge; one writer per node
registering continuously. {EVENTS} events of each kind, one at a time on a healthy cluster.

| fault | first write acknowledged through a survivor | a survivor says it leads |
|---|---|---|
{table}

| check | result |
|---|---|
""" + "\n".join(checks + [
        f"| the leader killed, paused or cut off, back: another election when it returned | "
        f"{results['rejoin_elections']} of {EVENTS * faults} |",
        f"| the longest a node other than the faulted ones held a write (`--write-timeout 5s`; client timeout 8 s) | "
        f"{held:.2f} s; {unanswered} not answered within 8 s; {writes} writes in all, {acked} acknowledged |",
    ]) + "\n"
    print(text)
    if args.out:
        old = open(args.out).read() if os.path.exists(args.out) else ""
        at = old.find(HEADING)
        if at < 0:
            head, tail = old.rstrip("\n"), ""
        else:
            head = old[:at].rstrip("\n")
            after = old.find("\n## ", at + len(HEADING))
            tail = old[after + 1:] if after >= 0 else ""
        with open(args.out, "w") as f:
            f.write((head + "\n\n" if head else "") + text + ("\n" + tail if tail else ""))


if __name__ == "__main__":
    main()
