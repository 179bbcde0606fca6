"""A fake ControlService (the generated servicer base) with a recorded snapshot, for widget
tests and screen snapshots that need fixed numbers; the live tests use the real daemon."""

from __future__ import annotations

import queue
from concurrent import futures

import grpc

from protos.xsched.v1 import control_pb2 as cpb, control_pb2_grpc, types_pb2 as pb
from xsched_tui.app import XSchedConsole
from xsched_tui.connection import Target
from xsched_tui.devices import DeviceSource

POLICIES = ["HPF", "HHPF", "CHPF", "UP", "PUP", "SPUP", "KEDF", "LAX", "AWF", "CFS", "MLFQ", "WRR"]
SERVICE_PID, BATCH_PID, LLM_PID = 4101, 4202, 4303


def xq(pid: int, n: int, name: str, *, ready: bool = False, suspended: bool = False,
       held: bool = False, priority: int = 0, done: int = 100, p50: float = 2.0,
       p99: float = 5.0, level: int = 1, share: float = 0.0) -> cpb.XQueueView:
    info = pb.XQueueInfo(
        xqueue_id=(pid << 32) | n, name=name, pid=pid, device="sim",
        state=pb.XQUEUE_STATE_READY if ready else pb.XQUEUE_STATE_IDLE, suspended=suspended,
        level=level, threshold=16, batch_size=8, pending=4 if suspended else 0,
        in_flight=0 if suspended or not ready else 8, submitted=done + (12 if ready else 0),
        completed=done,
    )
    return cpb.XQueueView(info=info, held=held, priority=priority, share=share,
                          busy=pb.LatencySummary(count=done // 10, p50_ms=p50, p99_ms=p99, mean_ms=p50))


def recorded_snapshot() -> cpb.Snapshot:
    policy = cpb.PolicyInfo(
        name="HPF", available=POLICIES, decisions=1234,
        hints=[pb.Hint(utilization=pb.UtilizationHint(xqueue_id=(BATCH_PID << 32) | 1, utilization=40)),
               pb.Hint(timeslice=pb.TimesliceHint(timeslice_us=5000))],
    )
    procs = [
        cpb.ProcessView(pid=SERVICE_PID, name="service --port 8080", xqueue_ids=[(SERVICE_PID << 32) | 1]),
        cpb.ProcessView(pid=BATCH_PID, name="batch-job", xqueue_ids=[(BATCH_PID << 32) | 1, (BATCH_PID << 32) | 2]),
        cpb.ProcessView(pid=LLM_PID, name="llm-engine", xqueue_ids=[(LLM_PID << 32) | 1],
                        gauges={"kv_blocks_used": 300, "kv_blocks_total": 1024}),
    ]
    queues = [
        xq(SERVICE_PID, 1, "interactive", ready=True, priority=10, done=4000, p50=4.1, p99=6.3,
           level=2, share=0.75),
        xq(BATCH_PID, 1, "batch", ready=True, suspended=True, priority=0, done=9000, p50=30.5,
           p99=80.2, share=0.2),
        xq(BATCH_PID, 2, "batch-io", held=True, suspended=True, ready=True, done=500),
        xq(LLM_PID, 1, "decode", priority=5, done=2500, p50=12.0, p99=20.0, share=0.05),
    ]
    return cpb.Snapshot(policy=policy, processes=procs, xqueues=queues, share_window_s=5.0)


class FakeControl(control_pb2_grpc.ControlServiceServicer):
    """Streams `snapshot` then whatever is put on `updates`; records calls; refuses on demand."""

    def __init__(self, snapshot: cpb.Snapshot | None = None) -> None:
        self.snapshot = snapshot or recorded_snapshot()
        self.updates: queue.Queue[cpb.StatusUpdate] = queue.Queue()
        self.calls: list[tuple[str, object]] = []
        self.refuse: dict[str, tuple[grpc.StatusCode, str]] = {}

    def WatchStatus(self, request, context):
        yield cpb.StatusUpdate(snapshot=self.snapshot)
        while context.is_active():
            try:
                yield self.updates.get(timeout=0.05)
            except queue.Empty:
                continue

    def _call(self, name: str, request, context) -> None:
        self.calls.append((name, request))
        if name in self.refuse:
            context.abort(*self.refuse[name])

    def GetPolicy(self, request, context):
        return self.snapshot.policy

    def SetPolicy(self, request, context):
        self._call("SetPolicy", request, context)
        if request.name:
            self.snapshot.policy.name = request.name
        if request.HasField("gang"):
            self.snapshot.policy.gang = request.gang
        self.updates.put(cpb.StatusUpdate(delta=cpb.Delta(policy=self.snapshot.policy)))
        return self.snapshot.policy

    def SendHint(self, request, context):
        self._call("SendHint", request, context)
        return cpb.SendHintResponse()

    def _view(self, xqueue_id: int) -> cpb.XQueueView:
        return next(v for v in self.snapshot.xqueues if v.info.xqueue_id == xqueue_id)

    def ConfigXQueue(self, request, context):
        self._call("ConfigXQueue", request, context)
        return self._view(request.xqueue_id)

    def SuspendXQueue(self, request, context):
        self._call("SuspendXQueue", request, context)
        return self._view(request.xqueue_id)

    def ResumeXQueue(self, request, context):
        self._call("ResumeXQueue", request, context)
        return self._view(request.xqueue_id)


def serve(fake: FakeControl, address: str) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    control_pb2_grpc.add_ControlServiceServicer_to_server(fake, server)
    server.add_insecure_port(address)
    server.start()
    return server


class NoGpu(DeviceSource):
    """The device panel's source without NVML, so screens look the same on every machine."""

    def __init__(self) -> None:
        self._nvml = None


SNAPSHOT_SOCKET = "unix-abstract:xsched-tui-snapshots"


def fake_console() -> XSchedConsole:
    return XSchedConsole(Target(SNAPSHOT_SOCKET), devices=NoGpu())


async def wait_for(pilot, predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Let the app run until `predicate()` holds; fail naming `what` after `timeout_s`."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await pilot.pause(0.05)


class DaemonProbe:
    """Asks the real daemon what it holds, to check that an action reached it."""

    def __init__(self, socket) -> None:
        self.channel = grpc.insecure_channel(f"unix:{socket}")
        self.stub = control_pb2_grpc.ControlServiceStub(self.channel)

    def policy(self) -> cpb.PolicyInfo:
        return self.stub.GetPolicy(cpb.GetPolicyRequest(), timeout=5)

    def xqueue(self, name: str) -> cpb.XQueueView:
        views = self.stub.ListXQueues(cpb.ListXQueuesRequest(), timeout=5).xqueues
        return next(v for v in views if v.info.name == name)

    def close(self) -> None:
        self.channel.close()


def fake_console_at(address: str, **client_options) -> XSchedConsole:
    from xsched_tui.client import ControlClient

    target = Target(address)
    return XSchedConsole(target, devices=NoGpu(), client=ControlClient(target, **client_options))
