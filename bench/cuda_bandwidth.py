"""Bandwidth partition on the GPU (paper Fig. 9 bottom): two flat-out queues under UP 75/25.

Each side's throughput normalised to one queue alone (native), and the total.
Both queues in one process with the local scheduler. Usage: python bench/cuda_bandwidth.py
"""

from __future__ import annotations

import argparse
import os

from cuda_common import open_cuda, runtime, table, write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--commands", type=int, default=10)
    p.add_argument("--command-us", type=float, default=1000.0)
    a = p.parse_args(argv)
    from xsched_workload.runner import QueueLoad, run_loads
    from xsched_workload.spec import QueueSpec

    dev = open_cuda()
    task = dict(commands=a.commands, command_us=a.command_us)
    alone = QueueLoad(QueueSpec("alone", **task), dev.create_queue(guard=False))
    run_loads([alone], a.duration_s, lambda r: None)
    peak = alone.tasks_done / alone.elapsed_s
    results, rows = {"standalone_tps": peak}, []
    configs = (("ours_lv1_thr2", 1, 2, True), ("ours_lv1_thr8", 1, 8, True), ("ours_lv2_thr8", 2, 8, True),
               ("ours_lv2_thr8_host_relaunch", 2, 8, False))  # fmt: skip
    for name, level, thr, gpu_relaunch in configs:
        rt = runtime("UP")
        hwqs = [dev.create_queue(guard=level >= 2) for _ in range(2)]
        for hwq in hwqs:  # level 2: the relaunch from the GPU after a flush, or from the host always
            hwq.gpu_relaunch = gpu_relaunch
        qa = rt.create_xqueue(hwqs[0], name="a", level=level, threshold=thr, utilization=75)
        qb = rt.create_xqueue(hwqs[1], name="b", level=level, threshold=thr, utilization=25)
        la, lb = QueueLoad(QueueSpec("a", **task), qa), QueueLoad(QueueSpec("b", **task), qb)
        run_loads([la, lb], a.duration_s, lambda r: None)
        qa.close()
        qb.close()
        sa, sb = la.tasks_done / la.elapsed_s / peak, lb.tasks_done / lb.elapsed_s / peak
        results[name] = {"a_share": sa, "b_share": sb, "total_vs_standalone": sa + sb}
        rows.append([name, sa, sb, sa + sb])
    path = write("cuda_bandwidth", dev, {**vars(a)}, results)
    print(table(f"Bandwidth partition UP 75/25 on {dev.info.name} -> {path}",
                ["config", "a share", "b share", "total"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    os._exit(main())
