"""What the CUDA benchmarks share: device setup, XQueue runtimes, percentiles, results files.

Most experiments run two (or more) XQueues inside ONE process with the local scheduler
(preempt.runtime.Runtime, XSCHED_SCHEDULER=LCL), i.e. one CUDA context;
cuda_fixed_priority_2proc.py runs two processes through xschedd.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common import git_commit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def results_name(text: str) -> str:
    """An argparse type for --save-as: a results file name, without directories."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise argparse.ArgumentTypeError(f"{text!r}: letters, digits, '_', '.' and '-' only")
    return text


def names_among(known: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type for --only: comma-separated names, each one of `known`."""

    def names(text: str) -> list[str]:
        picked = [n.strip() for n in text.split(",") if n.strip()]
        unknown = sorted(set(picked) - set(known))
        if not picked or unknown:
            raise argparse.ArgumentTypeError(f"{text!r}: expected names among {', '.join(known)}")
        return picked

    return names


def open_cuda(block_us: float = 10.0):
    """cuda:0 with a calibrated spin kernel of `block_us` blocks."""
    from hal.cuda import CudaDevice
    from hal.cuda.spin import SpinKernel

    dev = CudaDevice.open(0)
    dev.spin = SpinKernel(dev, block_us=block_us)
    dev.spin.calibrate()
    dev.spin.calibrate()  # the first ran on cold clocks
    return dev


def runtime(policy: str):
    """A fresh in-process runtime with the local scheduler running `policy`."""
    from preempt.config import load_config
    from preempt.runtime import Runtime

    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCHED_")}
    env.update(XSCHED_POLICY=policy, XSCHED_SCHEDULER="LCL")
    return Runtime(load_config(env))


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


SETUP_ONE_PROCESS = "one process (one CUDA context), XQueues scheduled by preempt's local scheduler"


def write(name: str, device, parameters: dict, results: dict, setup: str = SETUP_ONE_PROCESS) -> Path:
    """Write $OUT/NAME.json (or bench/results/NAME.json without $OUT)."""
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "bench" / "results"
    path = out_dir / f"{name}.json"
    payload = {
        "benchmark": name,
        "device": f"{device.info.name} ({device.name}, {device.info.sm_count} SMs)",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "setup": setup,
        "parameters": parameters,
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def table(title: str, header: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    cells = [header] + [[fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
