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
