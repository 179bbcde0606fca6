"""`llmserve bench`: the burst experiment against the in-process engine (see bench.py)."""

from __future__ import annotations

import argparse
import json
import sys

from llmserve.errors import ConfigError
from llmserve.executor.cost_model import CostModel
from llmserve.model.config import PRESETS
from llmserve.sched.config import SchedulerConfig


def add_parser(sub: argparse._SubParsersAction, policies, positive_int) -> None:
    bench = sub.add_parser(
        "bench",
        help="burst benchmark: TTFT/TPOT per request under several policies, JSON and plots",
        description="A burst of requests whose KV demand exceeds the cache, served under each "
        "policy by the cost model (virtual time) or the real model through an XQueue "
        "(wall time). Writes bench.json, ttft.png and kv.png to --out.",
    )
    bench.add_argument("--burst", type=positive_int, default=50, help="requests in the burst")
    bench.add_argument("--seed", type=int, default=0, help="workload and weights seed")
    bench.add_argument("--interval-s", type=float, default=0.01, help="seconds between arrivals")
    bench.add_argument("--policy", type=policies, default=["fcfs", "cfs", "priority"],
                       help="comma-separated request policies (default fcfs,cfs,priority)")
    bench.add_argument("--executor", choices=["cost", "model"], default="cost",
                       help="cost: cost model, virtual time; model: the real model, wall time")
    bench.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                       help="model shape (random weights) for --executor model")
    bench.add_argument("--gguf", default=None, help="load a llama GGUF file instead of a preset")
    bench.add_argument("--device", default="cpu", help="cpu or cuda:N (for --executor model)")
    bench.add_argument("--kv-blocks", type=positive_int, default=1024, help="GPU KV blocks")
    bench.add_argument("--block-size", type=positive_int, default=16)
    bench.add_argument("--host-blocks", type=positive_int, default=None,
                       help="host swap pool blocks (default 4x --kv-blocks)")
    bench.add_argument("--max-batched-tokens", type=positive_int, default=4096)
    bench.add_argument("--max-running", type=positive_int, default=64)
    bench.add_argument("--cfs-slice-steps", type=positive_int, default=64)
    bench.add_argument("--cost-model", default=None,
                       help="JSON object of CostModel fields (ms) for --executor cost")
    bench.add_argument("--plain-kernels", action="store_true",
                       help="on a GPU, unfused CuPy operations instead of the fused kernels")
    bench.add_argument("--quiet", action="store_true",
                       help="no progress lines for --executor model")
    bench.add_argument("--out", required=True, help="directory for bench.json and the plots")


def run(args: argparse.Namespace) -> int:
    from llmserve.bench import BenchConfig, format_table, run_bench, write_outputs

    if args.interval_s < 0:
        raise ConfigError(f"--interval-s must be >= 0, got {args.interval_s}")
    cost = CostModel()
    if args.cost_model:
        try:
            cost = CostModel(**json.loads(args.cost_model))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"--cost-model: {exc}") from None
    config = BenchConfig(
        burst=args.burst,
        seed=args.seed,
        interval_s=args.interval_s,
        policies=tuple(args.policy),
        executor=args.executor,
        preset=args.preset,
        device=args.device,
        gguf=args.gguf,
        kv_blocks=args.kv_blocks,
        block_size=args.block_size,
        host_blocks=args.host_blocks,
        scheduler=SchedulerConfig(
            max_batched_tokens=args.max_batched_tokens, max_running_seqs=args.max_running
        ),
        cfs_slice_steps=args.cfs_slice_steps,
        cost_model=cost,
        fused_kernels=False if args.plain_kernels else None,
    )
    bench_run = run_bench(config, progress=None if args.quiet else sys.stdout)
    print(format_table([bench_run]))
    paths = write_outputs(bench_run, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
