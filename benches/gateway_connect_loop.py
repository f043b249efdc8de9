#!/usr/bin/env python3
"""Opens WebSocket sessions in a loop for a while and counts how each went: the client side of
benches/gateway_upgrade_load.sh, which upgrades the gateway underneath it.

Each attempt: TCP connect, the opening handshake (RFC 6455 section 4.1: GET with Upgrade,
a random Sec-WebSocket-Key, and the 101's Sec-WebSocket-Accept checked), one masked text
frame of 16 bytes (section 5.3) and its echo, a close frame (1000) and the peer's close reply,
then TCP close. Every step has a 10 s timeout. An attempt is counted as `refused` (the
connect was refused), `failed` (anything else went wrong: reset, timeout, a status other than
101, a wrong echo; the first few reasons are kept) or `ok`. Prints one JSON line at the end.
Standard library only.

Usage: gateway_connect_loop.py HOST PORT SECONDS [WORKERS]
"""

import base64
import hashlib
import json
import os
import socket
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 10.0


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


def masked_frame(opcode, payload):
    """A client frame (FIN set, masked) with a payload under 126 bytes."""
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + body


def read_frame(sock):
    """(opcode, payload) of one unmasked server frame."""
    first, second = recv_exact(sock, 2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(recv_exact(sock, 2), "big")
    elif length == 127:
        length = int.from_bytes(recv_exact(sock, 8), "big")
    return first & 0x0F, recv_exact(sock, length)


def attempt(host, port):
    """None when the session went through, else ("refused" | "failed", reason)."""
    try:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
    except ConnectionRefusedError as e:
        return "refused", str(e)
    except OSError as e:
        return "failed", f"connect: {e}"
    try:
        sock.settimeout(TIMEOUT)
        key = base64.b64encode(os.urandom(16))
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (host.encode(), port, key)
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return "failed", "closed before the response head"
            head += chunk
            if len(head) > 65536:
                return "failed", "response head too long"
        head, rest = head.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            return "failed", f"status: {lines[0][:80]!r}"
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if not any(l.lower() == b"sec-websocket-accept: " + accept.lower() for l in lines[1:]):
            return "failed", "wrong Sec-WebSocket-Accept"
        if rest:
            return "failed", "bytes before the first message"
        payload = os.urandom(8).hex().encode()
        sock.sendall(masked_frame(0x1, payload))
        opcode, echo = read_frame(sock)
        if opcode != 0x1 or echo != payload:
            return "failed", f"echo: opcode {opcode}, {len(echo)} bytes"
        sock.sendall(masked_frame(0x8, (1000).to_bytes(2, "big")))
        while True:
            opcode, _ = read_frame(sock)
            if opcode == 0x8:
                break
        return None
    except OSError as e:
        return "failed", f"{type(e).__name__}: {e}"
    finally:
        sock.close()


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    end = time.monotonic() + seconds
    lock = threading.Lock()
    counts = {"ok": 0, "refused": 0, "failed": 0}
    reasons = []

    def loop():
        while time.monotonic() < end:
            outcome = attempt(host, port)
            with lock:
                if outcome is None:
                    counts["ok"] += 1
                else:
                    counts[outcome[0]] += 1
                    if len(reasons) < 10:
                        reasons.append(f"{time.strftime('%H:%M:%S')} {outcome[0]}: {outcome[1]}")

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"attempts": sum(counts.values()), **counts, "first_problems": reasons}))


if __name__ == "__main__":
    main()
