"""The benchmark scripts still run end to end (tiny sizes; their numbers are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
