"""`llmserve bench`: per-request TTFT/TPOT in issue order, ratios, JSON and PNG plots, on
the cost model and on the real tiny model through an XQueue on the CPU device."""

from __future__ import annotations

import json

from llmserve.cli import main


def test_bench_on_the_cost_model_writes_json_plots_and_ratios(tmp_path, capsys) -> None:
    code = main(["bench", "--burst", "50", "--policy", "fcfs,cfs,priority",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "CFS / FCFS" in printed
    data = json.loads((tmp_path / "bench.json").read_text())
    assert set(data["policies"]) == {"fcfs", "cfs", "priority"}
    assert len(data["policies"]["cfs"]["ttft_ms"]) == 50
    assert data["kv_demand_blocks"] > data["parameters"]["kv_blocks"]
    assert data["ratios_cfs_over_fcfs"]["p99_ttft"] < 1.0
    assert (tmp_path / "ttft.png").stat().st_size > 0 and (tmp_path / "kv.png").stat().st_size > 0


def test_bench_runs_the_real_tiny_model_on_the_cpu_device(tmp_path) -> None:
    code = main(["bench", "--burst", "3", "--policy", "fcfs,cfs", "--executor", "model",
                 "--preset", "tiny", "--device", "cpu", "--kv-blocks", "64",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["clock"] == "wall time" and data["device"].startswith("cpu")
    for policy in ("fcfs", "cfs"):
        assert data["policies"][policy]["summary"]["finished"] + \
            data["policies"][policy]["summary"]["rejected"] == 3


def test_bench_refuses_an_unknown_device_for_the_model(tmp_path, capsys) -> None:
    code = main(["bench", "--burst", "2", "--executor", "model", "--device", "tpu:0",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "unknown model device 'tpu:0'" in capsys.readouterr().err
