#!/usr/bin/env python3
"""TLS echo server built on Python `websockets` and the `ssl` module, for the
client's wss:// interop tests.

Usage:
    py_tls_echo_server.py CERT KEY PORT_FILE

CERT and KEY are PEM files (the server certificate chain and its private key,
e.g. made by the test with rcgen). Listens on 127.0.0.1 with an OS-chosen port
and echoes every message back with the same type. Any request path is
accepted.

- PORT_FILE: the chosen port is written there as decimal text and a newline,
  atomically (temp file + rename), once the server accepts connections.

Runs until killed (SIGTERM/SIGINT), until its parent process dies, or -- when
stdin is a pipe or socket -- until stdin reaches EOF, so a test that spawns it
with a piped stdin (handle kept alive) cannot leak it.

Messages up to 64 MiB are accepted.
"""

import argparse
import asyncio
import os
import signal
import ssl
import stat
import threading

os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(1 << 20))

from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

MAX_SIZE = 64 * 1024 * 1024


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


def write_port_atomically(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def stdin_is_pipe():
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def watch_stdin(loop, stop):
    def run():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))

    threading.Thread(target=run, daemon=True).start()


async def watch_parent(stop):
    parent = os.getppid()
    while not stop.done():
        if os.getppid() != parent:
            stop.set_result(None)
            return
        await asyncio.sleep(0.5)


async def main():
    parser = argparse.ArgumentParser(description="websockets TLS echo server")
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("port_file")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    if stdin_is_pipe():
        watch_stdin(loop, stop)
    parent_watch = asyncio.create_task(watch_parent(stop))

    async with serve(
        echo,
        "127.0.0.1",
        0,
        ssl=context,
        max_size=MAX_SIZE,
        compression=None,
        ping_interval=None,
        close_timeout=2,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        write_port_atomically(args.port_file, port)
        await stop
    parent_watch.cancel()


if __name__ == "__main__":
    asyncio.run(main())
