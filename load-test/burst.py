#!/usr/bin/env python3
"""A cold burst: N identical GET requests sent at the same moment, each on its own connection.

All connections are opened first; then every request is written before any answer is read, so the
server sees N concurrent requests for one key, the way a scheduler's burst arrives. Prints one JSON
object: requests sent, answers by status, X-Cache values, errors (connection failures, non-2xx),
and the slowest answer in ms.

    burst.py http://127.0.0.1:8080/get-pool?instance_types=c6a.xlarge 1000
"""

import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


async def one(host, port, target, go, ready):
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        ready.append(False)
        return ("connect", str(e), None, 0.0)
    ready.append(True)
    await go.wait()
    started = time.perf_counter()
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    except OSError as e:
        return ("io", str(e), None, 0.0)
    finally:
        writer.close()
    elapsed = (time.perf_counter() - started) * 1000
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not head or not head[0].startswith("HTTP/"):
        return ("garbled", head[0] if head else "", None, elapsed)
    status = int(head[0].split()[1])
    cache = next((h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("x-cache:")), "-")
    return (status, None, cache, elapsed)


async def main(url, n):
    u = urlsplit(url)
    target = u.path + (f"?{u.query}" if u.query else "")
    go = asyncio.Event()
    ready = []
    tasks = [asyncio.create_task(one(u.hostname, u.port or 80, target, go, ready)) for _ in range(n)]
    # Every connection is established (or has failed) before the starting gun.
    for _ in range(1000):
        await asyncio.sleep(0.01)
        if len(ready) == n:
            break
    await asyncio.sleep(0.2)
    go.set()
    results = await asyncio.gather(*tasks)
    statuses = Counter(str(r[0]) for r in results)
    caches = Counter(r[2] for r in results if r[2] is not None)
    errors = sum(1 for r in results if not (isinstance(r[0], int) and 200 <= r[0] < 300))
    print(json.dumps({
        "sent": n,
        "statuses": dict(statuses),
        "x_cache": dict(caches),
        "errors": errors,
        "first_error": next((f"{r[0]}: {r[1]}" for r in results if r[1]), None),
        "max_ms": round(max((r[3] for r in results), default=0.0), 1),
    }))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
