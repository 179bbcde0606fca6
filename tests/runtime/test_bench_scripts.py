"""The benchmark scripts still run end to end (tiny sizes; their numbers are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_paper_fig9_prints_the_table_and_a_json_last_line():
    out = run_script("bench/paper_fig9.py", "--duration-s", "0.3", "--no-save")
    assert "fixed priority" in out and "bandwidth partition" in out
    last = json.loads(out.strip().splitlines()[-1])
    assert set(last["fixed_priority"]) >= {"native", "ours_lv2", "ours_lv3"}


def test_overhead_prints_the_slowdown_table():
    out = run_script("bench/overhead.py", "--quick", "--repeats", "1", "--no-save")
    assert "finest command" in out


def test_the_gpu_pair_benchmark_reports_medians_and_ranges_over_rounds(monkeypatch):
    """cuda_bandwidth_2proc --rounds N: each figure is the median over the rounds, with
    its range, and every round's own figures are kept (pure: no GPU needed)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from cuda_bandwidth_2proc import summarize

    def one(standalone, total, alone=None):
        figures = {"a_share": total * 0.75, "b_share": total * 0.25, "total_vs_standalone": total}
        if alone is not None:
            figures["alone_vs_standalone"] = alone
        return {"standalone_tps": standalone, "standalone_tps_runs": [standalone], "ours": figures}

    only = one(280.0, 0.95, 0.97)
    assert summarize([only]) is only  # one round: as it came
    rounds = [one(280.0, 0.91, 0.93), one(284.0, 0.97, 0.96), one(290.0, 0.94, 0.99)]
    s = summarize(rounds)
    assert s["standalone_tps"] == 284.0
    assert s["ours"]["total_vs_standalone"] == 0.94
    assert s["ours"]["total_vs_standalone_range"] == [0.91, 0.97]
    assert s["ours"]["alone_vs_standalone"] == 0.96
    assert s["ours"]["alone_vs_standalone_range"] == [0.93, 0.99]
    assert s["rounds"] == rounds


def test_the_gpu_fixed_priority_benchmark_refuses_unknown_configurations_before_any_run():
    """--only names what exists, or the script says what does and exits 2 (no GPU needed:
    it refuses before it opens the device)."""
    result = subprocess.run(
        [sys.executable, "bench/cuda_fixed_priority_2proc.py", "--only", "native,ours_lv9"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "ours_lv9" in result.stderr and "ours_xschedd_lv2_thr8" in result.stderr


def test_the_gpu_fixed_priority_benchmark_refuses_bad_host_noise_and_has_the_board_at_every_threshold(monkeypatch):
    result = subprocess.run(
        [sys.executable, "bench/cuda_fixed_priority_2proc.py", "--host-noise", "-1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and "--host-noise must be in [0, 256]" in result.stderr
    fp = _fixed_priority(monkeypatch)
    ahead = {c.name: (c.fg, c.bg) for c in fp.CONFIGS if c.how == "board_ahead" and c.bg}
    assert set(ahead) == {f"ours_board_ahead_lv{lv}_thr{thr}" for lv, thr in ((1, 1), (1, 4), (1, 16), (2, 4), (2, 8))}
    assert ahead["ours_board_ahead_lv1_thr16"] == ("priority=10,level=1,threshold=16", "level=1,threshold=16")


def test_host_noise_burns_the_cpus_while_it_lasts_and_leaves_nothing_behind(monkeypatch):
    """cuda_procs.host_noise: N processes busy in bursts for the duration, all gone after."""
    import psutil

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from cuda_procs import host_noise

    with host_noise(2) as procs:
        assert len(procs) == 2
        time.sleep(0.3)
        busy = [psutil.Process(p.pid).cpu_times() for p in procs]
        assert all(p.poll() is None for p in procs)
        assert all(0.02 < t.user + t.system for t in busy), busy  # about half a core each
    assert all(p.poll() is not None for p in procs)
    with host_noise(0) as none:
        assert none == []


def test_the_gpu_pair_benchmark_counts_only_the_window_both_sides_ran_in(monkeypatch):
    """Side b starting 1 s late and side a stopping 1 s early leave each running alone
    for a while; only tasks that ended while both ran count, over that window."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from cuda_bandwidth_2proc import overlap_throughputs, task_spans

    def spans(first: float, last: float, every: float) -> list[tuple[float, float]]:
        n = round((last - first) / every)
        return [(first + i * every, first + (i + 1) * every) for i in range(n)]

    a = spans(100.0, 104.0, 0.01)  # 100 tasks/s, from 100 s to 104 s
    b = spans(101.0, 105.0, 0.04)  # 25 tasks/s, from 101 s to 105 s
    ta, tb = overlap_throughputs(a, b)  # the window: 101-104 s
    assert ta == pytest.approx(100.0, rel=0.01) and tb == pytest.approx(25.0, rel=0.02)
    out = "\n".join(
        [json.dumps({"queue": "a", "task": 0, "latency_ms": 10.0, "end_s": 5.01}),
         json.dumps({"queue": "b", "task": 0, "latency_ms": 20.0, "end_s": 5.02}),
         json.dumps({"summary": True, "queue": "a", "throughput_tps": 1.0})]
    )  # fmt: skip
    assert task_spans(out, "a") == [pytest.approx((5.0, 5.01))]
    with pytest.raises(RuntimeError, match="same time"):
        overlap_throughputs(spans(0.0, 1.0, 0.1), spans(2.0, 3.0, 0.1))
    with pytest.raises(RuntimeError, match="no task"):
        overlap_throughputs(a, [])


def test_the_gpu_pair_benchmarks_read_a_queues_summary_line(monkeypatch):
    """A workload process's output: per-task lines, then a summary per queue; the two
    benchmarks read throughput and the anticipation counts from the named queue's."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from cuda_bandwidth_2proc import throughput
    from cuda_fixed_priority_2proc import windows

    held = {"windows": 9, "held": 8, "arrivals": 10, "arrivals_in_held_window": 7}
    out = "\n".join(
        ["xsched-workload: note: a line that is not JSON",
         json.dumps({"queue": "fg", "task": 0, "latency_ms": 1.0, "end_s": 5.0}),
         json.dumps({"summary": True, "queue": "bg", "throughput_tps": 3.0}),
         json.dumps({"summary": True, "queue": "fg", "throughput_tps": 2.5, "anticipation": held})]
    )  # fmt: skip
    assert throughput(out, "fg") == 2.5 and throughput(out, "bg") == 3.0
    assert windows(out, "fg") == held
    assert windows(out, "bg") is None, "no anticipation on that queue"
    assert windows(out, "other") is None
    with pytest.raises(RuntimeError, match="no summary for 'other'"):
        throughput(out, "other")


def _fixed_priority(monkeypatch):
    """bench/cuda_fixed_priority_2proc, imported from bench/."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import cuda_fixed_priority_2proc as fp

    return fp


def _stand_ins(monkeypatch, fp, tmp_path, alone, pair) -> dict:
    """Its processes, device and results file stood in for: `alone` and `pair` answer
    run_alone and run_pair; the results it saves are gathered in the dict returned."""
    from types import SimpleNamespace

    saved: dict = {}

    class Meter:  # bench/host_meter.py, standing in: the host stalled 2% of every run
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def stalled_share(self, t0, t1):
            return 0.02

    monkeypatch.setattr(fp, "HostMeter", Meter)
    monkeypatch.setattr(fp, "run_pair", pair)
    monkeypatch.setattr(fp, "run_alone", alone)
    monkeypatch.setattr(fp, "device_info", lambda: SimpleNamespace(info=SimpleNamespace(name="stand-in")))
    monkeypatch.setattr(fp, "write", lambda name, dev, params, results, setup: saved.update(results) or tmp_path / name)
    return saved


def test_the_gpu_fixed_priority_benchmark_runs_each_configuration_from_its_table(monkeypatch, tmp_path):
    """Each configuration chosen with --only runs once, in the table's order, with its own
    queues and scheduling; xschedd starts only for configurations that use it (the
    processes are stand-ins: no GPU needed)."""
    import argparse
    from types import SimpleNamespace

    fp = _fixed_priority(monkeypatch)
    assert len(set(fp.CONFIG_NAMES)) == len(fp.CONFIGS)
    assert {c.how for c in fp.CONFIGS} == {"native", "xschedd", "xschedd_board", "xschedd_board_ahead", "board_only",
                                            "board_ahead"}
    calls, daemons, leads, standalones = [], [], [], []

    def pair(fg_queue, duration_s, env, native, bg_queue=fp.BG):
        calls.append((fg_queue, bg_queue, env.get("XSCHED_SCHEDULER"), env.get(fp.BOARD_ENV), native))
        leads.append(env.get(fp.LEAD_ENV))
        return {"fg": [1.0, 1.1], "bg_tasks": 3}

    def alone(fg_queue, duration_s, env, native=False):
        if "period_ms" not in fg_queue:  # the peak run, back to back
            return {"fg": [1.0] * 10, "bg_tasks": 0}
        if native:  # the standalone foreground
            standalones.append((fg_queue, env.get("XSCHED_SCHEDULER"), env.get(fp.BOARD_ENV)))
            return {"fg": [1.0], "bg_tasks": 0}
        calls.append((fg_queue, None, env.get("XSCHED_SCHEDULER"), env.get(fp.BOARD_ENV), False))
        return {"fg": [1.0], "bg_tasks": 0}

    def daemon(tmp, env, policy="HPF"):
        daemons.append(policy)
        return SimpleNamespace(terminate=lambda: None, wait=lambda timeout=None: 0)

    _stand_ins(monkeypatch, fp, tmp_path, alone, pair)
    monkeypatch.setattr(fp, "start_daemon", daemon)

    def run(*names: str) -> None:
        calls.clear()
        daemons.clear()
        leads.clear()
        standalones.clear()
        assert fp.run_all(argparse.Namespace(duration_s=0.1, rounds=1, mps=False, lead_us=750.0, save_as=None, host_noise=0,
                                             only=list(names)), {}) == 0  # fmt: skip

    run("ours_board_only_lv2_thr8", "native")  # run in the table's order, not the flag's
    assert standalones == [(calls[0][0], "APP", None)], "one standalone run, native, with the pair's period"
    assert [c[2:] for c in calls] == [("APP", None, True), ("APP", "1", False)]
    assert calls[1][1] == f"{fp.BG},level=2,threshold=8" and "priority=10,level=2" in calls[1][0]
    assert daemons == []  # neither needs xschedd
    run("ours_board_only_lv2_thr8", "ours_board_ahead_lv2_thr8", "ours_xschedd_board_ahead_lv1_thr4")
    # in the table's order: xschedd's board rows come first
    assert leads == ["750", "0", "750"], "the board rows run without anticipation, the ahead rows with --lead-us"
    assert calls[0][2:4] == ("GLB", "1") and calls[1][2:4] == ("APP", "1") and daemons == ["HPF"]
    run("ours_xschedd_fg_lv1_bg_lv2", "ours_xschedd_fg_alone", "ours_xschedd_board_lv1_thr4")
    assert daemons == ["HPF"]
    (fg1, bg1, *_), (fg2, bg2, *_), (_, _, sched, board, _) = calls
    assert "level=1,threshold=4" in fg1 and bg1.endswith("level=2,threshold=8")
    assert "level=2,threshold=8" in fg2 and bg2 is None  # the foreground alone
    assert (sched, board) == ("GLB", "1")


def test_the_host_meter_counts_the_time_in_cycles_that_began_late_or_worked_long(monkeypatch):
    """host_meter.stalled_share, pure: a cycle whose unit began over LATE_S late or worked
    over SLOW_FACTOR x the median unit counts whole (from the unit before it)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from host_meter import stalled_share

    ms = 1_000_000
    quiet = [(i * ms, 30_000, 100_000) for i in range(1, 1001)]  # a 30 us unit each ms, 0.1 ms late
    assert stalled_share(quiet, 0.0, 1.0) == 0.0
    stalls = [*quiet, (1_050 * ms, 30_000, 49 * ms), (1_060 * ms, 10 * ms, 0), (1_061 * ms, 30_000, 0)]
    assert stalled_share(stalls, 1.0, 1.1) == pytest.approx((50 * ms + 10 * ms) / (100 * ms))
    assert stalled_share(stalls, 1.055, 1.1) == pytest.approx(5 * ms / (45 * ms)), "the slow cycle cut at t0"
    assert stalled_share(stalls, 2.0, 3.0) is None, "no unit ended then"
    assert stalled_share([], 0.0, 1.0) is None


def test_the_host_meter_sees_its_process_stopped_and_leaves_nothing_behind(monkeypatch):
    """A live HostMeter: stopped for half of a stretch it reads about half; gone after."""
    import os
    import signal

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from host_meter import HostMeter

    with HostMeter() as meter:
        time.sleep(0.3)
        start = time.monotonic()
        for _ in range(4):
            os.kill(meter._proc.pid, signal.SIGSTOP)
            time.sleep(0.05)
            os.kill(meter._proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        end = time.monotonic()
        time.sleep(0.15)  # its buffer of 64 units goes out
        share = meter.stalled_share(start, end)
        assert share is not None and 0.25 <= share <= 1.0, share
        proc, path = meter._proc, meter._path
    assert proc.poll() is not None and not os.path.exists(path)


def test_the_gpu_fixed_priority_benchmark_interleaves_rounds_with_the_standalone(monkeypatch, tmp_path):
    """With --rounds each round runs the standalone first, then the configurations from a
    rotating start; rows pool their rounds against the pooled standalone, and each round's
    P99 is also set against that round's standalone (a loud round shows in both)."""
    import argparse

    fp = _fixed_priority(monkeypatch)
    order = []
    loud = {1: 2.0}  # round 1 is twice as slow for everyone

    def samples(base: float) -> list[float]:
        return [base * loud.get(order.count("standalone") - 1, 1.0)] * 100

    def alone(fg_queue, duration_s, env, native=False):
        if "period_ms" not in fg_queue:  # the peak run, back to back
            return {"fg": [1.0] * 10, "bg_tasks": 0}
        order.append("standalone" if native else "fg_alone")
        return {"fg": samples(1.0), "bg_tasks": 0}

    def pair(fg_queue, duration_s, env, native, bg_queue=fp.BG):
        order.append("native" if native else "board")
        if native and order.count("standalone") == 3:
            raise RuntimeError("a process refused the device")
        held = None if native else {"windows": 100, "held": 99, "arrivals": 100, "arrivals_in_held_window": 90 + len(order)}
        return {"fg": samples(2.0 if native else 1.1), "bg_tasks": 4 if native else 2, "windows": held}

    saved = _stand_ins(monkeypatch, fp, tmp_path, alone, pair)
    a = argparse.Namespace(duration_s=0.1, rounds=3, mps=False, lead_us=500.0, save_as=None, host_noise=0,
                           only=["native", "ours_board_only_lv2_thr8"])  # fmt: skip
    assert fp.run_all(a, {}) == 0
    assert order == ["standalone", "native", "board", "standalone", "board", "native", "standalone", "native", "board"]
    board, native = saved["ours_board_only_lv2_thr8"], saved["native"]
    assert [r["p99_vs_standalone"] for r in board["rounds"]] == pytest.approx([1.1, 1.1, 1.1])
    assert board["fg_tasks"] == 300 and board["fg_p99_ms"] == pytest.approx(2.2)  # the loud round's
    assert board["p99_vs_standalone"] == pytest.approx(1.1)  # against the standalone's loud round too
    assert len(native["rounds"]) == 2 and native["errors"] == ["a process refused the device"]
    assert native["bg_tasks"] == 4 and saved["standalone"]["fg_tasks"] == 300
    assert board["arrivals_in_held_window"] == pytest.approx((93 + 95 + 99) / 300), "pooled over the rounds"
    assert "arrivals_in_held_window" not in native
    for row in (board, native, saved["standalone"]):  # every run metered (bench/host_meter.py)
        assert row["host_stalled"] == pytest.approx(0.02)
        assert [r["host_stalled"] for r in row["rounds"]] == pytest.approx([0.02] * len(row["rounds"]))


def test_the_gpu_fixed_priority_benchmark_runs_again_a_process_the_device_refused(monkeypatch, tmp_path):
    """A run whose process the device refused (an MPS server still cleaning up) goes again
    after a pause, the standalone's too, at most REFUSED_TRIES times in all; other
    failures are recorded at once."""
    import argparse

    fp = _fixed_priority(monkeypatch)
    order = []
    refusals = {"standalone": 1, "board": 5}  # the board's never stops
    refused = f"foreground alone failed (1): ... {fp.REFUSED}: CUDA-capable device(s) is/are busy or unavailable"

    def run(what: str, base: float) -> dict:
        order.append(what)
        if refusals.get(what, 0) > 0:
            refusals[what] -= 1
            raise RuntimeError(refused)
        return {"fg": [base] * 100, "bg_tasks": 3}

    def alone(fg_queue, duration_s, env, native=False):
        if "period_ms" not in fg_queue:
            return {"fg": [1.0] * 10, "bg_tasks": 0}
        return run("standalone", 1.0)

    def pair(fg_queue, duration_s, env, native, bg_queue=fp.BG):
        return run("native" if native else "board", 2.0 if native else 1.1)

    saved = _stand_ins(monkeypatch, fp, tmp_path, alone, pair)
    monkeypatch.setattr(fp, "REFUSED_PAUSE_S", 0.0)
    a = argparse.Namespace(duration_s=0.1, rounds=1, mps=True, lead_us=500.0, save_as=None, host_noise=0,
                           only=["native", "ours_board_only_lv2_thr8"])  # fmt: skip
    assert fp.run_all(a, {}) == 0
    assert order == ["standalone", "standalone", "native"] + ["board"] * fp.REFUSED_TRIES
    assert saved["standalone"]["fg_tasks"] == 100 and saved["native"]["fg_tasks"] == 100
    assert fp.REFUSED in saved["ours_board_only_lv2_thr8"]["error"]


def test_the_context_overlap_benchmark_counts_the_gpu_time_lost_per_burst(monkeypatch):
    """A pair doing 3.5% less than a alone over 3 s with 300 bursts of b lost 350 us a
    burst; bad input is refused before any process starts (no GPU needed)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from cuda_context_overlap import lost_per_burst

    assert lost_per_burst(1000.0, 965.0, 3.0, 300) == pytest.approx(350e-6)
    assert lost_per_burst(1000.0, 1000.0, 3.0, 300) == 0.0
    with pytest.raises(ValueError):
        lost_per_burst(1000.0, 900.0, 3.0, 0)
    for bad in (["--duration-s", "0"], ["--rounds", "0"]):
        result = subprocess.run(
            [sys.executable, "bench/cuda_context_overlap.py", *bad],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 2 and "must be" in result.stderr


def test_the_task_floor_benchmark_refuses_a_baseline_that_is_no_checkout(tmp_path):
    result = subprocess.run(
        [sys.executable, "bench/cuda_task_floor.py", "--against", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and "not a checkout" in result.stderr


def test_the_task_floor_benchmark_interleaves_ours_and_the_baseline(monkeypatch, tmp_path):
    """Every round runs native, then each configuration from our tree and from --against's
    (its checkout first on the path); each figure is the median over the rounds, and P50
    over native is in microseconds, as is the host CPU a task (a tree from before the
    process summary has none; the processes are stand-ins: no GPU needed)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from types import SimpleNamespace

    import cuda_fixed_priority_2proc as fp
    import cuda_task_floor as ft

    base = tmp_path / "base"
    (base / "preempt").mkdir(parents=True)
    (base / "preempt" / "xqueue.py").write_text("")
    calls, saved = [], {}

    def run(queue, duration_s, env, native, root):
        calls.append((queue, env.get("XSCHED_CUDA_BOARD"), native, root, env.get("PYTHONPATH", "").split(":")[0]))
        if "period_ms" not in queue:
            return {"fg": [1.0] * 10}  # the peak run
        slower = 0.0 if native else 0.1 if root == ROOT else 0.2
        slow = [] if native or root != ROOT else [9.0]  # one task in ten ours is slow
        cpu = 1000.0 + len(calls) if native else 1300.0 + len(calls) if root == ROOT else None
        return {"fg": [1.0 + slower + 0.01 * len(calls)] * (10 - len(slow)) + slow, "cpu_us_per_task": cpu}

    monkeypatch.setattr(ft, "run", run)
    # the peak run, through the module the period comes from
    monkeypatch.setattr(fp, "run_alone", lambda q, d, env, native=False, cwd=ROOT: run(q, d, env, native, cwd))
    monkeypatch.setattr(ft, "device_info", lambda: SimpleNamespace(info=SimpleNamespace(name="stand-in")))
    monkeypatch.setattr(ft, "write", lambda name, dev, params, results, setup: saved.update(results) or tmp_path / name)
    assert ft.main(["--rounds", "2", "--duration-s", "0.1", "--against", str(base)]) == 0
    per_round = 1 + 2 * len(ft.CONFIGS)
    assert len(calls) == 1 + 2 * per_round
    first = calls[1 : 1 + per_round]
    assert first[0][2] and all(not c[2] for c in first[1:])
    assert [c[3] for c in first[1:]] == [ROOT] * len(ft.CONFIGS) + [base.resolve()] * len(ft.CONFIGS)
    assert all(c[4] == str(base.resolve()) for c in first[1 + len(ft.CONFIGS) :]), "the baseline's tree comes first"
    assert [c[1] for c in first[1 : 1 + len(ft.CONFIGS)]] == ["0", "0", "1", "1", "1"]
    assert set(saved) == {"native"} | {n for n, _, _ in ft.CONFIGS} | {f"base_{n}" for n, _, _ in ft.CONFIGS}
    assert saved["xq_lv1_thr4"]["p50_over_native_us"] == pytest.approx(100 + 10, abs=6)
    assert saved["base_xq_lv1_thr4"]["p50_over_native_us"] == pytest.approx(200 + 10 * (len(ft.CONFIGS) + 1), abs=6)
    assert saved["xq_lv1_thr4"]["slow"] == pytest.approx(0.1) and saved["base_xq_lv1_thr4"]["slow"] == 0.0
    assert saved["native"]["slow"] == 0.0
    calls_a_round = 1 + 2 * len(ft.CONFIGS)  # each call adds 1 us: the median of two rounds is their mean
    assert saved["xq_lv1_thr4"]["cpu_over_native_us"] == pytest.approx(300 + 1, abs=1e-6)
    assert saved["native"]["cpu_us_per_task"] == pytest.approx(1000 + 2 + calls_a_round / 2)
    base_row = saved["base_xq_lv1_thr4"]
    assert base_row["cpu_us_per_task"] is None and base_row["cpu_over_native_us"] is None


def test_the_launch_stall_benchmark_pools_rounds_and_counts_slow_launches(monkeypatch):
    """cuda_launch_stalls.summarize (pure: no GPU needed): rounds pooled per configuration,
    launches over 0.5 ms and over 2 ms counted, the longest kept."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from cuda_launch_stalls import summarize

    rounds = [
        {"fg": [1.0, 1.2], "fg_launch_us": [10.0, 600.0], "fg_claim_us": [], "bg_launch_us": [3000.0]},
        {"fg": [1.1, 5.0], "fg_launch_us": [2500.0, 12.0], "fg_claim_us": [40.0], "bg_launch_us": [8.0]},
    ]
    s = summarize({"board_ahead": rounds})["board_ahead"]
    assert s["fg_tasks"] == 4
    assert s["fg_launch_us"] == {"n": 4, "over_0.5ms": 2, "over_2ms": 1, "max_us": 2500.0}
    assert s["fg_claim_us"] == {"n": 1, "over_0.5ms": 0, "over_2ms": 0, "max_us": 40.0}
    assert s["bg_launch_us"]["over_2ms"] == 1 and s["bg_launch_us"]["n"] == 2
    assert s["fg_p99_ms"] >= s["fg_p50_ms"] >= 1.0
    assert summarize({"native": [{"fg": [1.0], "fg_launch_us": [], "fg_claim_us": [], "bg_launch_us": []}]})[
        "native"]["fg_claim_us"] == {"n": 0, "over_0.5ms": 0, "over_2ms": 0, "max_us": 0.0}


def test_results_name_the_commit_and_say_when_the_tree_differs_from_it(monkeypatch, tmp_path):
    """bench.common.git_commit: $XSCHED_COMMIT wins; else HEAD, with "-dirty" where a
    tracked file differs (a copied tree beside an older .git must not pass for HEAD)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import common

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    monkeypatch.setattr(common, "ROOT", tmp_path)
    monkeypatch.delenv("XSCHED_COMMIT", raising=False)
    assert common.git_commit() == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert common.git_commit() == f"{head}-dirty"
    monkeypatch.setenv("XSCHED_COMMIT", "abc1234")
    assert common.git_commit() == "abc1234"
