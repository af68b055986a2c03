"""py-consul 1.8.0 against a maregistry node, as an application uses it: register with a
TTL check (critical until the first pass), pass, list through health and catalog, a
blocking query woken by a change, the TTL running out, deregister; KV put, get, recurse,
CAS and a blocking read woken by a put. Every step is checked here; prints DONE at the end
(any failure raises, and the process exits non-zero).

Usage: python consul_py.py HOST PORT"""
import sys
import threading
import time

import consul


def eventually(what, check, limit=30.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting until {what}")


def statuses(c, name):
    _, entries = c.health.service(name)
    return [check["Status"] for e in entries for check in e["Checks"] if check["CheckID"] != "serfHealth"]


def main(host, port):
    c = consul.Consul(host=host, port=int(port))
    # py-consul sends lower-case keys and a list of one check.
    assert c.agent.service.register("py-web", service_id="py-web-1", address="127.0.0.1", port=8080,
                                    tags=["v1", "py"], meta={"team": "a"}, check=consul.Check.ttl("2s"))
    assert statuses(c, "py-web") == ["critical"], "a new TTL check starts critical"
    index, passing = c.health.service("py-web", passing=True)
    assert passing == [], passing

    # A blocking query on that index, woken by the first pass.
    woken = {}

    def block():
        woken["answer"] = c.health.service("py-web", passing=True, index=index, wait="30s")

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive(), "the blocking query answered before any change"
    assert c.agent.check.ttl_pass("service:py-web-1", "all good")
    waiter.join(10)
    new_index, entries = woken["answer"]
    assert int(new_index) > int(index), (new_index, index)
    assert [e["Service"]["ID"] for e in entries] == ["py-web-1"], entries
    assert entries[0]["Service"]["Tags"] == ["v1", "py"]
    assert entries[0]["Service"]["Meta"] == {"team": "a"}

    _, services = c.catalog.services()
    assert sorted(services["py-web"]) == ["py", "v1"], services
    _, listed = c.catalog.service("py-web", tag="py")
    assert [s["ServiceID"] for s in listed] == ["py-web-1"], listed
    assert listed[0]["ServicePort"] == 8080
    assert "py-web-1" in c.agent.services()

    # No pass for 2 s: critical, and still listed without ?passing.
    eventually("the TTL runs out", lambda: statuses(c, "py-web") == ["critical"])
    assert c.agent.service.deregister("py-web-1")
    _, entries = c.health.service("py-web")
    assert entries == [], entries

    # KV.
    index, missing = c.kv.get("py/app/missing")
    assert missing is None
    assert c.kv.put("py/app/db", "postgres://db")
    assert c.kv.put("py/app/user", "admin")
    index, entry = c.kv.get("py/app/db")
    assert entry["Value"] == b"postgres://db", entry
    _, tree = c.kv.get("py/app", recurse=True)
    assert [e["Key"] for e in tree] == ["py/app/db", "py/app/user"], tree
    _, keys = c.kv.get("py/", keys=True, separator="/")
    assert keys == ["py/app/"], keys
    assert not c.kv.put("py/app/db", "x", cas=entry["ModifyIndex"] - 1), "a stale CAS is refused"
    assert c.kv.put("py/app/db", "mysql://db", cas=entry["ModifyIndex"])
    index, entry = c.kv.get("py/app/db")
    woken = {}

    def block_kv():
        woken["answer"] = c.kv.get("py/app/db", index=index, wait="30s")

    waiter = threading.Thread(target=block_kv)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive(), "the blocking KV read answered before any change"
    assert c.kv.put("py/app/db", "sqlite://")
    waiter.join(10)
    new_index, entry = woken["answer"]
    assert int(new_index) > int(index)
    assert entry["Value"] == b"sqlite://"
    assert c.kv.delete("py/app", recurse=True)
    _, gone = c.kv.get("py/app", recurse=True)
    assert gone is None, gone
    print("DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
