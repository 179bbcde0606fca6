"""Where a task's time goes between tasks: one process, an 8-layer dnn task back to back.

A task's commands are built on the host (Python) and launched, and the next task starts
only once the last completed: the GPU idles from the end of one task to the first kernel
of the next, and anything the runtime does then (a completion thread's wake-up, the
agent's news to xschedd) lengthens that gap. This runs, interleaved round by round in a
shuffled order: natively (HwQueue launches); through an XQueue with no scheduler; and
through xschedd (an agent in this process, `--policy`) with the IDLE news a waiter holds
sent at once (`idle_news_delay_s` 0) and after the default delay (XSCHED_IDLE_DELAY_US,
preempt.xqueue). Per task: the period, the host's build of the commands, the first
submit, and the GPU's span from the first kernel's launch to the last kernel's end
(CUDA events); the gap is the period less the span.
Usage: python bench/cuda_task_gap.py [--policy HPF|UP] [--rounds 12] [--tasks 60]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from cuda_common import results_name, table, write
from cuda_procs import child_env, device_info, start_daemon


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", choices=("HPF", "UP"), default="HPF", help="xschedd's policy")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--tasks", type=int, default=60, help="tasks per configuration and round")
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--save-as", type=results_name, default=None, help="results file name (without .json)")
    a = p.parse_args(argv)
    for flag, value, low in (("--rounds", a.rounds, 1), ("--tasks", a.tasks, 2), ("--layers", a.layers, 1)):
        if value < low:
            p.error(f"{flag} must be >= {low}, got {value}")
    with tempfile.TemporaryDirectory(prefix="xs-") as tmp:
        daemon = start_daemon(Path(tmp), child_env(), policy=a.policy)
        try:
            return run(a, Path(tmp) / "xschedd.sock")
        finally:
            daemon.terminate()
            daemon.wait(30)


def run(a: argparse.Namespace, socket: Path) -> int:
    import cupy

    from hal.cuda import CudaDevice
    from preempt import XQueue
    from preempt.config import load_config
    from preempt.runtime import Runtime
    from preempt.xqueue import IDLE_NEWS_DELAY_S
    from xsched_workload.tasks import task_of

    dev = CudaDevice.open(0)
    task = task_of("dnn", dev, commands=0, command_us=0, layers=a.layers)
    n_cmds = len(task())
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCHED_")}
    env.update(XSCHED_SCHEDULER="GLB", XSCHED_SOCKET=str(socket))
    os.environ.update(env)  # the agent reads its socket from the environment
    runtime = Runtime(load_config(env))
    util = 75 if a.policy == "UP" else None

    def config(kind: str, delay_s: float | None = None):
        hwq = dev.create_queue()
        first, last = cupy.cuda.Event(), cupy.cuda.Event()
        launched = {"n": 0, "at": 0.0}
        launch = hwq.launch

        def timed_launch(cmd, on_complete=None):  # marks the first and the last kernel
            launch(cmd, on_complete)
            launched["n"] += 1
            if launched["n"] == 1:
                launched["at"] = time.perf_counter()
                first.record(hwq.stream)
            elif launched["n"] == n_cmds:
                last.record(hwq.stream)

        hwq.launch = timed_launch
        xq = None
        if kind == "xqueue":
            xq = XQueue(hwq, level=1, threshold=8)
        elif kind == "xschedd":
            xq = runtime.create_xqueue(hwq, name=f"gap-{delay_s}", level=1, threshold=8, utilization=util)
            xq.idle_news_delay_s = delay_s

        def one_round() -> list[tuple[float, ...]]:
            rows, before = [], time.perf_counter()
            for _ in range(a.tasks):
                launched["n"] = 0
                t0 = time.perf_counter()
                cmds = task()
                t1 = time.perf_counter()
                if xq is None:
                    for cmd in cmds:
                        hwq.launch(cmd)
                    hwq.synchronize()
                else:
                    for cmd in cmds:
                        tail = xq.submit(cmd)
                    xq.wait(tail)
                end = time.perf_counter()
                span = cupy.cuda.get_elapsed_time(first, last) * 1e-3
                rows.append((end - before, t1 - t0, launched["at"] - t1, span))
                before = end
            return rows[1:]  # the first period includes the switch between configurations

        return one_round

    configs = {
        "native": config("native"),
        "xqueue_no_daemon": config("xqueue"),
        "xschedd_news_at_once": config("xschedd", 0.0),
        "xschedd_news_held": config("xschedd", IDLE_NEWS_DELAY_S),
    }
    for one_round in configs.values():  # warm-up
        one_round()
    samples: dict[str, list[tuple[float, ...]]] = {k: [] for k in configs}
    rng = random.Random(0)
    for _ in range(a.rounds):
        order = list(configs)
        rng.shuffle(order)
        for name in order:
            samples[name] += configs[name]()
    med = {k: [statistics.median(r[i] for r in v) * 1e6 for i in range(4)] for k, v in samples.items()}
    native = med["native"][0]
    results, rows = {}, []
    for name, (period, build, first_submit, span) in med.items():
        results[name] = {"period_us": period, "build_us": build, "first_submit_us": first_submit,
                         "gpu_span_us": span, "gap_us": period - span, "vs_native": native / period}  # fmt: skip
        rows.append([name, period, build, first_submit, span, period - span, native / period])
    save = a.save_as or f"cuda_task_gap_{a.policy.lower()}"
    dev_info = device_info()
    path = write(save, dev_info, {**vars(a), "idle_news_delay_s": IDLE_NEWS_DELAY_S}, results,
                 setup=f"one process; an agent of xschedd ({a.policy}) in it for the xschedd rows")  # fmt: skip
    print(table(f"Task boundaries, {a.layers}-layer dnn, level 1 threshold 8, xschedd {a.policy}, on "
                f"{dev_info.info.name} -> {path} (medians, us)",
                ["config", "period", "build", "1st submit", "GPU span", "gap", "vs native"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
