"""Paper Fig. 9 on the simulated XPU: fixed priority and a 75/25 bandwidth partition.

Fixed priority: a foreground queue submits periodic tasks at 20% of its standalone peak
rate while a background queue runs flat out; we report the foreground's P99 latency
against its standalone P99, for native hardware queues (FCFS, no XQueue) and for ours
at levels 1, 2 and 3 under HPF. Bandwidth partition: both queues flat out under UP at
75/25; each side's throughput against standalone, and the total.

Every configuration runs as a real xsched-workload process on a shared simulated device
started for this run. Usage: python bench/paper_fig9.py --device sim [--duration-s 5]
"""

from __future__ import annotations

import argparse
import json
import sys

from common import private_sim_env, run_workload, stop_sim, write_results


def queue(name: str, **kv) -> str:
    return ",".join([f"name={name}", *(f"{k}={v}" for k, v in kv.items() if v is not None)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="sim", choices=["sim"])
    parser.add_argument("--duration-s", type=float, default=5.0)
    parser.add_argument("--commands", type=int, default=10, help="commands per task")
    parser.add_argument("--command-us", type=float, default=500.0)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results")
    args = parser.parse_args(argv)
    env, sock = private_sim_env()
    dur = ["--device", args.device, "--duration-s", str(args.duration_s)]
    task = {"commands": args.commands, "command_us": args.command_us}
    try:
        peak = run_workload(env, [*dur, "--native", "--queue", queue("fg", **task)])["fg"]
        period_ms = 1000.0 / (0.2 * peak["throughput_tps"])
        fg_task = {**task, "period_ms": round(period_ms, 3)}
        alone = run_workload(env, [*dur, "--native", "--queue", queue("fg", **fg_task)])["fg"]
        configs = {
            "native": (["--native"], {}, {}),
            "ours_lv1_thr1": ([], {"XSCHED_POLICY": "HPF"}, {"level": 1, "threshold": 1}),
            "ours_lv1_thr4": ([], {"XSCHED_POLICY": "HPF"}, {"level": 1, "threshold": 4}),
            "ours_lv1_thr16": ([], {"XSCHED_POLICY": "HPF"}, {"level": 1, "threshold": 16}),
            "ours_lv2": ([], {"XSCHED_POLICY": "HPF"}, {"level": 2, "threshold": 8}),
            "ours_lv3": ([], {"XSCHED_POLICY": "HPF"}, {"level": 3, "threshold": 8}),
        }
        fixed = {}
        for name, (flags, extra, params) in configs.items():
            out = run_workload(
                env,
                [*dur, *flags,
                 "--queue", queue("fg", priority=10, **fg_task, **params),
                 "--queue", queue("bg", priority=0, **task, **params)],
                extra,
            )  # fmt: skip
            fixed[name] = {
                "fg_p50_ms": out["fg"]["p50_ms"],
                "fg_p99_ms": out["fg"]["p99_ms"],
                "p99_vs_standalone": out["fg"]["p99_ms"] / alone["p99_ms"],
                "bg_throughput_vs_standalone": out["bg"]["throughput_tps"] / peak["throughput_tps"],
            }
        partition = {}
        for name, params in {
            "ours_lv1_thr2": {"level": 1, "threshold": 2},
            "ours_lv3": {"level": 3, "threshold": 8},
        }.items():
            out = run_workload(
                env,
                [*dur,
                 "--queue", queue("a", utilization=75, **task, **params),
                 "--queue", queue("b", utilization=25, **task, **params)],
                {"XSCHED_POLICY": "UP"},
            )  # fmt: skip
            a = out["a"]["throughput_tps"] / peak["throughput_tps"]
            b = out["b"]["throughput_tps"] / peak["throughput_tps"]
            partition[name] = {"a_share": a, "b_share": b, "total_vs_standalone": a + b}
    finally:
        stop_sim(sock)
    print(f"standalone: peak {peak['throughput_tps']:.1f} tasks/s, fg period {period_ms:.2f} ms, "
          f"P99 {alone['p99_ms']:.2f} ms")  # fmt: skip
    print(f"\nfixed priority (fg P99 / standalone P99; paper: native 1.60-2.19x, XSched 1.02-1.30x)")
    print(f"{'config':<16} {'fg p50 ms':>10} {'fg p99 ms':>10} {'p99 ratio':>10} {'bg tput':>8}")
    for name, r in fixed.items():
        print(f"{name:<16} {r['fg_p50_ms']:>10.2f} {r['fg_p99_ms']:>10.2f} "
              f"{r['p99_vs_standalone']:>9.2f}x {r['bg_throughput_vs_standalone']:>8.2f}")  # fmt: skip
    print("\nbandwidth partition UP 75/25 (throughput / standalone)")
    print(f"{'config':<16} {'a (75)':>8} {'b (25)':>8} {'total':>8}")
    for name, r in partition.items():
        print(f"{name:<16} {r['a_share']:>8.3f} {r['b_share']:>8.3f} {r['total_vs_standalone']:>8.3f}")
    results = {
        "standalone": {"peak_tps": peak["throughput_tps"], "fg_period_ms": period_ms,
                       "fg_p50_ms": alone["p50_ms"], "fg_p99_ms": alone["p99_ms"]},
        "fixed_priority": fixed,
        "bandwidth_partition": partition,
    }  # fmt: skip
    params = {"duration_s": args.duration_s, **task, "fg_load": "20% of standalone peak"}
    if not args.no_save:
        path = write_results(f"paper_fig9_{args.device}", f"simulated XPU ({args.device})", params, results)
        print(f"\nwrote {path}")
    print(json.dumps({k: {n: round(v["p99_vs_standalone"], 3) for n, v in fixed.items()}
                      if k == "fixed_priority" else v for k, v in results.items()}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
