"""Simulator speed (issue 6): simulated requests per second on a 10,000-request workload,
per request policy, on the cost-model executor (virtual time); writes
bench/results/llm_sim_speed.json.

    python bench/llm_sim_speed.py [--n 10000] [--interval-s 0.12] [--repeat 3]

The workload is `llmserve gen-burst --n N --interval-s 0.12`: arrivals at about the rate
the default engine serves, so a queue forms but stays bounded. Each policy runs `--repeat`
times and the best wall time counts (the machine is shared); a run with a JSON-lines
trace written to /dev/null shows what tracing costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import write_results

from llmserve.sim.simulator import SimConfig, simulate
from llmserve.sim.trace import JsonlTrace
from llmserve.sim.workload import gen_burst, load_requests, request_to_dict

POLICIES = ("fcfs", "priority", "cfs", "slo")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="requests in the workload")
    parser.add_argument("--interval-s", type=float, default=0.12, help="seconds between arrivals")
    parser.add_argument("--repeat", type=int, default=3, help="runs per policy (best counts)")
    args = parser.parse_args()

    import json

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.jsonl"
        reqs = gen_burst(args.n, seed=0, interval_s=args.interval_s, ttft_slo_ms=5000.0)
        path.write_text("".join(json.dumps(request_to_dict(r)) + "\n" for r in reqs))
        start = time.perf_counter()
        requests = load_requests(path)
        load_s = time.perf_counter() - start

    config = SimConfig()
    results: dict[str, dict] = {}
    print(f"{'policy':<10}{'steps':>8}{'wall s':>9}{'req/s':>9}{'steps/s':>10}{'finished':>10}")
    for policy in POLICIES:
        best = None
        for _ in range(args.repeat):
            res = simulate(requests, policy, config)
            if best is None or res.wall_s < best.wall_s:
                best = res
        assert best is not None
        finished = sum(1 for r in best.records if r.finished)
        row = {
            "steps": best.steps,
            "wall_s": round(best.wall_s, 3),
            "sim_req_per_s": round(len(requests) / best.wall_s, 1),
            "steps_per_s": round(best.steps / best.wall_s, 1),
            "finished": finished,
            "rejected": sum(1 for r in best.records if r.rejected is not None),
            "virtual_makespan_s": round(best.end_s - best.start_s, 1),
        }
        results[policy] = row
        print(f"{policy:<10}{row['steps']:>8}{row['wall_s']:>9.2f}{row['sim_req_per_s']:>9.0f}"
              f"{row['steps_per_s']:>10.0f}{finished:>10}")  # fmt: skip

    with open("/dev/null", "w", encoding="utf-8") as devnull:
        res = simulate(requests, "fcfs", config, trace=JsonlTrace(devnull, "fcfs"))
    results["fcfs_with_trace"] = {
        "steps": res.steps,
        "wall_s": round(res.wall_s, 3),
        "sim_req_per_s": round(len(requests) / res.wall_s, 1),
    }
    print(f"fcfs with a JSON-lines trace: {len(requests) / res.wall_s:.0f} req/s; "
          f"loading {len(requests)} requests took {load_s:.2f} s")  # fmt: skip
    parameters = {
        "requests": args.n,
        "interval_s": args.interval_s,
        "ttft_slo_ms": 5000.0,
        "repeat": args.repeat,
        "kv_blocks": config.kv_blocks,
        "block_size": config.block_size,
        "max_batched_tokens": config.scheduler.max_batched_tokens,
        "max_running_seqs": config.scheduler.max_running_seqs,
        "load_requests_s": round(load_s, 3),
    }
    out = write_results("llm_sim_speed", "cost model (virtual time), one CPU core", parameters,
                        results)  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
