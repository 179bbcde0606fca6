"""The console's gRPC client of xschedd's ControlService: the watch feed and the actions.

Owned by one asyncio event loop (the app's). `feed()` is the one consumer of WatchStatus:
it yields link-state events and status updates, and reconnects with capped exponential
backoff whenever the stream ends. The daemon sends a heartbeat when it has nothing else
to say, so a stream quiet for SILENCE_BEATS heartbeats means a daemon that stopped
answering (stopped, overloaded, wedged): the link turns SILENT, and CONNECTED again with
the next message. Actions raise `ControlError` (code + the daemon's message) instead of
gRPC exceptions, so the UI shows a refusal, never a traceback.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from xschedd.policy.wire import hint_to_proto
from protos.xsched.v1 import control_pb2 as cpb, control_pb2_grpc, types_pb2 as pb
from xsched_tui.connection import CHANNEL_OPTIONS, Target
from xsched_tui.records import Connection, LinkState
from xschedd.policy import hints as H

BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 2.0
ACTION_TIMEOUT_S = 5.0
HEARTBEAT_MS = 1000
SILENCE_BEATS = 3


class ControlError(Exception):
    """The daemon refused an action, or could not be reached; `code` is the gRPC code name."""

    def __init__(self, action: str, code: str, details: str) -> None:
        super().__init__(f"{action}: {code}: {details}")
        self.action = action
        self.code = code
        self.details = details


@dataclass(frozen=True)
class LinkEvent:
    connection: Connection


@dataclass(frozen=True)
class UpdateEvent:
    update: cpb.StatusUpdate


FeedEvent = LinkEvent | UpdateEvent


def describe(exc: grpc.aio.AioRpcError, target: Target) -> str:
    """A one-line reason for a failed call, without gRPC's debug string."""
    details = (exc.details() or "").strip()
    if exc.code() is grpc.StatusCode.UNAVAILABLE:
        low = details.lower()
        if "no such file" in low or "connection refused" in low or "failed to connect" in low:
            return "no daemon listening"
        return f"unavailable: {details or 'connection lost'}"
    return f"{exc.code().name}: {details}"


class ControlClient:
    """See the module docstring. `close()` before the loop ends."""

    def __init__(
        self,
        target: Target,
        watch_interval_ms: int = 0,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        heartbeat_ms: int = HEARTBEAT_MS,
    ) -> None:
        self.target = target
        self.watch_interval_ms = watch_interval_ms
        self.heartbeat_ms = heartbeat_ms  # 0: none (then silence goes unnoticed)
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._channel: grpc.aio.Channel | None = None
        self._stub: control_pb2_grpc.ControlServiceStub | None = None

    # -- channel ---------------------------------------------------------------------------
    def _stub_now(self) -> control_pb2_grpc.ControlServiceStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target.address, options=CHANNEL_OPTIONS)
            self._stub = control_pb2_grpc.ControlServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close(grace=None)

    # -- the watch feed --------------------------------------------------------------------
    async def feed(self) -> AsyncIterator[FeedEvent]:
        backoff = self.backoff_min_s
        attempt = 0
        label = self.target.label
        while True:
            yield LinkEvent(Connection(LinkState.CONNECTING, label, attempt=attempt))
            try:
                call = self._stub_now().WatchStatus(
                    cpb.WatchStatusRequest(min_interval_ms=self.watch_interval_ms,
                                           heartbeat_ms=self.heartbeat_ms),
                    metadata=self.target.metadata,
                )
                async for event in self._stream(call, label):
                    if isinstance(event, UpdateEvent) and attempt:
                        attempt, backoff = 0, self.backoff_min_s
                    yield event
                reason = "the daemon ended the status stream"
            except grpc.aio.AioRpcError as exc:
                reason = describe(exc, self.target)
            attempt += 1
            yield LinkEvent(Connection(LinkState.DOWN, label, reason, attempt))
            await self.close()  # a fresh channel next time: no stale subchannel backoff
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.backoff_max_s)

    @staticmethod
    async def _stream(call, label: str) -> AsyncIterator[FeedEvent]:
        """One WatchStatus stream's events, until it ends (EOF) or fails (AioRpcError).

        A read is never cancelled for being slow (that would end the call): the same read
        is awaited again after the link was reported silent.
        """
        silence_s: float | None = None  # None until the snapshot names the heartbeat
        state: LinkState | None = None
        read: asyncio.Future | None = None
        try:
            while True:
                if read is None:
                    read = asyncio.ensure_future(call.read())
                done, _ = await asyncio.wait({read}, timeout=silence_s)
                if not done:
                    if state is not LinkState.SILENT:
                        state = LinkState.SILENT
                        yield LinkEvent(Connection(
                            state, label, f"no heartbeat for {silence_s:g} s; waiting"))
                    continue
                update, read = read.result(), None
                if update is grpc.aio.EOF:
                    return
                if update.WhichOneof("kind") == "snapshot" and update.snapshot.heartbeat_ms:
                    silence_s = SILENCE_BEATS * update.snapshot.heartbeat_ms / 1e3
                if state is not LinkState.CONNECTED:
                    state = LinkState.CONNECTED
                    yield LinkEvent(Connection(state, label))
                yield UpdateEvent(update)
        finally:
            if read is not None:
                read.cancel()
            call.cancel()

    # -- actions ---------------------------------------------------------------------------
    async def _unary(self, action: str, method_name: str, request):
        method = getattr(self._stub_now(), method_name)
        try:
            return await method(request, metadata=self.target.metadata, timeout=ACTION_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAVAILABLE:
                raise ControlError(action, exc.code().name, describe(exc, self.target)) from None
            raise ControlError(action, exc.code().name, exc.details() or "") from None

    async def get_policy(self) -> cpb.PolicyInfo:
        return await self._unary("get policy", "GetPolicy", cpb.GetPolicyRequest())

    async def set_policy(self, name: str, gang: bool | None = None) -> cpb.PolicyInfo:
        req = cpb.SetPolicyRequest(name=name)
        if gang is not None:
            req.gang = gang
        return await self._unary("set policy", "SetPolicy", req)

    async def send_hint(self, hint: H.Hint, pid: int = 0) -> tuple[int, ...]:
        resp = await self._unary(
            "send hint", "SendHint", cpb.SendHintRequest(hint=hint_to_proto(hint), pid=pid)
        )
        return tuple(resp.xqueue_ids)

    async def configure(
        self,
        xqueue_id: int,
        level: int | None = None,
        threshold: int | None = None,
        batch_size: int | None = None,
    ) -> cpb.XQueueView:
        cfg = pb.XQueueConfig()
        if level is not None:
            cfg.level = level
        if threshold is not None:
            cfg.threshold = threshold
        if batch_size is not None:
            cfg.batch_size = batch_size
        req = cpb.ConfigXQueueRequest(xqueue_id=xqueue_id, config=cfg)
        return await self._unary("configure", "ConfigXQueue", req)

    async def suspend(self, xqueue_id: int) -> cpb.XQueueView:
        return await self._unary("suspend", "SuspendXQueue", cpb.XQueueRequest(xqueue_id=xqueue_id))

    async def resume(self, xqueue_id: int) -> cpb.XQueueView:
        return await self._unary("resume", "ResumeXQueue", cpb.XQueueRequest(xqueue_id=xqueue_id))
