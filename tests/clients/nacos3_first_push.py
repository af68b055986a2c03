# nacos-sdk-python 3.x: a subscriber's first callback (issue 32). A publishes one instance;
# then, ROUNDS times, a new client subscribes with a callback and must be called back with
# that instance. Prints "CALLED i" for each and "ok" at the end; exits non-zero on a
# callback that never comes. Usage: python nacos3_first_push.py HOST:PORT SERVICE ROUNDS
import asyncio
import sys

from nacos3_client import client
from v2.nacos import RegisterInstanceParam, SubscribeServiceParam

SERVER, SERVICE, ROUNDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
LIMIT = 20.0


async def main():
    a = await client(SERVER, "publisher")
    assert await a.register_instance(RegisterInstanceParam(service_name=SERVICE, ip="10.0.5.1", port=8080))
    missed = 0
    for i in range(ROUNDS):
        b = await client(SERVER, f"subscriber-{i}")
        called = asyncio.Event()

        async def on_change(instances):
            if [f"{x.ip}:{x.port}" for x in instances] == ["10.0.5.1:8080"]:
                called.set()

        await b.subscribe(SubscribeServiceParam(service_name=SERVICE, subscribe_callback=on_change))
        try:
            await asyncio.wait_for(called.wait(), LIMIT)
            print(f"CALLED {i}", flush=True)
        except asyncio.TimeoutError:
            missed += 1
            print(f"MISSED {i}", flush=True)
        await b.shutdown()
    await a.shutdown()
    if missed:
        raise SystemExit(f"nacos3 py: {missed} of {ROUNDS} subscribers were never called back")
    print("ok", flush=True)


asyncio.run(main())
