"""Bandwidth partition on the GPU with TWO PROCESSES (paper Fig. 9 bottom): UP 75/25.

Each side is its own `xsched-workload --device cuda:0` process, flat out (tasks back to
back). Each side's throughput, over the window both sides ran in (their per-task
`end_s`), is normalised to one process alone (native: the better of a run first and a
run last), and the total. Configurations: native (two processes, no scheduler: the GPU's own sharing),
and ours through xschedd running UP with utilization hints 75 and 25, at level 1
(threshold 2 and 8) and level 2 (threshold 8): as it comes (a suspended side's stream parks
on a ticket while the other process is on the GPU, hal.sharing), with parking off
($XSCHED_CUDA_PARK=0: it naps in a kernel) and on the priority board
($XSCHED_CUDA_BOARD=1). `--task dnn` (the default) runs
transformer stacks of real guarded kernels (xsched_workload.tasks, `--layers`), `spin`
10 x 1 ms spin commands. With --mps every process is a client of a private MPS server.
Each configuration of ours also runs side a ALONE through xschedd first ("alone": one
process, nothing to switch to), the pair's ceiling: what is lost beyond it is the
switching, what is lost up to it the runtime's own cost per task. A level-2 queue launches
its guarded kernels plain until its first suspend, and a pair's queues are suspended all
the time: at level 2 side a also runs alone with `guard=on` ("a guarded"), the ceiling
with the guard's cost (and, on the board, the ticket gate's per command; alone, a side
off the board naps, so its ticket's cost shows only in the pair) in it.
With --rounds N the whole sequence runs N times over (each round against its own
standalone runs), and the figures are the medians over the rounds, with their ranges: a
pair's run-to-run spread on the H100 host is several points, as large as what we chase.
Usage: python bench/cuda_bandwidth_2proc.py [--task dnn|spin] [--duration-s 4] [--mps] [--timeslice-us N]
       [--only ours_lv2_thr8,...] [--rounds N] [--save-as NAME]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from cuda_common import names_among, results_name, table, write
from cuda_procs import children_env, device_info, start_daemon, summary_of, workload

from hal.board import ENV as BOARD_ENV
from hal.sharing import ENV as PARK_ENV
from xsched_workload.tasks import MAX_LAYERS
from xschedd.policy.hints import TIMESLICE_DEFAULT_US, TIMESLICE_MAX_US, TIMESLICE_MIN_US

# (name, level, threshold, environment): at level 2 a suspended stream parks on a ticket,
# running nothing, while another process time-slices the GPU (hal.sharing; on the board,
# always); with parking off it waits in a napping kernel, which keeps its context in the
# GPU's time slices (hal.cuda.gate)
CONFIGS = (("ours_lv1_thr2", 1, 2, {}), ("ours_lv1_thr8", 1, 8, {}), ("ours_lv1_thr16", 1, 16, {}), ("ours_lv2_thr8", 2, 8, {}),
           ("ours_lv2_thr8_napping", 2, 8, {PARK_ENV: "off"}), ("ours_lv2_thr8_board", 2, 8, {BOARD_ENV: "1"}))


def throughput(out: str, name: str) -> float:
    """Tasks per second from the process's summary line for queue `name`."""
    row = summary_of(out, name)
    if row is None:
        raise RuntimeError(f"no summary for {name!r} in the output")
    return float(row["throughput_tps"])


def task_spans(out: str, name: str) -> list[tuple[float, float]]:
    """(start, end) of every task of queue `name`, in time.monotonic() (one clock for every
    process of the machine), from the process's per-task lines."""
    spans = []
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row.get("queue") == name and "end_s" in row:
                spans.append((row["end_s"] - row["latency_ms"] / 1e3, row["end_s"]))
    return spans


def overlap_throughputs(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> tuple[float, float]:
    """Tasks per second of each side over the window both ran in: from the later first
    task's start to the earlier last task's end, counting the tasks that ended inside it.
    Two processes do not start together (one opens CUDA and builds its kernels first) nor
    stop together, and a side running alone for part of its own window runs at full speed
    there: counted, that flattered the pair by several points, by chance."""
    if not a or not b:
        raise RuntimeError("a side of the pair completed no task")
    start, end = max(a[0][0], b[0][0]), min(a[-1][1], b[-1][1])
    if end <= start:
        raise RuntimeError("the two sides of the pair did not run at the same time")
    a_in, b_in = (sum(start < e <= end for _, e in spans) for spans in (a, b))
    return a_in / (end - start), b_in / (end - start)


def collect(proc, duration_s: float, what: str) -> str:
    """Wait for a workload process; its output (raise if it failed)."""
    out, err = proc.communicate(timeout=duration_s + 180)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {err[-2000:]}")
    return out


def run_alone(queue: str, duration_s: float, env: dict, native: bool, what: str) -> float:
    """Side a's throughput with no other process beside it."""
    return throughput(collect(workload(queue, duration_s, env, native), duration_s, what), "a")


def run_side_by_side(queues: tuple[str, str], duration_s: float, env: dict, native: bool) -> tuple[float, float]:
    """Each side's throughput over the window both ran in (`overlap_throughputs`)."""
    procs = [workload(q, duration_s, env, native) for q in queues]
    outs = [collect(proc, duration_s, f"side {name}") for proc, name in zip(procs, ("a", "b"), strict=True)]
    return overlap_throughputs(task_spans(outs[0], "a"), task_spans(outs[1], "b"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--task", choices=("dnn", "spin"), default="dnn")
    p.add_argument("--layers", type=int, default=8, help="layers of a dnn task")
    p.add_argument("--mps", action="store_true", help="run every process as a client of an MPS server")
    p.add_argument("--timeslice-us", type=int, default=None,
                   help=f"UP's time slice, as each side's hint (default {TIMESLICE_DEFAULT_US})")
    p.add_argument("--only", type=names_among([c[0] for c in CONFIGS]), default=[c[0] for c in CONFIGS],
                   help=f"comma-separated configurations of ours to run (default all: {','.join(c[0] for c in CONFIGS)})")
    p.add_argument("--rounds", type=int, default=1,
                   help="run everything this many times over, interleaved; report medians and ranges")
    p.add_argument("--save-as", type=results_name, default=None,
                   help="results file name (without .json; default from the task, --mps and --timeslice-us)")
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error(f"--rounds must be >= 1, got {a.rounds}")
    if not a.duration_s > 0:
        p.error(f"--duration-s must be > 0, got {a.duration_s}")
    if not 1 <= a.layers <= MAX_LAYERS:
        p.error(f"--layers {a.layers}: must be in [1, {MAX_LAYERS}]")
    if a.timeslice_us is not None and not TIMESLICE_MIN_US <= a.timeslice_us <= TIMESLICE_MAX_US:
        p.error(f"--timeslice-us {a.timeslice_us}: must be in [{TIMESLICE_MIN_US}, {TIMESLICE_MAX_US}]")
    with children_env(a.mps) as base:
        return run_all(a, base)


def task_spec(a: argparse.Namespace) -> str:
    """The `--queue` keys of one task: an 8-layer stack (`--layers`) or 10 x 1 ms spins."""
    return f"kind=dnn,layers={a.layers}" if a.task == "dnn" else "commands=10,command_us=1000"


def run_round(a: argparse.Namespace, base: dict) -> dict:
    """One round: the standalone, native, then each configuration of ours, then the
    standalone again; every figure against the better of the two standalone runs (a fresh
    machine's first run can come out low, and a low standalone flatters every total)."""
    task = task_spec(a)
    native_env = {**base, "XSCHED_SCHEDULER": "APP"}
    standalone = [run_alone(f"name=a,{task}", a.duration_s, native_env, True, "standalone run")]
    raw: list[tuple[str, float, float, float | None, float | None]] = []  # (name, a, b, a alone, a guarded)

    def record(name: str, ta: float, tb: float, alone: float | None = None, guarded: float | None = None) -> None:
        raw.append((name, ta, tb, alone, guarded))
        print(name, {"a_tps": round(ta, 1), "b_tps": round(tb, 1)}, flush=True)

    record("native", *run_side_by_side((f"name=a,{task}", f"name=b,{task}"), a.duration_s, native_env, True))
    with tempfile.TemporaryDirectory(prefix="xs-") as tmp:
        daemon = start_daemon(Path(tmp), base, policy="UP")
        glb = {**base, "XSCHED_SCHEDULER": "GLB", "XSCHED_SOCKET": str(Path(tmp) / "xschedd.sock")}
        try:
            for name, level, thr, extra in (c for c in CONFIGS if c[0] in a.only):
                q = f"{task},level={level},threshold={thr}"
                if a.timeslice_us is not None:
                    q += f",timeslice={a.timeslice_us}"
                queues = (f"name=a,{q},utilization=75", f"name=b,{q},utilization=25")
                env = {**glb, **extra}
                alone = run_alone(queues[0], a.duration_s, env, False, f"{name}, side a alone,")
                guarded = None
                if level >= 2:  # the pair's queues guard from their first suspend on
                    guarded = run_alone(f"{queues[0]},guard=on", a.duration_s, env, False, f"{name}, a guarded,")
                record(name, *run_side_by_side(queues, a.duration_s, env, False), alone, guarded)
        finally:
            daemon.terminate()
            daemon.wait(30)
    standalone.append(run_alone(f"name=a,{task}", a.duration_s, native_env, True, "standalone run, again"))
    peak = max(standalone)
    results: dict = {"standalone_tps": peak, "standalone_tps_runs": standalone}
    for name, ta, tb, alone, guarded in raw:
        sa, sb = ta / peak, tb / peak
        results[name] = {"a_share": sa, "b_share": sb, "total_vs_standalone": sa + sb}
        if alone is not None:
            results[name]["alone_vs_standalone"] = alone / peak
        if guarded is not None:
            results[name]["alone_guarded_vs_standalone"] = guarded / peak
    return results


def summarize(rounds: list[dict]) -> dict:
    """One round: its figures. Several: each figure's median over the rounds, its spread
    (min, max) beside it as `<figure>_range`, and every round's own figures."""
    if len(rounds) == 1:
        return rounds[0]
    first = rounds[0]
    results: dict = {"standalone_tps": statistics.median(r["standalone_tps"] for r in rounds)}
    for name, figures in first.items():
        if not isinstance(figures, dict):
            continue
        results[name] = {}
        for key in figures:
            values = [r[name][key] for r in rounds]
            results[name][key] = statistics.median(values)
            results[name][f"{key}_range"] = [min(values), max(values)]
    results["rounds"] = rounds
    return results


def run_all(a: argparse.Namespace, base: dict) -> int:
    rounds = []
    for i in range(a.rounds):
        if a.rounds > 1:
            print(f"round {i + 1} of {a.rounds}", flush=True)
        rounds.append(run_round(a, base))
    results = summarize(rounds)
    rows = []
    for name, r in results.items():
        if not isinstance(r, dict) or "total_vs_standalone" not in r:
            continue
        cells = [r["a_share"], r["b_share"], r["total_vs_standalone"],
                 *(r.get(k, "-") for k in ("alone_vs_standalone", "alone_guarded_vs_standalone"))]  # fmt: skip
        if a.rounds > 1:
            low, high = r["total_vs_standalone_range"]
            cells.append(f"{low:.3f}-{high:.3f}")
        rows.append([name, *cells])
    ts = "" if a.timeslice_us is None else f"_ts{a.timeslice_us}"
    name = a.save_as or f"cuda_bandwidth_2proc_{a.task}{'_mps' if a.mps else ''}{ts}"
    setup = "two processes; ours through xschedd (UP)" + ("; every process an MPS client" if a.mps else "")
    if a.rounds > 1:
        setup += f"; {a.rounds} rounds, each against its own standalone: medians, with ranges"
    dev = device_info()
    path = write(name, dev, {**vars(a), "processes": 2}, results, setup=setup)
    header = ["config", "a share", "b share", "total", "a alone", "a guarded"]
    if a.rounds > 1:
        header.append("total range")
    what = f"{a.task} tasks" + (f", median of {a.rounds} rounds" if a.rounds > 1 else "")
    print(table(f"UP 75/25, two processes{' (MPS)' if a.mps else ''}, {what}, on {dev.info.name} -> {path}",
                header, rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
