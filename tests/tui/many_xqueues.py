"""A process with many XQueues scheduled by xschedd, for the console's scale test.

  XSCHED_SCHEDULER=GLB python tests/tui/many_xqueues.py --prefix p0- --queues 500

Every XQueue is created through preempt's Runtime (so the agent registers it with its
hints, as any application's would) on an in-process simulated XPU; the first `--active`
of them run a short task every `--period-ms`, so their state keeps changing, and the rest
stay idle. Runs until SIGTERM or `--duration-s`.
"""

from __future__ import annotations

import argparse
import signal
import threading

from hal import HwCommand
from hal.sim import SimDevice
from preempt.runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prefix", required=True, help="XQueue names are PREFIX0000, PREFIX0001, ...")
    p.add_argument("--queues", type=int, default=500)
    p.add_argument("--active", type=int, default=1)
    p.add_argument("--period-ms", type=float, default=200.0)
    p.add_argument("--duration-s", type=float, default=120.0)
    args = p.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = Runtime()
    device = SimDevice.local()
    queues = [
        runtime.create_xqueue(device.create_queue(), name=f"{args.prefix}{i:04d}", priority=i % 8)
        for i in range(args.queues)
    ]
    active = queues[: args.active]
    deadline = threading.Timer(args.duration_s, stop.set)
    deadline.start()
    while not stop.wait(args.period_ms / 1e3):
        for xq in active:
            xq.wait(xq.submit(HwCommand(duration_us=1000)))
    deadline.cancel()
    close = getattr(runtime.scheduler, "close", None)  # the agent (XSCHED_SCHEDULER=GLB)
    if close is not None:
        close()  # resumes every XQueue and leaves the daemon
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
