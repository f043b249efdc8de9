#!/usr/bin/env python3
"""Interop client built on Python `websockets` (asyncio API).

Usage:
    py_client.py URL [--compression] [--ca FILE]

Connects to URL (e.g. ws://127.0.0.1:PORT/ws) and, for each payload size in
SIZES, sends a text message (valid UTF-8 of exactly that many bytes, mixing
ASCII with 2-, 3- and 4-byte characters when the size allows) and a binary
message (deterministic pseudo-random bytes), waiting for each echo and checking
it has the same type and content. Then closes with code 1000.

Output / exit status:
    OK <n_messages>     on stdout, exit 0 (n_messages = messages echoed)
    FAIL: <reason>      on stdout, exit 1 (mismatch, error, or 30 s timeout)

--compression offers permessage-deflate (off by default) and fails unless the
server agrees to it. --ca trusts the certificate(s) in FILE (PEM) for a wss://
URL instead of the system's. Incoming messages may be up to 64 MiB in up to 2**20
fragments.
"""

import argparse
import asyncio
import os
import ssl
import sys

# websockets 17 caps a fragmented message at 4096 frames (read from this
# variable at import time); lift it so a peer that fragments finely is not
# rejected by the test harness rather than by the code under test.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(1 << 20))

from websockets.asyncio.client import connect  # noqa: E402

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1048576]
TIMEOUT_S = 30
MAX_SIZE = 64 * 1024 * 1024

# Cycle of characters of 1, 2, 3 and 4 UTF-8 bytes used to build text payloads.
TEXT_UNITS = ["a", "b", "c", "\u00e9", "d", "\u20ac", "e", "\U0001d11e", "f", "g"]


def make_text(size):
    """A str whose UTF-8 encoding is exactly `size` bytes."""
    out = []
    used = 0
    i = 0
    while used < size:
        unit = TEXT_UNITS[i % len(TEXT_UNITS)]
        n = len(unit.encode("utf-8"))
        if used + n > size:
            unit, n = "z", 1  # pad the tail with ASCII
        out.append(unit)
        used += n
        i += 1
    text = "".join(out)
    assert len(text.encode("utf-8")) == size
    return text


def make_binary(size):
    """Deterministic pseudo-random bytes (xorshift32 seeded by size)."""
    state = (0x9E3779B9 ^ size) & 0xFFFFFFFF or 1
    out = bytearray(size)
    for i in range(size):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        out[i] = state & 0xFF
    return bytes(out)


def describe_mismatch(sent, got):
    if type(sent) is not type(got):
        return f"type {type(got).__name__} != {type(sent).__name__}"
    if len(sent) != len(got):
        return f"length {len(got)} != {len(sent)}"
    first = next(i for i, (a, b) in enumerate(zip(sent, got)) if a != b)
    return f"content differs at index {first}"


async def exchange(url, compression, ca):
    count = 0
    tls = ssl.create_default_context(cafile=ca) if ca else None
    async with connect(
        url,
        ssl=tls,
        max_size=MAX_SIZE,
        compression="deflate" if compression else None,
        ping_interval=None,
        open_timeout=TIMEOUT_S,
    ) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        if compression and "permessage-deflate" not in agreed:
            raise AssertionError(f"compression offered but not agreed: {agreed!r}")
        for size in SIZES:
            for kind, payload in (
                ("text", make_text(size)),
                ("binary", make_binary(size)),
            ):
                await ws.send(payload)
                echo = await ws.recv()
                if echo != payload or type(echo) is not type(payload):
                    raise AssertionError(
                        f"{kind} message of {size} bytes: {describe_mismatch(payload, echo)}"
                    )
                count += 1
        await ws.close(code=1000)
    return count


async def main():
    parser = argparse.ArgumentParser(description="websockets interop client")
    parser.add_argument("url")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--ca")
    args = parser.parse_args()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            count = await exchange(args.url, args.compression, args.ca)
    except TimeoutError:
        print(f"FAIL: timed out after {TIMEOUT_S} s")
        return 1
    except Exception as exc:  # report any failure on one line
        print(f"FAIL: {type(exc).__name__}: {exc}")
        return 1
    print(f"OK {count}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
