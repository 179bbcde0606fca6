"""The daemon's side of agent streams: one AgentSession per connected process.

Owned by the daemon's event loop. A session carries the daemon's messages to its agent:
`AgentSession` through an outbox that feeds the gRPC response stream (TCP agents),
`SocketSession` straight into the native stream's transport (local agents, see
xschedd/framing.py). Operations that want an answer (ConfigXQueue) wait for the agent's
OperationResult.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator

import grpc

from protos.xsched.v1 import agent_pb2 as apb
from xschedd.auth import Peer
from xschedd.errors import AgentUnavailable, OperationRefused
from xschedd.framing import frame, frame_bytes
from xschedd.gates import GatePage

OPERATION_DELAY_S = 0.01  # how much later the operations that gates applied follow them

# DaemonMessage field 5 (`operations`), length-delimited: its tag byte on the wire.
_OPERATIONS_TAG = bytes([apb.DaemonMessage.OPERATIONS_FIELD_NUMBER << 3 | 2])

OUTBOX_LIMIT = 10_000
OUTBOX_LIMIT_BYTES = 16 * 1024 * 1024  # native stream: unsent bytes before the agent is dropped
_CLOSE = object()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@functools.lru_cache(maxsize=1 << 15)
def operation_bytes(xqueue_id: int, suspend: bool) -> bytes:
    """One suspend or resume as serialized `Operations`: concatenated, they parse as one
    `Operations` holding all of them (protobuf merges repeated fields). Encoded once per
    XQueue, so a decision's messages cost a join in C, not a build per op."""
    op = apb.Operation(xqueue_id=xqueue_id)
    (op.suspend if suspend else op.resume).SetInParent()
    return apb.Operations(ops=[op]).SerializeToString()


class AgentSession:
    """One agent stream over gRPC: `messages()` is its response stream."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.pid: int | None = None
        self.error: tuple[grpc.StatusCode, str] | None = None
        self.closed = False
        self.gates: GatePage | None = None  # a local agent's suspend gates (xschedd/gates.py)
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._results: dict[int, asyncio.Future[apb.OperationResult]] = {}
        self._op_ids = itertools.count(1)
        # Suspends and resumes that the gates applied, waiting to follow, in order.
        self._later: list[tuple[int, bool]] = []
        self._later_timer: asyncio.TimerHandle | None = None

    def send(self, msg: apb.DaemonMessage) -> None:
        if not self.closed:
            self._deliver(msg)

    def send_changes(self, now: list[tuple[int, bool]], later: list[tuple[int, bool]] = ()) -> None:
        """One decision's (xqueue_id, suspend) changes for this process: `now` in one
        message at once; `later`, which the suspend gates applied already, OPERATION_DELAY_S
        later, in one message with those of the decisions meanwhile, in order. So the
        agent hears of every suspend and resume (its state and events follow the gates
        that late), and its wake-up is off the path of the next decisions, which on a
        busy machine it would slow."""
        if self.closed:
            return
        if now:
            if self._later:  # what goes now is newer than anything held back for its XQueues
                ids = {xqueue_id for xqueue_id, _ in now}
                self._later = [change for change in self._later if change[0] not in ids]
            self.send_operations(b"".join(itertools.starmap(operation_bytes, now)))
        if later:
            self._later += later
            if self._later_timer is None:
                loop = asyncio.get_running_loop()
                self._later_timer = loop.call_later(OPERATION_DELAY_S, self._send_later)

    def _send_later(self) -> None:
        self._later_timer = None
        changes, self._later = self._later, []
        if changes and not self.closed:
            self.send_operations(b"".join(itertools.starmap(operation_bytes, changes)))

    def send_operations(self, ops: bytes) -> None:
        """One decision's operations for this process, as serialized `Operations`."""
        if not self.closed:
            msg = apb.DaemonMessage()
            msg.operations.MergeFromString(ops)
            self._deliver(msg)

    async def request(self, op: apb.Operation, timeout_s: float) -> None:
        """Send `op` and wait for the agent to apply it; raise OperationRefused/AgentUnavailable."""
        op.op_id = next(self._op_ids)
        future: asyncio.Future[apb.OperationResult] = asyncio.get_running_loop().create_future()
        self._results[op.op_id] = future
        try:
            self.send(apb.DaemonMessage(operation=op))
            result = await asyncio.wait_for(future, timeout_s)
        except asyncio.TimeoutError:
            raise AgentUnavailable(f"process {self.pid} did not answer within {timeout_s} s") from None
        finally:
            self._results.pop(op.op_id, None)
        if not result.ok:
            raise OperationRefused(result.error or "the agent refused the operation")

    def resolve(self, result: apb.OperationResult) -> None:
        future = self._results.get(result.op_id)
        if future is not None and not future.done():
            future.set_result(result)

    def close(self, code: grpc.StatusCode | None = None, details: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if self._later_timer is not None:
            self._later_timer.cancel()
            self._later_timer = None
        if self.gates is not None:
            self.gates.close()
            self.gates = None
        if code is not None:
            self.error = (code, details)
        for future in self._results.values():
            if not future.done():
                future.set_exception(AgentUnavailable(f"process {self.pid} went away"))
        self._finish()

    async def messages(self) -> AsyncIterator[apb.DaemonMessage]:
        while True:
            msg = await self._outbox.get()
            if msg is _CLOSE:
                return
            yield msg

    # -- how messages leave (the native session overrides both) ----------------------
    def _deliver(self, msg: apb.DaemonMessage) -> None:
        if self._outbox.qsize() >= OUTBOX_LIMIT:  # the agent stopped reading: drop it
            self.close(grpc.StatusCode.RESOURCE_EXHAUSTED, "the agent does not read its operations")
            return
        self._outbox.put_nowait(msg)

    def _finish(self) -> None:
        self._outbox.put_nowait(_CLOSE)


class SocketSession(AgentSession):
    """One agent stream on the native transport: messages are written as they are sent."""

    def __init__(self, peer: Peer, transport: asyncio.WriteTransport) -> None:
        super().__init__(peer)
        self.transport = transport

    def _deliver(self, msg: apb.DaemonMessage) -> None:
        self._write(frame(msg))

    def send_operations(self, ops: bytes) -> None:
        """Framed as the DaemonMessage `operations` would serialize, without building it."""
        if not self.closed:
            self._write(frame_bytes(_OPERATIONS_TAG + _varint(len(ops)) + ops))

    def _write(self, data: bytes) -> None:
        if self.transport.is_closing():  # the connection is gone: its end detaches us
            return
        if self.transport.get_write_buffer_size() > OUTBOX_LIMIT_BYTES:
            self.close(grpc.StatusCode.RESOURCE_EXHAUSTED, "the agent does not read its operations")
            return
        self.transport.write(data)

    def _finish(self) -> None:
        if self.error is not None and not self.transport.is_closing():
            code, details = self.error
            error = apb.StreamError(code=code.value[0], details=details)
            self.transport.write(frame(apb.DaemonMessage(error=error)))
        self.transport.close()  # what is buffered still goes out first
