"""Fixtures for the console's tests: a real xschedd and real workload processes, private sockets."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tui_fakes import SNAPSHOT_SOCKET, FakeControl, serve
from xsched_tui import launch
from xsched_tui.connection import Target

FG = "name=fg,priority=10,period_ms=20,commands=8,command_us=500"
BG = "name=bg,priority=0,commands=10,command_us=500"


@dataclass
class Stack:
    """A daemon (restartable) and the workloads started against it."""

    root: Path
    policy: str = "HPF"
    daemon: subprocess.Popen | None = None
    sim: subprocess.Popen | None = None
    workloads: list[subprocess.Popen] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.root / "d.sock"

    @property
    def sim_socket(self) -> Path:
        return self.root / "sim.sock"

    @property
    def target(self) -> Target:
        return Target(f"unix:{self.socket}")

    def start_daemon(self) -> None:
        self.daemon = launch.start_daemon(self.socket, self.root / "state", self.policy,
                                          self.root / "xschedd.log")
        launch.wait_for_daemon(self.socket, proc=self.daemon)

    def stop_daemon(self) -> None:
        launch.stop(self.daemon)
        self.daemon = None

    def start_workload(self, *queues: str, duration_s: float = 60.0) -> subprocess.Popen:
        if self.sim is None:
            self.sim = launch.start_sim(self.sim_socket, self.root / "sim.log")
        proc = launch.start_workload(queues, self.socket, self.sim_socket, duration_s,
                                     log=self.root / f"workload{len(self.workloads)}.log")
        self.workloads.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.workloads:
            launch.stop(proc)
        self.stop_daemon()
        launch.stop(self.sim)


@pytest.fixture
def stack() -> Iterator[Stack]:
    # a short directory: Unix socket paths must stay under 108 bytes
    root = Path(tempfile.mkdtemp(prefix="xtui-", dir="/tmp"))
    s = Stack(root)
    try:
        yield s
    finally:
        s.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def live_stack(stack: Stack) -> Stack:
    """A daemon under HPF with one workload: fg (priority 10, periodic) and bg (priority 0)."""
    stack.start_daemon()
    stack.start_workload(FG, BG)
    return stack


@pytest.fixture
def fake_control() -> Iterator[FakeControl]:
    """The fake ControlService on a fixed abstract socket (its name shows in the header)."""
    fake = FakeControl()
    server = serve(fake, SNAPSHOT_SOCKET)
    try:
        yield fake
    finally:
        server.stop(None)

