"""LLM burst TTFT (issue 6): 50 requests whose KV demand exceeds the cache, FCFS vs CFS vs
priority, on the cost model (virtual time) and on a real model through an XQueue (wall
time), side by side; prints a table with the CFS/FCFS ratios and writes a results file.

    python bench/llm_burst.py                                   # tiny model on the CPU
    python bench/llm_burst.py --device cuda:0 --preset llama3-8b  # the 8B shape on a GPU
    python bench/llm_burst.py --quick                           # tiny/CPU, nothing written

The CPU run writes bench/results/llm_burst.json; any other device or preset writes
bench/results/llm_burst_<preset>_<device>.json (`--name` overrides). `--out DIR` also
writes each run's bench.json, ttft.png and kv.png under DIR/<cost|model>.
"""

from __future__ import annotations

import os

# One BLAS thread: the CPU device is one worker, and on a small shared machine OpenBLAS's
# threads slow tiny matrix products down several-fold. Must be set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results

from llmserve.bench import BenchConfig, format_table, ratios, run_bench, to_json, write_outputs
from llmserve.model.config import PRESETS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kv-blocks", type=int, default=1024, help="device KV blocks of 16 tokens")
    parser.add_argument("--host-blocks", type=int, default=None,
                        help="pinned host swap blocks (default 4x --kv-blocks)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="device of the real model run: cpu, cuda:N")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                        help="model shape of the real model run (random weights)")  # fmt: skip
    parser.add_argument("--plain-kernels", action="store_true",
                        help="on a GPU, the unfused CuPy operations (to compare)")  # fmt: skip
    parser.add_argument("--skip-model", action="store_true", help="only the cost model")
    parser.add_argument("--quick", action="store_true",
                        help="the same run, tiny model on the CPU; writes no results")  # fmt: skip
    parser.add_argument("--name", default=None, help="results file name (without .json)")
    parser.add_argument("--out", default=None, help="also write bench.json and plots here")
    args = parser.parse_args()
    if args.quick:
        args.device, args.preset = "cpu", "tiny"

    policies = ("fcfs", "cfs", "priority")
    common = {"burst": args.burst, "seed": args.seed, "policies": policies,
              "kv_blocks": args.kv_blocks, "host_blocks": args.host_blocks}  # fmt: skip
    configs = [BenchConfig(executor="cost", **common)]
    if not args.skip_model:
        configs.append(BenchConfig(executor="model", preset=args.preset, device=args.device,
                                   fused_kernels=False if args.plain_kernels else None,
                                   **common))  # fmt: skip
    runs = []
    for config in configs:
        start = time.perf_counter()
        print(f"[{config.executor}] {config.burst} requests, policies {', '.join(policies)}",
              flush=True)  # fmt: skip
        runs.append(run_bench(config, progress=sys.stdout))
        print(f"[{config.executor}] done in {time.perf_counter() - start:.1f} s", flush=True)
        if args.out:
            write_outputs(runs[-1], Path(args.out) / config.executor)
    print(format_table(runs))
    if args.quick:
        return 0

    results = {}
    for run in runs:
        data = to_json(run)
        key = "cost_model" if run.config.executor == "cost" else f"model_{run.config.preset}"
        results[key] = {
            "device": run.device,
            "clock": run.clock,
            "kv_demand_blocks": run.kv_demand_blocks,
            "summaries": {p: v["summary"] for p, v in data["policies"].items()},
            "ttft_ms_in_issue_order": {p: v["ttft_ms"] for p, v in data["policies"].items()},
            "tpot_ms_in_issue_order": {p: v["tpot_ms"] for p, v in data["policies"].items()},
            "ratios_cfs_over_fcfs": ratios(run),
            "ratios_priority_over_fcfs": ratios(run, other="priority"),
        }
    device = ", ".join(run.device for run in runs)
    parameters = {
        "burst": args.burst,
        "seed": args.seed,
        "policies": list(policies),
        "kv_blocks": args.kv_blocks,
        "host_blocks": configs[0].host_blocks or 4 * args.kv_blocks,
        "block_size": configs[0].block_size,
        "max_batched_tokens": configs[0].scheduler.max_batched_tokens,
        "max_running_seqs": configs[0].scheduler.max_running_seqs,
        "cfs_slice_steps": configs[0].cfs_slice_steps,
        "interval_s": configs[0].interval_s,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    name = args.name
    if name is None:
        plain = args.device == "cpu" and args.preset == "tiny"
        name = "llm_burst" if plain else f"llm_burst_{args.preset}_{args.device.replace(':', '')}"
    path = write_results(name, device, parameters, results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
