"""What scheduling through xschedd costs an application's own tasks, host side.

A periodic task of 4 commands on the CPU device (payloads that sleep: the device's time
is not the host's, as on a GPU) is timed, in one run and interleaved round by round:
plain on the hardware queue, through a bare XQueue, and through an XQueue registered
with xschedd (the agent's READY and IDLE messages on the task's path), with the READY
news sent before the first launch (as for the simulated XPU) and after it (as for
CUDA and the CPU device: `HwQueue.cheap_launch`). Ratios are against plain.

Usage: python bench/agent_overhead.py [--tasks 300] [--rounds 3] [--no-save]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

from hal import HwCommand
from hal.cpu import CpuDevice
from hal.stats import percentile
from preempt import XQueue
from preempt.runtime import Runtime
from xschedd.launch import DaemonProcess

COMMANDS = 4
COMMAND_US = 250
PERIOD_S = 0.004


def command() -> HwCommand:
    return HwCommand(COMMAND_US, payload=lambda: time.sleep(COMMAND_US * 1e-6))


def plain_task(hwq) -> None:
    for _ in range(COMMANDS):
        hwq.launch(command())
    hwq.synchronize()


def xqueue_task(xq: XQueue) -> None:
    for _ in range(COMMANDS):
        last = xq.submit(command())
    xq.wait(last)


def timed(task, n: int) -> list[float]:
    out = []
    for _ in range(n):
        time.sleep(PERIOD_S)
        t0 = time.perf_counter()
        task()
        out.append(time.perf_counter() - t0)
    return out[n // 10 :]  # the first tasks warm up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="xao-", dir="/tmp"))
    daemon = DaemonProcess(tmp / "xschedd.sock", tmp / "state", tmp / "xschedd.log", log_level="WARNING")
    daemon.start()
    try:
        os.environ.update(XSCHED_SCHEDULER="GLB", XSCHED_SOCKET=str(daemon.socket))
        runtime = Runtime()
        device = CpuDevice()
        plain = device.create_queue()
        bare = XQueue(device.create_queue(), threshold=COMMANDS)
        news_first = runtime.create_xqueue(device.create_queue(), name="news-first", priority=10, threshold=COMMANDS)
        news_first.hwq.cheap_launch = False
        launch_first = runtime.create_xqueue(device.create_queue(), name="launch-first", priority=10, threshold=COMMANDS)
        assert launch_first.hwq.cheap_launch
        if not runtime.scheduler.connected.wait(10):
            raise RuntimeError("the agent did not register with xschedd")
        configs = {
            "plain": lambda: plain_task(plain),
            "xqueue": lambda: xqueue_task(bare),
            "xschedd, READY before the launch": lambda: xqueue_task(news_first),
            "xschedd, launch before READY": lambda: xqueue_task(launch_first),
        }
        samples: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(args.rounds):
            for name, task in configs.items():
                samples[name] += timed(task, args.tasks)
        runtime.scheduler.close()
    finally:
        daemon.stop()
    results = {}
    base = {p: percentile(samples["plain"], p) for p in (50, 90, 99)}
    print(f"task of {COMMANDS} x {COMMAND_US} us commands on the CPU device, every {PERIOD_S * 1e3:.0f} ms (ms; x plain)")
    for name, values in samples.items():
        row = {f"p{p}_ms": percentile(values, p) * 1e3 for p in (50, 90, 99)}
        row.update({f"p{p}_x": percentile(values, p) / base[p] for p in (50, 90, 99)})
        row["tasks"] = len(values)
        results[name] = row
        print(f"{name:<34} P50 {row['p50_ms']:.3f} ({row['p50_x']:.2f}x)  P90 {row['p90_ms']:.3f} "
              f"({row['p90_x']:.2f}x)  P99 {row['p99_ms']:.3f} ({row['p99_x']:.2f}x)")  # fmt: skip
    if not args.no_save:
        params = {"tasks": args.tasks, "rounds": args.rounds, "commands": COMMANDS,
                  "command_us": COMMAND_US, "period_s": PERIOD_S}  # fmt: skip
        print(f"wrote {write_results('agent_overhead', 'cpu (worker thread; payloads sleep)', params, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
