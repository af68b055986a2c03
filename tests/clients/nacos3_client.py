# The nacos-sdk-python 3.x naming client the scenarios start: caches and logs in fresh temp
# dirs, nothing loaded from a cache at start.
import tempfile

from v2.nacos import ClientConfigBuilder, NacosNamingService


async def client(server, name, empty_too=False):
    config = (ClientConfigBuilder()
              .server_address(server)
              .cache_dir(tempfile.mkdtemp(prefix=f"nacos3-{name}-"))
              .log_dir(tempfile.mkdtemp(prefix=f"nacos3-log-{name}-"))
              .log_level("WARNING")
              .load_cache_at_start(False)
              .build())
    config.set_update_cache_when_empty(empty_too)
    return await NacosNamingService.create_naming_service(config)
