"""What our runtime costs a periodic foreground task alone: the floor under fixed priority.

The foreground of `cuda_fixed_priority_2proc.py` (4 x 250 us spin commands, at 20% of its
standalone peak rate) runs alone, one `xsched-workload --device cuda:0` process per
configuration: natively (bare streams), through an XQueue with no scheduler
(XSCHED_SCHEDULER=APP) at level 1 threshold 4 and level 2 threshold 8, and the same on
the priority board ($XSCHED_CUDA_BOARD=1, anticipation off: nobody is below to park),
there also at level 1 threshold 1.
Whatever a configuration adds to native's median is paid by every task, contention or
not. Configurations interleave round by round; each reports its median over the rounds
of P50, P90 and P99, and P50 over native's in microseconds. It also counts the tasks
that took over twice native's median (`slow`, pooled over the rounds): on a host that
slows down now and then for tens of milliseconds, the slow tasks come in runs, and how
many a configuration has tells how much of such a slowdown its host work per task turns
into latency (native code, with less host work per task, loses less there). That host
work is measured too: the process's CPU time a task, every thread's (`cpu us a task`,
the median over the rounds; a CUDA task's spinning wait is most of native's).

`--against DIR` also runs the XQueue configurations from another checkout (e.g. `git
worktree add /tmp/base HEAD~1`), interleaved with ours: the baseline and the change
side by side on one machine.
Usage: python bench/cuda_task_floor.py [--rounds 3] [--duration-s 4] [--against DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from cuda_common import ROOT, pct, results_name, table, write
from cuda_fixed_priority_2proc import FG, foreground_period_ms, run_alone
from cuda_procs import child_env, device_info

from hal.anticipation import ENV as LEAD_ENV
from hal.board import ENV as BOARD_ENV

CONFIGS = (  # name, extra queue keys, XSCHED_CUDA_BOARD
    ("xq_lv1_thr4", "level=1,threshold=4", "0"),
    ("xq_lv2_thr8", "level=2,threshold=8", "0"),
    ("board_lv1_thr1", "level=1,threshold=1", "1"),  # a host round trip between each two commands
    ("board_lv1_thr4", "level=1,threshold=4", "1"),
    ("board_lv2_thr8", "level=2,threshold=8", "1"),
)


def run(queue: str, duration_s: float, env: dict, native: bool, root: Path) -> dict:
    """One run from the checkout `root`: the foreground's latencies (ms, `fg`) and its
    process's CPU a task (us, `cpu_us_per_task`, None from a tree before it)."""
    r = run_alone(queue, duration_s, env, native=native, cwd=root)
    if not r["fg"]:
        raise RuntimeError(f"{queue}: no task completed")
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--against", type=Path, default=None, help="another checkout: its XQueue rows run too")
    p.add_argument("--save-as", type=results_name, default="cuda_task_floor", help="results file name (without .json)")
    a = p.parse_args(argv)
    if not a.duration_s > 0:
        p.error(f"--duration-s must be > 0, got {a.duration_s}")
    if not 1 <= a.rounds <= 50:
        p.error(f"--rounds must be in [1, 50], got {a.rounds}")
    if a.against is not None and not (a.against / "preempt" / "xqueue.py").is_file():
        p.error(f"--against {a.against}: not a checkout of this project (no preempt/xqueue.py)")

    base = {**child_env(), "XSCHED_SCHEDULER": "APP"}
    period_ms = foreground_period_ms(base)
    fg = f"{FG},priority=10,period_ms={period_ms:.3f}"
    trees = {"": ROOT} if a.against is None else {"": ROOT, "base_": a.against.resolve()}
    runs: dict[str, list[dict]] = {}
    for r in range(a.rounds):
        runs.setdefault("native", []).append(run(fg, a.duration_s, base, True, ROOT))
        for prefix, root in trees.items():
            env = {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))}
            for name, keys, board in CONFIGS:
                runs.setdefault(prefix + name, []).append(
                    run(f"{fg},{keys}", a.duration_s, {**env, BOARD_ENV: board, LEAD_ENV: "0"},
                        False, root))  # fmt: skip
        print(f"round {r + 1}/{a.rounds} done", flush=True)

    def median_of(name: str, q: float) -> float:
        return statistics.median(pct(r["fg"], q) for r in runs[name])

    def cpu_of(name: str) -> float | None:
        cpu = [r["cpu_us_per_task"] for r in runs[name] if r.get("cpu_us_per_task") is not None]
        return statistics.median(cpu) if cpu else None

    native_p50, native_cpu = median_of("native", 50), cpu_of("native")
    results, rows = {}, []
    for name, rounds in runs.items():
        samples = [r["fg"] for r in rounds]
        p50, p90, p99 = (median_of(name, q) for q in (50, 90, 99))
        over_us = (p50 - native_p50) * 1e3
        slow = sum(x > 2 * native_p50 for s in samples for x in s) / sum(len(s) for s in samples)
        cpu = cpu_of(name)
        cpu_over = None if cpu is None or native_cpu is None else cpu - native_cpu
        results[name] = {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p50_over_native_us": over_us,
                         "p50_vs_native": p50 / native_p50, "slow": slow, "cpu_us_per_task": cpu,
                         "cpu_over_native_us": cpu_over, "tasks": [len(s) for s in samples]}  # fmt: skip
        rows.append([name, p50, p90, p99, f"{over_us:+.0f}", p50 / native_p50, f"{100 * slow:.1f}%",
                     "-" if cpu is None else f"{cpu:.0f}" + ("" if cpu_over is None else f" ({cpu_over:+.0f})")])  # fmt: skip
    params = {**vars(a), "against": str(a.against) if a.against else None, "fg": fg, "fg_period_ms": period_ms}
    dev = device_info()
    path = write(a.save_as, dev, params, results, setup="one process alone per configuration, no scheduler")
    print(table(f"The foreground alone on {dev.info.name} (medians of {a.rounds} rounds) -> {path}",
                ["config", "p50 ms", "p90 ms", "p99 ms", "p50 - native us", "p50 / native", "over 2x native p50",
                 "cpu us a task (- native)"],
                rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
