"""Fixed priority on the GPU with TWO PROCESSES (paper Fig. 9 top): fg P99 / standalone.

Each side is its own `xsched-workload --device cuda:0` process. The foreground runs
periodic tasks (4 x 250 us spin commands) at 20% of its standalone peak rate, the
background tasks of 10 x 1 ms back to back. Configurations: native (two bare streams),
native with CUDA stream priorities (fg priority 10 -> the most urgent stream), and ours:
both processes' XQueues scheduled by xschedd (HPF) at level 1, threshold 1 / 4 / 16, and
at level 2, threshold 4 / 8, and the foreground at level 1 beside a level-2 background
(`ours_xschedd_fg_lv1_bg_lv2`); then the same with the priority board on in both processes
($XSCHED_CUDA_BOARD=1, hal.board): the background's kernels flush on the GPU as soon as
the foreground launches, instead of a round trip through xschedd later; and the board
alone (XSCHED_SCHEDULER=APP: XQueues, no scheduler). `ours_board_ahead_*` (and
`ours_xschedd_board_ahead_*`, under xschedd) is the board with anticipation
(hal.anticipation, $XSCHED_CUDA_BOARD_LEAD_US=--lead-us): the periodic foreground's level
is held from --lead-us before its next task is due, so the background parks before the
task arrives; the other board rows run without it.
`ours_xschedd_fg_alone` and `ours_board_ahead_fg_alone` are the foreground through
xschedd, or on the board, with no background: the runtime's own cost.

Two processes means two CUDA contexts, which the GPU time-slices: stream priorities,
which order blocks within one context, do not reach across them (they do under MPS). At level 2 a suspended
background flushes its kernel and waits at a gate; without the board that gate is a
napping kernel, which keeps the background's context in the GPU's time slices, and with
it a ticket gate (hal.cuda.gate), which leaves the GPU to the foreground.

With --mps every configuration runs again as clients of a private MPS server (NVIDIA's
Multi-Process Service, started here with its own pipe and log directories and stopped
at the end): the processes' kernels then share the GPU block by block instead of by
time slices. Results go to cuda_fixed_priority_2proc_mps.json.
With --rounds N the standalone foreground and every chosen configuration run N times,
interleaved (round r starts with the standalone, then the configurations from the r-th
on): each row pools its rounds' samples, against the standalone's pooled alike, and
reports each round's P99 against that round's standalone P99 too. On a noisy host a
single standalone run's P99 may land in a quiet or a loud minute; interleaved, the
baseline and ours see the same ones.
A run whose process the device refuses ("busy or unavailable": under MPS, now and then a
moment after the last run's processes ended) goes again after a pause (REFUSED_TRIES).
With --host-noise N, N processes burn the host's CPUs in bursts through every run (the
standalone's too): a noisy host made on purpose, where host threads wake late.
Every run is metered (bench/host_meter.py): "host stalled" is the share of its time the
host stalled a small sleeping process, about 0 on a quiet machine; on the noisy H100
VMs, whose CPUs all run at ~10% for 60-100 ms every second or two, every P99 (the
standalone's too) is a task caught in such a stretch.
Usage: python bench/cuda_fixed_priority_2proc.py [--duration-s 10] [--rounds 1] [--mps]
       [--lead-us 500] [--host-noise 0] [--only native,...] [--save-as NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from cuda_common import ROOT, names_among, pct, results_name, table, write
from cuda_procs import children_env, device_info, host_noise, start_daemon, summary_of, workload
from host_meter import HostMeter

from hal.anticipation import DEFAULT_LEAD_US, MAX_LEAD_US
from hal.anticipation import ENV as LEAD_ENV
from hal.board import ENV as BOARD_ENV

# Under MPS a new client was refused now and then, a moment after the last run's processes
# ended (H100: one process start in ten to forty): such a run goes again after a pause.
REFUSED = "cudaErrorDevicesUnavailable"
REFUSED_TRIES, REFUSED_PAUSE_S = 3, 2.0

FG = "name=fg,commands=4,command_us=250"
BG = "name=bg,commands=10,command_us=1000,priority=0"


def latencies(out: str, name: str) -> list[float]:
    rows = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    return [r["latency_ms"] for r in rows if r.get("queue") == name and "latency_ms" in r][5:]  # warm-up


def windows(out: str, name: str) -> dict | None:
    """Queue `name`'s anticipation summary (hal.anticipation: windows held, tasks that came
    into one) from its process's summary line; None where it had none."""
    return (summary_of(out, name) or {}).get("anticipation")


def cpu_per_task(out: str, name: str) -> float | None:
    """The host CPU (us) a task of queue `name`'s process cost, every thread's over its run
    (xsched_workload.runner.ProcessSummary), from its summary line; None where it had none
    (a tree from before it)."""
    return ((summary_of(out, name) or {}).get("process") or {}).get("cpu_us_per_task")


def fg_figures(latencies_ms: list[float]) -> dict:
    """The foreground's latency figures of one run, as every configuration reports them."""
    s = latencies_ms
    return {"fg_p50_ms": pct(s, 50), "fg_p90_ms": pct(s, 90), "fg_p99_ms": pct(s, 99), "fg_max_ms": max(s),
            "fg_tasks": len(s)}  # fmt: skip


def run_pair(fg_queue: str, duration_s: float, env: dict, native: bool, bg_queue: str = BG) -> dict:
    bg = workload(bg_queue, duration_s + 30, env, native)
    first = bg.stdout.readline()  # the background runs (its first task is done) before fg starts
    if not first:
        raise RuntimeError(f"background failed: {bg.stderr.read()[-2000:]}")
    fg = workload(fg_queue, duration_s, env, native)
    out, err = fg.communicate(timeout=duration_s + 120)
    bg.terminate()
    bg_out, _ = bg.communicate(timeout=30)
    if fg.returncode != 0:
        raise RuntimeError(f"foreground failed ({fg.returncode}): {err[-2000:]}")
    bg_tasks = len(latencies(first + bg_out, "bg"))
    return {"fg": latencies(out, "fg"), "bg_tasks": bg_tasks, "windows": windows(out, "fg")}


def run_alone(fg_queue: str, duration_s: float, env: dict, native: bool = False, cwd: Path = ROOT) -> dict:
    """The foreground alone through our runtime (natively with `native`; from the checkout
    `cwd`): what XQueues and the agent cost by themselves."""
    proc = workload(fg_queue, duration_s, env, native=native, cwd=cwd)
    out, err = proc.communicate(timeout=duration_s + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"foreground alone failed ({proc.returncode}): {err[-2000:]}")
    return {"fg": latencies(out, "fg"), "bg_tasks": 0, "windows": windows(out, "fg"),
            "cpu_us_per_task": cpu_per_task(out, "fg")}  # fmt: skip


def foreground_period_ms(env: dict) -> float:
    """The periodic foreground's period: 20% of its back-to-back rate, from a native run
    of it back to back (2 s)."""
    peak = run_alone(FG, 2.0, env, native=True)["fg"]
    if not peak:
        raise RuntimeError("peak run: the foreground completed no task")
    return 5 * pct(peak, 50)


class Config(NamedTuple):
    """One configuration: how its processes are scheduled (`how`: native; xschedd, with
    or without the priority board; the board alone, no scheduler) and the keys each side's
    queue gets beyond FG and BG (`bg` None: the foreground alone, no background)."""

    name: str
    how: str
    fg: str
    bg: str | None


def _configs() -> tuple[Config, ...]:
    def q(lv: int, thr: int) -> str:
        return f"level={lv},threshold={thr}"

    return (
        Config("native", "native", "", ""),
        Config("native_stream_priority", "native", "priority=10", ""),
        *(Config(f"ours_xschedd_lv{lv}_thr{thr}", "xschedd", f"priority=10,{q(lv, thr)}", q(lv, thr))
          for lv, thr in ((1, 1), (1, 4), (1, 16), (2, 4), (2, 8))),
        # what a user would run: only the background preemptible at level 2 (its guards
        # are its cost), the foreground a plain level-1 queue
        Config("ours_xschedd_fg_lv1_bg_lv2", "xschedd", f"priority=10,{q(1, 4)}", q(2, 8)),
        Config("ours_xschedd_fg_alone", "xschedd", f"priority=10,{q(2, 8)}", None),
        *(Config(f"ours_{how}_lv{lv}_thr{thr}", how, f"priority=10,{q(lv, thr)}", q(lv, thr))
          for how in ("xschedd_board", "xschedd_board_ahead", "board_only")
          for lv, thr in ((1, 4), (2, 8))),
        # the board with anticipation at every threshold the paper's table has
        *(Config(f"ours_board_ahead_lv{lv}_thr{thr}", "board_ahead", f"priority=10,{q(lv, thr)}", q(lv, thr))
          for lv, thr in ((1, 1), (1, 4), (1, 16), (2, 4), (2, 8))),
        Config("ours_board_ahead_fg_alone", "board_ahead", f"priority=10,{q(2, 8)}", None),
    )


CONFIGS = _configs()  # in the order run; --only picks among them
CONFIG_NAMES = tuple(c.name for c in CONFIGS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=10.0,
                   help="each run's length; a process's first ~4 periodic tasks come before the "
                        "anticipation's forecast (it needs 4 intervals), which 4-s runs weighed at 0.6%% of "
                        "the tasks, enough to set the P99")
    p.add_argument("--mps", action="store_true", help="run every configuration as clients of an MPS server")
    p.add_argument("--lead-us", type=float, default=DEFAULT_LEAD_US,
                   help="the board_ahead rows: hold the foreground's level this long before its next task")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the standalone and every configuration this many times, interleaved: pooled "
                        "figures, and each round's P99 against its own standalone's (noisy hosts)")
    p.add_argument("--save-as", type=results_name, default=None, help="results file name (without .json)")
    p.add_argument("--host-noise", type=int, default=0, metavar="N",
                   help="N processes burning the host's CPUs in bursts through every run, the standalone's "
                        "too (a noisy host made on purpose; cuda_procs.host_noise)")
    p.add_argument("--only", type=names_among(CONFIG_NAMES), default=list(CONFIG_NAMES),
                   help=f"comma-separated configurations to run (default all: {','.join(CONFIG_NAMES)})")
    a = p.parse_args(argv)
    if not a.duration_s > 0:
        p.error(f"--duration-s must be > 0, got {a.duration_s}")
    if not 1 <= a.rounds <= 100:
        p.error(f"--rounds must be in [1, 100], got {a.rounds}")
    if not 0 <= a.host_noise <= 256:
        p.error(f"--host-noise must be in [0, 256], got {a.host_noise}")
    if not 0 < a.lead_us <= MAX_LEAD_US:
        p.error(f"--lead-us must be in (0, {MAX_LEAD_US:.0f}], got {a.lead_us}")
    # with --mps this process joins the server too: it opens the device (its name for the results)
    with children_env(a.mps, export=True) as base:
        return run_all(a, base)


def run_all(a: argparse.Namespace, base: dict) -> int:
    native_env = {**base, "XSCHED_SCHEDULER": "APP"}

    period_ms = foreground_period_ms(native_env)
    fg = f"{FG},period_ms={period_ms:.3f}"
    chosen = [c for c in CONFIGS if c.name in a.only]
    runs: dict[str, list[dict]] = {}  # per configuration, one entry per round: its run, or its error

    def once(c: Config | None, envs: dict[str, dict]) -> dict:
        if c is None:
            return run_alone(fg, a.duration_s, native_env, native=True)
        if c.bg is None:
            return run_alone(f"{fg},{c.fg}", a.duration_s, envs[c.how])
        return run_pair(f"{fg},{c.fg}" if c.fg else fg, a.duration_s, envs[c.how], native=c.how == "native",
                        bg_queue=f"{BG},{c.bg}" if c.bg else BG)  # fmt: skip

    def measure(c: Config | None, envs: dict[str, dict]) -> None:
        """One run of `c` (None: the foreground alone, natively: the standalone figures).
        A process the device refused (REFUSED) runs again after a pause, twice at most.
        A configuration that fails even so is recorded with its error, and the others
        still run; without a standalone the benchmark stops."""
        name = "standalone" if c is None else c.name
        for attempt in range(REFUSED_TRIES):
            start = time.monotonic()
            try:
                r = once(c, envs)
                break
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if REFUSED in str(exc) and attempt + 1 < REFUSED_TRIES:
                    print(name, f"the device refused a process; again in {REFUSED_PAUSE_S:g} s", flush=True)
                    time.sleep(REFUSED_PAUSE_S)
                    continue
                if c is None:
                    raise
                runs.setdefault(name, []).append({"error": str(exc)[-500:]})
                print(name, "FAILED:", str(exc)[-500:], flush=True)
                return
        r["host_stalled"] = meter.stalled_share(start, time.monotonic())
        runs.setdefault(name, []).append(r)
        if r["fg"]:
            print(name, {"fg_p50_ms": pct(r["fg"], 50), "fg_p99_ms": pct(r["fg"], 99), "bg_tasks": r["bg_tasks"],
                         **({"windows": r["windows"]} if r.get("windows") else {})}, flush=True)  # fmt: skip

    board = {**base, "XSCHED_SCHEDULER": "APP", BOARD_ENV: "1", LEAD_ENV: "0"}
    envs = {"native": native_env, "board_only": board, "board_ahead": {**board, LEAD_ENV: f"{a.lead_us:g}"}}
    with contextlib.ExitStack() as stack:
        meter = stack.enter_context(HostMeter())
        stack.enter_context(host_noise(a.host_noise))
        if any(c.how.startswith("xschedd") for c in chosen):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xs-")))
            daemon = start_daemon(tmp, base)
            stack.callback(daemon.wait, 30)
            stack.callback(daemon.terminate)
            envs["xschedd"] = {**base, "XSCHED_SCHEDULER": "GLB", "XSCHED_SOCKET": str(tmp / "xschedd.sock")}
            envs["xschedd_board"] = {**envs["xschedd"], BOARD_ENV: "1", LEAD_ENV: "0"}
            envs["xschedd_board_ahead"] = {**envs["xschedd_board"], LEAD_ENV: f"{a.lead_us:g}"}
        for r in range(a.rounds):  # each round: the standalone, then every configuration, from the r-th on
            measure(None, envs)
            k = r % len(chosen)
            for c in chosen[k:] + chosen[:k]:
                measure(c, envs)
    results, rows = summarize(runs, ["standalone", *(c.name for c in chosen)])
    params = {**vars(a), "only": sorted(a.only, key=CONFIG_NAMES.index), "fg": fg, "bg": BG, "fg_period_ms": period_ms,
              "processes": 2}  # fmt: skip
    dev = device_info()
    name, setup = "cuda_fixed_priority_2proc", "two processes; ours through xschedd (HPF)"
    if a.mps:
        name, setup = f"{name}_mps", f"{setup}; every process an MPS client"
    name = a.save_as or name
    path = write(name, dev, params, results, setup=setup)
    header = ["config", "fg p50 ms", "fg p99 ms", "p99/standalone", "bg tasks", "fg in held window", "host stalled"]
    if a.rounds > 1:
        header.append(f"p99/standalone by round ({a.rounds})")
    print(table(f"Fixed priority, two processes{' (MPS)' if a.mps else ''}, on {dev.info.name} "
                f"(fg P99 / standalone P99) -> {path}", header, rows))  # fmt: skip
    return 0


def summarize(runs: dict[str, list[dict]], names: list[str]) -> tuple[dict, list[list]]:
    """Results and table rows from every round's runs: each configuration's samples pooled
    over its rounds, against the standalone's pooled the same way (both saw the same hours
    of the machine), and with more than one round each round's P99 against that round's
    standalone P99."""
    alone = runs["standalone"]
    a99 = pct([x for r in alone for x in r["fg"]], 99)
    by_round = len(alone) > 1
    results: dict[str, dict] = {}
    rows: list[list] = []
    for name in names:
        ok = [(i, r) for i, r in enumerate(runs.get(name, [])) if "error" not in r]
        errors = [r["error"] for r in runs.get(name, []) if "error" in r]
        s = [x for _, r in ok for x in r["fg"]]
        if not s:
            results[name] = {"error": errors[-1] if errors else "no samples"}
            rows.append([name, "failed", "-", "-", "-", "-", "-"] + ["-"] * by_round)
            continue
        fig = {**fg_figures(s), "p99_vs_standalone": pct(s, 99) / a99}
        if name != "standalone":
            fig["bg_tasks"] = round(statistics.mean(r["bg_tasks"] for _, r in ok))
        held = [r["windows"] for _, r in ok if r.get("windows")]
        if held:  # anticipation: how many of the foreground's tasks came into a window held for them
            came, arrivals = (sum(w[k] for w in held) for k in ("arrivals_in_held_window", "arrivals"))
            fig["arrivals_in_held_window"] = came / max(1, arrivals)
        stalled = [r["host_stalled"] for _, r in ok if r.get("host_stalled") is not None]
        if stalled:  # host_meter: the share of its runs' time the host stalled a sleeping thread
            fig["host_stalled"] = statistics.mean(stalled)
        if errors:
            fig["errors"] = errors
        in_window = fig.get("arrivals_in_held_window")
        row = [name, fig["fg_p50_ms"], fig["fg_p99_ms"], fig["p99_vs_standalone"], fig.get("bg_tasks", "-"),
               "-" if in_window is None else f"{100 * in_window:.1f}%",
               "-" if not stalled else f"{100 * fig['host_stalled']:.1f}%"]  # fmt: skip
        if by_round:  # a configuration's i-th run came in the standalone's i-th round
            fig["rounds"] = [{**fg_figures(r["fg"]), "p99_vs_standalone": pct(r["fg"], 99) / pct(alone[i]["fg"], 99),
                              "host_stalled": r.get("host_stalled")} for i, r in ok]  # fmt: skip
            ratios = [x["p99_vs_standalone"] for x in fig["rounds"]]
            row.append(f"{min(ratios):.2f}-{max(ratios):.2f}x (median {statistics.median(ratios):.2f})")
        results[name] = fig
        rows.append(row)
    return results, rows


if __name__ == "__main__":
    sys.exit(main())
