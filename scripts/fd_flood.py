# Floods a node: 400 clients reconnecting to the HTTP and gRPC ports (silent, an unfinished
# request, the HTTP/2 preface only), each holding a connection up to 3 s. Used by
# scripts/fd_flood.sh. Usage: python3 scripts/fd_flood.py HTTP_PORT GRPC_PORT SECONDS
import asyncio, sys
http, grpc, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
stop = False
async def flooder(port, data):
    while not stop:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            w.write(data); await w.drain()
            try: await asyncio.wait_for(r.read(), 3)
            except asyncio.TimeoutError: pass   # hold it 3 s at most, then reconnect
            w.close()
        except Exception:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.02)
async def main():
    global stop
    kinds = [(http, b""), (http, b"POST /reg?service=x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n{"),
             (grpc, b""), (grpc, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    tasks = [asyncio.create_task(flooder(*kinds[i % 4])) for i in range(400)]
    await asyncio.sleep(secs); stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
asyncio.run(main())
