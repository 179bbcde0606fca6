"""Suspend gates (xschedd/gates.py): the page, and a real daemon writing it for a real
agent's XQueue before its operation travels."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hal import HwCommand
from hal.sim import SimDevice
from preempt.agent import Agent, agent_config
from preempt.xqueue import EventKind, XQueue
from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import types_pb2 as pb
from tests.daemon.conftest import Env, RecordingTransport, in_process_daemon, wait_for
from xschedd import agents, gates
from xschedd.agents import SocketSession
from xschedd.auth import Credentials, Peer
from xschedd.gates import SLOTS, GatePage, slot_of
from xschedd.policy.hints import PriorityHint


def test_the_daemon_writes_what_the_agent_reads_and_closing_ungates_and_removes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gates, "gate_dir", lambda: tmp_path)
    page = GatePage.create(agent_pid=123, owner_uid=None)
    assert page.path.parent == tmp_path and oct(page.path.stat().st_mode & 0o777) == "0o600"
    view = GatePage.open(str(page.path))
    a, b, far = 123 << 32 | 1, 123 << 32 | 7, 123 << 32 | SLOTS
    assert slot_of(far) is None
    page.apply([(a, True), (b, True), (far, True)])
    assert (view.flags[1], view.flags[7]) == (1, 1) and view.stamps(a)[0] and view.stamps(far) == (None, None)
    assert view.stamps(b)[1] is None
    page.apply([(b, False)])
    assert (view.flags[1], view.flags[7]) == (1, 0) and view.stamps(b)[1] >= view.stamps(b)[0]
    assert view.wakes == 0  # b was not stalled: nobody to wake
    assert not page.mapped
    view.mark_mapped()  # the agent: its XQueues read their gates
    assert page.mapped
    view.mark_stalled(1)  # a's launcher: work held back by the gate alone
    page.apply([(a, False)])
    assert view.wakes == 1 and page.stalled[1] == 1  # the agent's gate thread clears it
    page.close()
    assert view.flags[1] == 0 and not page.path.exists()  # nothing stays held
    view.close()  # the agent's view: unmapped by the GC once no XQueue holds it


def test_the_agent_opens_only_a_gate_page_of_the_daemon(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gates, "gate_dir", lambda: tmp_path)
    page = GatePage.create(agent_pid=5, owner_uid=None)
    link = tmp_path / f"{gates.PREFIX}1-5-abcd"
    link.symlink_to(page.path)
    small = tmp_path / f"{gates.PREFIX}1-5-beef"
    small.write_bytes(b"\0" * 10)
    with pytest.raises(OSError):
        GatePage.open(str(link))  # never through a symlink
    with pytest.raises(ValueError, match="too small"):
        GatePage.open(str(small))
    for bad in ("/etc/passwd", str(tmp_path / "other"), str(tmp_path / "sub" / page.path.name)):
        with pytest.raises(ValueError, match="not a gate page"):
            GatePage.open(bad)
    page.close()


def test_pages_of_daemons_that_are_gone_are_removed(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{gates.PREFIX}{int(dead.stdout)}-9-00"
    live = tmp_path / f"{gates.PREFIX}{os.getpid()}-9-00"
    other = tmp_path / "xsched-board-0"
    for p in (stale, live, other):
        p.write_bytes(b"")
    assert gates.remove_stale(tmp_path) == 1
    assert not stale.exists() and live.exists() and other.exists()


def _gate_files() -> set[Path]:
    return set(gates.gate_dir().glob(f"{gates.PREFIX}*-{os.getpid()}-*"))


def test_a_suspend_takes_effect_at_the_gate_before_its_operation_and_a_dead_daemon_holds_nothing(env: Env) -> None:
    hwq = SimDevice.local().create_queue()
    xq = XQueue(hwq, name="q", threshold=1)
    suspended_at: list[float] = []
    xq.add_listener(lambda e: e.kind is EventKind.SUSPENDED and suspended_at.append(time.monotonic()))
    agent = Agent(agent_config({"XSCHED_SOCKET": str(env.daemon.socket)}))
    try:
        agent.add(xq)
        wait_for(lambda: agent.connected.is_set() and env.daemon.xqueues(), 10)
        assert len(_gate_files()) == 1
        assert env.ctl("suspend", hex(xq.id)).returncode == 0  # an operator's hold
        wait_for(lambda: xq.suspended, 5)
        gated = agent.gate_stamps(xq.id)[0]
        assert gated is not None and gated <= suspended_at[0]  # launching stopped first
        xq.submit(HwCommand(100))
        assert xq.info().pending == 1  # held
        env.daemon.stop(signal.SIGKILL)  # gone with the gate set: the agent drops it
        wait_for(lambda: xq.info().completed == 1, 2.0 + 3.0)  # within the lease
        env.daemon.start()
        wait_for(lambda: agent.registrations == 2, 10)
        assert len(_gate_files()) == 1  # the killed daemon's page was removed at start
    finally:
        agent.close()
    wait_for(lambda: not _gate_files(), 5)  # the stream ended: the daemon removed its page


def test_without_shared_memory_the_daemon_registers_the_agent_with_operations_only(tmp_path, monkeypatch, caplog) -> None:
    def no_shm(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(GatePage, "create", no_shm)

    async def main() -> list[apb.DaemonMessage]:
        d = in_process_daemon(tmp_path)
        transport = RecordingTransport()
        session = SocketSession(d.auth.local_peer(Credentials(os.getpid(), os.getuid(), os.getgid())), transport)
        reg = apb.AgentMessage(register=apb.Register(pid=os.getpid(), name="t"))
        assert d.agent_messages(session, [reg])
        return transport.messages()

    (msg,) = asyncio.run(main())
    assert msg.registered.gates == "" and msg.registered.lease_s > 0
    assert "no suspend gates" in caplog.text


def test_an_agent_told_a_path_that_is_not_a_gate_page_works_without_gates(caplog) -> None:
    agent = Agent(agent_config({"XSCHED_SOCKET": "/nonexistent/x.sock"}))
    try:
        xq = XQueue(SimDevice.local().create_queue())
        agent.add(xq)
        agent._map_gates("/etc/passwd")
        assert agent.gate_stamps(xq.id)[0] is None and "no suspend gates" in caplog.text
        xq.wait(xq.submit(HwCommand(100)))  # nothing holds it
    finally:
        agent.close()


def test_operations_that_the_gates_applied_follow_them_later_in_order_and_others_go_at_once(tmp_path) -> None:
    """A level-1 XQueue's suspend and resume take effect at its gate; once the agent has
    said its XQueues read their gates, their operations follow OPERATION_DELAY_S later,
    every one of them, in order. A level-2 XQueue's go at
    once (its deactivation needs the agent), and so does anything newer for a held-back
    XQueue, which drops what was held back for it."""

    async def main() -> tuple[list, list, list, GatePage]:
        d = in_process_daemon(tmp_path)
        pid = os.getpid()
        lv1, lv2, fg = pid << 32 | 1, pid << 32 | 2, pid << 32 | 3
        transport = RecordingTransport()
        session = SocketSession(d.auth.local_peer(Credentials(pid, os.getuid(), os.getgid())), transport)

        def info(xq: int, level: int, ready: bool) -> pb.XQueueInfo:
            state = pb.XQUEUE_STATE_READY if ready else pb.XQUEUE_STATE_IDLE
            return pb.XQueueInfo(xqueue_id=xq, pid=pid, device="sim", level=level, state=state)

        def event(xq: int, level: int, ready: bool) -> apb.AgentMessage:
            kind = pb.EVENT_KIND_READY if ready else pb.EVENT_KIND_IDLE
            return apb.AgentMessage(event=apb.XQueueEvent(kind=kind, info=info(xq, level, ready)))

        reg = apb.AgentMessage(register=apb.Register(pid=pid, name="t", xqueues=[
            info(lv1, 1, True), info(lv2, 2, True), info(fg, 1, False)]))  # fmt: skip
        prio = pb.Hint()
        prio.priority.xqueue_id, prio.priority.priority = fg, 10
        reg.register.hints.append(prio)
        assert d.agent_messages(session, [reg])
        page = session.gates
        assert page is not None
        start = len(transport.ops())
        assert d.agent_messages(session, [event(fg, 1, True)])
        unmapped = transport.ops()[start:]  # the agent has not said it reads its gates
        assert d.agent_messages(session, [event(fg, 1, False)])
        page.mark_mapped()  # now it has
        await asyncio.sleep(agents.OPERATION_DELAY_S * 3)
        start = len(transport.ops())
        assert d.agent_messages(session, [event(fg, 1, True)])  # fg ready: both others suspended
        assert page.flags[1] == page.flags[2] == 1  # both gates at once
        at_once = transport.ops()[start:]
        assert d.agent_messages(session, [event(fg, 1, False)])  # fg idle: both resumed
        assert d.agent_messages(session, [event(fg, 1, True)])
        before_delay = transport.ops()[start:]
        await asyncio.sleep(agents.OPERATION_DELAY_S * 3)
        after_delay = transport.ops()[start:]
        session.close()
        return unmapped, at_once, before_delay, after_delay, page

    unmapped, at_once, before_delay, after_delay, page = asyncio.run(main())
    pid = os.getpid()
    lv1, lv2 = pid << 32 | 1, pid << 32 | 2
    assert unmapped == [[(lv1, "suspend"), (lv2, "suspend")]]  # all at once, as without gates
    assert at_once == [[(lv2, "suspend")]]  # level 2: now; level 1: its gate did it
    assert before_delay == [[(lv2, "suspend")], [(lv2, "resume")], [(lv2, "suspend")]]
    assert after_delay[3:] == [[(lv1, "suspend"), (lv1, "resume"), (lv1, "suspend")]]  # all, in order
    assert not page.path.exists()  # the session closed: its page is gone


def test_an_urgent_operation_drops_what_was_held_back_for_its_xqueue() -> None:
    async def main() -> list:
        transport = RecordingTransport()
        session = SocketSession(Peer("unix", "test", 0), transport)  # type: ignore[arg-type]
        session.send_changes([], [(7, True), (8, True)])
        session.send_changes([(7, False)])  # say, its level changed: newer, and at once
        await asyncio.sleep(agents.OPERATION_DELAY_S * 3)
        session.send_changes([], [(9, True)])
        session.close()  # the held-back 9 never goes
        await asyncio.sleep(agents.OPERATION_DELAY_S * 3)
        return transport.ops()

    assert asyncio.run(main()) == [[(7, "resume")], [(8, "suspend")]]


def test_a_stalled_queue_resumes_at_its_gate_without_its_resume_operation(env: Env) -> None:
    """The agent's gate thread: the daemon clears the gate of a queue that the gate alone
    kept from launching and wakes the thread, which pumps it; the resume operation is not
    needed (here the agent ignores it) for the queue to run again."""
    bg = XQueue(SimDevice.local().create_queue(), name="bg", threshold=4)
    fg = XQueue(SimDevice.local().create_queue(), name="fg", threshold=1)
    agent = Agent(agent_config({"XSCHED_SOCKET": str(env.daemon.socket)}))
    ignored: list[int] = []
    apply = agent._apply

    def no_resumes(op: apb.Operation) -> None:
        if op.WhichOneof("kind") == "resume":
            ignored.append(op.xqueue_id)
            return
        apply(op)

    agent._apply = no_resumes  # type: ignore[method-assign]
    try:
        agent.add(bg, [PriorityHint(bg.id, 0)])
        agent.add(fg, [PriorityHint(fg.id, 10)])
        wait_for(lambda: agent.connected.is_set() and len(env.daemon.xqueues()) == 2, 10)
        blocker = fg.submit(HwCommand(300_000))  # fg ready: bg gated
        wait_for(lambda: agent.gate_stamps(bg.id)[0], 5)
        work = [bg.submit(HwCommand(100)) for _ in range(3)]
        assert bg.info().in_flight == 0  # stalled: room in flight, held by its gate alone
        wait_for(lambda: bg.suspended, 5)  # the suspend operation came, OPERATION_DELAY_S later
        fg.wait(blocker)  # fg idle: bg's gate clears, the gate thread pumps it
        for cmd in work:
            bg.wait(cmd, timeout=5)
        wait_for(lambda: bg.id in ignored, 5)  # the resume came too, and was not needed
    finally:
        agent.close()


def test_a_hand_over_waits_longer_to_flush_an_xqueue_whose_gate_stopped_it(tmp_path) -> None:
    """xschedd.handover: a level-2 XQueue that reads its gate stopped launching when the
    daemon wrote it, so a hand-over's suspend waits HANDOVER_S (its short work in flight
    drains instead of flushing); without a gate (page not mapped yet, or the XQueue
    beyond the page) only UNGATED_HANDOVER_S; a level-1 XQueue's suspend goes at once."""
    from xschedd.handover import HANDOVER_S, UNGATED_HANDOVER_S

    async def main() -> list:
        d = in_process_daemon(tmp_path)
        pid = os.getpid()
        lv1, lv2, beyond = pid << 32 | 1, pid << 32 | 2, pid << 32 | SLOTS
        session = SocketSession(d.auth.local_peer(Credentials(pid, os.getuid(), os.getgid())), RecordingTransport())
        infos = [pb.XQueueInfo(xqueue_id=x, pid=pid, device="sim", level=level, state=pb.XQUEUE_STATE_IDLE)
                 for x, level in ((lv1, 1), (lv2, 2), (beyond, 2))]  # fmt: skip
        assert d.agent_messages(session, [apb.AgentMessage(register=apb.Register(pid=pid, name="t", xqueues=infos))])
        delay = d.scheduler._handover_delay
        before = [delay(lv1), delay(lv2), delay(beyond)]
        session.gates.mark_mapped()
        after = [delay(lv1), delay(lv2), delay(beyond)]
        session.close()
        return [before, after]

    before, after = asyncio.run(main())
    assert before == [None, UNGATED_HANDOVER_S, UNGATED_HANDOVER_S]
    assert after == [None, HANDOVER_S, UNGATED_HANDOVER_S]
