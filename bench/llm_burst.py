"""LLM burst TTFT (BENCHMARKS.md #6): 50 requests whose KV demand exceeds the cache, FCFS vs
CFS vs priority, on the cost model (virtual time) and on the real tiny model on the CPU
device through an XQueue (wall time), side by side; writes bench/results/llm_burst.json
and prints a table with the CFS/FCFS ratios.

    python bench/llm_burst.py [--burst 50] [--skip-model] [--device cuda:0 --preset llama3-8b]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import write_results

from llmserve.bench import BenchConfig, format_table, ratios, run_bench, to_json


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kv-blocks", type=int, default=1024)
    parser.add_argument("--device", default="cpu", help="device of the real model run")
    parser.add_argument("--preset", default="tiny", help="model shape of the real model run")
    parser.add_argument("--skip-model", action="store_true", help="only the cost model")
    args = parser.parse_args()

    policies = ("fcfs", "cfs", "priority")
    configs = [BenchConfig(burst=args.burst, seed=args.seed, policies=policies,
                           kv_blocks=args.kv_blocks, executor="cost")]  # fmt: skip
    if not args.skip_model:
        configs.append(BenchConfig(burst=args.burst, seed=args.seed, policies=policies,
                                   kv_blocks=args.kv_blocks, executor="model",
                                   preset=args.preset, device=args.device))  # fmt: skip
    runs = []
    for config in configs:
        start = time.perf_counter()
        runs.append(run_bench(config))
        print(f"[{config.executor}] done in {time.perf_counter() - start:.1f} s", flush=True)
    print(format_table(runs))

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
        "block_size": configs[0].block_size,
        "max_batched_tokens": configs[0].scheduler.max_batched_tokens,
        "max_running_seqs": configs[0].scheduler.max_running_seqs,
        "cfs_slice_steps": configs[0].cfs_slice_steps,
        "interval_s": configs[0].interval_s,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    path = write_results("llm_burst", device, parameters, results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
