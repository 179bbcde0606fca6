"""Launches that block in the driver: the fixed-priority pair, each process timing its launches.

The pair of `cuda_fixed_priority_2proc.py` (a periodic foreground of 4 x 250 us commands,
the background flat out; no MPS) natively, on the priority board with anticipation
(`board_ahead`) and without it (`board_only`, $XSCHED_CUDA_BOARD_LEAD_US=0). Each process
times every kernel launch it makes through hal.cuda and every claim of the GPU
(bench/probes/launch_timing). A CUDA launch is asynchronous: a few microseconds of host
time. On the H100 some took milliseconds beside a background on the board, never
natively (docs/h100-benchmarks.md, a28c659). Per configuration, pooled over interleaved
rounds: the foreground's P50 and P99, and for its launches, its claims and the
background's launches how many took over 0.5 ms and over 2 ms, and the longest.
Usage: python bench/cuda_launch_stalls.py [--rounds 3] [--duration-s 4] [--queue level=1,threshold=4]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
from pathlib import Path

from cuda_common import ROOT, pct, results_name, table, write
from cuda_fixed_priority_2proc import BG, FG, foreground_period_ms, run_pair
from cuda_procs import child_env, device_info

from hal.anticipation import DEFAULT_LEAD_US
from hal.anticipation import ENV as LEAD_ENV
from hal.board import ENV as BOARD_ENV

PROBE = ROOT / "bench" / "probes" / "launch_timing"
CONFIGS = ("native", "board_ahead", "board_only")
SLOW_US = (500.0, 2000.0)


def stalls(durations_us: list[float]) -> dict:
    """How many of `durations_us` took over each of SLOW_US, of how many, and the longest."""
    return {"n": len(durations_us), "over_0.5ms": sum(d > SLOW_US[0] for d in durations_us),
            "over_2ms": sum(d > SLOW_US[1] for d in durations_us),
            "max_us": max(durations_us, default=0.0)}  # fmt: skip


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Each configuration's rounds pooled: the foreground's P50 and P99 (ms), and the
    stalls of its launches, its claims and the background's launches."""
    out = {}
    for name, rounds in runs.items():
        fg = [x for r in rounds for x in r["fg"]]
        out[name] = {"fg_p50_ms": pct(fg, 50), "fg_p99_ms": pct(fg, 99), "fg_tasks": len(fg),
                     **{key: stalls([d for r in rounds for d in r[key]])
                        for key in ("fg_launch_us", "fg_claim_us", "bg_launch_us")}}  # fmt: skip
    return out


def run_one(name: str, fg: str, queue: str, duration_s: float, base: dict) -> dict:
    native = name == "native"
    env = dict(base)
    if not native:
        env |= {"XSCHED_SCHEDULER": "APP", BOARD_ENV: "1",
                LEAD_ENV: f"{DEFAULT_LEAD_US:g}" if name == "board_ahead" else "0"}  # fmt: skip
    env["PYTHONPATH"] = os.pathsep.join([str(PROBE), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="xs-launches-") as d:
        env["BENCH_LAUNCH_TIMING_DIR"] = d
        fg_queue, bg_queue = (fg, BG) if native else (f"{fg},{queue}", f"{BG},{queue}")
        pair = run_pair(fg_queue, duration_s, env, native, bg_queue)
        logs = [json.loads(Path(p).read_text()) for p in glob.glob(os.path.join(d, "launches_*.json"))]
    fg_logs = [g for g in logs if any("name=fg" in a for a in g["argv"])]
    bg_logs = [g for g in logs if any("name=bg" in a for a in g["argv"])]
    if len(fg_logs) != 1 or len(bg_logs) != 1:
        raise RuntimeError(f"{name}: expected one launch log per process, got {len(fg_logs)} and {len(bg_logs)}")
    return {"fg": pair["fg"], "fg_launch_us": fg_logs[0]["launch"], "fg_claim_us": fg_logs[0]["claim"],
            "bg_launch_us": bg_logs[0]["launch"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration-s", type=float, default=4.0)
    p.add_argument("--queue", default="level=1,threshold=4", help="both sides' XQueue keys on the board")
    p.add_argument("--save-as", type=results_name, default="cuda_launch_stalls", help="results file name (without .json)")
    a = p.parse_args(argv)
    if not 1 <= a.rounds <= 50:
        p.error(f"--rounds must be in [1, 50], got {a.rounds}")
    if not a.duration_s > 0:
        p.error(f"--duration-s must be > 0, got {a.duration_s}")
    base = child_env()
    period_ms = foreground_period_ms({**base, "XSCHED_SCHEDULER": "APP"})
    fg = f"{FG},priority=10,period_ms={period_ms:.3f}"
    runs: dict[str, list[dict]] = {}
    for r in range(a.rounds):  # interleaved, from the r-th configuration on
        k = r % len(CONFIGS)
        for name in CONFIGS[k:] + CONFIGS[:k]:
            runs.setdefault(name, []).append(run_one(name, fg, a.queue, a.duration_s, base))
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    results = summarize({name: runs[name] for name in CONFIGS})
    dev = device_info()
    path = write(a.save_as, dev, {**vars(a), "fg": fg, "fg_period_ms": period_ms}, results,
                 setup="two processes (fixed-priority pair), no MPS, each timing its own launches")  # fmt: skip
    rows = []
    for name, r in results.items():
        f, c, b = r["fg_launch_us"], r["fg_claim_us"], r["bg_launch_us"]
        rows.append([name, r["fg_p50_ms"], r["fg_p99_ms"], f"{f['over_0.5ms']}/{f['over_2ms']} of {f['n']}",
                     f"{f['max_us'] / 1e3:.2f}", f"{c['over_0.5ms']}/{c['over_2ms']} of {c['n']}",
                     f"{b['over_0.5ms']}/{b['over_2ms']} of {b['n']}"])  # fmt: skip
    print(table(f"Launches that block, fixed-priority pair on {dev.info.name} ({a.rounds} rounds pooled) -> {path}",
                ["config", "fg p50 ms", "fg p99 ms", "fg launches >0.5/>2 ms", "fg longest ms",
                 "claims >0.5/>2 ms", "bg launches >0.5/>2 ms"], rows))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
