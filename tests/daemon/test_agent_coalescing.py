"""What an agent sends, and when: status events at once, the echoes of the daemon's own
operations a little later, and one event per XQueue while the daemon lags behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from hal import HwCommand, RealClock
from hal.sim import SimDevice
from preempt import agent as agent_mod
from preempt.agent import Agent, AgentConfig
from preempt.xqueue import EventKind, XQueue, XQueueEvent
from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import types_pb2 as pb
from tests.daemon.conftest import wait_for
from tests.runtime.test_xqueue_semantics import _DriverQueue


class FakeLink:
    """Records what is sent: the message objects, as the gRPC link queues them, or with
    `serializes_at_send` (the native link) what they were when sent, since the agent
    then refills one message per queue for the next send."""

    def __init__(self, serializes_at_send: bool = False) -> None:
        self.backlogged = False
        self.serializes_at_send = serializes_at_send
        self.writes: list[list[apb.AgentMessage]] = []

    def send(self, *msgs: apb.AgentMessage) -> None:
        if self.serializes_at_send:
            msgs = tuple(apb.AgentMessage.FromString(m.SerializeToString()) for m in msgs)
        self.writes.append(list(msgs))

    def events(self) -> list[tuple[int, int, bool]]:
        """(xqueue id, kind, suspended) of every event sent, in order."""
        return [(m.event.info.xqueue_id, m.event.kind, m.event.info.suspended)
                for w in self.writes for m in w if m.HasField("event")]  # fmt: skip


@pytest.fixture(params=[False, True], ids=["grpc-like", "native-like"])
def agent(monkeypatch, request):
    async def offline(self) -> None:  # no daemon: the test plays the link
        await asyncio.sleep(3600)

    monkeypatch.setattr(Agent, "_connect_forever", offline)
    a = Agent(AgentConfig(target="unix:/nonexistent"))
    link = FakeLink(serializes_at_send=request.param)
    a._link = link
    yield a, link
    a._link = None
    a.close()


def _on_loop(a: Agent, fn) -> None:
    """Run `fn` on the agent's thread, as the link's callbacks are, and wait for it."""

    async def call() -> None:
        fn()

    asyncio.run_coroutine_threadsafe(call(), a._loop).result(5)


def _added(a: Agent, link: FakeLink, n: int, **params) -> list[XQueue]:
    """`n` XQueues on one simulated device, scheduled through `a`; what adding them sent is
    cleared from `link`."""
    device = SimDevice.local()
    qs = [XQueue(device.create_queue(), **params) for _ in range(n)]
    for q in qs:
        a.add(q)
    link.writes.clear()
    return qs


def _ops(*pairs: tuple[int, str]) -> apb.DaemonMessage:
    msg = apb.DaemonMessage()
    for xq_id, kind in pairs:
        getattr(msg.operations.ops.add(xqueue_id=xq_id), kind).SetInParent()
    return msg


def test_status_changes_go_at_once_and_operation_echoes_together_a_little_later(agent) -> None:
    a, link = agent
    qs = _added(a, link, 3, threshold=1)
    qs[0].submit(HwCommand(5e6))  # READY: sent from this thread, straight away
    assert link.events() == [(qs[0].id, pb.EVENT_KIND_READY, False)]
    _on_loop(a, lambda: a._on_message(_ops(*[(q.id, "suspend") for q in qs])))
    assert all(q.suspended for q in qs)
    assert len(link.events()) == 1  # the echoes wait ...
    wait_for(lambda: len(link.writes) == 2, 2)  # ... then go in one write
    assert link.events()[1:] == [(q.id, pb.EVENT_KIND_SUSPENDED, True) for q in qs]
    assert agent_mod.ECHO_DELAY_S < 0.1


def test_while_the_link_is_backlogged_each_xqueue_sends_its_latest_status_once(agent) -> None:
    a, link = agent
    busy, closing = _added(a, link, 2)
    link.backlogged = True
    for _ in range(5):
        busy.wait(busy.submit(HwCommand(100.0)))  # READY, IDLE, READY, ...
    closing.submit(HwCommand(100.0))
    a.remove(closing)  # CLOSED is never held back, and what was held for it is dropped
    assert link.events() == [(closing.id, pb.EVENT_KIND_CLOSED, False)]
    link.backlogged = False
    _on_loop(a, a._send_coalesced)  # the link drained
    assert link.events()[1:] == [(busy.id, pb.EVENT_KIND_IDLE, False)]  # its latest status
    time.sleep(0.05)
    assert len(link.events()) == 2


def test_an_idle_the_next_task_overtook_is_not_sent(agent) -> None:
    """Tasks back to back: an IDLE that reaches the agent once the queue is ready again
    tells the daemon nothing (it reads the queue's fresh status, READY), so it is not
    sent; the READY of the next task is. An IDLE of a queue still idle goes at once."""
    a, link = agent
    (xq,) = _added(a, link, 1)
    xq.wait(xq.submit(HwCommand(100.0)))
    idle = xq.info()
    link.writes.clear()
    a._listener(XQueueEvent(EventKind.IDLE, idle, latency_s=1e-4))
    assert link.events() == [(xq.id, pb.EVENT_KIND_IDLE, False)]
    link.writes.clear()
    xq.submit(HwCommand(5e6))  # READY
    a._listener(XQueueEvent(EventKind.IDLE, idle, latency_s=1e-4))  # the last task's, late
    assert link.events() == [(xq.id, pb.EVENT_KIND_READY, False)]
    assert 1e-4 in a._latencies[xq.id].busy  # its latency still goes in the next report


def test_each_status_message_says_what_its_queue_was_when_sent(agent) -> None:
    """The native link serializes at once, so the agent refills one message per queue:
    what went out earlier keeps its own queue, kind and counts."""
    a, link = agent
    qs = _added(a, link, 2, threshold=4)
    for q in qs:
        q.wait(q.submit(HwCommand(100.0)))  # READY, then IDLE from the completion
    wait_for(lambda: len(link.events()) == 4, 2)
    qs[1].submit(HwCommand(5e6))  # READY again, with one command done
    sent = [m.event for w in link.writes for m in w]
    assert [(e.info.xqueue_id, e.kind) for e in sent] == [
        (qs[0].id, pb.EVENT_KIND_READY), (qs[0].id, pb.EVENT_KIND_IDLE),
        (qs[1].id, pb.EVENT_KIND_READY), (qs[1].id, pb.EVENT_KIND_IDLE), (qs[1].id, pb.EVENT_KIND_READY),
    ]  # fmt: skip
    ready, idle = pb.XQUEUE_STATE_READY, pb.XQUEUE_STATE_IDLE
    assert [e.info.state for e in sent] == [ready, idle, ready, idle, ready]
    assert [e.info.submitted for e in sent] == [1, 1, 1, 1, 2]
    assert [e.info.completed for e in sent] == [0, 1, 0, 1, 1]
    assert all(e.info.threshold == 4 and e.info.name == q.name and e.info.pid == q.pid
               for e, q in zip(sent, [qs[0], qs[0], qs[1], qs[1], qs[1]], strict=True))  # fmt: skip


def test_a_ready_that_leaves_while_its_task_runs_says_how_long_the_queue_was_ready(agent) -> None:
    """Back to back on a queue whose waiter blocks in the driver, the next task's READY
    leaves with the last task's IDLE on the clock's thread, `idle_news_delay_s` later (to
    the daemon the queue never stopped being ready): the message says how long the queue
    had been ready, and the daemon dates the span back by it. The IDLE is not sent."""
    a, link = agent
    xq = XQueue(_DriverQueue(RealClock()), threshold=4)
    xq.idle_news_delay_s = 0.05
    a.add(xq)
    xq.wait(xq.submit(HwCommand(100.0)))
    link.writes.clear()
    started = time.monotonic()
    xq.submit(HwCommand(100.0))
    assert link.writes == []  # not from the submitting thread
    wait_for(lambda: link.writes, 2)
    sent_after = time.monotonic() - started
    (msg,) = [m for w in link.writes for m in w]
    assert msg.event.kind == pb.EVENT_KIND_READY and msg.event.info.state == pb.XQUEUE_STATE_READY
    assert 0.04 <= msg.event.ready_for_us / 1e6 <= sent_after
    link.writes.clear()
    xq.submit(HwCommand(100.0))  # a queue ready already: not a task's start
    a._listener(XQueueEvent(EventKind.IDLE, xq.info()))  # nor this: its fresh status is READY
    assert link.writes == []
