"""Bandwidth partition on the GPU (paper Fig. 9 bottom): two flat-out queues under UP 75/25.

Each side's throughput normalised to one queue alone (native), and the total; the
switches (suspensions) per second, and the device time each one cost: (1 - total) /
switches. `--task dnn` runs a stack of transformer-style layers of real kernels instead
of spin kernels (xsched_workload.tasks). The `guarded_alone` row runs the load alone with its launches guarded
(level 2's flushing kernels, no XQueue, no switch): what the guard costs throughput.
Both queues in one process with the local scheduler.
Usage: python bench/cuda_bandwidth.py [--timeslice-us US] [--task dnn --layers N]
"""

from __future__ import annotations

import argparse
import os

from cuda_common import open_cuda, results_name, runtime, table, write

from xsched_workload.tasks import MAX_LAYERS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--commands", type=int, default=10)
    p.add_argument("--command-us", type=float, default=1000.0)
    p.add_argument("--task", choices=("spin", "dnn"), default="spin",
                   help="spin: --commands spin kernels of --command-us; dnn: a --layers transformer stack")
    p.add_argument("--layers", type=int, default=8, help="layers of a dnn task")
    p.add_argument("--timeslice-us", type=int, default=None, help="UP's time slice (default: the policy's)")
    p.add_argument("--save-as", type=results_name, default="cuda_bandwidth", help="results file name (without .json)")
    a = p.parse_args(argv)
    from xschedd.policy.hints import TIMESLICE_MAX_US, TIMESLICE_MIN_US

    if a.timeslice_us is not None and not TIMESLICE_MIN_US <= a.timeslice_us <= TIMESLICE_MAX_US:
        p.error(f"--timeslice-us {a.timeslice_us}: must be in [{TIMESLICE_MIN_US}, {TIMESLICE_MAX_US}]")
    if not 1 <= a.layers <= MAX_LAYERS:
        p.error(f"--layers {a.layers}: must be in [1, {MAX_LAYERS}]")
    from preempt import EventKind
    from xsched_workload.runner import QueueLoad, run_loads
    from xsched_workload.spec import QueueSpec
    from xsched_workload.tasks import task_of

    dev = open_cuda()
    size = dict(commands=a.commands, command_us=a.command_us)

    def load(name, target):  # each load its own task (a dnn task: its own buffers)
        return QueueLoad(QueueSpec(name, **size), target, task_of(a.task, dev, **size, layers=a.layers))

    alone = load("alone", dev.create_queue(guard=False))
    run_loads([alone], a.duration_s, lambda r: None)
    peak = alone.tasks_done / alone.elapsed_s
    results, rows = {"standalone_tps": peak}, []
    # what level 2 costs before any switch: the same load alone, its launches guarded
    guarded = load("guarded", dev.create_queue(guard=True))
    run_loads([guarded], a.duration_s, lambda r: None)
    g = guarded.tasks_done / guarded.elapsed_s / peak
    results["guarded_alone"] = {"total_vs_standalone": g}
    rows.append(["guarded_alone (no XQueue)", "-", "-", g, "-", "-"])
    configs = (("ours_lv1_thr2", 1, 2, True), ("ours_lv1_thr8", 1, 8, True), ("ours_lv2_thr8", 2, 8, True),
               ("ours_lv2_thr8_host_relaunch", 2, 8, False))  # fmt: skip
    for name, level, thr, gpu_relaunch in configs:
        rt = runtime("UP")
        hwqs = [dev.create_queue(guard=level >= 2) for _ in range(2)]
        for hwq in hwqs:  # level 2: the relaunch from the GPU after a flush, or from the host always
            hwq.gpu_relaunch = gpu_relaunch
        ts = a.timeslice_us
        qa = rt.create_xqueue(hwqs[0], name="a", level=level, threshold=thr, utilization=75, timeslice_us=ts)
        qb = rt.create_xqueue(hwqs[1], name="b", level=level, threshold=thr, utilization=25, timeslice_us=ts)
        suspensions = [0]

        def count(event, suspensions=suspensions):
            suspensions[0] += event.kind is EventKind.SUSPENDED

        qa.add_listener(count)
        qb.add_listener(count)
        la, lb = load("a", qa), load("b", qb)
        run_loads([la, lb], a.duration_s, lambda r: None)
        qa.close()
        qb.close()
        sa, sb = la.tasks_done / la.elapsed_s / peak, lb.tasks_done / lb.elapsed_s / peak
        per_s = suspensions[0] / max(la.elapsed_s, lb.elapsed_s)
        lost_us = (1 - sa - sb) / per_s * 1e6 if per_s else float("nan")
        results[name] = {"a_share": sa, "b_share": sb, "total_vs_standalone": sa + sb,
                         "switches_per_s": per_s, "lost_us_per_switch": lost_us}  # fmt: skip
        rows.append([name, sa, sb, sa + sb, round(per_s, 1), round(lost_us)])
    path = write(a.save_as, dev, {**vars(a)}, results)
    print(table(f"Bandwidth partition UP 75/25 on {dev.info.name} -> {path}",
                ["config", "a share", "b share", "total", "switches/s", "lost us/switch"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    os._exit(main())
