"""The `llmserve` console script: `simulate` a workload under request policies,
`gen-burst` a burst workload, and `bench` the burst experiment (cli_bench.py).
Exit codes: 0 ok, 2 bad input or arguments, 1 other errors."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence as Seq
from pathlib import Path

from llmserve.errors import ConfigError, LLMServeError, RequestFileError
from llmserve.executor.cost_model import CostModel
from llmserve.sched.config import PreemptionMode, SchedulerConfig
from llmserve.sched.policies import POLICY_NAMES
from llmserve.sim.metrics import PolicySummary, summarize
from llmserve.sim.simulator import SimConfig, SimResult, simulate
from llmserve.sim.trace import JsonlTrace
from llmserve.sim.workload import gen_burst, load_requests, request_to_dict

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _policies(text: str) -> list[str]:
    names: list[str] = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in POLICY_NAMES:
            raise argparse.ArgumentTypeError(
                f"unknown policy {part.strip()!r}; choose from {', '.join(POLICY_NAMES)}"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise argparse.ArgumentTypeError("no policy given")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmserve", description="LLM serving workload: request scheduling and simulation."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate",
        help="run a requests.jsonl workload through the scheduler in virtual time",
        description="Simulate request policies on the cost-model executor (virtual time).",
    )
    sim.add_argument("--requests", required=True, help="requests.jsonl, one request per line")
    sim.add_argument(
        "--policy",
        type=_policies,
        default=["fcfs"],
        help=f"request policy, or several comma-separated for a comparison "
        f"({', '.join(POLICY_NAMES)}; default fcfs)",
    )
    sim.add_argument("--kv-blocks", type=_positive_int, default=1024, help="GPU KV blocks")
    sim.add_argument("--block-size", type=_positive_int, default=16, help="tokens per block")
    sim.add_argument(
        "--host-blocks",
        type=int,
        default=None,
        help="host (swap) pool blocks; default 4x --kv-blocks",
    )
    sim.add_argument("--max-batched-tokens", type=_positive_int, default=4096)
    sim.add_argument(
        "--max-running", type=_positive_int, default=64, help="max sequences holding GPU KV at once"
    )
    sim.add_argument(
        "--no-chunked-prefill", action="store_true", help="prefill each prompt in one step"
    )
    sim.add_argument(
        "--cfs-slice-steps", type=_positive_int, default=64, help="cfs: steps per time slice"
    )
    sim.add_argument(
        "--preemption",
        choices=[m.value for m in PreemptionMode],
        default=None,
        help="override the policies' preemption mode (fcfs, priority, slo recompute; cfs swap)",
    )
    sim.add_argument(
        "--slo-margin",
        type=float,
        default=1.1,
        help="slo: reject when estimated TTFT x margin exceeds the target (default 1.1)",
    )
    sim.add_argument(
        "--cost-model",
        default=None,
        help="JSON object of CostModel fields (ms), e.g. '{\"base_ms\": 7.5}'",
    )
    sim.add_argument("--trace", default=None, help="write the event trace (JSON lines) here")
    sim.add_argument(
        "--report", default=None, help="write the Markdown report here, with PNG plots beside it"
    )

    burst = sub.add_parser(
        "gen-burst",
        help="print a burst workload (requests.jsonl) on stdout",
        description="A burst of requests of mixed prompt and output lengths.",
    )
    burst.add_argument("--n", type=_positive_int, default=50, help="number of requests")
    burst.add_argument("--seed", type=int, default=0)
    burst.add_argument(
        "--interval-s", type=float, default=0.01, help="seconds between arrivals (default 0.01)"
    )
    burst.add_argument(
        "--ttft-slo-ms", type=float, default=None, help="give every request this TTFT target"
    )
    burst.add_argument("--high-priority-fraction", type=float, default=0.2)

    from llmserve import cli_bench

    cli_bench.add_parser(sub, _policies, _positive_int)
    return parser


def main(argv: Seq[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        if args.command == "gen-burst":
            return _gen_burst(args)
        if args.command == "bench":
            from llmserve import cli_bench

            return cli_bench.run(args)
        return _simulate(args)
    except (RequestFileError, ConfigError) as exc:
        print(f"llmserve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"llmserve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LLMServeError as exc:
        print(f"llmserve: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _gen_burst(args: argparse.Namespace) -> int:
    if args.interval_s < 0:
        raise ConfigError(f"--interval-s must be >= 0, got {args.interval_s}")
    if not 0.0 <= args.high_priority_fraction <= 1.0:
        raise ConfigError(
            f"--high-priority-fraction must be in [0, 1], got {args.high_priority_fraction}"
        )
    if args.ttft_slo_ms is not None and args.ttft_slo_ms <= 0:
        raise ConfigError(f"--ttft-slo-ms must be > 0, got {args.ttft_slo_ms}")
    for req in gen_burst(
        args.n, args.seed, args.interval_s, args.ttft_slo_ms, args.high_priority_fraction
    ):
        sys.stdout.write(json.dumps(request_to_dict(req)) + "\n")
    return EXIT_OK


def _cost_model(text: str | None) -> CostModel:
    if text is None:
        return CostModel()
    try:
        fields = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--cost-model is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ConfigError(f"--cost-model must be a JSON object, got {text!r}")
    try:
        return CostModel(**fields)
    except TypeError as exc:
        raise ConfigError(f"--cost-model: {exc}") from None


def _simulate(args: argparse.Namespace) -> int:
    requests = load_requests(args.requests)
    if args.host_blocks is not None and args.host_blocks < 0:
        raise ConfigError(f"--host-blocks must be >= 0, got {args.host_blocks}")
    config = SimConfig(
        kv_blocks=args.kv_blocks,
        block_size=args.block_size,
        host_blocks=args.host_blocks,
        scheduler=SchedulerConfig(
            max_batched_tokens=args.max_batched_tokens,
            max_running_seqs=args.max_running,
            chunked_prefill=not args.no_chunked_prefill,
        ),
        cost_model=_cost_model(args.cost_model),
        cfs_slice_steps=args.cfs_slice_steps,
        preemption_mode=PreemptionMode.parse(args.preemption) if args.preemption else None,
        slo_margin=args.slo_margin,
    )
    results: list[SimResult] = []
    with contextlib.ExitStack() as stack:
        trace_file = (
            stack.enter_context(open(args.trace, "w", encoding="utf-8")) if args.trace else None
        )
        for policy in args.policy:
            sink = JsonlTrace(trace_file, policy) if trace_file is not None else None
            results.append(simulate(requests, policy, config, trace=sink))
    summaries = [summarize(r) for r in results]
    _print_summary(summaries)
    if args.report:
        _write_report(Path(args.report), args.requests, requests, config, results, summaries)
    return EXIT_OK


def _print_summary(summaries: Seq[PolicySummary]) -> None:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    print(
        f"{'policy':<9}{'done':>6}{'rej':>5}{'TTFT p50':>10}{'p99':>8}{'TPOT p50':>10}"
        f"{'p99':>6}{'tok/s':>8}{'preempt':>9}{'sim req/s':>11}"
    )
    for s in summaries:
        print(
            f"{s.policy:<9}{s.finished:>6}{s.rejected:>5}{ms(s.ttft_ms.p50):>10}"
            f"{ms(s.ttft_ms.p99):>8}{ms(s.tpot_ms.p50):>10}{ms(s.tpot_ms.p99):>6}"
            f"{s.throughput_tok_s:>8.0f}{s.preempt_swap + s.preempt_recompute:>9}"
            f"{s.sim_req_per_s:>11.0f}"
        )
    print("(times in ms of virtual time)")


def _write_report(
    path: Path,
    source: str,
    requests: Seq,
    config: SimConfig,
    results: Seq[SimResult],
    summaries: Seq[PolicySummary],
) -> None:
    from llmserve.sim.plots import plot_kv, plot_ttft
    from llmserve.sim.report import render_report

    path.parent.mkdir(parents=True, exist_ok=True)
    ttft_png = path.with_name(f"{path.stem}_ttft.png")
    kv_png = path.with_name(f"{path.stem}_kv.png")
    plot_ttft(results, ttft_png)
    plot_kv(results, kv_png)
    text = render_report(
        source=source,
        requests=requests,
        config=config,
        results=results,
        summaries=summaries,
        plots=[("TTFT over request index", ttft_png.name), ("KV usage over time", kv_png.name)],
    )
    path.write_text(text, encoding="utf-8")
    print(f"report: {path} (plots {ttft_png.name}, {kv_png.name})")


if __name__ == "__main__":
    sys.exit(main())
