"""What the runtime costs one process alone, flat out: the ceiling of the two-process runs.

`cuda_bandwidth_2proc.py` normalises each side to one process alone, natively; what a
pair loses is the switching plus what each side's runtime costs per task even with
nothing to switch to. This splits the second part: side a's tasks back to back
(`xsched-workload --device cuda:0`), natively; through an XQueue with the application's
own scheduler (no daemon: XSCHED_SCHEDULER=APP); and registered with xschedd (GLB) under
HPF and under UP (utilization 75, as in the pair). Configurations interleave, round by
round, and each is the median of its rounds against native's.
Usage: python bench/cuda_alone_2proc.py [--task dnn|spin] [--rounds 3] [--duration-s 3] [--mps]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from cuda_bandwidth_2proc import run_alone, task_spec
from cuda_common import results_name, table, write
from cuda_procs import children_env, device_info, start_daemon

from xsched_workload.tasks import MAX_LAYERS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--task", choices=("dnn", "spin"), default="dnn")
    p.add_argument("--layers", type=int, default=8, help="layers of a dnn task")
    p.add_argument("--level", type=int, choices=(1, 2), default=1, help="of the XQueue (2: guards from its first suspend)")
    p.add_argument("--threshold", type=int, default=8)
    p.add_argument("--mps", action="store_true", help="run every process as a client of an MPS server")
    p.add_argument("--save-as", type=results_name, default=None, help="results file name (without .json)")
    a = p.parse_args(argv)
    if not a.duration_s > 0:
        p.error(f"--duration-s must be > 0, got {a.duration_s}")
    if a.rounds < 1:
        p.error(f"--rounds must be >= 1, got {a.rounds}")
    if not 1 <= a.layers <= MAX_LAYERS:
        p.error(f"--layers {a.layers}: must be in [1, {MAX_LAYERS}]")
    if a.threshold < 1:
        p.error(f"--threshold must be >= 1, got {a.threshold}")
    with children_env(a.mps) as base:
        return run_all(a, base)


def run_all(a: argparse.Namespace, base: dict) -> int:
    task = task_spec(a)
    queue = f"name=a,{task},level={a.level},threshold={a.threshold}"
    tps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="xs-") as hpf_dir, tempfile.TemporaryDirectory(prefix="xs-") as up_dir:
        daemons = [start_daemon(Path(hpf_dir), base, policy="HPF"), start_daemon(Path(up_dir), base, policy="UP")]
        glb = lambda d: {**base, "XSCHED_SCHEDULER": "GLB", "XSCHED_SOCKET": str(Path(d) / "xschedd.sock")}  # noqa: E731
        configs = {
            "native": (f"name=a,{task}", {**base, "XSCHED_SCHEDULER": "APP"}, True),
            "xqueue_no_daemon": (queue, {**base, "XSCHED_SCHEDULER": "APP"}, False),
            "xschedd_hpf": (queue, glb(hpf_dir), False),
            "xschedd_up75": (f"{queue},utilization=75", glb(up_dir), False),
        }
        try:
            for r in range(a.rounds):
                for name, (q, env, native) in configs.items():
                    tps.setdefault(name, []).append(run_alone(q, a.duration_s, env, native, f"{name}, round {r}"))
                    print(name, round(tps[name][-1], 2), flush=True)
        finally:
            for d in daemons:
                d.terminate()
                d.wait(30)
    native = statistics.median(tps["native"])
    results, rows = {}, []
    for name, v in tps.items():
        med = statistics.median(v)
        results[name] = {"tps_median": med, "tps_rounds": v, "vs_native": med / native}
        rows.append([name, med, med / native, " ".join(f"{x:.1f}" for x in v)])
    save = a.save_as or f"cuda_alone_2proc_{a.task}{'_mps' if a.mps else ''}"
    setup = "one process alone, tasks back to back" + ("; an MPS client" if a.mps else "")
    dev = device_info()
    path = write(save, dev, vars(a), results, setup=setup)
    print(table(f"One process alone{' (MPS)' if a.mps else ''}, {a.task} tasks, level {a.level} threshold "
                f"{a.threshold}, on {dev.info.name} -> {path}",
                ["config", "tasks/s (median)", "vs native", "rounds"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
