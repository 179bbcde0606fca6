"""The console demo: xschedd, three live workloads on the simulated XPU, and xsched-tui.

Starts the daemon (on a private socket unless --default-socket; an already running
daemon on that socket is reused), then a high-priority interactive service, a
low-priority batch job and an LLM-like workload that reports KV-cache usage, opens the
console over them, and stops every process it started when the console exits.
Press `p` to change the policy and watch the batch job's state and SHARE react.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from hal.paths import daemon_socket
from xsched_tui import launch
from xsched_tui.app import XSchedConsole
from xsched_tui.connection import Target

SERVICE = ["name=interactive,priority=10,period_ms=25,commands=8,command_us=500,level=2"]
BATCH = ["name=batch,priority=0,commands=10,command_us=500,level=2",
         "name=training,priority=-5,commands=20,command_us=1000,level=2"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="xsched-tui-demo", description=__doc__.splitlines()[0])
    p.add_argument("--default-socket", action="store_true",
                   help=f"use the daemon's default socket ({daemon_socket()})")
    p.add_argument("--policy", default="HPF", type=str.upper)
    p.add_argument("--duration-s", type=float, default=3600.0, help="how long workloads run")
    p.add_argument("--device", default="sim")
    args = p.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="xsched-demo-", dir="/tmp"))
    socket = daemon_socket() if args.default_socket else root / "xschedd.sock"
    sim_socket = root / "sim.sock"
    procs = []
    try:
        try:
            launch.wait_for_daemon(socket, timeout_s=0.5)  # one is running already: use it
            print(f"using the xschedd on {socket}")
        except launch.LaunchError:
            daemon = launch.start_daemon(socket, root / "state", args.policy, root / "xschedd.log")
            procs.append(daemon)
            launch.wait_for_daemon(socket, proc=daemon)
        if args.device == "sim":
            procs.append(launch.start_sim(sim_socket, root / "sim.log"))
        for name, queues in (("service", SERVICE), ("batch", BATCH)):
            procs.append(launch.start_workload(queues, socket, sim_socket, args.duration_s,
                                               args.device, root / f"{name}.log"))
        procs.append(launch.start_module(
            "xsched_tui.demo_llm", ["--device", args.device, "--duration-s", str(args.duration_s)],
            launch.workload_env(socket, sim_socket), root / "llm.log",
        ))
        def hang_up(code: int) -> None:  # stop everything, as `q` would, and go
            for proc in reversed(procs):
                launch.stop(proc)
            shutil.rmtree(root, ignore_errors=True)
            os._exit(code)

        def watch_terminal() -> None:
            """A closed terminal can leave the console stuck on its dead tty (seen in tmux:
            neither it nor `make` exits, and SIGHUP never reaches a Python handler), so
            watch the terminal itself: once it is hung up it can no longer be opened."""
            while _has_terminal():
                time.sleep(0.5)
            hang_up(128 + signal.SIGHUP)

        if _has_terminal():
            threading.Thread(target=watch_terminal, name="demo-terminal-watch", daemon=True).start()
        signal.signal(signal.SIGTERM, lambda signum, _frame: hang_up(128 + signum))
        XSchedConsole(Target(f"unix:{socket}")).run()
    except launch.LaunchError as exc:
        print(f"xsched-tui demo: {exc} (logs in {root})", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(procs):
            launch.stop(proc)
    shutil.rmtree(root, ignore_errors=True)
    return 0


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
