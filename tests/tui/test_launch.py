"""xsched_tui.launch: what the demo starts does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_LAUNCHER = r"""
import sys, time
from pathlib import Path
from xsched_tui import launch
proc = launch.start_sim(Path(sys.argv[1]))
print(proc.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for init counts as gone
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_children_die_when_the_launcher_is_killed(tmp_path):
    """A closed terminal or kill -9 skips the demo's `finally`: its children (own sessions,
    so no terminal signal reaches them) must still go."""
    launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(tmp_path / "sim.sock")], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    child = int(launcher.stdout.readline())
    assert _alive(child)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the simulated XPU outlived the launcher"
