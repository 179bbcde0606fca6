"""Runtime overhead on the GPU (paper Fig. 11c/12a): a transformer-layer stack task alone,
natively on a stream and through an XQueue at threshold 1..16 (level 1, cuBLAS GEMMs), and
the all-guarded variant (the same shapes, or `--guarded-dims half`) natively vs level 2:
short launches plain within the queue's budget (the default, hal.cuda.durations), every
launch flushing, or none (`guard_off`: the runtime's own cost on that stack); the gate and
the relaunch launched by the GPU after a flush only; the gate from the GPU and the
relaunch from the host behind every command; both from the host. Configurations
interleave round by round, in a new random order each round (a fixed order favoured some
positions by a few percent). Level 1 under threshold preempt.xqueue.HOLDS_BELOW keeps
HOLD_WINDOW commands launched behind holds (hal.cuda.holds); `--hold-windows 4,32` adds
each level-1 row without holds, and with holds at every threshold under W keeping W
commands launched, for each W given.
Usage: python bench/cuda_overhead.py [--rounds 40] [--hold-windows W,...] [--save-as NAME]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from cuda_common import open_cuda, pct, results_name, table, write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--guarded-dims", choices=("same", "half"), default="same",
                   help="the guarded stack's tokens, d and hidden: the cuBLAS stack's, or half of each (the shape measured "
                        "before the tiled GEMM)")
    p.add_argument("--seed", type=int, default=0, help="of the configurations' order in each round")
    p.add_argument("--fixed-order", action="store_true", help="the same order every round (the old way, biased)")
    p.add_argument("--hold-windows", default="",
                   help="level 1 also without holds, and with holds at every threshold under W keeping W commands "
                        "launched, for each W (comma-separated; preempt.xqueue.HOLD_WINDOW and HOLDS_BELOW are the default)")
    p.add_argument("--save-as", type=results_name, default="cuda_overhead", help="results file name (without .json)")
    a = p.parse_args(argv)
    try:
        hold_windows = [int(w) for w in a.hold_windows.split(",") if w.strip()]
    except ValueError:
        p.error(f"--hold-windows: comma-separated integers, got {a.hold_windows!r}")
    if any(not 1 <= w <= 64 for w in hold_windows):  # hal.cuda.holds.RING words: a hold each, at most
        p.error("--hold-windows: each window is 1 to 64 commands")
    import cupy

    from hal.cuda.tasks import TransformerStack
    import preempt.xqueue as xqueue_mod
    from preempt import XQueue

    dev = open_cuda()
    blas = TransformerStack(a.tokens, a.d, a.hidden, a.layers, guarded=False)
    div = 2 if a.guarded_dims == "half" else 1
    gtask = TransformerStack(a.tokens // div, a.d // div, a.hidden // div, a.layers, guarded=True)

    def native(task, stream):
        def run():
            t = time.perf_counter()
            with stream:
                for c in task.commands():
                    c.run_payload() if c.payload else c.kernel.plain(c.grid, c.block, c.args, shared_mem=c.shared_mem)
            stream.synchronize()
            return time.perf_counter() - t
        return run

    def xqueue(task, level, threshold, device_gate=True, gpu_relaunch=True, plain_budget_us=None, guard=True,
               hold_window=None):  # fmt: skip
        hwq = dev.create_queue(guard=True if level >= 2 and guard else None)
        hwq.device_gate = device_gate
        hwq.gpu_relaunch = gpu_relaunch
        if plain_budget_us is not None:
            hwq.plain_budget_us = plain_budget_us
        defaults = xqueue_mod.HOLD_WINDOW, xqueue_mod.HOLDS_BELOW  # read at the XQueue's creation
        if hold_window is not None:  # holds at every threshold under the window
            xqueue_mod.HOLD_WINDOW = xqueue_mod.HOLDS_BELOW = hold_window
        try:
            xq = XQueue(hwq, level=level, threshold=threshold)
        finally:
            xqueue_mod.HOLD_WINDOW, xqueue_mod.HOLDS_BELOW = defaults

        def run():
            t = time.perf_counter()
            last = None
            for c in task.commands():
                last = xq.submit(c)
            xq.wait(last)
            return time.perf_counter() - t
        run.hwq = hwq
        return run

    s = cupy.cuda.Stream(non_blocking=True)
    configs = {"native_cublas": native(blas, s)}
    for thr in (1, 2, 4, 8, 16):
        configs[f"xq_lv1_thr{thr}"] = xqueue(blas, 1, thr)
        if hold_windows:  # the same without holds (a window of 1: none), and with each window given
            configs[f"xq_lv1_thr{thr}_noholds"] = xqueue(blas, 1, thr, hold_window=1)
            for w in hold_windows:
                configs[f"xq_lv1_thr{thr}_window{w}"] = xqueue(blas, 1, thr, hold_window=w)
    configs["native_guarded_plain"] = native(gtask, s)
    for thr in (4, 8, 16):
        configs[f"xq_lv2_thr{thr}_guarded"] = xqueue(gtask, 2, thr)
    # the runtime alone on the guarded stack: a level-2 queue guards from its first suspend
    # on, and none comes, so every launch is plain (what level 2 costs beyond is the guard's)
    configs["xq_lv2_thr8_guard_off"] = xqueue(gtask, 2, 8, guard=False)
    for thr in (8, 16):  # every launch flushing, however short
        configs[f"xq_lv2_thr{thr}_guarded_flush_all"] = xqueue(gtask, 2, thr, plain_budget_us=0)
    for thr in (4, 8):  # the baselines: the relaunch behind every command from the host (the
        # gate from the GPU after a flush), and both the gate and the relaunch from the host
        configs[f"xq_lv2_thr{thr}_guarded_host_relaunch"] = xqueue(gtask, 2, thr, gpu_relaunch=False)
        configs[f"xq_lv2_thr{thr}_guarded_host_gate"] = xqueue(gtask, 2, thr, device_gate=False)
    samples = {k: [] for k in configs}
    cpu = {k: [] for k in configs}  # the process's CPU time per task, every thread
    order, rng = list(configs), random.Random(a.seed)
    for r in range(a.rounds + 3):
        if not a.fixed_order:
            rng.shuffle(order)
        for k in order:
            c0 = time.process_time()
            dt = configs[k]()
            if r >= 3:
                samples[k].append(dt)
                cpu[k].append(time.process_time() - c0)
    results, rows = {}, []
    for k, v in samples.items():
        base = samples["native_guarded_plain" if "guard" in k else "native_cublas"]
        ov = pct(v, 50) / pct(base, 50) - 1
        results[k] = {"p50_ms": pct(v, 50) * 1e3, "mean_ms": sum(v) / len(v) * 1e3, "overhead_vs_native": ov,
                      "cpu_ms_per_task": pct(cpu[k], 50) * 1e3}  # fmt: skip
        hwq = getattr(configs[k], "hwq", None)
        if hwq is not None and hwq.plain_launches:  # guarded launches measured short, run plain
            results[k]["plain_launches_per_task"] = hwq.plain_launches / (a.rounds + 3)
        rows.append([k, results[k]["p50_ms"], f"{ov * 100:+.2f}%", results[k]["cpu_ms_per_task"]])
    params = {**vars(a), "commands_per_task": len(blas.commands())}
    path = write(a.save_as, dev, params, results)
    print(table(f"Runtime overhead on {dev.info.name} ({params['commands_per_task']} commands/task) -> {path}",
                ["config", "task p50 ms", "overhead", "CPU ms/task"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    os._exit(main())
