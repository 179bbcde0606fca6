"""xsched-tui in a real terminal (tmux): queues appear, and a policy change takes effect."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest
from conftest import BG, FG, Stack
from tui_fakes import DaemonProbe

from xsched_tui.launch import REPO

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def wait_screen(session: str, predicate, timeout_s: float, what: str) -> str:
    deadline = time.monotonic() + timeout_s
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if predicate(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")


def test_tui_in_tmux_shows_queues_and_switches_policy(live_stack: Stack):
    session = f"xtui-{live_stack.root.name}"
    cmd = (f"cd {REPO} && PYTHONPATH={REPO} TERM=xterm-256color {sys.executable} "
           f"-m xsched_tui.app --socket {live_stack.socket}")
    tmux("new-session", "-d", "-s", session, "-x", "170", "-y", "40", cmd)
    probe = DaemonProbe(live_stack.socket)
    try:
        screen = wait_screen(session, lambda s: " fg " in s and " bg " in s and "connected" in s,
                             20, "fg and bg on screen")
        assert "policy HPF" in screen
        available = list(probe.policy().available)
        tmux("send-keys", "-t", session, "p")
        wait_screen(session, lambda s: "enter picks" in s, 5, "the policy picker")
        for _ in range(available.index("CFS") - available.index("HPF")):
            tmux("send-keys", "-t", session, "Down")
        tmux("send-keys", "-t", session, "Enter")
        wait_screen(session, lambda s: "policy CFS" in s, 5, "CFS in the header")
        assert probe.policy().name == "CFS"
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("q did not quit xsched-tui")
    finally:
        probe.close()
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@needs_make
def test_closing_the_demo_terminal_stops_everything_it_started(tmp_path):
    """tmux kill-session hangs up the demo's terminal: the console, xschedd, the simulated
    XPU and the workloads must all go, and the demo's directory with them (they once
    stayed, the console stuck on its dead terminal)."""
    session = f"xdemo-{tmp_path.name}"[:40]
    # finds exactly this demo's processes; ends in 1: the demo hands children str(float),
    # which drops trailing zeros (3599.120 -> 3599.12), and then pgrep found none of them
    marker = f"--duration-s 3599.{abs(hash(session)) % 1000:03d}1"
    makefile = tmp_path / "Makefile"  # under make, as `make demo` runs it: make outlives a hang-up
    makefile.write_text(f"demo:\n\tcd {REPO} && PYTHONPATH={REPO} {sys.executable} -m xsched_tui.demo {marker}\n")
    cmd = f"TERM=xterm-256color make -f {makefile} demo"
    tmux("new-session", "-d", "-s", session, "-x", "170", "-y", "40", cmd)

    def ours() -> list[str]:
        out = subprocess.run(["pgrep", "-f", marker.split()[1]], capture_output=True, text=True).stdout
        return out.split()

    try:
        # every workload's queues, not the first one's: under load the others start later
        names = ("interactive", "batch", "llm-prefill", "connected")
        wait_screen(session, lambda s: all(n in s for n in names), 30, "the demo's queues")
        assert len(ours()) >= 4  # the demo, two workloads, the LLM demo
    finally:
        tmux("kill-session", "-t", session)
    deadline = time.monotonic() + 15
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ours(), f"left running after the terminal closed: {ours()}"
