"""Starting and stopping the real processes around the console: xschedd and workloads.

Used by the demo, the tests and the load benchmark, so all three start the daemon and the
workloads the same way (as separate processes, by module, with private sockets).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import grpc

from protos.xsched.v1 import control_pb2 as cpb, control_pb2_grpc

REPO = Path(__file__).resolve().parent.parent


# Run first in each child, then exec the real command: SIGTERM it when the launcher dies,
# however it dies (a closed terminal, kill -9), so no daemon or workload outlives the demo.
# Not a Popen preexec_fn: Python code between fork and exec in a process with gRPC threads
# crashed the child (seen in CI: "Other threads are currently calling into gRPC").
_DIE_WITH_PARENT = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 15); "  # PR_SET_PDEATHSIG, SIGTERM
    "os.getppid() == int(sys.argv[1]) or sys.exit(0); "  # the launcher died before that
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def _tied_to_us(cmd: list[str]) -> list[str]:
    """`cmd` wrapped to die with this process (Linux; elsewhere `stop()` is all there is)."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


class LaunchError(RuntimeError):
    """A process did not start (the message includes what it printed)."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def start_daemon(
    socket: Path, state_dir: Path, policy: str = "HPF", log: Path | None = None, *extra: str
) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "xschedd.cli", "--socket", str(socket),
           "--state-dir", str(state_dir), "--policy", policy, *extra]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen(_tied_to_us(cmd), env=child_env(), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_daemon(socket: Path, timeout_s: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """Block until GetPolicy answers on `socket`; LaunchError if it does not in time."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LaunchError(f"xschedd exited with {proc.returncode}")
        if socket.exists():
            with grpc.insecure_channel(f"unix:{socket}") as ch:
                try:
                    control_pb2_grpc.ControlServiceStub(ch).GetPolicy(cpb.GetPolicyRequest(), timeout=1.0)
                    return
                except grpc.RpcError as exc:
                    last = str(exc.code())
        time.sleep(0.05)
    raise LaunchError(f"xschedd did not answer on {socket} within {timeout_s} s ({last})")


def start_sim(sim_socket: Path, log: Path | None = None, timeout_s: float = 10.0) -> subprocess.Popen:
    """The shared simulated XPU, started here (not on demand) so that `stop()` can end it."""
    proc = start_module("hal.sim.server", ["--socket", str(sim_socket), "--idle-exit-s", "0"],
                        child_env(), log)
    deadline = time.monotonic() + timeout_s
    while not sim_socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise LaunchError(f"the simulated XPU did not start on {sim_socket}")
        time.sleep(0.02)
    return proc


def workload_env(socket: Path, sim_socket: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {"XSCHED_SCHEDULER": "GLB", "XSCHED_SOCKET": str(socket),
           "XSCHED_SIM_SOCKET": str(sim_socket)}
    env.update(extra or {})
    return child_env(env)


def start_workload(
    queues: Iterable[str],
    socket: Path,
    sim_socket: Path,
    duration_s: float = 60.0,
    device: str = "sim",
    log: Path | None = None,
) -> subprocess.Popen:
    """`python -m xsched_workload.cli` with one --queue per spec, scheduled by the daemon."""
    cmd = [sys.executable, "-m", "xsched_workload.cli", "--device", device,
           "--duration-s", str(duration_s)]
    for q in queues:
        cmd += ["--queue", q]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(_tied_to_us(cmd), env=workload_env(socket, sim_socket), stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_module(
    module: str, args: Iterable[str], env: Mapping[str, str], log: Path | None = None
) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(_tied_to_us([sys.executable, "-m", module, *args]), env=dict(env), stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen | None, timeout_s: float = 5.0) -> None:
    """SIGTERM the process (its own session: it and its children), SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout_s)
