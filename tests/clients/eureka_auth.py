"""py-eureka-client 0.13.3 against a node with --auth-enabled: the credentials are in the
service URL (http://user:password@host:port/eureka), which the client sends as HTTP Basic.
Registers one instance and prints UP once its registration was answered, or REFUSED when
the server refused it; then waits for a line on stdin, and ends.

Usage: python eureka_auth.py SERVICE_URL APP"""
import asyncio
import os
import sys

from py_eureka_client.eureka_client import EurekaClient


async def main(server, app):
    errors = []

    def on_error(kind, exception):
        cause = exception.__cause__ or exception
        errors.append(f"{kind}: {getattr(cause, 'code', '')} {cause}")

    client = EurekaClient(eureka_server=server, app_name=app, instance_id=f"10.0.7.1:{app.lower()}:8080",
                          instance_host="10.0.7.1", instance_ip="10.0.7.1", instance_port=8080,
                          should_discover=False, renewal_interval_in_secs=30, duration_in_secs=90,
                          on_error=on_error)
    await client.start()
    if errors:
        print(f"errors: {errors}", flush=True)
        print("REFUSED", flush=True)
    else:
        print("UP", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    os._exit(0)


asyncio.run(main(sys.argv[1], sys.argv[2]))
