"""The gRPC servicers: thin translations between messages and `Daemon` calls.

Every refusal is logged and counted; the daemon's exceptions map to status codes here
and nowhere else.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

import grpc

from protos.xsched.v1 import agent_pb2 as apb, agent_pb2_grpc, control_pb2 as cpb, control_pb2_grpc
from xschedd import views
from xschedd.agents import AgentSession
from xschedd.auth import Peer
from xschedd.daemon import Daemon
from xschedd.errors import (
    AgentUnavailable,
    DaemonError,
    InvalidArgument,
    NotFound,
    OperationRefused,
    PermissionDenied,
)
from xschedd.policy import PolicyError

log = logging.getLogger(__name__)

DEFAULT_WATCH_INTERVAL_MS = 100
MIN_WATCH_INTERVAL_MS = 10
MIN_HEARTBEAT_MS = 100


def status_of(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, (InvalidArgument, PolicyError, OperationRefused)):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, AgentUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def _mapped(method):
    """Run a unary handler; turn the daemon's errors into statuses (and log refusals)."""

    @functools.wraps(method)
    async def handler(self: ControlServicer, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except (DaemonError, PolicyError) as exc:
            code = status_of(exc)
            if code is grpc.StatusCode.PERMISSION_DENIED:
                log.warning("refused %s: %s", method.__name__, exc)
                self.daemon.metrics.refusal(method.__name__)
            await context.abort(code, str(exc))

    return handler


def identify(daemon: Daemon, context: grpc.aio.ServicerContext) -> Peer:
    return daemon.auth.identify(context.peer(), tuple(context.invocation_metadata() or ()))


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def Connect(
        self, request_iterator: AsyncIterator[apb.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[apb.DaemonMessage]:
        try:
            peer = identify(self.daemon, context)
        except PermissionDenied as exc:
            log.warning("refused an agent: %s", exc)
            self.daemon.metrics.refusal("Connect")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        session = AgentSession(peer)
        task = asyncio.get_running_loop().create_task(self.daemon.run_agent(session, request_iterator))
        try:
            async for msg in session.messages():
                yield msg
        finally:
            task.cancel()
        if session.error is not None:
            await context.abort(*session.error)


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    @property
    def sched(self):
        return self.daemon.scheduler

    @_mapped
    async def ListXQueues(self, request: cpb.ListXQueuesRequest, context) -> cpb.ListXQueuesResponse:
        identify(self.daemon, context)
        recs = self.daemon.xqueues(request.pid)
        return cpb.ListXQueuesResponse(xqueues=[views.xqueue_view(self.sched, r) for r in recs])

    @_mapped
    async def ListProcesses(self, request, context) -> cpb.ListProcessesResponse:
        identify(self.daemon, context)
        procs = sorted(self.sched.processes.values(), key=lambda p: p.pid)
        return cpb.ListProcessesResponse(processes=[views.process_view(self.sched, p) for p in procs])

    async def WatchStatus(self, request: cpb.WatchStatusRequest, context) -> AsyncIterator[cpb.StatusUpdate]:
        try:
            identify(self.daemon, context)
        except PermissionDenied as exc:
            self.daemon.metrics.refusal("WatchStatus")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        interval_ms = request.min_interval_ms or DEFAULT_WATCH_INTERVAL_MS
        interval = max(MIN_WATCH_INTERVAL_MS, interval_ms) / 1e3
        heartbeat_ms = max(MIN_HEARTBEAT_MS, request.heartbeat_ms) if request.heartbeat_ms else 0
        watcher = self.daemon.bus.subscribe()
        try:
            async for update in views.status_updates(self.sched, watcher, interval, heartbeat_ms):
                yield update
        finally:
            self.daemon.bus.unsubscribe(watcher)

    @_mapped
    async def GetPolicy(self, request, context) -> cpb.PolicyInfo:
        identify(self.daemon, context)
        return views.policy_view(self.sched)

    @_mapped
    async def SetPolicy(self, request: cpb.SetPolicyRequest, context) -> cpb.PolicyInfo:
        peer = identify(self.daemon, context)
        gang = request.gang if request.HasField("gang") else None
        if not request.name and gang is None:
            raise InvalidArgument("nothing to set: give a policy name or gang")
        self.daemon.set_policy(peer, request.name, gang)
        return views.policy_view(self.sched)

    @_mapped
    async def SendHint(self, request: cpb.SendHintRequest, context) -> cpb.SendHintResponse:
        peer = identify(self.daemon, context)
        reached = self.daemon.send_hint(peer, request.hint, request.pid)
        return cpb.SendHintResponse(xqueue_ids=reached)

    @_mapped
    async def ConfigXQueue(self, request: cpb.ConfigXQueueRequest, context) -> cpb.XQueueView:
        peer = identify(self.daemon, context)
        rec = await self.daemon.configure(peer, request.xqueue_id, request.config)
        return views.xqueue_view(self.sched, rec)

    @_mapped
    async def SuspendXQueue(self, request: cpb.XQueueRequest, context) -> cpb.XQueueView:
        peer = identify(self.daemon, context)
        return views.xqueue_view(self.sched, self.daemon.hold(peer, request.xqueue_id, True))

    @_mapped
    async def ResumeXQueue(self, request: cpb.XQueueRequest, context) -> cpb.XQueueView:
        peer = identify(self.daemon, context)
        return views.xqueue_view(self.sched, self.daemon.hold(peer, request.xqueue_id, False))


class _Malformed:
    """Stands for a request whose bytes did not parse."""


def _safe(deserializer):
    def parse(data: bytes):
        try:
            return deserializer(data)
        except Exception:  # protobuf's DecodeError and friends
            return _Malformed()

    return parse


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    """Answers requests whose bytes are not the expected message with INVALID_ARGUMENT
    (gRPC itself would say UNKNOWN)."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        name = handler_call_details.method
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request, context):
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: malformed request")
                return await inner(request, context)

            return handler._replace(
                request_deserializer=_safe(handler.request_deserializer), unary_unary=unary_unary
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(request, context):
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: malformed request")
                async for item in inner_stream(request, context):
                    yield item

            return handler._replace(
                request_deserializer=_safe(handler.request_deserializer), unary_stream=unary_stream
            )
        return handler
