# nacos-sdk-python 0.1.x (the Nacos 1.x open API: v1 HTTP and its long poll) config clients
# against a maregistry node: A publishes, reads, overwrites and removes; a watcher of B is
# told of A's changes and of one made over HTTP by the test; N lives in another namespace.
# Also: a missing config, namespace and group isolation, unicode and large content (this
# client sends a publish's content in the query string, so "large" is what a URL holds).
# Checkpoints: LISTENING once B watches (the test then publishes over HTTP and answers a
# line), PUSHED once B heard it; it ends with "ok".
# Usage: python nacos_config_py.py HOST:PORT DATA_ID NAMESPACE
import sys
import tempfile
import time

import nacos

SERVER, DATA_ID, NAMESPACE = sys.argv[1], sys.argv[2], sys.argv[3]
GROUP = "LEGACY_GROUP"
LIMIT = 30.0


def client(namespace=""):
    c = nacos.NacosClient(SERVER, namespace=namespace)
    c.set_options(snapshot_base=tempfile.mkdtemp(prefix="nacos-py-snap-"),
                  failover_base=tempfile.mkdtemp(prefix="nacos-py-failover-"),
                  no_snapshot=True, pulling_timeout=30)
    return c


def until(what, check):
    deadline = time.monotonic() + LIMIT
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"nacos py config: timed out waiting for {what}")
        time.sleep(0.05)


a, b, n = client(), client(), client(NAMESPACE)
assert a.get_config(DATA_ID, GROUP) is None, "a missing config reads None"
assert a.publish_config(DATA_ID, GROUP, "py: 1 ✓ 配置", config_type="yaml")
assert a.get_config(DATA_ID, GROUP) == "py: 1 ✓ 配置"
assert a.publish_config(DATA_ID, GROUP, "py: 2")
assert b.get_config(DATA_ID, GROUP) == "py: 2"

heard = []
b.add_config_watcher(DATA_ID, GROUP, lambda args: heard.append(args["content"]))
time.sleep(0.5)
assert a.publish_config(DATA_ID, GROUP, "py: 3 from A")
until("B told of A's change", lambda: heard[-1:] == ["py: 3 from A"])
print("LISTENING", flush=True)
sys.stdin.readline()
until("B told of the HTTP change", lambda: heard[-1:] == ["from HTTP"])
print("PUSHED", flush=True)

assert n.get_config(DATA_ID, GROUP) is None, "another namespace does not see it"
assert a.get_config(DATA_ID, "OTHER_GROUP") is None
assert n.publish_config(DATA_ID, GROUP, "in the namespace")
assert n.get_config(DATA_ID, GROUP) == "in the namespace"
assert a.get_config(DATA_ID, GROUP) == "from HTTP"

large = ("line ✓ " + "x" * 90 + "\n") * 120
assert a.publish_config(DATA_ID, GROUP, large)
assert b.get_config(DATA_ID, GROUP) == large
until("B told of the large content", lambda: heard[-1:] == [large])

assert a.remove_config(DATA_ID, GROUP)
assert a.get_config(DATA_ID, GROUP) is None
until("B told of the removal", lambda: heard[-1:] == [None])
print("ok", flush=True)
