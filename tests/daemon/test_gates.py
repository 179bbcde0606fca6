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
from tests.daemon.conftest import Env, wait_for
from xschedd import gates
from xschedd.agents import SocketSession
from xschedd.auth import Authorizer, Credentials, PeerTable
from xschedd.daemon import Daemon
from xschedd.framing import FrameReader
from xschedd.gates import SLOTS, GatePage, slot_of
from xschedd.metrics import Metrics
from xschedd.state import StateStore


def test_the_daemon_writes_what_the_agent_reads_and_closing_ungates_and_removes(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gates, "gate_dir", lambda: tmp_path)
    page = GatePage.create(agent_pid=123, owner_uid=None)
    assert page.path.parent == tmp_path and oct(page.path.stat().st_mode & 0o777) == "0o600"
    view = GatePage.open(str(page.path))
    a, b, far = 123 << 32 | 1, 123 << 32 | 7, 123 << 32 | SLOTS
    assert slot_of(far) is None
    page.apply([(a, True), (b, True), (far, True)])
    assert (view.flags[1], view.flags[7]) == (1, 1) and view.stamp(a) and view.stamp(far) is None
    page.apply([(b, False)])
    assert (view.flags[1], view.flags[7]) == (1, 0)
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
        gated = agent.gated_at(xq.id)
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

    class Transport:
        data = b""

        def is_closing(self):
            return False

        def get_write_buffer_size(self):
            return 0

        def write(self, data):
            Transport.data += data

    async def main() -> list[apb.DaemonMessage]:
        store = StateStore(tmp_path)
        d = Daemon(policy="HPF", gang=False, saved=store.load(), store=store,
                   authorizer=Authorizer(PeerTable()), metrics=Metrics(None))  # fmt: skip
        session = SocketSession(d.auth.local_peer(Credentials(os.getpid(), os.getuid(), os.getgid())), Transport())
        reg = apb.AgentMessage(register=apb.Register(pid=os.getpid(), name="t"))
        assert d.agent_messages(session, [reg])
        return FrameReader(apb.DaemonMessage.FromString).feed(Transport.data)

    (msg,) = asyncio.run(main())
    assert msg.registered.gates == "" and msg.registered.lease_s > 0
    assert "no suspend gates" in caplog.text


def test_an_agent_told_a_path_that_is_not_a_gate_page_works_without_gates(caplog) -> None:
    agent = Agent(agent_config({"XSCHED_SOCKET": "/nonexistent/x.sock"}))
    try:
        xq = XQueue(SimDevice.local().create_queue())
        agent.add(xq)
        agent._map_gates("/etc/passwd")
        assert agent.gated_at(xq.id) is None and "no suspend gates" in caplog.text
        xq.wait(xq.submit(HwCommand(100)))  # nothing holds it
    finally:
        agent.close()
