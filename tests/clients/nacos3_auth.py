# nacos-sdk-python 3.x (gRPC) configured with a username and password against a node with
# --auth-enabled. The test made "writer" (rw on namespace dev) and "reader" (r on dev).
# The writer registers and publishes in dev; the reader lists and reads them there, and is
# refused (error 403) writes there and everything in namespace prod; a wrong password is
# refused with the client's "get access token failed". Ends with "ok".
# Usage: python nacos3_auth.py HOST:PORT
import asyncio
import sys
import tempfile

from v2.nacos import (ClientConfigBuilder, ConfigParam, ListInstanceParam, NacosConfigService, NacosNamingService,
                      RegisterInstanceParam)
from v2.nacos.common.nacos_exception import NacosException

SERVER = sys.argv[1]
LIMIT = 20.0
SERVICE = "py-auth"
DATA_ID = "auth.yaml"


def settings(user, password, namespace):
    config = (ClientConfigBuilder()
              .server_address(SERVER)
              .namespace_id(namespace)
              .username(user)
              .password(password)
              .cache_dir(tempfile.mkdtemp(prefix=f"nacos3-auth-{user}-"))
              .log_dir(tempfile.mkdtemp(prefix=f"nacos3-auth-log-{user}-"))
              .log_level("CRITICAL")
              .load_cache_at_start(False)
              .build())
    config.disable_use_config_cache = True
    return config


async def naming(user, password, namespace):
    return await NacosNamingService.create_naming_service(settings(user, password, namespace))


async def configs(user, password, namespace):
    return await NacosConfigService.create_config_service(settings(user, password, namespace))


async def until(what, check):
    deadline = asyncio.get_running_loop().time() + LIMIT
    while True:
        try:
            if await check():
                return
        except NacosException:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise SystemExit(f"nacos3 auth: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def refused(what, call, code=403):
    try:
        answer = await call
    except NacosException as e:
        if code is not None and e.error_code != code:
            raise SystemExit(f"nacos3 auth: {what} failed with {e}, not error {code}")
        print(f"REFUSED {what}: {e}", flush=True)
        return e
    raise SystemExit(f"nacos3 auth: {what} was not refused (answered {answer!r})")


def instance(ip):
    return RegisterInstanceParam(service_name=SERVICE, ip=ip, port=8080, ephemeral=True)


async def main():
    writer = await naming("writer", "writer-pass", "dev")
    writer_configs = await configs("writer", "writer-pass", "dev")
    assert await writer.register_instance(instance("10.0.9.1")), "the writer registers in dev"
    assert await writer_configs.publish_config(ConfigParam(data_id=DATA_ID, group="DEFAULT_GROUP", content="a: 1"))

    reader = await naming("reader", "reader-pass", "dev")
    reader_configs = await configs("reader", "reader-pass", "dev")

    async def listed():
        found = await reader.list_instances(ListInstanceParam(service_name=SERVICE, subscribe=False, healthy_only=None))
        return [i.ip for i in found] == ["10.0.9.1"]

    await until("the reader lists the writer's instance in dev", listed)
    read = await reader_configs.get_config(ConfigParam(data_id=DATA_ID, group="DEFAULT_GROUP"))
    assert read == "a: 1", read
    await refused("a publish by the reader in dev",
                  reader_configs.publish_config(ConfigParam(data_id=DATA_ID, group="DEFAULT_GROUP", content="b")))
    await refused("a registration by the reader in dev", reader.register_instance(instance("10.0.9.2")))

    elsewhere = await naming("reader", "reader-pass", "prod")
    elsewhere_configs = await configs("reader", "reader-pass", "prod")
    await refused("a config read by the reader in prod",
                  elsewhere_configs.get_config(ConfigParam(data_id=DATA_ID, group="DEFAULT_GROUP")))
    await refused("a list by the reader in prod",
                  elsewhere.list_instances(ListInstanceParam(service_name=SERVICE, subscribe=False, healthy_only=None)))

    wrong = await configs("reader", "not-the-password", "dev")
    e = await refused("a read with a wrong password",
                      wrong.get_config(ConfigParam(data_id=DATA_ID, group="DEFAULT_GROUP")), code=None)
    assert "access token" in str(e), e
    print("ok", flush=True)


asyncio.run(main())
