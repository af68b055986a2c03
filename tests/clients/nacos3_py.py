# nacos-sdk-python 3.x (gRPC) against a maregistry node: three clients of one service.
#   A batch-registers two instances; B lists them and subscribes; C registers a third (B is
#   pushed three), then deregisters it (B is pushed two, and lists two); A batch-deregisters
#   one (B is pushed one); A shuts down (B is pushed none).
# Checkpoints: it prints REGISTERED once A's two are seen, PUSHED-3 once C's is pushed, and
# waits for a line on stdin after each, so that the test looks through other protocols
# meanwhile; it ends with "ok". Usage: python nacos3_py.py HOST:PORT SERVICE
import asyncio
import sys

from nacos3_client import client as naming_client
from v2.nacos import (BatchRegisterInstanceParam, DeregisterInstanceParam, ListInstanceParam, ListServiceParam,
                      RegisterInstanceParam, SubscribeServiceParam)

SERVER, SERVICE = sys.argv[1], sys.argv[2]
LIMIT = 20.0


async def client(name, empty_too=False):
    return await naming_client(SERVER, name, empty_too)


def hosts(instances):
    return sorted(f"{i.ip}:{i.port}" for i in instances)


async def until(what, check):
    deadline = asyncio.get_running_loop().time() + LIMIT
    while True:
        seen = await check()
        if seen is not None:
            return seen
        if asyncio.get_running_loop().time() > deadline:
            raise SystemExit(f"nacos3 py: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_for_line():
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def instance(ip, **kw):
    return RegisterInstanceParam(service_name=SERVICE, ip=ip, port=8080, **kw)


async def main():
    a = await client("a")
    ok = await a.batch_register_instances(BatchRegisterInstanceParam(
        service_name=SERVICE,
        instances=[instance("10.0.2.1", metadata={"zone": "py-1"}, cluster_name="C1", weight=2.0),
                   instance("10.0.2.2")]))
    assert ok, "batch register"

    b = await client("b", empty_too=True)
    pushes = []

    async def on_change(instances):
        pushes.append(hosts(instances))

    async def listed():
        seen = hosts(await b.list_instances(ListInstanceParam(service_name=SERVICE, subscribe=False, healthy_only=None)))
        return seen if seen == ["10.0.2.1:8080", "10.0.2.2:8080"] else None

    await until("A's two instances, listed by B", listed)
    first = (await b.list_instances(ListInstanceParam(service_name=SERVICE, subscribe=False, healthy_only=None)))
    one = next(i for i in first if i.ip == "10.0.2.1")
    assert one.metadata.get("zone") == "py-1" and one.clusterName == "C1" and one.weight == 2.0, one
    services = await b.list_services(ListServiceParam())
    assert SERVICE in services.services, services
    await b.subscribe(SubscribeServiceParam(service_name=SERVICE, subscribe_callback=on_change))
    print("REGISTERED", flush=True)
    await wait_for_line()

    async def pushed(expected):
        async def check():
            return pushes[-1] if pushes and pushes[-1] == expected else None
        return check

    c = await client("c")
    assert await c.register_instance(instance("10.0.2.3"))
    await until("a push of three", await pushed(["10.0.2.1:8080", "10.0.2.2:8080", "10.0.2.3:8080"]))
    print("PUSHED-3", flush=True)
    await wait_for_line()

    assert await c.deregister_instance(DeregisterInstanceParam(service_name=SERVICE, ip="10.0.2.3", port=8080))
    await until("a push of two", await pushed(["10.0.2.1:8080", "10.0.2.2:8080"]))
    assert hosts(await b.list_instances(ListInstanceParam(service_name=SERVICE, healthy_only=None))) == ["10.0.2.1:8080",
                                                                                     "10.0.2.2:8080"]

    assert await a.batch_deregister_instances(BatchRegisterInstanceParam(
        service_name=SERVICE, instances=[instance("10.0.2.2")]))
    await until("a push of one", await pushed(["10.0.2.1:8080"]))

    await a.shutdown()
    await until("a push of none", await pushed([]))
    await c.shutdown()
    await b.shutdown()
    print("ok", flush=True)


asyncio.run(main())
