"""How an agent's messages reach xschedd: the native stream on the daemon's Unix socket
(xschedd/framing.py) or a gRPC stream (AgentService.Connect, for TCP).

A link is opened and run on the agent's event loop; `send` may be called from any
thread and never blocks (an XQueue's thread hands its event straight to the socket, with
no hop through the agent's loop). While a link is `backlogged` (the daemon does not take
what we send as fast as we send it) the agent coalesces status events, and `on_drain` (on
the loop) tells it when to send what it held back; a link that still cannot keep up
fails with LinkOverflow and the agent resyncs on its next registration. Messages from
the daemon are handed to `on_message` on the agent's loop; it returns False to end the
stream. A link's `serializes_at_send` says whether `send` is done with a message when it
returns (the native stream serializes it there: the caller may refill it for the next
send) or keeps the object to serialize later (gRPC).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable

import grpc

from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import agent_pb2_grpc
from xschedd.framing import MAGIC, FrameError, FrameReader, frame

OnMessage = Callable[[apb.DaemonMessage], bool]
OnDrain = Callable[[], None]
OUTBOX_LIMIT = 10_000  # gRPC: messages not yet written
OUTBOX_BACKLOG = 64  # gRPC: messages not yet written that make the link backlogged
OUTBOX_LIMIT_BYTES = 4 * 1024 * 1024  # native: bytes not yet written
SEND_BUFFER_BYTES = 64 * 1024  # native: the kernel's share (what the daemon has yet to read)
READ_BYTES = 256 * 1024



async def first_to_end(*coros) -> None:
    """Run `coros` as tasks until the first ends (re-raising its error); cancel the rest."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

class LinkOverflow(Exception):
    """The daemon does not keep up with our events."""


class LinkRefused(Exception):
    """The daemon refused this stream (a native stream's StreamError)."""

    def __init__(self, code: int, details: str) -> None:
        name = next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
        super().__init__(f"{name}: {details}")


class UnixLink:
    """The native stream. Reads are the loop's reader callback; writes go out at once from
    the sending thread, and what the socket does not take waits for the loop's writer."""

    serializes_at_send = True

    def __init__(self, path: str, on_message: OnMessage, on_drain: OnDrain = lambda: None) -> None:
        self.path = path
        self.on_message = on_message
        self.on_drain = on_drain
        self._reader = FrameReader(apb.DaemonMessage.FromString)
        self._wlock = threading.Lock()  # the socket's sends and `_pending`
        self._pending = bytearray()
        self._writer_on = False
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._done: asyncio.Future[None] | None = None

    async def open(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._done = loop.create_future()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        # A small kernel buffer: under overload, events wait here coalesced, not there stale.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        try:
            await loop.sock_connect(sock, self.path)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._pending += MAGIC  # goes out with the first message
        loop.add_reader(sock, self._on_readable)

    async def run(self) -> None:
        """Until the stream ends: returns when it ended cleanly, raises why it did not."""
        assert self._done is not None
        await asyncio.shield(self._done)

    async def close(self) -> None:
        self._finish(None)
        with self._wlock:
            sock, self._sock = self._sock, None
        if sock is not None and self._loop is not None:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
            sock.close()

    def send(self, *msgs: apb.AgentMessage) -> None:
        data = frame(msgs[0]) if len(msgs) == 1 else b"".join(frame(msg) for msg in msgs)  # one write for all
        with self._wlock:
            if self._sock is None or (self._done is not None and self._done.done()):
                return
            if self._pending:  # behind what the socket has not taken yet
                self._pending += data
                if len(self._pending) > OUTBOX_LIMIT_BYTES:
                    self._fail_threadsafe(LinkOverflow(f"{len(self._pending)} bytes not taken by xschedd"))
                else:
                    self._flush_locked()
                return
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fail_threadsafe(exc)
                return
            if sent < len(data):
                self._pending += data[sent:]
                self._want_writer_locked()

    @property
    def backlogged(self) -> bool:
        """The socket refused bytes: they wait for the loop's writer."""
        return self._writer_on

    # -- internals ---------------------------------------------------------------------
    def _flush_locked(self) -> None:
        if self._sock is None:
            return
        try:
            sent = self._sock.send(self._pending)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail_threadsafe(exc)
            return
        del self._pending[:sent]
        if self._pending:
            self._want_writer_locked()

    def _want_writer_locked(self) -> None:
        if self._writer_on:
            return
        self._writer_on = True
        self._on_loop(self._add_writer)

    def _add_writer(self) -> None:
        if self._sock is not None and self._sock.fileno() >= 0:
            assert self._loop is not None
            self._loop.add_writer(self._sock, self._on_writable)

    def _on_writable(self) -> None:
        with self._wlock:
            if self._sock is None:
                return
            if self._pending:
                self._flush_locked()
            if self._pending:
                return
            assert self._loop is not None
            self._loop.remove_writer(self._sock)
            self._writer_on = False
        self.on_drain()  # outside `_wlock`: the agent sends from it

    def _on_readable(self) -> None:
        if self._sock is None:
            return
        try:
            data = self._sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._finish(exc)
            return
        if not data:
            self._finish(ConnectionResetError("xschedd closed the stream"))
            return
        try:
            msgs = self._reader.feed(data)
        except FrameError as exc:
            self._finish(exc)
            return
        for msg in msgs:
            if msg.WhichOneof("body") == "error":
                self._finish(LinkRefused(msg.error.code, msg.error.details))
                return
            try:
                keep = self.on_message(msg)
            except Exception as exc:  # noqa: BLE001 (the handler failed: end this stream, not the loop)
                self._finish(exc)
                return
            if not keep:
                self._finish(None)
                return

    def _fail_threadsafe(self, exc: Exception) -> None:
        self._on_loop(lambda: self._finish(exc))

    def _on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to do
                self._loop.call_soon_threadsafe(fn)

    def _finish(self, exc: BaseException | None) -> None:
        if self._done is None or self._done.done():
            return
        if exc is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(exc)


class GrpcLink:
    """AgentService.Connect over gRPC (TCP); `send` hands messages to the loop's writer."""

    serializes_at_send = False  # the writer serializes what `send` queued

    def __init__(
        self, target: str, token: str | None, on_message: OnMessage, on_drain: OnDrain = lambda: None
    ) -> None:
        self.target = target
        self.token = token
        self.on_message = on_message
        self.on_drain = on_drain
        self._channel: grpc.aio.Channel | None = None
        self._call = None
        self._outbox: asyncio.Queue[apb.AgentMessage] = asyncio.Queue()
        self._overflow = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        self._channel = grpc.aio.insecure_channel(self.target)
        self._call = agent_pb2_grpc.AgentServiceStub(self._channel).Connect(metadata=metadata)

    async def run(self) -> None:
        await first_to_end(self._read(), self._write())

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._channel is not None:
            await self._channel.close()

    def send(self, *msgs: apb.AgentMessage) -> None:
        # Both ways queue behind what other threads sent before: the order of sends stays.
        if threading.get_ident() == self._loop_thread:
            assert self._loop is not None
            self._loop.call_soon(self._put, *msgs)
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to do
                self._loop.call_soon_threadsafe(self._put, *msgs)

    @property
    def backlogged(self) -> bool:
        return self._outbox.qsize() >= OUTBOX_BACKLOG

    def _put(self, *msgs: apb.AgentMessage) -> None:
        for msg in msgs:
            if self._outbox.qsize() >= OUTBOX_LIMIT:
                self._overflow = True
                self._outbox.put_nowait(None)  # type: ignore[arg-type]  # wakes the writer to fail
                return
            self._outbox.put_nowait(msg)

    async def _read(self) -> None:
        async for msg in self._call:
            if not self.on_message(msg):
                return
        raise ConnectionResetError("xschedd ended the stream")

    async def _write(self) -> None:
        while True:
            msg = await self._outbox.get()
            if self._overflow:
                raise LinkOverflow(f"{OUTBOX_LIMIT} messages not taken by xschedd")
            backlogged = self.backlogged
            await self._call.write(msg)
            if backlogged and self._outbox.empty():
                self.on_drain()
