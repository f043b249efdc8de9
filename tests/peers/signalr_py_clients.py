"""One interface over the two Python SignalR clients, for signalr_py.py.

A `Run` opens connections (`await run.connect(label, methods)`) with the run's client,
transport and protocol, and closes every one of them when the scenario ends. Each connection
records the calls of the client methods it was asked to listen to and offers the same
bounded operations whatever the client: invoke, stream, upload, answer (a client result),
wait_for_call, wait_until. signalrcore is thread-based, so its operations poll state its
threads fill in; pysignalr is asyncio and runs in the scenario's own loop.
"""

import asyncio
import json
import logging
import socket
import sys
import threading
import uuid
from collections import defaultdict

#: Bound of one wait: generous, CI is a loaded 2-core machine.
STEP = 20.0


async def in_daemon_thread(function, what, limit=STEP):
    """Runs blocking `function()` on a daemon thread and awaits it (at most `limit` s).

    Not asyncio.to_thread: a call that hangs would keep asyncio.run() (which joins its
    executor's threads) and the whole script from ever ending; a daemon thread does not.
    """
    done = threading.Event()
    box = {}

    def target():
        try:
            box["result"] = function()
        except Exception as error:  # handed to the awaiting coroutine
            box["error"] = error
        done.set()

    threading.Thread(target=target, daemon=True).start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not done.is_set():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} did not return within {limit:.0f} s")
        await asyncio.sleep(0.01)
    if "error" in box:
        raise box["error"]
    return box.get("result")


class Peer:
    """What both clients share: the recorded calls and the bounded waits on them."""

    def __init__(self, label):
        self.label = label
        self._calls = defaultdict(list)
        self._lock = threading.Lock()

    def record(self, name, args):
        """Records one call of client method `name` (from any thread)."""
        with self._lock:
            self._calls[name].append(list(args))

    def calls_of(self, name):
        """The argument lists of every call of `name` so far."""
        with self._lock:
            return list(self._calls[name])

    def count(self, name, args):
        """How many calls of `name` had exactly `args`."""
        return sum(1 for a in self.calls_of(name) if a == args)

    async def wait_until(self, predicate, what, limit=STEP):
        """Polls `predicate` until it holds; AssertionError naming `what` after `limit` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"{self.label}: {what} not seen within {limit:.0f} s")
            await asyncio.sleep(0.01)

    async def wait_for_call(self, name, args):
        """Waits for a call of `name` with exactly `args`."""
        await self.wait_until(
            lambda: self.count(name, args) > 0,
            f"{name}{json.dumps(args, ensure_ascii=False)[:200]} "
            f"(received {json.dumps(self.calls_of(name)[-3:], ensure_ascii=False)[:400]})",
        )


class CorePeer(Peer):
    """A signalrcore connection (any transport; JSON or MessagePack)."""

    def __init__(self, label, url, transport, protocol, methods):
        super().__init__(label)
        from signalrcore.hub_connection_builder import HubConnectionBuilder
        from signalrcore.protocol.messagepack_protocol import MessagePackHubProtocol
        from signalrcore.types import HttpTransportType

        builder = HubConnectionBuilder().with_url(
            url, options={"transport": HttpTransportType(transport)})
        if protocol == "messagepack":
            builder = builder.with_hub_protocol(MessagePackHubProtocol())
        self.connection = builder.build()
        self.opened = threading.Event()
        self.connection.on_open(self.opened.set)
        self._errors = {}
        self.connection.on_error(self._on_error)
        for name in methods:
            self.connection.on(name, lambda args, name=name: self.record(name, args))

    def _on_error(self, message):
        with self._lock:
            self._errors[getattr(message, "invocation_id", None)] = getattr(message, "error", message)

    async def start(self):
        await in_daemon_thread(self.connection.start, f"{self.label}: start()")
        await self.wait_until(self.opened.is_set, "the handshake (on_open)")

    async def invoke(self, method, args):
        """Invokes `method(*args)`, returns the Completion's result; raises its error."""
        done = threading.Event()
        box = {}
        invocation_id = str(uuid.uuid4())

        def completed(message):
            box["result"] = getattr(message, "result", None)
            done.set()

        self.connection.send(method, args, on_invocation=completed, invocation_id=invocation_id)
        await self.wait_until(
            lambda: done.is_set() or invocation_id in self._errors, f"the Completion of {method}")
        if invocation_id in self._errors:
            raise RuntimeError(f"{method} failed: {self._errors[invocation_id]}")
        return box.get("result")

    async def stream(self, method, args):
        """Runs a server stream to its end; returns the items.

        Not `connection.stream(...).subscribe(...)`: that sends the StreamInvocation before
        the caller can subscribe, so an item the server sends at once (the sample's Counter
        sends its first one without delay, as the documentation's sample does) can reach a
        handler with no callbacks yet and be dropped. These are the same steps as
        signalrcore's stream(), subscribing first.
        """
        from signalrcore.hub.handlers import StreamHandler
        from signalrcore.messages.stream_invocation_message import StreamInvocationMessage

        items, state = [], {}
        invocation_id = str(uuid.uuid4())
        handler = StreamHandler(method, invocation_id)
        handler.subscribe({
            "next": items.append,
            "complete": lambda _: state.setdefault("end", "complete"),
            "error": lambda e: state.setdefault("end", f"error: {e}"),
        })
        self.connection.stream_handlers[invocation_id].append(handler)
        self.connection.transport.send(StreamInvocationMessage(
            invocation_id, method, args, headers=self.connection.headers))
        await self.wait_until(lambda: "end" in state, f"the end of the {method} stream")
        if state["end"] != "complete":
            raise RuntimeError(f"{method} stream ended with {state['end']}")
        return items

    async def upload(self, method, items):
        """Sends `method` one client stream carrying `items`. signalrcore's Subject sends the
        invocation without an invocation id (fire-and-forget: the server sends no
        Completion), so this returns None once an Echo behind the stream has come back: the
        server took the whole stream without closing the connection."""
        from signalrcore.subject import Subject

        subject = Subject()
        self.connection.send(method, subject)
        for item in items:
            subject.next(item)
            await asyncio.sleep(0.02)
        subject.complete()
        tag = f"after {method} {uuid.uuid4().hex[:8]}"
        echoed = await self.invoke("Echo", [tag])
        if echoed != tag:
            raise AssertionError(f"Echo after {method}: expected {tag!r}, got {echoed!r}")
        return None

    def answer(self, method, value):
        raise NotImplementedError("signalrcore does not answer client results")

    async def stop(self):
        """Stops the connection. signalrcore's stop() closes its socket and then joins its
        receiving thread, which stays blocked in recv() until the server sends something (a
        keep-alive ping, up to 15 s later); shutting the socket down first wakes it at once."""
        client = getattr(self.connection.transport, "_client", None)
        sock = getattr(client, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        await in_daemon_thread(self.connection.stop, f"{self.label}: stop()")


class PyPeer(Peer):
    """A pysignalr connection (WebSockets; JSON or MessagePack)."""

    def __init__(self, label, url, protocol, methods):
        super().__init__(label)
        from pysignalr.client import SignalRClient
        from pysignalr.protocol.json import JSONProtocol
        from pysignalr.protocol.messagepack import MessagepackProtocol

        chosen = MessagepackProtocol() if protocol == "messagepack" else JSONProtocol()
        self.client = SignalRClient(url, protocol=chosen, retry_count=1)
        self.opened = asyncio.Event()
        self.errors = []

        async def on_open():
            self.opened.set()

        async def on_error(message):
            self.errors.append(getattr(message, "error", message))

        self.client.on_open(on_open)
        self.client.on_error(on_error)
        for name in methods:
            self.client.on(name, self._recorder(name))
        self.task = None

    def _recorder(self, name):
        async def record(args):
            self.record(name, args)
        return record

    async def start(self):
        self.task = asyncio.create_task(self.client.run())
        await self.wait_until(
            lambda: self.opened.is_set() or self.task.done(), "the handshake (on_open)")
        if self.task.done():
            raise RuntimeError(f"{self.label}: the client stopped: {self.task.exception()!r}")

    async def invoke(self, method, args):
        """Invokes `method(*args)`, returns the Completion's result; raises its error."""
        box = {}

        async def completed(message):
            box["message"] = message

        await asyncio.wait_for(self.client.send(method, args, on_invocation=completed), STEP)
        await self.wait_until(lambda: "message" in box, f"the Completion of {method}")
        message = box["message"]
        if getattr(message, "error", None):
            raise RuntimeError(f"{method} failed: {message.error}")
        return getattr(message, "result", None)

    async def stream(self, method, args):
        """Runs a server stream to its end; returns the items."""
        items, state = [], {}

        async def on_next(item):
            items.append(item)

        async def on_complete(message):
            state.setdefault("end", "complete")

        async def on_error(message):
            state["end"] = f"error: {getattr(message, 'error', message)}"

        await asyncio.wait_for(self.client.stream(method, args, on_next, on_complete, on_error), STEP)
        await self.wait_until(lambda: "end" in state, f"the end of the {method} stream")
        if state["end"] != "complete":
            raise RuntimeError(f"{method} stream ended with {state['end']}")
        return items

    async def upload(self, method, items):
        """Sends `method` one client stream carrying `items`, with an invocation id so the
        result comes back (pysignalr's client_stream sends none, so the invocation is built
        here from its message types)."""
        from pysignalr.messages import (CompletionClientStreamMessage, InvocationMessage,
                                        StreamItemMessage)

        stream_id = str(uuid.uuid4())
        box = {}

        async def completed(message):
            box["message"] = message

        invocation_id = str(uuid.uuid4())
        self.client._invocation_handlers[invocation_id] = completed
        invocation = InvocationMessage(invocation_id, method, [], {}, stream_ids=[stream_id])
        transport = self.client._transport
        await transport.send(invocation)
        for item in items:
            await transport.send(StreamItemMessage(stream_id, item))
            await asyncio.sleep(0.02)
        await transport.send(CompletionClientStreamMessage(stream_id))
        await self.wait_until(lambda: "message" in box, f"the Completion of {method}")
        if getattr(box["message"], "error", None):
            raise RuntimeError(f"{method} failed: {box['message'].error}")
        return getattr(box["message"], "result", None)

    def answer(self, method, value):
        """Answers the server's `method` invocations (client results) with `value`."""
        async def handler(args):
            await asyncio.sleep(0.05)
            return value
        self.client.on(method, handler)

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class Run:
    """The connections of one scenario, with the run's client, transport and protocol."""

    def __init__(self, client, url, transport, protocol):
        self.client = client
        self.url = url
        self.transport = transport
        self.protocol = protocol
        self.peers = []

    async def connect(self, label, methods):
        """Opens a connection that records calls of `methods`; returns it once open."""
        if self.client == "signalrcore":
            peer = CorePeer(label, self.url, self.transport, self.protocol, methods)
        else:
            peer = PyPeer(label, self.url, self.protocol, methods)
        self.peers.append(peer)
        await peer.start()
        return peer

    def execute(self, scenario, limit):
        """Runs `scenario(self)` (at most `limit` seconds), then closes every connection."""
        logging.basicConfig(level=logging.ERROR)

        async def body():
            try:
                return await asyncio.wait_for(scenario(self), limit)
            finally:
                for peer in self.peers:
                    try:
                        await peer.stop()
                    except Exception as error:  # a failed stop must not hide the result
                        print(f"signalr_py: {peer.label}: stop failed: {error!r}", flush=True,
                              file=sys.stderr)

        return asyncio.run(body())
