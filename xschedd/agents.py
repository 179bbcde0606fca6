"""The daemon's side of agent streams: one AgentSession per connected process.

Owned by the daemon's event loop. A session's outbox feeds the gRPC response stream;
operations that want an answer (ConfigXQueue) wait for the agent's OperationResult.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import grpc

from protos.xsched.v1 import agent_pb2 as apb
from xschedd.auth import Peer
from xschedd.errors import AgentUnavailable, OperationRefused

OUTBOX_LIMIT = 10_000
_CLOSE = object()


class AgentSession:
    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.pid: int | None = None
        self.error: tuple[grpc.StatusCode, str] | None = None
        self.closed = False
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._results: dict[int, asyncio.Future[apb.OperationResult]] = {}
        self._op_ids = itertools.count(1)

    def send(self, msg: apb.DaemonMessage) -> None:
        if self.closed:
            return
        if self._outbox.qsize() >= OUTBOX_LIMIT:  # the agent stopped reading: drop it
            self.close(grpc.StatusCode.RESOURCE_EXHAUSTED, "the agent does not read its operations")
            return
        self._outbox.put_nowait(msg)

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
        if code is not None:
            self.error = (code, details)
        for future in self._results.values():
            if not future.done():
                future.set_exception(AgentUnavailable(f"process {self.pid} went away"))
        self._outbox.put_nowait(_CLOSE)

    async def messages(self) -> AsyncIterator[apb.DaemonMessage]:
        while True:
            msg = await self._outbox.get()
            if msg is _CLOSE:
                return
            yield msg
