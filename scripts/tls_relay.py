#!/usr/bin/env python3
"""A loopback TLS client relay for conformance runs against a wss:// server.

Usage:
    tls_relay.py LISTEN_PORT TARGET_PORT

Accepts plain TCP on 127.0.0.1:LISTEN_PORT and relays each connection, byte for
byte and in the pieces they arrive in, to a TLS connection to
127.0.0.1:TARGET_PORT (server name "localhost", certificate not checked: the
target is a throwaway self-signed server on this machine). So a test driver
that speaks only ws:// (kosoku) exercises the server's TLS path with every case.

Each direction is relayed until its end of stream; the server's end ends the
client's write side (half-close), the client's end closes the TLS connection
(TLS has no half-close of its own). Prints "listening" once bound; runs until
killed.
"""

import asyncio
import ssl
import sys

CHUNK = 64 * 1024


async def pump(reader, writer, half_close):
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            if half_close and writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (ConnectionError, OSError, RuntimeError):
            pass


async def relay(client_reader, client_writer, target_port, tls):
    try:
        server_reader, server_writer = await asyncio.open_connection(
            "127.0.0.1", target_port, ssl=tls, server_hostname="localhost"
        )
    except (ConnectionError, ssl.SSLError, OSError):
        client_writer.close()
        return
    await asyncio.gather(
        pump(client_reader, server_writer, half_close=False),
        pump(server_reader, client_writer, half_close=True),
    )
    for writer in (client_writer, server_writer):
        writer.close()


async def main():
    listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    server = await asyncio.start_server(
        lambda r, w: relay(r, w, target_port, tls), "127.0.0.1", listen_port
    )
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
