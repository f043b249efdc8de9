#!/usr/bin/env python3
"""Runs the Python SignalR clients against the sample chat hub of `sockway hub`.

Two clients from PyPI, each over what it supports:
  signalrcore  WebSockets, Server-Sent Events, long polling; JSON and MessagePack
               (thread-based; negotiates without negotiateVersion, so the server answers
               version 0 and the connection id doubles as the token). Its long polling
               hands on one record per poll response and its MessagePack client streams
               lack the invocation-id slot: see crates/sockway-cli/tests/hub_python.rs;
  pysignalr    WebSockets only; JSON and MessagePack (asyncio; client results).

Scenarios: send_message (ReceiveMessage seen by two connections), groups (the sample's exact
"{connectionId} has joined|left the group {group}." texts), stream_counter (Counter(5, 10)
yields 0..4), upload_stream (3 items -> 3 with pysignalr; signalrcore streams without an
invocation id, so there it is "the server took the stream and still answers"), echo, and with
pysignalr client_result (WaitForMessage answered by the other connection's GetMessage
handler).

Prints one JSON line per scenario ({"scenario", "client", "transport", "protocol", "ok",
"detail" or "error", "ms"}); exits 1 when any failed (summed up on stderr), 2 on bad usage.

Usage: signalr_py.py HUB_URL --client signalrcore|pysignalr
                     [--transport WebSockets|ServerSentEvents|LongPolling]
                     [--protocol json|messagepack] [--only NAME,...]
"""

import argparse
import json
import sys
import time
import uuid

import signalr_py_clients as clients

#: Bound of one scenario; each wait inside is bounded by clients.STEP.
SCENARIO_LIMIT = 60.0


def nonce():
    """A short random tag, so that no two scenarios share group names or texts."""
    return uuid.uuid4().hex[:8]


def check_equal(actual, expected, what):
    """Raises AssertionError naming `what` unless `actual == expected`."""
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


async def send_message(run):
    a = await run.connect("A", ["ReceiveMessage"])
    b = await run.connect("B", ["ReceiveMessage"])
    text = f"hello {nonce()} from Python: ünïcödé ✓"
    await a.invoke("SendMessage", ["alice", text])
    for peer in (a, b):
        await peer.wait_for_call("ReceiveMessage", ["alice", text])
    reply = f"reply {nonce()}"
    await b.invoke("SendMessage", ["bob", reply])
    for peer in (a, b):
        await peer.wait_for_call("ReceiveMessage", ["bob", reply])
        check_equal(peer.count("ReceiveMessage", ["alice", text]), 1, f"{peer.label}: copies")
    return {"received": len(a.calls_of("ReceiveMessage"))}


async def group_notice(peer, verb, group):
    """Waits for Send("<id> has VERB the group GROUP.") at `peer`; returns the id."""
    suffix = f" has {verb} the group {group}."

    def found():
        for args in peer.calls_of("Send"):
            if args and isinstance(args[0], str) and args[0].endswith(suffix):
                return args[0][: -len(suffix)]
        return None

    await peer.wait_until(lambda: found() is not None, f'Send("<id>{suffix}")')
    named = found()
    if not named or any(c.isspace() for c in named):
        raise AssertionError(f"{peer.label}: no connection id in the notice {named!r}{suffix}")
    return named


async def groups(run):
    group = f"group-{nonce()}"
    methods = ["Send", "ReceiveMessage"]
    a = await run.connect("A", methods)
    b = await run.connect("B", methods)
    outsider = await run.connect("C", methods)
    await a.invoke("AddToGroup", [group])
    id_a = await group_notice(a, "joined", group)
    await b.invoke("AddToGroup", [group])
    id_b = await group_notice(b, "joined", group)
    await a.wait_for_call("Send", [f"{id_b} has joined the group {group}."])
    if id_a == id_b:
        raise AssertionError(f"A and B have the same connection id {id_a}")
    to_group = f"to the group {nonce()}"
    await b.invoke("SendMessageToGroup", [group, to_group])
    await a.wait_for_call("Send", [to_group])
    await b.wait_for_call("Send", [to_group])
    await b.invoke("RemoveFromGroup", [group])
    await a.wait_for_call("Send", [f"{id_b} has left the group {group}."])
    after = f"after B left {nonce()}"
    await a.invoke("SendMessageToGroup", [group, after])
    await a.wait_for_call("Send", [after])
    marker = f"marker {nonce()}"
    await a.invoke("SendMessage", ["marker", marker])
    await b.wait_for_call("ReceiveMessage", ["marker", marker])
    await outsider.wait_for_call("ReceiveMessage", ["marker", marker])
    check_equal(b.count("Send", [after]), 0, "B: group messages after RemoveFromGroup")
    check_equal(outsider.calls_of("Send"), [], "C (never in the group): group messages")
    return {"group": group, "idA": id_a, "idB": id_b}


async def stream_counter(run):
    a = await run.connect("A", [])
    items = await a.stream("Counter", [5, 10])
    check_equal(items, [0, 1, 2, 3, 4], "Counter(5, 10) items")
    return {"items": items}


async def upload_stream(run):
    a = await run.connect("A", [])
    result = await a.upload("UploadStream", ["one", "two", "three"])
    # signalrcore streams without an invocation id: no result to check (see CorePeer.upload).
    expected = None if run.client == "signalrcore" else 3
    check_equal(result, expected, "UploadStream result")
    return {"result": result}


async def echo(run):
    a = await run.connect("A", [])
    values = ["hello", "héllo ✓ 🌍 \"quoted\" \\", "", "x" * 10000]
    for value in values:
        check_equal(await a.invoke("Echo", [value]), value, f"Echo of {len(value)} characters")
    return {"values": len(values)}


async def client_result(run):
    b = await run.connect("B", ["Send"])
    reply = f"reply {nonce()} from B"
    b.answer("GetMessage", reply)
    group = f"id-{nonce()}"
    await b.invoke("AddToGroup", [group])
    id_b = await group_notice(b, "joined", group)
    a = await run.connect("A", [])
    check_equal(await a.invoke("WaitForMessage", [id_b]), reply, "WaitForMessage result")
    return {"result": reply}


SCENARIOS = {
    "send_message": send_message,
    "groups": groups,
    "stream_counter": stream_counter,
    "upload_stream": upload_stream,
    "echo": echo,
    "client_result": client_result,
}

#: What each client runs by default (signalrcore cannot answer client results).
DEFAULTS = {
    "signalrcore": ["send_message", "groups", "stream_counter", "upload_stream", "echo"],
    "pysignalr": ["send_message", "groups", "stream_counter", "upload_stream", "echo", "client_result"],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hub_url")
    parser.add_argument("--client", required=True, choices=sorted(DEFAULTS))
    parser.add_argument("--transport", default="WebSockets",
                        choices=["WebSockets", "ServerSentEvents", "LongPolling"])
    parser.add_argument("--protocol", default="json", choices=["json", "messagepack"])
    parser.add_argument("--only", default=None, help="comma-separated scenario names")
    args = parser.parse_args()
    if args.client == "pysignalr" and args.transport != "WebSockets":
        parser.error("pysignalr speaks WebSockets only")
    if args.protocol == "messagepack" and args.transport == "ServerSentEvents":
        parser.error("Server-Sent Events carry text only")
    names = args.only.split(",") if args.only else DEFAULTS[args.client]
    for name in names:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name}")
    return args, names


def main():
    args, names = parse_args()
    failed = []
    for name in names:
        run = clients.Run(args.client, args.hub_url, args.transport, args.protocol)
        line = {"scenario": name, "client": args.client, "transport": args.transport,
                "protocol": args.protocol}
        started = time.monotonic()
        try:
            detail = run.execute(SCENARIOS[name], SCENARIO_LIMIT)
            line.update(ok=True, detail=detail)
        except Exception as error:  # every failure becomes this scenario's result line
            failed.append(name)
            line.update(ok=False, error=f"{type(error).__name__}: {error}")
        line["ms"] = int((time.monotonic() - started) * 1000)
        print(json.dumps(line), flush=True)
    if failed:
        print(f"signalr_py: {len(failed)} scenario(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
