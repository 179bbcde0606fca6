"""Starting a real xschedd process and waiting until it serves: what the daemon tests and
the benchmarks share (so both start it the same way: by module, on a private socket).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from protos.xsched.v1 import control_pb2 as cpb
from protos.xsched.v1 import control_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 15.0


class DaemonExited(RuntimeError):
    """xschedd ended (or never answered); the message carries its log."""


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment, with the repository importable and no XSCHED_POLICY to inherit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("XSCHED_POLICY", None)
    env.update(extra or {})
    return env


@dataclass
class DaemonProcess:
    """`python -m MODULE --socket SOCKET --state-dir STATE_DIR ARGS...` (MODULE: xschedd.cli), logging to `log`."""

    socket: Path
    state_dir: Path
    log: Path
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    log_level: str = "INFO"
    module: str = "xschedd.cli"  # what `python -m` runs (tests run stand-ins for older daemons)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, wait: bool = True, timeout_s: float = START_TIMEOUT_S) -> DaemonProcess:
        cmd = [sys.executable, "-m", self.module, "--socket", str(self.socket),
               "--state-dir", str(self.state_dir), "--log-level", self.log_level, *self.args]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=log, cwd=REPO, env=dict(self.env) if self.env else child_env()
            )
        if wait:
            self.wait_serving(timeout_s)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def serving(self) -> bool:
        """Whether GetPolicy answers now; DaemonExited if the process is gone."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise DaemonExited(f"xschedd exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            with grpc.insecure_channel(f"unix:{self.socket}") as channel:
                control_pb2_grpc.ControlServiceStub(channel).GetPolicy(cpb.GetPolicyRequest(), timeout=1)
            return True
        except grpc.RpcError:
            return False

    def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.serving():
            if time.monotonic() > deadline:
                raise DaemonExited(f"xschedd did not serve within {timeout_s} s:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        """Signal it and wait (SIGKILL if it lingers); return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
