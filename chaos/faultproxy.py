#!/usr/bin/env python3
"""A fault-injecting TCP proxy for the chaos topology of the local stack (`STACK_CHAOS=1 make up`).

    faultproxy.py --control PORT --route NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT [--route ...]

Each route forwards TCP connections from 127.0.0.1:LISTEN_PORT to its target, in one of these modes:

  pass       plain forwarding (the default)
  delay      every request is held `delay_ms` before it is forwarded: the first bytes a client sends after
             the previous answer (or on a new connection) wait, the rest of that request does not, so an
             HTTP request costs `delay_ms` more whether or not the connection is kept alive
  refuse     the listener is closed (a connect gets ECONNREFUSED) and open connections are cut
  blackhole  connections are accepted and held, nothing is forwarded either way (clients time out);
             open connections are cut

A small HTTP control interface on 127.0.0.1:CONTROL (JSON):

  GET  /routes                      every route: mode, delay_ms, target, connections accepted
  PUT  /routes/NAME                 {"mode": "delay", "delay_ms": 500} (fields omitted keep their value)
  GET  /health                      200

Standard library only (asyncio), so it runs with any python3 and needs nothing installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

MODES = {"pass", "delay", "refuse", "blackhole"}


class Route:
    def __init__(self, name: str, listen: int, host: str, port: int):
        self.name, self.listen, self.host, self.port = name, listen, host, port
        self.mode = "pass"
        self.delay_ms = 0
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[asyncio.Task] = set()
        self.accepted = 0

    def info(self) -> dict:
        return {"mode": self.mode, "delay_ms": self.delay_ms, "listen": self.listen,
                "target": f"{self.host}:{self.port}", "accepted": self.accepted, "open": len(self.conns)}

    async def start_listening(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.listen, reuse_address=True)

    async def stop_listening(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def cut_all(self) -> None:
        for t in list(self.conns):
            t.cancel()

    async def apply(self, mode: str, delay_ms: int) -> None:
        old = self.mode
        self.mode, self.delay_ms = mode, delay_ms
        if mode == "refuse":
            await self.stop_listening()
            self.cut_all()
        else:
            await self.start_listening()
            if mode == "blackhole" and old != "blackhole":
                self.cut_all()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.conns.add(task)
        self.accepted += 1
        up_writer = None
        try:
            if self.mode == "blackhole":
                await asyncio.sleep(3600)
                return
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
            # True when the client's next bytes start a new request (nothing sent since the last answer).
            state = {"new_request": True}
            await asyncio.gather(self.pipe(reader, up_writer, state, upstream=True),
                                 self.pipe(up_reader, writer, state, upstream=False))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.conns.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    try:
                        w.transport.abort()
                    except Exception:  # noqa: BLE001 - already closed
                        pass

    async def pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, state: dict, upstream: bool) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                try:
                    dst.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            if self.mode == "blackhole":
                await asyncio.sleep(3600)
            if upstream:
                if state["new_request"] and self.mode == "delay" and self.delay_ms > 0:
                    await asyncio.sleep(self.delay_ms / 1000.0)
                state["new_request"] = False
            else:
                state["new_request"] = True
            dst.write(data)
            await dst.drain()


async def control_server(port: int, routes: dict[str, Route]) -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            status, answer = await dispatch(method, path, body, routes)
        except Exception as e:  # noqa: BLE001 - a bad control request is a 400, never a crash
            status, answer = 400, {"error": str(e)}
        payload = json.dumps(answer).encode()
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
                     f"connection: close\r\n\r\n".encode() + payload)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)


async def dispatch(method: str, path: str, body: bytes, routes: dict[str, Route]) -> tuple[int, dict]:
    if path == "/health":
        return 200, {"status": "ok"}
    if path == "/routes" and method == "GET":
        return 200, {n: r.info() for n, r in routes.items()}
    if path.startswith("/routes/"):
        name = path[len("/routes/"):]
        route = routes.get(name)
        if route is None:
            return 404, {"error": f"no route {name}"}
        if method == "GET":
            return 200, route.info()
        if method in ("PUT", "POST"):
            req = json.loads(body or b"{}")
            mode = req.get("mode", route.mode)
            if mode not in MODES:
                return 400, {"error": f"mode must be one of {sorted(MODES)}"}
            delay = int(req.get("delay_ms", route.delay_ms))
            if delay < 0:
                return 400, {"error": "delay_ms must be >= 0"}
            await route.apply(mode, delay)
            return 200, route.info()
    return 404, {"error": "not found"}


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--control", type=int, required=True)
    ap.add_argument("--route", action="append", required=True, help="NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT")
    args = ap.parse_args()
    routes = {}
    for spec in args.route:
        name, rest = spec.split("=", 1)
        listen, host, port = rest.split(":")
        routes[name] = Route(name, int(listen), host, int(port))
    for r in routes.values():
        await r.start_listening()
    ctl = await control_server(args.control, routes)
    print(f"faultproxy: control on 127.0.0.1:{args.control}; routes "
          + ", ".join(f"{n} :{r.listen} -> {r.host}:{r.port}" for n, r in routes.items()), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ctl.close()
    for r in routes.values():
        await r.stop_listening()
        r.cut_all()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
