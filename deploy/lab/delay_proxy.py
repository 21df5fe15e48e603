#!/usr/bin/env python3
"""Delaying TCP proxy for the lab (this kernel has no tc netem).

`lab degrade HOST --delay MS` redirects incoming TCP on the host's service ports here (iptables
REDIRECT in the host's namespace); every chunk is forwarded after MS milliseconds, in both
directions, preserving order. Runs until killed by `lab heal` / `lab down`.
"""
import argparse
import asyncio


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def sender():
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(sender())
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data if data else None))
            if not data:
                break
    except (ConnectionError, OSError):
        await queue.put((loop.time(), None))
    await task


async def handle(client_r, client_w, target, delay):
    host, port = target.rsplit(":", 1)
    try:
        server_r, server_w = await asyncio.open_connection(host, int(port))
    except OSError:
        client_w.close()
        return
    await asyncio.gather(
        pump(client_r, server_w, delay), pump(server_r, client_w, delay), return_exceptions=True
    )


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    a = ap.parse_args()
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, a.to, a.delay_ms / 1000.0), "0.0.0.0", a.listen
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
