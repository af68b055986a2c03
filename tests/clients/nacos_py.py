"""nacos-sdk-python 0.1.17 against a maregistry node: register two instances, see both,
heartbeat, deregister one and see one, deregister the other and see none.

Usage: python nacos_py.py HOST:PORT SERVICE
Exits 0 when every step held; prints what it saw otherwise."""
import sys
import time

import nacos

server, service = sys.argv[1], sys.argv[2]
client = nacos.NacosClient(server, namespace="")


def hosts():
    answer = client.list_naming_instance(service)
    return sorted((h["ip"], h["port"], h["instanceId"] != "") for h in answer["hosts"])


def until(what, check, limit=20.0):
    deadline = time.time() + limit
    while True:
        seen = hosts()
        if check(seen):
            return seen
        if time.time() > deadline:
            sys.exit(f"nacos-sdk-python: timed out waiting for {what}; saw {seen}")
        time.sleep(0.2)


assert client.add_naming_instance(service, "10.0.0.1", 8080, metadata={"zone": "eu-1"}, heartbeat_interval=1), "register 1"
assert client.add_naming_instance(service, "10.0.0.2", 8080, heartbeat_interval=1), "register 2"
until("both instances", lambda s: s == [("10.0.0.1", 8080, True), ("10.0.0.2", 8080, True)])
answer = client.list_naming_instance(service)
first = [h for h in answer["hosts"] if h["ip"] == "10.0.0.1"][0]
assert first["metadata"] == {"zone": "eu-1"}, first
assert first["healthy"] is True and first["enabled"] is True and first["weight"] == 1.0, first
# The test looks at them through the seed API meanwhile.
print("REGISTERED", flush=True)
sys.stdin.readline()
# Several heartbeat rounds (every second).
time.sleep(3.5)
assert client.remove_naming_instance(service, "10.0.0.1", 8080), "deregister 1"
until("one instance", lambda s: s == [("10.0.0.2", 8080, True)])
assert client.remove_naming_instance(service, "10.0.0.2", 8080), "deregister 2"
until("no instance", lambda s: s == [])
print("nacos-sdk-python: ok")
