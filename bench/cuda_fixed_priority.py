"""Fixed priority on the GPU (paper Fig. 9 top): foreground P99 against standalone.

The foreground submits periodic tasks (spin kernels) at 20% of its standalone peak rate;
the background runs tasks of long spin kernels back to back. We report the foreground's
P50/P99 for: native (bare streams, FCFS), native with CUDA stream priorities, and ours
under HPF at level 1 (threshold 1, 4, 16) and level 2. Both queues live in one process
(one CUDA context, local scheduler); ours maps the XQueue priority onto CUDA stream
priorities (HwQueue.set_priority), the `_board` rows add the priority board (hal.board:
the background's kernels flush on the GPU as soon as the foreground launches, without
the scheduler's round trip), and the `_no_hw_prio` rows turn that off to show what
scheduling alone gives; the `_callback_wait` rows make XQueue.wait wait for the completion
thread's callback instead of blocking in the driver. bench/cuda_fixed_priority_2proc.py runs two processes through
xschedd. Usage: python bench/cuda_fixed_priority.py
"""

from __future__ import annotations

import argparse
import os

from cuda_common import open_cuda, pct, runtime, table, write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=3.0)
    p.add_argument("--fg-commands", type=int, default=4)
    p.add_argument("--fg-us", type=float, default=250.0)
    p.add_argument("--bg-commands", type=int, default=10)
    p.add_argument("--bg-us", type=float, default=1000.0)
    p.add_argument("--block-us", type=float, default=10.0)
    a = p.parse_args(argv)
    from hal.cuda.gate import stream_priority_range
    from xsched_workload.runner import QueueLoad, run_loads
    from xsched_workload.spec import QueueSpec

    dev = open_cuda(a.block_us)
    hi = stream_priority_range()[1]
    fg_task = dict(commands=a.fg_commands, command_us=a.fg_us)
    bg_spec = QueueSpec("bg", commands=a.bg_commands, command_us=a.bg_us)

    def run(specs_targets, duration):
        loads = [QueueLoad(s, t) for s, t in specs_targets]
        run_loads(loads, duration, lambda r: None)
        for ld in loads:
            if hasattr(ld.target, "close"):
                ld.target.close()
        return {ld.spec.name: ld for ld in loads}

    peak = run([(QueueSpec("fg", **fg_task), dev.create_queue(guard=False))], 1.5)["fg"]
    period_ms = 1000.0 / (0.2 * peak.tasks_done / peak.elapsed_s)
    fg_spec = QueueSpec("fg", period_ms=period_ms, **fg_task)
    alone = run([(fg_spec, dev.create_queue(guard=False))], a.duration_s)["fg"]
    alone_p99 = pct(alone.latency.samples(), 99)

    def ours(level, threshold, hw_priority=True, direct_wait=True, board=False):
        rt = runtime("HPF")
        fh, bh = (dev.create_queue(guard=level >= 2, board=board) for _ in range(2))
        if not hw_priority:
            fh.set_priority = bh.set_priority = lambda priority: None
        fh.direct_wait = bh.direct_wait = direct_wait
        fq = rt.create_xqueue(fh, name="fg", level=level, threshold=threshold, priority=10)
        bq = rt.create_xqueue(bh, name="bg", level=level, threshold=threshold, priority=0)
        return [(fg_spec, fq), (bg_spec, bq)]

    configs = {
        "native": lambda: [(fg_spec, dev.create_queue(guard=False)), (bg_spec, dev.create_queue(guard=False))],
        "native_stream_priority": lambda: [(fg_spec, dev.create_queue(guard=False, priority=hi)),
                                           (bg_spec, dev.create_queue(guard=False))],
        "ours_lv1_thr1": lambda: ours(1, 1),
        "ours_lv1_thr4": lambda: ours(1, 4),
        "ours_lv1_thr16": lambda: ours(1, 16),
        "ours_lv2_thr8": lambda: ours(2, 8),
        "ours_lv2_thr16": lambda: ours(2, 16),
        "ours_lv1_thr4_board": lambda: ours(1, 4, board=True),
        "ours_lv2_thr8_board": lambda: ours(2, 8, board=True),
        "ours_lv1_thr4_no_hw_prio": lambda: ours(1, 4, hw_priority=False),
        "ours_lv2_thr8_no_hw_prio": lambda: ours(2, 8, hw_priority=False),
        "ours_lv1_thr4_callback_wait": lambda: ours(1, 4, direct_wait=False),
        "ours_lv2_thr8_callback_wait": lambda: ours(2, 8, direct_wait=False),
    }  # fmt: skip
    results = {"standalone": {"fg_p50_ms": pct(alone.latency.samples(), 50) * 1e3,
                              "fg_p99_ms": alone_p99 * 1e3, "tasks": alone.tasks_done}}  # fmt: skip
    rows = [["standalone", results["standalone"]["fg_p50_ms"], results["standalone"]["fg_p99_ms"], 1.0, "-"]]
    for name, make in configs.items():
        out = run(make(), a.duration_s)
        fg, bg = out["fg"], out["bg"]
        s = fg.latency.samples()
        r = {
            "fg_p50_ms": pct(s, 50) * 1e3,
            "fg_p99_ms": pct(s, 99) * 1e3,
            "p99_vs_standalone": pct(s, 99) / alone_p99,
            "fg_tasks": fg.tasks_done,
            "bg_throughput_tps": bg.tasks_done / bg.elapsed_s,
        }
        results[name] = r
        print(name, {k: round(v, 3) for k, v in r.items()}, flush=True)
        rows.append([name, r["fg_p50_ms"], r["fg_p99_ms"], r["p99_vs_standalone"], round(r["bg_throughput_tps"], 1)])
    params = {**vars(a), "fg_period_ms": period_ms, "spin_wave_us": dev.spin.wave_us,
              "stream_priority_high": hi, "gate": dev.create_queue(guard=True).gate_kind}  # fmt: skip
    path = write("cuda_fixed_priority", dev, params, results)
    print(table(f"Fixed priority on {dev.info.name} (fg P99 / standalone P99) -> {path}",
                ["config", "fg p50 ms", "fg p99 ms", "p99/standalone", "bg tasks/s"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    os._exit(main())  # daemon threads (completions, clock) need no joining
