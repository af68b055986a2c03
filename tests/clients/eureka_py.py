"""py-eureka-client 0.13.3 against a maregistry node: two registering clients and one
that only discovers (a full fetch, then a delta every second, in XML). Register two, see
both, heartbeat, stop one (status DOWN, then cancel) and see one, stop the other and see
none. Prints REGISTERED and reads a line from stdin once both are seen.

Each provider runs in a process of its own and exits right after `stop()`: in 0.13.3 the
heartbeat thread outlives `stop()` and registers the instance again at its next beat
(it would do the same against Netflix's Eureka).

Usage: python eureka_py.py http://HOST:PORT/eureka APP"""
import asyncio
import os
import subprocess
import sys
import time

from py_eureka_client.eureka_client import EurekaClient


async def provide(server, app, ip, zone):
    client = EurekaClient(eureka_server=server, app_name=app, instance_id=f"{ip}:{app.lower()}:8080",
                          instance_host=ip, instance_ip=ip, instance_port=8080, should_discover=False,
                          renewal_interval_in_secs=1, duration_in_secs=10, metadata={"zone": zone})
    await client.start()
    print("UP", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await client.stop()
    print("STOPPED", flush=True)
    os._exit(0)


class Provider:
    def __init__(self, server, app, ip, zone):
        self.process = subprocess.Popen([sys.executable, __file__, "provide", server, app, ip, zone],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "UP", f"provider {ip} did not start"

    def stop(self):
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "STOPPED"
        assert self.process.wait(timeout=10) == 0


async def main(server, app):
    first = Provider(server, app, "10.0.2.1", "eu-1")
    second = Provider(server, app, "10.0.2.2", "eu-2")
    watcher = EurekaClient(eureka_server=server, should_register=False, renewal_interval_in_secs=1)
    await watcher.start()

    async def until(what, expected, limit=20.0):
        deadline = time.time() + limit
        while True:
            application = watcher.applications.get_application(app)
            seen = sorted(i.ipAddr for i in application.up_instances)
            if seen == expected:
                return application
            if time.time() > deadline:
                sys.exit(f"py-eureka-client: timed out waiting for {what}; saw {seen}")
            await asyncio.sleep(0.2)

    application = await until("both instances", ["10.0.2.1", "10.0.2.2"])
    one = [i for i in application.up_instances if i.ipAddr == "10.0.2.1"][0]
    assert one.metadata.get("zone") == "eu-1", one.metadata
    assert one.port.port == 8080 and one.port.enabled, one.port
    print("REGISTERED", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(3.5)  # heartbeats, every second
    second.stop()
    await until("one instance", ["10.0.2.1"])
    first.stop()
    await until("no instance", [])
    await watcher.stop()
    print("py-eureka-client: ok", flush=True)
    os._exit(0)


if sys.argv[1] == "provide":
    asyncio.run(provide(*sys.argv[2:6]))
else:
    asyncio.run(main(sys.argv[1], sys.argv[2]))
