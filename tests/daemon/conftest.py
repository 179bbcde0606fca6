"""Real processes for the daemon tests: xschedd, xsched-workload agents, xschedctl.

Each test gets a private daemon socket, state dir and simulated device (all under a
short temporary directory: Unix socket paths are limited to 107 bytes).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` as well as `python -m pytest`: the tests import tests.daemon
    sys.path.insert(0, str(ROOT))

from hal.sim.client import stop_server
from protos.xsched.v1 import agent_pb2 as apb
from protos.xsched.v1 import control_pb2 as cpb
from protos.xsched.v1 import control_pb2_grpc
from xschedd import daemon as xschedd_daemon
from xschedd.auth import Authorizer, PeerTable
from xschedd.framing import FrameReader
from xschedd.launch import DaemonExited, DaemonProcess, child_env
from xschedd.metrics import Metrics
from xschedd.state import StateStore


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy; return it (or fail after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class RecordingTransport:
    """A native stream's transport (the daemon's side) that keeps what is written to it."""

    def __init__(self) -> None:
        self.data = b""

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass

    def messages(self) -> list[apb.DaemonMessage]:
        return FrameReader(apb.DaemonMessage.FromString).feed(self.data)

    def ops(self) -> list[list[tuple[int, str]]]:
        """The operations messages written so far, each as (xqueue_id, kind) pairs."""
        return [
            [(op.xqueue_id, op.WhichOneof("kind")) for op in m.operations.ops]
            for m in self.messages()
            if m.HasField("operations")
        ]


def in_process_daemon(state_dir: Path) -> xschedd_daemon.Daemon:
    """xschedd's business logic without its servers (HPF), for tests that feed it messages."""
    store = StateStore(state_dir)
    return xschedd_daemon.Daemon(policy="HPF", gang=False, saved=store.load(), store=store,
                                 authorizer=Authorizer(PeerTable()), metrics=Metrics(None))  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    return child_env(extra)


class Daemon(DaemonProcess):
    """xschedd as the tests drive it: a DaemonProcess plus control-API helpers."""

    def stub(self) -> control_pb2_grpc.ControlServiceStub:
        channel = grpc.insecure_channel(f"unix:{self.socket}")
        return control_pb2_grpc.ControlServiceStub(channel)

    def xqueues(self, pid: int = 0) -> list[cpb.XQueueView]:
        return list(self.stub().ListXQueues(cpb.ListXQueuesRequest(pid=pid), timeout=5).xqueues)

    def serving(self) -> bool:
        try:
            return super().serving()
        except DaemonExited as exc:
            raise AssertionError(str(exc)) from None


@dataclass
class Workload:
    """An xsched-workload process; its per-task JSON lines are collected with arrival times."""

    proc: subprocess.Popen
    tasks: list[tuple[float, str, float]] = field(default_factory=list)  # (t, queue, latency ms)
    summaries: dict[str, dict] = field(default_factory=dict)
    stderr: str = ""

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("summary"):
                self.summaries[record["queue"]] = record
            else:
                self.tasks.append((time.monotonic(), record["queue"], record["latency_ms"]))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        return rc

    def latencies(self, queue: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [ms for t, q, ms in list(self.tasks) if q == queue and since <= t < until]


@dataclass
class Env:
    dir: Path
    daemon: Daemon
    workloads: list[Workload] = field(default_factory=list)

    def workload(self, *queues: str, duration_s: float = 3.0, **env: str) -> Workload:
        args = [sys.executable, "-m", "xsched_workload.cli", "--duration-s", str(duration_s), "--json"]
        for q in queues:
            args += ["--queue", q]
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_env(
                XSCHED_SCHEDULER="GLB",
                XSCHED_SOCKET=str(self.daemon.socket),
                XSCHED_SIM_SOCKET=str(self.dir / "sim.sock"),
                **env,
            ),
        )
        w = Workload(proc)
        self.workloads.append(w)
        return w

    def ctl(self, *args: str, user: int | None = None) -> subprocess.CompletedProcess:
        """Run xschedctl; with `user`, as that uid (imports first: it may not read our files)."""
        argv = ["--socket", str(self.daemon.socket), *args]
        code = (
            "import os, sys, grpc, xschedd.ctl as ctl\n"
            "import shutil, json, textwrap, gettext, locale  # argparse and output import late\n"
            "grpc.insecure_channel('unix:/nonexistent').close()  # load grpc's lazy modules\n"
            f"u = {user!r}\n"
            "if u is not None:\n"
            "    os.setgroups([]); os.setgid(u); os.setuid(u)\n"
            f"sys.exit(ctl.main({argv!r}))\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=30, check=False
        )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="xsd-"))
    yield path
    stop_server(path / "sim.sock")  # the workloads started it on demand
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def make_env(short_dir: Path) -> Iterator[Callable[..., Env]]:
    envs: list[Env] = []

    def make(*daemon_args: str, start: bool = True) -> Env:
        d = Daemon(short_dir / "d.sock", short_dir / "state", short_dir / "xschedd.log", list(daemon_args))
        env = Env(short_dir, d)
        envs.append(env)
        if start:
            d.start()
        return env

    yield make
    for env in envs:
        for w in env.workloads:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        if env.daemon.proc is not None:
            env.daemon.stop()


@pytest.fixture
def env(make_env) -> Env:
    return make_env()
