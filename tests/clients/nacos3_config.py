# nacos-sdk-python 3.x (gRPC) config clients against a maregistry node: A publishes, reads,
# overwrites and removes; B listens and is told of A's changes and of one made over HTTP by
# the test; N lives in another namespace. Also: a missing config, namespace and group
# isolation, CAS refused and accepted, unicode and large content.
# Checkpoints: LISTENING once B listens (the test then publishes over HTTP and answers a
# line), PUSHED once B heard the HTTP change; it ends with "ok".
# Usage: python nacos3_config.py HOST:PORT DATA_ID NAMESPACE
import asyncio
import hashlib
import sys
import tempfile
import urllib.request

from v2.nacos import ClientConfigBuilder, ConfigParam, NacosConfigService
from v2.nacos.common.nacos_exception import NacosException

SERVER, DATA_ID, NAMESPACE = sys.argv[1], sys.argv[2], sys.argv[3]
HTTP = SERVER
GROUP = "PY_GROUP"
LIMIT = 20.0
HEARD = []


async def config_client(name, namespace=""):
    config = (ClientConfigBuilder()
              .server_address(SERVER)
              .namespace_id(namespace)
              .cache_dir(tempfile.mkdtemp(prefix=f"nacos3-config-{name}-"))
              .log_dir(tempfile.mkdtemp(prefix=f"nacos3-config-log-{name}-"))
              .log_level("WARNING")
              .load_cache_at_start(False)
              .build())
    config.disable_use_config_cache = True
    return await NacosConfigService.create_config_service(config)


async def until(what, check):
    deadline = asyncio.get_running_loop().time() + LIMIT
    while True:
        if check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise SystemExit(f"nacos3 config: timed out waiting for {what}; heard last {HEARD[-1:]!r:.200}")
        await asyncio.sleep(0.05)


def listens():
    metrics = urllib.request.urlopen(f"http://{HTTP}/metrics", timeout=5).read().decode()
    for line in metrics.splitlines():
        if line.startswith("maregistry_config_listens "):
            return int(line.split()[1])
    return 0


def md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()


async def main():
    a = await config_client("a")
    b = await config_client("b")
    n = await config_client("n", NAMESPACE)
    param = lambda **kw: ConfigParam(data_id=DATA_ID, group=GROUP, **kw)

    assert await a.get_config(param()) == "", "a missing config reads empty"
    assert await a.publish_config(param(content="a: 1 ✓ 配置", type="yaml"))
    assert await a.get_config(param()) == "a: 1 ✓ 配置"
    assert await a.publish_config(param(content="a: 2", type="yaml"))
    assert await b.get_config(param()) == "a: 2", "another client reads the overwrite"

    heard = HEARD

    async def on_change(tenant, group, data_id, content):
        heard.append(content)

    await b.add_listener(DATA_ID, GROUP, on_change)
    # B read the config before it listened, so its listener is not called for it; wait
    # until the node holds B's listen (its batch listen comes within 5 s).
    await until("B's listen reaching the node", lambda: listens() >= 1)
    assert await a.publish_config(param(content="a: 3 from A"))
    await until("B told of A's change", lambda: heard[-1:] == ["a: 3 from A"])
    print("LISTENING", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await until("B told of the HTTP change", lambda: heard[-1:] == ["from HTTP"])
    print("PUSHED", flush=True)

    # Isolation: the same data id in another namespace and another group.
    assert await n.get_config(param()) == "", "another namespace does not see it"
    assert await a.get_config(ConfigParam(data_id=DATA_ID, group="OTHER_GROUP")) == ""
    assert await n.publish_config(param(content="in the namespace"))
    assert await n.get_config(param()) == "in the namespace"
    assert await a.get_config(param()) == "from HTTP"

    # Compare-and-set: refused on a stale md5, accepted on the current one.
    try:
        refused = await a.publish_config(param(content="cas", cas_md5=md5("stale")))
    except NacosException:
        refused = False
    assert not refused, "a stale casMd5 is refused"
    assert await a.get_config(param()) == "from HTTP"
    assert await a.publish_config(param(content="cas ok", cas_md5=md5("from HTTP")))
    assert await a.get_config(param()) == "cas ok"

    # Large unicode content.
    large = ("配置 ✓ line\n" * 40000)[:300000]
    assert await a.publish_config(param(content=large))
    assert await b.get_config(param()) == large
    # The client queries a changed config when told, without ordering the answers: hearing
    # the large one first keeps the removal's answer from being overtaken by it.
    await until("B told of the large content", lambda: heard[-1:] == [large])

    # Remove: reads empty, the listener hears ''.
    assert await a.remove_config(param())
    assert await a.get_config(param()) == ""
    await until("B told of the removal", lambda: heard[-1:] == [""])
    for client in (a, b, n):
        await client.shutdown()
    print("ok", flush=True)


asyncio.run(main())
