#!/usr/bin/env python3
"""Echo server built on Python `websockets` (asyncio API), for interop tests.

Usage:
    py_echo_server.py PORT_FILE [--compression] [--tls CERT KEY]

Listens on 127.0.0.1 with an OS-chosen port and echoes every message back with
the same type (text stays text, binary stays binary). Any request path is
accepted; tests use ws://127.0.0.1:PORT/ws.

- PORT_FILE: the chosen port is written there as decimal text followed by a
  newline, atomically (temp file + rename), once the server accepts
  connections. Poll until the file exists.
- --compression: negotiate permessage-deflate (off by default).
- --tls CERT KEY: serve wss:// with these PEM files (the server certificate
  chain and its private key, e.g. made by the test with rcgen).

Runs until killed (SIGTERM/SIGINT), until its parent process dies, or -- when
stdin is a pipe or socket -- until stdin reaches EOF. So a test that spawns it
with a piped stdin (Stdio::piped(), handle kept alive) cannot leak it: when
the test process dies, the pipe closes and the server exits. Stdin that is
/dev/null, a file or a terminal is ignored (it would hit EOF at once).

Messages up to 64 MiB in up to 2**20 fragments are accepted (the
websockets default of 4096 fragments is lifted).
"""

import argparse
import asyncio
import os
import signal
import ssl
import stat
import threading

# websockets 17 caps a fragmented message at 4096 frames (read from this
# variable at import time); lift it so a peer that fragments finely is not
# rejected by the test harness rather than by the code under test.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(1 << 20))

from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

MAX_SIZE = 64 * 1024 * 1024


async def echo(ws):
    # Iterating yields str for text and bytes for binary; send() keeps the type.
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # abnormal closes are expected in tests; don't log a traceback


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
    """Block on stdin in a thread; resolve `stop` at EOF (or on error)."""

    def run():
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))

    threading.Thread(target=run, daemon=True).start()


async def watch_parent(stop):
    """Resolve `stop` once we are reparented (our parent died)."""
    parent = os.getppid()
    while not stop.done():
        if os.getppid() != parent:
            stop.set_result(None)
            return
        await asyncio.sleep(0.5)


async def main():
    parser = argparse.ArgumentParser(description="websockets echo server")
    parser.add_argument("port_file")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()

    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)

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
        compression="deflate" if args.compression else None,
        # Large messages on a slow CI box: don't let keepalive kill a test.
        ping_interval=None,
        # Exit promptly when stopped, even if a peer never answers our close.
        close_timeout=2,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        write_port_atomically(args.port_file, port)
        await stop
    parent_watch.cancel()


if __name__ == "__main__":
    asyncio.run(main())
