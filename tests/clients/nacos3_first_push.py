# nacos-sdk-python 3.x: a subscriber's first callback (issue 32). A publishes one instance;
# then, ROUNDS times, a new client subscribes with a callback and must be called back with
# that instance. Prints "CALLED i" for each and "ok" at the end; exits non-zero on a
# callback that never comes. Usage: python nacos3_first_push.py HOST:PORT SERVICE ROUNDS
import asyncio
import sys
import tempfile

from v2.nacos import ClientConfigBuilder, NacosNamingService, RegisterInstanceParam, SubscribeServiceParam

SERVER, SERVICE, ROUNDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
LIMIT = 20.0


async def client(name):
    config = (ClientConfigBuilder()
              .server_address(SERVER)
              .cache_dir(tempfile.mkdtemp(prefix=f"nacos3-{name}-"))
              .log_dir(tempfile.mkdtemp(prefix=f"nacos3-log-{name}-"))
              .log_level("WARNING")
              .load_cache_at_start(False)
              .build())
    return await NacosNamingService.create_naming_service(config)


async def main():
    a = await client("publisher")
    assert await a.register_instance(RegisterInstanceParam(service_name=SERVICE, ip="10.0.5.1", port=8080))
    missed = 0
    for i in range(ROUNDS):
        b = await client(f"subscriber-{i}")
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
