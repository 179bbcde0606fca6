"""Runtime overhead of the XQueue on the simulated XPU (paper Fig. 11c / 12a, host side).

Measures, against the plain hardware queue in the same run:
  - host cost per submit (a suspended XQueue, so nothing launches), and per native launch;
  - commands per second one launch worker sustains (zero-length commands);
  - the slowdown of a task of short commands, over threshold 1..16 and command length,
    which tells the finest command worth scheduling from Python.
Usage: python bench/overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import private_sim_env, stop_sim, write_results

from hal import HwCommand
from hal.sim import SimDevice
from preempt import XQueue

THRESHOLDS = (1, 2, 4, 8, 16)
COMMAND_US = (20, 50, 100, 200, 500)


def submit_cost_us(device: SimDevice, suspended: bool, n: int = 20_000) -> float:
    """Host time of one submit: bookkeeping only (suspended), or with its launch."""
    xq = XQueue(device.create_queue(), threshold=n)
    if suspended:
        xq.suspend()
    cmds = [HwCommand(0) for _ in range(n)]
    start = time.perf_counter()
    for cmd in cmds:
        xq.submit(cmd)
    elapsed = time.perf_counter() - start
    xq.resume()
    xq.close()
    return elapsed / n * 1e6


def launch_cost_us(device: SimDevice, n: int = 20_000) -> float:
    hwq = device.create_queue()
    cmds = [HwCommand(0) for _ in range(n)]
    start = time.perf_counter()
    for cmd in cmds:
        hwq.launch(cmd)
    elapsed = time.perf_counter() - start
    hwq.synchronize()
    hwq.close()
    return elapsed / n * 1e6


def run_task(target, commands: int, command_us: float) -> float:
    cmds = [HwCommand(command_us) for _ in range(commands)]
    start = time.perf_counter()
    if isinstance(target, XQueue):
        for cmd in cmds:
            last = target.submit(cmd)
        target.wait(last)
    else:
        for cmd in cmds:
            target.launch(cmd)
        target.synchronize()
    return time.perf_counter() - start


def median_task_s(target, commands: int, command_us: float, repeats: int) -> float:
    run_task(target, commands, command_us)  # warm up
    return statistics.median(run_task(target, commands, command_us) for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--commands", type=int, default=200, help="commands per task")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    sizes = (200, 20) if args.quick else (20_000, args.commands)
    env, sock = private_sim_env()
    os.environ.update(env)
    try:
        device = SimDevice.shared(sock)
        n, per_task = sizes
        host = {
            "submit_queued_us": submit_cost_us(device, suspended=True, n=n),
            "submit_and_launch_us": submit_cost_us(device, suspended=False, n=n),
            "native_launch_us": launch_cost_us(device, n=n),
        }
        native_s = median_task_s(device.create_queue(), n, 0, 1)
        xq = XQueue(device.create_queue(), threshold=16)
        xq_s = median_task_s(xq, n, 0, 1)
        xq.close()
        throughput = {"native_cmds_per_s": n / native_s, "xqueue_cmds_per_s": n / xq_s}
        slowdown: dict[str, dict[str, float]] = {}
        for us in COMMAND_US:
            native = median_task_s(device.create_queue(), per_task, us, args.repeats)
            row = {}
            for threshold in THRESHOLDS:
                xq = XQueue(device.create_queue(), threshold=threshold)
                row[str(threshold)] = median_task_s(xq, per_task, us, args.repeats) / native
                xq.close()
            slowdown[str(us)] = row
    finally:
        stop_sim(sock)
    finest = next(
        (us for us in COMMAND_US if min(slowdown[str(us)].values()) <= 1.05), None
    )
    print(f"host cost per command: submit to a suspended XQueue {host['submit_queued_us']:.1f} us, "
          f"submit with its launch {host['submit_and_launch_us']:.1f} us, "
          f"native launch {host['native_launch_us']:.1f} us")  # fmt: skip
    print(f"one XQueue launches {throughput['xqueue_cmds_per_s']:,.0f} zero-length commands/s "
          f"(native: {throughput['native_cmds_per_s']:,.0f}/s)")  # fmt: skip
    print(f"\ntask of {per_task} commands, time with XQueue / native (shared simulated XPU)")
    print(f"{'command':>9} " + " ".join(f"{'thr ' + str(t):>7}" for t in THRESHOLDS))
    for us, row in slowdown.items():
        print(f"{us + ' us':>9} " + " ".join(f"{row[str(t)]:>7.3f}" for t in THRESHOLDS))
    print(f"\nfinest command with <= 5% overhead at its best threshold: "
          f"{finest if finest is not None else '>' + str(COMMAND_US[-1])} us")  # fmt: skip
    results = {"host": host, "throughput": throughput, "slowdown": slowdown,
               "finest_command_us_within_5pct": finest}  # fmt: skip
    if not args.no_save:
        params = {"commands_per_task": args.commands, "repeats": args.repeats,
                  "thresholds": THRESHOLDS, "command_us": COMMAND_US}  # fmt: skip
        print(f"wrote {write_results('overhead_sim', 'simulated XPU (sim, shared)', params, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
